import { footprint } from "./erase";
import type { Link } from "./event-links";
import type { Cluster, Conflict, IdentityGraph, IndexEntry, MergeRecord, ReviewItem } from "./graph";
import { clustersOfMerge } from "./graph-collections";
import type { ProfileFeatures } from "./probabilistic";
import { IdentityRuleError } from "./unmerge";

/**
 * Handing a person over to another graph shard of the workspace, as pure
 * functions over the graph: what of the graph goes with them, its removal
 * from the shard that hands them over, and its arrival in the shard that
 * takes them. Close to an erasure (erase.ts) that keeps the rows and ships
 * them: a person is the same live cluster with every cluster forwarding to
 * it. Rows that name them together with someone else this graph holds (a
 * review of two people, a never-merge pair with another person's identifier,
 * a merge since retracted into parts that are other people now) travel as
 * copies and stay.
 */

/** A person's rows of the graph, or a slice of them: what a package carries. */
export interface GraphRows {
  clusters: Cluster[];
  /** Index entries routing to their clusters, quarantined ones included. */
  index: [string, IndexEntry][];
  features: [string, ProfileFeatures][];
  /** Each cluster's blocking keys. */
  blocks: [string, string[]][];
  /** messageId → the cluster the event is assigned to. */
  assignments: [string, string][];
  /** cluster → one of its links. */
  links: [string, Link][];
  merges: MergeRecord[];
  reviews: ReviewItem[];
  conflicts: Conflict[];
  neverMerge: string[];
  tombstones: string[];
  suggested: string[];
}

export interface PersonHandOver {
  /** The person's clusters, live first (see `personClusters`). */
  clusterIds: string[];
  /** The keys the identifier index repoints: every key whose entry routes to them, then `profile_id:` of each of their clusters. */
  keys: string[];
  rows: GraphRows;
  /** The rows among `rows` naming no one else this graph holds (by id, pair, or `conflictKey`): these leave it, the rest are copies and stay. */
  leaving: { merges: Set<string>; reviews: Set<string>; conflicts: Set<string>; neverMerge: Set<string>; suggested: Set<string>; tombstones: Set<string> };
}

/** Message ids per lookup of their clusters: keeps each JSON parameter small however many events a person has. */
const LOOKUP_CHUNK = 2_000;

const pairOf = (pair: string) => pair.split("\u0000") as [string, string];

/** A recorded conflict has no id: it is known by everything it says. */
const conflictKey = (c: Conflict) => JSON.stringify([c.messageId, c.dropped, c.reason, c.clusters, c.at]);

/** Everything of the graph the person `clusterId` belongs to carries to another shard. */
export function personForHandOver(graph: IdentityGraph, clusterId: string): PersonHandOver {
  const found = footprint(graph, [clusterId]);
  const mine = new Set(found.clusterIds);
  const events = new Set(found.messageIds);
  const routed = graph.index.routingTo(found.clusterIds).sort();
  const assignments: [string, string][] = [];
  for (let i = 0; i < found.messageIds.length; i += LOOKUP_CHUNK) {
    for (const [messageId, cluster] of graph.events.clustersOf(found.messageIds.slice(i, i + LOOKUP_CHUNK))) if (mine.has(cluster)) assignments.push([messageId, cluster]);
  }
  const theirKeys = new Set(routed);
  const listed = new Set(found.identifierKeys);
  // A row naming no one this graph still holds but them leaves with them: nobody here needs a copy.
  const noOneElse = (ids: string[]) => ids.every((id) => mine.has(id) || !graph.clusters.has(id));
  const neverMerge = [...graph.neverMerge].filter((pair) => pairOf(pair).some((key) => listed.has(key) || theirKeys.has(key)));
  const suggested = [...graph.suggested].filter((pair) => pairOf(pair).some((id) => mine.has(id)));
  const conflicts = graph.conflicts.all().filter((c) => events.has(c.messageId) || c.clusters.some((id) => mine.has(id)));
  const rows: GraphRows = {
    clusters: found.clusterIds.map((id) => graph.clusters.get(id)!),
    index: routed.map((key) => [key, graph.index.get(key)!]),
    features: found.clusterIds.flatMap((id) => {
      const features = graph.features.get(id);
      return features ? [[id, features] as [string, ProfileFeatures]] : [];
    }),
    blocks: found.clusterIds.map((id) => [id, graph.blocks.keysOf(id)] as [string, string[]]).filter(([, keys]) => keys.length > 0),
    assignments,
    links: found.clusterIds.flatMap((id) => graph.events.links(id).map((link) => [id, link] as [string, Link])),
    merges: found.merges,
    reviews: found.reviews,
    // Theirs, and those naming their clusters from someone else's event: a profile's graph lists both.
    conflicts,
    neverMerge,
    tombstones: [...graph.tombstones].filter((messageId) => events.has(messageId)),
    suggested,
  };
  return {
    clusterIds: found.clusterIds,
    keys: [...routed, ...found.clusterIds.map((id) => `profile_id:${id}`)],
    rows,
    leaving: {
      merges: new Set(found.merges.filter((m) => noOneElse(clustersOfMerge(m))).map((m) => m.id)),
      reviews: new Set(found.reviews.filter((r) => noOneElse(r.clusters)).map((r) => r.id)),
      // Someone else's event is theirs to keep, unless it is not here either.
      conflicts: new Set(conflicts.filter((c) => noOneElse(c.clusters) && (events.has(c.messageId) || graph.events.clusterOf(c.messageId) === undefined)).map(conflictKey)),
      neverMerge: new Set(neverMerge.filter((pair) => pairOf(pair).every((key) => theirKeys.has(key) || !graph.index.has(key)))),
      suggested: new Set(suggested.filter((pair) => noOneElse(pairOf(pair)))),
      tombstones: new Set(rows.tombstones),
    },
  };
}

