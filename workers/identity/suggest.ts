import type { BlockEntry } from "./blocks";
import { IdentityGraph, type MergeRecord, type ReviewItem } from "./graph";
import { blockingKeys, DEFAULT_MODEL, type ProfileFeatures, score } from "./probabilistic";
import { checkGuards } from "./guards";
import { type MergeOutcome, mergeInto } from "./resolve";
import type { IdentitySettings } from "./settings";

/** A block this size is a common name or a shared household line, not a lead: it is not scanned (here, and across graph shards). */
export const MAX_BLOCK = 200;
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
  /** With a merge: the block entries it took out or handed to the survivor (blocks.ts). */
  blocksChanged?: BlockEntry[];
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
  // Entries written before merges handed them to the survivor may name a cluster merged away: each counts as the cluster it resolves to.
  const candidates = new Set<string>();
  for (const live of graph.clusters.liveIdsOf(members).values()) if (live !== cluster.id) candidates.add(live);
  const out: Suggestion[] = [];
  for (const otherId of [...candidates].sort().slice(0, MAX_CANDIDATES)) {
    const otherFeatures = graph.features.get(otherId);
    if (!otherFeatures) continue;
    const suggestion = suggestPair(graph, settings, { profileId: cluster.id, features }, { profileId: otherId, features: otherFeatures }, at);
    if (suggestion && suggestion !== "bring together") out.push(suggestion);
  }
  return out;
}

/** A profile with its match features: one held here, or one another graph shard holds, as the router sends it (workers/identity/sharding/cross-shard-matching.ts). */
export interface MatchCandidate {
  profileId: string;
  features: ProfileFeatures;
}

/**
 * Probabilistic matching of a cluster held here with profiles another graph
 * shard holds, by the same scorer and corroboration rule as within one graph.
 * A pair at or above the review threshold is queued here with its evidence.
 * A pair the workspace would auto-merge is answered `bring together`: the
 * guards can only be checked in one graph, so the router hands the other
 * person over and matching runs again here (`suggestMatches`), deciding as
 * one graph would. A pair already suggested is skipped, wherever it was.
 */
export function suggestAcross(graph: IdentityGraph, settings: IdentitySettings, clusterId: string, others: MatchCandidate[], at: number): { suggestions: Suggestion[]; bringTogether: string[] } {
  const out = { suggestions: [] as Suggestion[], bringTogether: [] as string[] };
  if (!graph.clusters.has(clusterId)) return out;
  const cluster = graph.resolve(clusterId);
  const features = graph.features.get(cluster.id);
  if (!features) return out;
  for (const other of others.slice(0, MAX_CANDIDATES)) {
    if (other.profileId === cluster.id || graph.clusters.has(other.profileId)) continue;
    const suggestion = suggestPair(graph, settings, { profileId: cluster.id, features }, other, at);
    if (suggestion === "bring together") out.bringTogether.push(other.profileId);
    else if (suggestion) out.suggestions.push(suggestion);
  }
  return out;
}

/**
 * Scores one pair and acts on it: nothing below the review threshold or
 * without corroboration; an auto-merge where the workspace opted in and the
 * guards allow it (only when both are held here); otherwise a review.
 */
function suggestPair(graph: IdentityGraph, settings: IdentitySettings, own: MatchCandidate, other: MatchCandidate, at: number): Suggestion | "bring together" | null {
  const pair = IdentityGraph.pairKey(own.profileId, other.profileId);
  if (graph.suggested.has(pair)) return null;
  const result = score(own.features, other.features, DEFAULT_MODEL);
  if (result.probability < settings.probabilistic.reviewThreshold) return null;
  if (!result.fields.some((f) => CORROBORATING_FIELDS.has(f.field) && f.weight >= CORROBORATION_BITS)) return null;
  const autoMerging = settings.probabilistic.autoMerge && result.probability >= settings.probabilistic.autoMergeThreshold;
  const held = graph.clusters.has(other.profileId);
  if (autoMerging && !held) return "bring together";
  graph.suggested.add(pair);
  const cluster = graph.resolve(own.profileId);
  if (autoMerging) {
    const otherCluster = graph.resolve(other.profileId);
    if (!checkGuards(graph, settings, [cluster, otherCluster], [], at)) {
      const holder: MergeOutcome = { created: false };
      const messageId = `match:${pair}`;
      const representatives = [cluster, otherCluster].map((c) => [...c.identifiers.keys()][0]).filter((k): k is string => Boolean(k));
      const survivor = mergeInto(graph, [cluster, otherCluster], { messageId, at, identifiers: [] }, [], holder, "probabilistic");
      graph.events.addLink(survivor.id, { messageId, keys: representatives, at });
      return { merge: holder.merge!, ...(holder.blocksChanged ? { blocksChanged: holder.blocksChanged } : {}) };
    }
  }
  const review: ReviewItem = {
    id: graph.nextId("rev"),
    kind: "probabilistic",
    clusters: [cluster.id, other.profileId],
    identifiers: [],
    detail: `match probability ${result.probability.toFixed(3)} (weight ${result.weight.toFixed(2)} bits)`,
    score: result.probability,
    evidence: result.fields,
    status: "open",
    at,
  };
  graph.addReview(review);
  return { review };
}
