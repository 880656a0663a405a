import { type BlockEntry, leaveStaleBlocks } from "./blocks";
import type { IdentityGraph, MergeRecord, ReviewItem } from "./graph";
import { blockingKeys, type ProfileFeatures } from "./probabilistic";

/**
 * A person's footprint in the identity graph, and its erasure, as pure
 * functions over the graph. A person is a live cluster together with every
 * cluster that forwards to it (absorbed by a merge); erasing them removes
 * every structure that names those clusters, their events or the identifier
 * values only they hold. Identifiers another person also holds (a shared
 * device handed over after a logout) stay theirs.
 */

export interface Footprint {
  /** The clusters that make up the person: the live ones first, then the absorbed ones, each in id order. */
  clusterIds: string[];
  /** Every identifier key the person holds or held (`type:value`), sorted. */
  identifierKeys: string[];
  /** Identifier keys no other live cluster holds: those erasure removes. */
  ownKeys: string[];
  /** Every event the graph assigns to them or linked through them, sorted. */
  messageIds: string[];
  merges: MergeRecord[];
  reviews: ReviewItem[];
  /** Identifier keys the person shares with another live cluster → that cluster. */
  heldElsewhere: Map<string, string>;
}

/** The clusters that are one person with `ids`: each id's live cluster and every cluster resolving to one of those. */
export function personClusters(graph: IdentityGraph, ids: Iterable<string>): string[] {
  const live = new Set<string>();
  for (const id of ids) if (graph.clusters.has(id)) live.add(graph.resolve(id).id);
  if (live.size === 0) return [];
  // A cluster resolves to a live one exactly when following pointers backwards from it reaches the cluster.
  const members = new Set(live);
  const pending = [...live];
  while (pending.length > 0) {
    for (const id of graph.clusters.forwardingTo(pending.pop()!)) {
      if (members.has(id)) continue;
      members.add(id);
      pending.push(id);
    }
  }
  return [...members].sort((a, b) => Number(live.has(b)) - Number(live.has(a)) || a.localeCompare(b));
}