/**
 * Removes a person handed over from this graph: their clusters, features,
 * blocks, index entries, events and links, and the rows naming no one else.
 * Copies stay; an open review here naming one of their clusters is no longer
 * indexed by identifier, since this graph cannot resolve it any more.
 */
export function removePerson(graph: IdentityGraph, person: PersonHandOver) {
  const mine = new Set(person.clusterIds);
  for (const id of mine) {
    graph.clusters.delete(id);
    graph.features.delete(id);
    graph.blocks.leave(id);
  }
  for (const [key] of person.rows.index) graph.index.delete(key);
  // Every assignment taken names one of their clusters: forgetting by cluster finds them all.
  graph.events.forget(mine, new Set());
  for (const id of person.leaving.merges) graph.merges.delete(id);
  for (const id of person.leaving.reviews) graph.reviews.delete(id);
  // This graph can no longer resolve a review naming one of their clusters: it is decided where they are.
  unindexReviews(
    graph,
    person.rows.reviews.filter((r) => person.leaving.reviews.has(r.id) || r.clusters.some((id) => mine.has(id))).map((r) => r.id),
  );
  if (person.leaving.conflicts.size) graph.conflicts.retain((c) => !person.leaving.conflicts.has(conflictKey(c)));
  for (const pair of person.leaving.neverMerge) graph.neverMerge.delete(pair);
  for (const pair of person.leaving.suggested) graph.suggested.delete(pair);
  for (const messageId of person.leaving.tombstones) graph.tombstones.delete(messageId);
}

function unindexReviews(graph: IdentityGraph, reviewIds: string[]) {
  if (reviewIds.length === 0) return;
  for (const [key, ids] of graph.openReviewsByIdentifier) {
    for (const id of reviewIds) ids.delete(id);
    if (ids.size === 0) graph.openReviewsByIdentifier.delete(key);
  }
}

/**
 * Writes a slice of a person's rows into this graph, through its collections.
 * Sets replace, so writing a slice twice changes nothing, except recorded
 * conflicts, which have no key: one already recorded (a copy that stayed here
 * when the person left, and comes back with them) is not recorded again.
 * Reviews are stored without indexing them by identifier: the caller rebuilds
 * that index once every slice is in. Returns how many rows were written.
 */
export function addPersonRows(graph: IdentityGraph, rows: Partial<GraphRows>): number {
  let written = 0;
  const count = <T>(items: T[] | undefined, write: (item: T) => void) => {
    for (const item of items ?? []) write(item);
    written += items?.length ?? 0;
  };
  count(rows.clusters, (cluster) => graph.clusters.set(cluster.id, cluster));
  count(rows.index, ([key, entry]) => graph.index.set(key, entry));
  count(rows.features, ([id, features]) => graph.features.set(id, features));
  count(rows.blocks, ([id, keys]) => graph.blocks.enter(id, keys));
  count(rows.assignments, ([messageId, clusterId]) => graph.events.assign(messageId, clusterId));
  count(rows.links, ([clusterId, link]) => graph.events.addLink(clusterId, link));
  count(rows.merges, (merge) => graph.merges.set(merge.id, merge));
  count(rows.reviews, (review) => graph.reviews.set(review.id, review));
  if (rows.conflicts?.length) {
    const recorded = new Set(graph.conflicts.all().map(conflictKey));
    count(rows.conflicts, (conflict) => {
      if (!recorded.has(conflictKey(conflict))) graph.conflicts.add(conflict);
    });
  }
  count(rows.neverMerge, (pair) => graph.neverMerge.add(pair));
  count(rows.tombstones, (messageId) => graph.tombstones.add(messageId));
  count(rows.suggested, (pair) => graph.suggested.add(pair));
  return written;
}

/**
 * A decision naming clusters this graph does not hold (a review or a merge
 * copied here with a person who left, or naming one who left) is refused as
 * not found: the shard holding them decides it.
 */
function assertHeld(graph: IdentityGraph, clusterIds: string[], what: string) {
  const missing = clusterIds.filter((id) => !graph.clusters.has(id));
  if (missing.length) throw new IdentityRuleError("NOT_FOUND", `${what} names ${missing.join(", ")}, which this graph shard does not hold`);
}

/** The graph, once it is known to hold every cluster the merge names (an unknown merge is the unmerge's own NOT_FOUND). */
export function holdingMerge(graph: IdentityGraph, mergeId: string): IdentityGraph {
  const merge = graph.merges.get(mergeId);
  if (merge) assertHeld(graph, clustersOfMerge(merge), `merge ${mergeId}`);
  return graph;
}

/** The graph, once it is known to hold every cluster the review names. */
export function holdingReview(graph: IdentityGraph, reviewId: string): IdentityGraph {
  const review = graph.reviews.get(reviewId);
  if (review) assertHeld(graph, review.clusters, `review ${reviewId}`);
  return graph;
}
