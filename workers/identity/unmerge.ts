import type { BlockEntry } from "./blocks";
import { type Cluster, IdentityGraph, type ReviewItem } from "./graph";
import { type MergeOutcome, mergeInto } from "./resolve";

/** What an unmerge or a split leaves: the profile that kept its id, those restored, and the block entries the restored parts took (blocks.ts). */
export interface Restored {
  kept: string;
  restored: string[];
  blocksChanged: BlockEntry[];
}

/** A decision the rules refuse: `NOT_FOUND` for an unknown id, `CONFLICT` for one the current state forbids. */
export class IdentityRuleError extends Error {
  constructor(
    readonly code: "NOT_FOUND" | "CONFLICT",
    message: string,
  ) {
    super(message);
  }
}

/**
 * Retracts a merge. The evidence event's links are removed and tombstoned, the
 * survivor is recomputed as the connected components of its remaining links,
 * the component holding the oldest identifier keeps the profile id and the
 * others get new ids, taking their identifiers and events along. The evidence
 * identifiers become never-merge pairs, so neither a replay nor a later event
 * joins the parts again without a person's approval.
 */
export function unmerge(graph: IdentityGraph, mergeId: string, at: number): Restored {
  const merge = graph.merges.get(mergeId);
  if (!merge) throw new IdentityRuleError("NOT_FOUND", `merge ${mergeId} not found`);
  if (merge.retracted) throw new IdentityRuleError("CONFLICT", `merge ${mergeId} was already retracted`);
  const survivor = graph.resolve(merge.survivor);

  const links = graph.events.links(survivor.id);
  const evidenceLinks = links.filter((link) => link.messageId === merge.messageId);
  graph.events.setLinks(
    survivor.id,
    links.filter((link) => link.messageId !== merge.messageId),
  );
  graph.tombstones.add(merge.messageId);
  const sides = new Map<string, string[]>();
  for (const { key, clusterId } of merge.evidence) sides.set(clusterId, [...(sides.get(clusterId) ?? []), key]);
  const groups = [...sides.values()];
  for (let i = 0; i < groups.length; i++)
    for (let j = i + 1; j < groups.length; j++) for (const a of groups[i]!) for (const b of groups[j]!) graph.neverMerge.add(IdentityGraph.pairKey(a, b));

  const blocksChanged: BlockEntry[] = [];
  const restored = split(graph, survivor, undefined, blocksChanged);
  // An absorbed profile id forwards to the part that now holds its own evidence identifiers.
  for (const absorbedId of merge.absorbed) {
    const key = merge.evidence.find((e) => e.clusterId === absorbedId)?.key;
    const part = key ? graph.clusterOf(key) : undefined;
    const absorbed = graph.clusters.get(absorbedId);
    if (part && absorbed && part.id !== absorbedId) absorbed.forwardedTo = part.id;
  }
  // The retracted event stays with the part that holds its strongest identifier.
  const strongest = evidenceLinks[0]?.keys[0];
  if (strongest) graph.events.assign(merge.messageId, graph.clusterOf(strongest)?.id ?? survivor.id);
  merge.retracted = { at, restored };
  return { kept: survivor.id, restored, blocksChanged };
}

/**
 * Splits a cluster into the connected components of its links; returns the new
 * clusters' ids. The component holding the oldest identifier keeps the id, or
 * the one holding `keepKey` when given.
 */
export function split(graph: IdentityGraph, cluster: Cluster, keepKey?: string, blocksChanged: BlockEntry[] = []): string[] {
  const parent = new Map<string, string>();
  const find = (key: string): string => {
    let root = key;
    while (parent.get(root) !== root) root = parent.get(root)!;
    parent.set(key, root);
    return root;
  };
  for (const key of cluster.identifiers.keys()) parent.set(key, key);
  let links = graph.events.links(cluster.id);
  for (const link of links) {
    const present = link.keys.filter((k) => parent.has(k));
    for (const key of present.slice(1)) parent.set(find(key), find(present[0]!));
  }
  const components = new Map<string, string[]>();
  for (const key of cluster.identifiers.keys()) {
    const root = find(key);
    components.set(root, [...(components.get(root) ?? []), key]);
  }
  if (components.size <= 1) return [];

  const firstSeen = (keys: string[]) => Math.min(...keys.map((k) => cluster.identifiers.get(k)!.firstSeen));
  const ordered = [...components.values()].sort(
    (a, b) => Number(b.includes(keepKey ?? "")) - Number(a.includes(keepKey ?? "")) || firstSeen(a) - firstSeen(b) || [...a].sort()[0]!.localeCompare([...b].sort()[0]!),
  );
  const restored: string[] = [];
  for (const keys of ordered.slice(1)) {
    const part: Cluster = { id: graph.nextId("prof"), createdAt: firstSeen(keys), seq: graph.nextSeq(), identifiers: new Map() };
    graph.clusters.set(part.id, part);
    const inPart = new Set(keys);
    for (const key of keys) {
      part.identifiers.set(key, cluster.identifiers.get(key)!);
      cluster.identifiers.delete(key);
      const entry = graph.index.get(key);
      if (entry && graph.resolve(entry.clusterId).id === cluster.id) entry.clusterId = part.id;
    }
    const partLinks = links.filter((link) => link.keys.some((k) => inPart.has(k)));
    links = links.filter((link) => !link.keys.some((k) => inPart.has(k)));
    graph.events.setLinks(part.id, partLinks);
    for (const link of partLinks) if (graph.events.clusterOf(link.messageId) !== undefined) graph.events.assign(link.messageId, part.id);
    // Match features are not kept per event, so each part starts from the merged profile's, and from its blocks:
    // the merge handed the absorbed profile's blocks to the survivor, and the part would otherwise be in none.
    const features = graph.features.get(cluster.id);
    if (features) {
      graph.features.set(part.id, features);
      for (const key of graph.blocks.enter(part.id, graph.blocks.keysOf(cluster.id))) blocksChanged.push([key, part.id]);
    }
    restored.push(part.id);
  }
  graph.events.setLinks(cluster.id, links);
  return restored;
}

