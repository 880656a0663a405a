import { IdentityGraph, type MergeRecord, type ReviewItem } from "./graph";
import { blockingKeys, DEFAULT_MODEL, score } from "./probabilistic";
import { checkGuards, mergeInto } from "./resolve";
import type { IdentitySettings } from "./settings";

/** A block this size is a common name or a shared household line, not a lead: it is not scanned. */
const MAX_BLOCK = 200;
/** Candidates scored per run, so one event's cost stays bounded. */
const MAX_CANDIDATES = 50;
/**
 * Fields that can point at one person rather than describe many. A pair must
 * agree on one of them with at least CORROBORATION_BITS of evidence (a similar
 * email local part, a phone number or its last 7 digits, the same street and
 * postal code): namesakes are common (an exact first and last name alone pass
 * the review threshold), a postal code or a city holds thousands, and a shared
 * IP or browser is a household's, so a queue fed by those fills with strangers.
 */
const CORROBORATING_FIELDS = new Set(["email", "phone", "address"]);
const CORROBORATION_BITS = 4;

export interface Suggestion {
  review?: ReviewItem;
  merge?: MergeRecord;
}

/**
 * Runs probabilistic matching for a cluster that just gained identifiers:
 * clusters sharing a blocking key are scored, pairs at or above the review
 * threshold are queued with their evidence, and, only where the workspace
 * opted in, pairs at or above the auto-merge threshold merge, if the
 * deterministic guards allow it (two user ids never merge this way either).
 */
export function suggestMatches(graph: IdentityGraph, settings: IdentitySettings, clusterId: string, at: number): Suggestion[] {
  const cluster = graph.resolve(clusterId);
  const features = graph.features.get(cluster.id);
  if (!features) return [];
  const members = new Set<string>();
  for (const key of blockingKeys(features)) {
    const block = graph.blocks.join(key, cluster.id, MAX_BLOCK);
    if (block) for (const id of block) members.add(id);
  }
  // Blocks may name clusters merged away since: each counts as the cluster it resolves to.
  const candidates = new Set<string>();
  for (const live of graph.clusters.liveIdsOf(members).values()) if (live !== cluster.id) candidates.add(live);
  const out: Suggestion[] = [];
  for (const otherId of [...candidates].sort().slice(0, MAX_CANDIDATES)) {
    const pair = IdentityGraph.pairKey(cluster.id, otherId);
    const otherFeatures = graph.features.get(otherId);
    if (graph.suggested.has(pair) || !otherFeatures) continue;
    const result = score(features, otherFeatures, DEFAULT_MODEL);
    if (result.probability < settings.probabilistic.reviewThreshold) continue;
    if (!result.fields.some((f) => CORROBORATING_FIELDS.has(f.field) && f.weight >= CORROBORATION_BITS)) continue;
    graph.suggested.add(pair);
    const other = graph.resolve(otherId);
    const auto = settings.probabilistic.autoMerge && result.probability >= settings.probabilistic.autoMergeThreshold && !checkGuards(graph, settings, [cluster, other], [], at);
    if (auto) {
      const holder: { created: boolean; merge?: MergeRecord } = { created: false };
      const messageId = `match:${pair}`;
      const representatives = [cluster, other].map((c) => [...c.identifiers.keys()][0]).filter((k): k is string => Boolean(k));
      const survivor = mergeInto(graph, [cluster, other], { messageId, at, identifiers: [] }, [], holder, "probabilistic");
      graph.events.addLink(survivor.id, { messageId, keys: representatives, at });
      out.push({ merge: holder.merge! });
      continue;
    }
    const review: ReviewItem = {
      id: graph.nextId("rev"),
      kind: "probabilistic",
      clusters: [cluster.id, otherId],
      identifiers: [],
      detail: `match probability ${result.probability.toFixed(3)} (weight ${result.weight.toFixed(2)} bits)`,
      score: result.probability,
      evidence: result.fields,
      status: "open",
      at,
    };
    graph.addReview(review);
    out.push({ review });
  }
  return out;
}
