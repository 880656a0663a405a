import { type Footprint, scrubbedFeatures } from "../../workers/identity/erase";
import type { IdentityGraph } from "../../workers/identity/graph";
import { blockingKeys, type ProfileFeatures } from "../../workers/identity/probabilistic";

/**
 * The erasure as it was before the collections had lookups, copied from
 * workers/identity/erase.ts as it stood: every cluster, index entry, feature
 * set and review is walked. The reference that erasing through lookups must
 * agree with, person by person.
 */

/** The clusters that are one person with `ids`: each id's live cluster and every cluster resolving to one of those. */
function personClusters(graph: IdentityGraph, ids: Iterable<string>): string[] {
  const live = new Set<string>();
  for (const id of ids) if (graph.clusters.has(id)) live.add(graph.resolve(id).id);
  if (live.size === 0) return [];
  // One walk over the clusters, following forwarding pointers here rather than loading each cluster on the way.
  const forwards = new Map<string, string | undefined>();
  for (const cluster of graph.clusters.values()) forwards.set(cluster.id, cluster.forwardedTo);
  const root = (id: string) => {
    let at = id;
    while (forwards.get(at)) at = forwards.get(at)!;
    return at;
  };
  const members = [...forwards.keys()].filter((id) => live.has(root(id)));
  return members.sort((a, b) => Number(live.has(b)) - Number(live.has(a)) || a.localeCompare(b));
}

export function footprintByWalks(graph: IdentityGraph, ids: Iterable<string>): Footprint {
  const clusterIds = personClusters(graph, ids);
  const mine = new Set(clusterIds);
  const keys = new Set<string>();
  const messageIds = new Set<string>();
  for (const id of clusterIds) {
    const cluster = graph.clusters.get(id)!;
    for (const key of cluster.identifiers.keys()) keys.add(key);
    for (const link of graph.events.links(id)) {
      messageIds.add(link.messageId);
      for (const key of link.keys) keys.add(key);
    }
  }
  for (const messageId of graph.events.eventsOf(mine)) messageIds.add(messageId);
  // A merge's evidence names only clusters it also names as survivor or absorbed (or the event itself).
  const merges = [...new Map(clusterIds.flatMap((id) => graph.merges.involving(id)).map((m) => [m.id, m])).values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  // A merge's evidence event may belong to the other part since an unmerge: only their evidence identifiers are theirs.
  for (const merge of merges) for (const { key, clusterId } of merge.evidence) if (mine.has(clusterId)) keys.add(key);
  // Identifiers dropped from their own events were still theirs to send.
  for (const conflict of graph.conflicts.all()) if (messageIds.has(conflict.messageId)) keys.add(conflict.dropped);
  const reviews = [...graph.reviews.values()].filter((r) => namesAny(mine, r.clusters) || (r.messageId !== undefined && messageIds.has(r.messageId)));
  const heldElsewhere = new Map<string, string>();
  for (const cluster of graph.clusters.values()) {
    if (mine.has(cluster.id) || cluster.forwardedTo) continue;
    for (const key of cluster.identifiers.keys()) if (keys.has(key) && !heldElsewhere.has(key)) heldElsewhere.set(key, cluster.id);
  }
  return {
    clusterIds,
    identifierKeys: [...keys].sort(),
    ownKeys: [...keys].filter((key) => !heldElsewhere.has(key)).sort(),
    messageIds: [...messageIds].sort(),
    merges,
    reviews,
    heldElsewhere,
  };
}

const namesAny = (set: Set<string>, ids: Iterable<string>) => {
  for (const id of ids) if (set.has(id)) return true;
  return false;
};

/** The user id values among identifier keys: index entries remember the user ids seen with an identifier. */
const userIdValues = (keys: Iterable<string>) => new Set([...keys].filter((k) => k.startsWith("user_id:")).map((k) => k.slice("user_id:".length)));

/**
 * Removes the people `ids` belong to from the graph. Idempotent: ids already
 * gone (or never known) erase nothing. Returns what was removed.
 */
export function eraseByWalks(graph: IdentityGraph, ids: Iterable<string>, theirs: Partial<ProfileFeatures>[] = []): Footprint {
  const found = footprintByWalks(graph, ids);
  if (found.clusterIds.length === 0) return found;
  const clusters = new Set(found.clusterIds);
  const own = new Set(found.ownKeys);
  const messages = new Set(found.messageIds);
  const userIds = userIdValues(own);

  for (const id of clusters) {
    graph.clusters.delete(id);
    graph.features.delete(id);
  }
  for (const [key, entry] of graph.index) {
    if (own.has(key)) {
      graph.index.delete(key);
      continue;
    }
    const holder = found.heldElsewhere.get(key);
    // Another person holds it too: it routes to them from now on.
    if (clusters.has(entry.clusterId) && !holder) {
      graph.index.delete(key);
      continue;
    }
    const clusterId = clusters.has(entry.clusterId) ? holder! : entry.clusterId;
    const forgotten = entry.userIds.some((userId) => userIds.has(userId));
    // Entries met in a walk are copies where storage backs the index: a change is written with `set`.
    if (clusterId !== entry.clusterId || forgotten) graph.index.set(key, { ...entry, clusterId, userIds: entry.userIds.filter((userId) => !userIds.has(userId)) });
  }
  graph.events.forget(clusters, messages);
  for (const messageId of messages) graph.tombstones.delete(messageId);
  for (const merge of found.merges) graph.merges.delete(merge.id);
  for (const review of found.reviews) graph.reviews.delete(review.id);
  for (const [key, reviewIds] of graph.openReviewsByIdentifier) {
    for (const review of found.reviews) reviewIds.delete(review.id);
    if (own.has(key) || reviewIds.size === 0) graph.openReviewsByIdentifier.delete(key);
  }
  graph.conflicts.retain((c) => !messages.has(c.messageId) && !own.has(c.dropped) && !c.clusters.some((id) => clusters.has(id)));
  for (const pair of graph.neverMerge) {
    const [a, b] = pair.split("\u0000") as [string, string];
    if (own.has(a) || own.has(b)) graph.neverMerge.delete(pair);
  }
  for (const pair of graph.suggested) {
    const [a, b] = pair.split("\u0000") as [string, string];
    if (clusters.has(a) || clusters.has(b)) graph.suggested.delete(pair);
  }
  for (const id of clusters) graph.blocks.leave(id);
  for (const id of scrubFeatures(graph, own, theirs)) graph.blocks.leave(id, new Set(blockingKeys(graph.features.get(id)!)));
  // Another cluster's links may still name an identifier only they held (a split-off link): it links nothing now.
  const naming = graph.events.linksNaming(own);
  for (const clusterId of new Set(naming.map((n) => n.clusterId))) {
    const links = graph.events.links(clusterId).map((l) => ({ ...l, keys: l.keys.filter((k) => !own.has(k)) }));
    graph.events.setLinks(
      clusterId,
      links.filter((l) => l.keys.length > 0),
    );
  }
  return found;
}

/** Every profile's match features walked, each scrubbed as the erasure does (`scrubbedFeatures`). */
function scrubFeatures(graph: IdentityGraph, own: Set<string>, theirs: Partial<ProfileFeatures>[]): string[] {
  const changed: string[] = [];
  for (const [id, features] of graph.features) {
    const scrubbed = scrubbedFeatures(features, own, theirs);
    if (!scrubbed) continue;
    graph.features.set(id, scrubbed);
    changed.push(id);
  }
  return changed;
}