/** Approving a review merges what it names, whatever the guards said, and lifts never-merge pairs between them. */
export function approveReview(graph: IdentityGraph, reviewId: string, at: number) {
  const review = openReview(graph, reviewId);
  const clusters = [...new Map(review.clusters.map((id) => graph.resolve(id)).map((c) => [c.id, c])).values()];
  const keys = new Set(clusters.flatMap((c) => [...c.identifiers.keys()]));
  for (const pair of [...graph.neverMerge]) {
    const [a, b] = pair.split("\u0000") as [string, string];
    if (keys.has(a) && keys.has(b)) graph.neverMerge.delete(pair);
  }
  const entry = review.kind === "quarantine" ? graph.index.get(review.identifiers[0]!) : undefined;
  if (entry) {
    entry.quarantined = false;
    entry.shared = true;
  }
  graph.closeReview(review, "approved");
  if (clusters.length < 2) return { review };
  const result: MergeOutcome = { created: false };
  const messageId = `review:${review.id}`;
  // The approval itself is a link between the parts, so that retracting some other merge later keeps them together.
  const representatives = clusters.map((c) => [...c.identifiers.keys()][0]).filter((k): k is string => Boolean(k));
  const survivor = mergeInto(graph, clusters, { messageId, at, identifiers: [] }, [], result, "review-approved");
  graph.events.addLink(survivor.id, { messageId, keys: representatives, at });
  graph.events.assign(messageId, survivor.id);
  return { review, merge: result.merge, blocksChanged: result.blocksChanged ?? [] };
}

/** Rejecting records never-merge pairs between the identifiers and clusters the review named. */
export function rejectReview(graph: IdentityGraph, reviewId: string) {
  const review = openReview(graph, reviewId);
  const keys = review.clusters.map((id) => [...graph.resolve(id).identifiers.keys()][0]).filter((k): k is string => Boolean(k));
  for (const identifier of review.identifiers) for (const key of keys) if (identifier !== key) graph.neverMerge.add(IdentityGraph.pairKey(identifier, key));
  graph.closeReview(review, "rejected");
  return { review };
}

function openReview(graph: IdentityGraph, reviewId: string): ReviewItem {
  const review = graph.reviews.get(reviewId);
  if (!review) throw new IdentityRuleError("NOT_FOUND", `review ${reviewId} not found`);
  if (review.status !== "open") throw new IdentityRuleError("CONFLICT", `review ${reviewId} is already ${review.status}`);
  return review;
}

/**
 * Splits chosen identifiers out of a profile: every link that ties them to the
 * rest loses them, never-merge pairs keep them apart from then on, and the
 * profile is recomputed. The chosen identifiers end in new profiles (with the
 * events that carried only them); the rest keeps the profile id.
 */
export function splitIdentifiers(graph: IdentityGraph, profileId: string, keys: string[]): Restored {
  if (!graph.clusters.has(profileId)) throw new IdentityRuleError("NOT_FOUND", `profile ${profileId} not found`);
  const cluster = graph.resolve(profileId);
  const chosen = new Set(keys);
  const missing = keys.filter((key) => !cluster.identifiers.has(key));
  if (missing.length) throw new IdentityRuleError("CONFLICT", `profile ${cluster.id} does not hold ${missing.join(", ")}`);
  const rest = [...cluster.identifiers.keys()].filter((key) => !chosen.has(key));
  if (rest.length === 0) throw new IdentityRuleError("CONFLICT", `splitting out every identifier of ${cluster.id} would leave nothing behind`);
  const taken = new Set<string>();
  // A link's messageId is unique in the graph: a link split twice gets `#split#split`.
  const splitId = (messageId: string) => {
    let id = `${messageId}#split`;
    while (taken.has(id) || graph.events.hasLink(id)) id += "#split";
    taken.add(id);
    return id;
  };
  graph.events.setLinks(
    cluster.id,
    graph.events.links(cluster.id).flatMap((link) => {
      const mine = link.keys.filter((key) => chosen.has(key));
      if (mine.length === 0 || mine.length === link.keys.length) return [link];
      const others = link.keys.filter((key) => !chosen.has(key));
      return [
        { ...link, keys: others },
        { ...link, messageId: splitId(link.messageId), keys: mine },
      ];
    }),
  );
  for (const key of chosen) for (const other of rest) graph.neverMerge.add(IdentityGraph.pairKey(key, other));
  const blocksChanged: BlockEntry[] = [];
  return { kept: cluster.id, restored: split(graph, cluster, rest[0], blocksChanged), blocksChanged };
}