export function footprint(graph: IdentityGraph, ids: Iterable<string>): Footprint {
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
  const reviews = graph.reviews.concerning(clusterIds, messageIds);
  const heldElsewhere = new Map<string, string>();
  for (const key of [...keys].sort()) {
    // The first holder in table order, as a walk over the clusters would meet it: the one the index routes the key to from now on.
    const holder = graph.clusters.liveHolder(key, mine);
    if (holder !== undefined) heldElsewhere.set(key, holder);
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

/** The user id values among identifier keys: index entries remember the user ids seen with an identifier. */
const userIdValues = (keys: Iterable<string>) => new Set([...keys].filter((k) => k.startsWith("user_id:")).map((k) => k.slice("user_id:".length)));

/** What an erasure removed, and the block entries other people left because their features named the erased person's email or phone. */
export interface Erasure extends Footprint {
  /** Each a key of the erased person's (an email's handle, a phone's digits) under someone else's profile: the shared match blocks must drop them too. */
  blocksLeft: BlockEntry[];
}

/**
 * Removes the people `ids` belong to from the graph. Idempotent: ids already
 * gone (or never known) erase nothing. Returns what was removed. `theirs`:
 * what their own events said for matching (`featuresFromEvent` of each), for
 * scrubbing the copies other profiles hold (`scrubbedFeatures`).
 */
export function eraseClusters(graph: IdentityGraph, ids: Iterable<string>, theirs: Partial<ProfileFeatures>[] = []): Erasure {
  const found = footprint(graph, ids);
  if (found.clusterIds.length === 0) return { ...found, blocksLeft: [] };
  const clusters = new Set(found.clusterIds);
  const own = new Set(found.ownKeys);
  const messages = new Set(found.messageIds);
  const userIds = userIdValues(own);

  for (const id of clusters) {
    graph.clusters.delete(id);
    graph.features.delete(id);
  }
  // Only these entries can change: every other one routes elsewhere, remembers none of their user ids and is not theirs.
  const entries = new Set([...own, ...graph.index.routingTo(clusters), ...graph.index.remembering(userIds)]);
  for (const key of entries) {
    const entry = graph.index.get(key);
    if (!entry) continue;
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
  const blocksLeft = scrubFeatures(graph, own, theirs).flatMap((id) => leaveStaleBlocks(graph, id, blockingKeys(graph.features.get(id)!)));
  // Another cluster's links may still name an identifier only they held (a split-off link): it links nothing now.
  const naming = graph.events.linksNaming(own);
  for (const clusterId of new Set(naming.map((n) => n.clusterId))) {
    const links = graph.events.links(clusterId).map((l) => ({ ...l, keys: l.keys.filter((k) => !own.has(k)) }));
    graph.events.setLinks(
      clusterId,
      links.filter((l) => l.keys.length > 0),
    );
  }
  return { ...found, blocksLeft };
}

/**
 * What this graph keeps that names people it does not hold, erased on another
 * graph shard: reviews naming one of their profiles (a suggestion scored
 * across shards, a copy a hand-over left) and pairs suggested with them.
 * Answers how many reviews went.
 */
export function forgetNamed(graph: IdentityGraph, profileIds: string[]): number {
  const ids = new Set(profileIds.filter((id) => !graph.clusters.has(id)));
  if (ids.size === 0) return 0;
  const reviews = graph.reviews.concerning(ids, []);
  for (const review of reviews) {
    graph.reviews.delete(review.id);
    for (const key of review.identifiers) graph.openReviewsByIdentifier.get(key)?.delete(review.id);
  }
  for (const pair of graph.suggested) {
    const [a, b] = pair.split("\u0000") as [string, string];
    if (ids.has(a) || ids.has(b)) graph.suggested.delete(pair);
  }
  return reviews.length;
}

/** Each profile whose match features list an email or phone only the erased person held, scrubbed (`scrubbedFeatures`); answers their ids. */
function scrubFeatures(graph: IdentityGraph, own: Set<string>, theirs: Partial<ProfileFeatures>[]): string[] {
  const changed: string[] = [];
  for (const id of graph.features.listing(own)) {
    const scrubbed = scrubbedFeatures(graph.features.get(id)!, own, theirs);
    if (!scrubbed) continue;
    graph.features.set(id, scrubbed);
    changed.push(id);
  }
  return changed;
}

/**
 * A part split off a merged profile started from its match features: emails
 * and phones only the erased person held (`own`) leave them. Having one is
 * what shows the features were copied, so what the erased person's own events
 * said (`theirs`: a name, an address, an IP, a user agent) leaves them too;
 * the part's own values stay unless their events said the same. Null when the
 * features list none of their emails or phones.
 */
export function scrubbedFeatures(features: ProfileFeatures, own: Set<string>, theirs: Partial<ProfileFeatures>[]): ProfileFeatures | null {
  const emails = features.emails.filter((v) => !own.has(`email:${v}`));
  const phones = features.phones.filter((v) => !own.has(`phone:${v}`));
  if (emails.length === features.emails.length && phones.length === features.phones.length) return null;
  const { firstName, lastName, address } = features;
  const said = (values: (f: Partial<ProfileFeatures>) => string[] | undefined) => new Set(theirs.flatMap((f) => values(f) ?? []));
  const [ips, userAgents] = [said((f) => f.ips), said((f) => f.userAgents)];
  const sameName = (firstName || lastName) !== undefined && theirs.some((f) => f.firstName === firstName && f.lastName === lastName);
  const sameAddress = address !== undefined && theirs.some((f) => JSON.stringify(f.address) === JSON.stringify(address));
  return {
    emails,
    phones,
    ips: features.ips.filter((v) => !ips.has(v)),
    userAgents: features.userAgents.filter((v) => !userAgents.has(v)),
    ...(sameName ? {} : { ...(firstName ? { firstName } : {}), ...(lastName ? { lastName } : {}) }),
    ...(sameAddress || !address ? {} : { address }),
  };
}
