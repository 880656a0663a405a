import type { Cluster, Conflict, IndexEntry, MergeRecord, ReviewItem } from "./graph";
import type { ProfileFeatures } from "./probabilistic";

/**
 * The collections the identity graph is made of, as the rules use them. The
 * pure graph keeps each in memory (Maps and Sets, whose lookups walk them);
 * the Durable Object backs them with its SQLite storage, so its memory holds
 * only what the operation in hand touched, however large the graph grows.
 */

/**
 * The subset of Map the rules use. A value taken with `get` may be changed in
 * place; values met while iterating are copies where storage backs the
 * table, so a change found by a scan is made with `set`.
 */
export interface GraphTable<V> extends Iterable<[string, V]> {
  get(key: string): V | undefined;
  set(key: string, value: V): unknown;
  has(key: string): boolean;
  delete(key: string): boolean;
  values(): Iterable<V>;
  readonly size: number;
}

/**
 * The narrow lookups below let an erasure read only the rows that name the
 * person. Where a walk would find several rows, they come in table order (the
 * order a walk meets them), so a lookup gives what the walk it replaces gave.
 */

/** The clusters, with the walks over live ones that backfills and listings need. */
export interface ClusterTable extends GraphTable<Cluster> {
  /** Live (not forwarded) cluster ids in id order, after `after`. */
  liveIds(after: string | null, limit: number): string[];
  liveCount(): number;
  /** The clusters whose forwarding pointer names `clusterId` (one step, not followed further). */
  forwardingTo(clusterId: string): string[];
  /** The first live cluster holding the identifier key, leaving out `except`. */
  liveHolder(key: string, except: Set<string>): string | undefined;
  /**
   * The live cluster each of these ids resolves to (following forwarding
   * pointers); ids not stored are left out. Storage answers from its
   * forwarding column, without decoding the rows of clusters that are live.
   */
  liveIdsOf(ids: Iterable<string>): Map<string, string>;
}

/** Follows forwarding pointers from `id` to the live cluster, or undefined when a cluster on the way is not stored. */
export function followForwards(clusters: Pick<GraphTable<Cluster>, "get">, id: string): string | undefined {
  let cluster = clusters.get(id);
  while (cluster?.forwardedTo) cluster = clusters.get(cluster.forwardedTo);
  return cluster?.id;
}

/** The index, with the lookups that find entries naming a cluster or a user id. */
export interface IndexTable extends GraphTable<IndexEntry> {
  /** Keys of the entries routing to any of the clusters, as stored (forwarded ids are not resolved). */
  routingTo(clusterIds: Iterable<string>): string[];
  /** Keys of the entries that remember any of the user ids. */
  remembering(userIds: Iterable<string>): string[];
  /** Reads these keys' entries ahead of their lookups, in one go where they are stored apart; changes nothing. */
  prefetch(keys: Iterable<string>): void;
}

/** Identifier keys a profile's match features list: its emails and phones. */
export const featureKeys = (features: ProfileFeatures) => [...features.emails.map((v) => `email:${v}`), ...features.phones.map((v) => `phone:${v}`)];

/** Match features by cluster, with the lookup an erasure scrubs them by. */
export interface FeatureTable extends GraphTable<ProfileFeatures> {
  /** The clusters whose features list any of these identifier keys (`email:…`, `phone:…`, see `featureKeys`). */
  listing(keys: Iterable<string>): string[];
}

/** A page of the review queue; `next` is the position to read the following page after, null on the last page. */
export interface ReviewPage {
  reviews: ReviewItem[];
  next: number | null;
}

/** A review with its position in its graph's queue. */
export interface PositionedReview {
  review: ReviewItem;
  position: number;
}

/** The review queue, in the order it was queued. */
export interface ReviewTable extends GraphTable<ReviewItem> {
  /** Open reviews: read once when a stored graph is built, to index them by identifier. */
  open(): ReviewItem[];
  /** Reviews naming any of the clusters, or queued by any of the events. */
  concerning(clusterIds: Iterable<string>, messageIds: Iterable<string>): ReviewItem[];
  /**
   * Up to `limit` reviews (of one status, or all) queued after position
   * `after` (0: from the start). Positions grow in queue order and stay with
   * their review, so a cursor stays valid while reviews are added, decided or
   * erased; as with SQLite's rowid, only the last review's position is given
   * again once it is erased.
   */
  page(status: ReviewItem["status"] | undefined, after: number, limit: number): ReviewPage;
  /**
   * The reviews `page` would read, up to `limit`, each with its position: the
   * listing over several graph shards merges their queues and keeps a
   * position per shard.
   */
  positioned(status: ReviewItem["status"] | undefined, after: number, limit: number): PositionedReview[];
}

/** The merges, with the lookup a profile's graph and an erasure need. */
export interface MergeTable extends GraphTable<MergeRecord> {
  /** Merges naming the cluster as survivor, absorbed or restored part, in the order they were made. */
  involving(clusterId: string): MergeRecord[];
}

/** The clusters a merge names: those `involving` finds it by. */
export const clustersOfMerge = (merge: MergeRecord) => [merge.survivor, ...merge.absorbed, ...(merge.retracted?.restored ?? [])];

/** The subset of Set the rules use, for sets of keys that stay small (never-merge pairs, tombstones, suggested pairs). */
export interface KeySet extends Iterable<string> {
  has(key: string): boolean;
  add(key: string): unknown;
  delete(key: string): boolean;
  readonly size: number;
}

/** Recorded guard decisions: the latest MAX_RECORDED_CONFLICTS are kept, older ones live on in the caller's own log. */
export interface ConflictLog {
  add(conflict: Conflict): void;
  all(): Conflict[];
  /** Keeps only the conflicts `keep` accepts. */
  retain(keep: (conflict: Conflict) => boolean): void;
}

export const MAX_RECORDED_CONFLICTS = 5_000;

/**
 * Blocking key → the clusters in that block, for probabilistic matching. A
 * cluster is only in blocks of keys its match features give now (blocks.ts
 * keeps it so); entries written before that was kept may still name a
 * cluster merged away, so readers resolve them.
 */
export interface BlockIndex {
  /** Adds the cluster to the block; returns its members, or null when the block holds more than `max` (too common to be a lead). */
  join(key: string, clusterId: string, max: number): string[] | null;
  /** Adds the cluster to these blocks without reading them, for leads it takes over; answers the keys it was not in yet. */
  enter(clusterId: string, keys: string[]): string[];
  /** Takes the cluster out of every block, or out of those not in `keep`; answers the keys it left. */
  leave(clusterId: string, keep?: Set<string>): string[];
  /** The blocks holding the cluster. */
  keysOf(clusterId: string): string[];
}

export class MemoryClusterTable extends Map<string, Cluster> implements ClusterTable {
  liveIdsOf(ids: Iterable<string>) {
    const out = new Map<string, string>();
    for (const id of ids) {
      const live = followForwards(this, id);
      if (live !== undefined) out.set(id, live);
    }
    return out;
  }
  liveIds(after: string | null, limit: number) {
    const ids: string[] = [];
    for (const cluster of this.values()) if (!cluster.forwardedTo && (after === null || cluster.id > after)) ids.push(cluster.id);
    return ids.sort().slice(0, limit);
  }
  liveCount() {
    let n = 0;
    for (const cluster of this.values()) if (!cluster.forwardedTo) n++;
    return n;
  }
  forwardingTo(clusterId: string) {
    return [...this.values()].filter((cluster) => cluster.forwardedTo === clusterId).map((cluster) => cluster.id);
  }
  liveHolder(key: string, except: Set<string>) {
    for (const cluster of this.values()) if (!cluster.forwardedTo && !except.has(cluster.id) && cluster.identifiers.has(key)) return cluster.id;
    return undefined;
  }
}

export class MemoryIndexTable extends Map<string, IndexEntry> implements IndexTable {
  routingTo(clusterIds: Iterable<string>) {
    const ids = new Set(clusterIds);
    return [...this].filter(([, entry]) => ids.has(entry.clusterId)).map(([key]) => key);
  }
  remembering(userIds: Iterable<string>) {
    const ids = new Set(userIds);
    return [...this].filter(([, entry]) => entry.userIds.some((id) => ids.has(id))).map(([key]) => key);
  }
  prefetch() {}
}

export class MemoryFeatureTable extends Map<string, ProfileFeatures> implements FeatureTable {
  listing(keys: Iterable<string>) {
    const wanted = new Set(keys);
    return [...this].filter(([, features]) => featureKeys(features).some((key) => wanted.has(key))).map(([id]) => id);
  }
}

export class MemoryReviewTable extends Map<string, ReviewItem> implements ReviewTable {
  /** Each review's position in the queue, given when it is first added as SQLite gives a row its rowid: one past the largest. */
  private positions?: Map<string, number>;
  private last = 0;

  override set(key: string, review: ReviewItem) {
    this.positions ??= new Map();
    if (!this.positions.has(key)) this.positions.set(key, ++this.last);
    return super.set(key, review);
  }
  override delete(key: string) {
    const position = this.positions?.get(key);
    this.positions?.delete(key);
    if (position === this.last) this.last = [...(this.positions?.values() ?? [])].reduce((max, p) => Math.max(max, p), 0);
    return super.delete(key);
  }
  open() {
    return [...this.values()].filter((review) => review.status === "open");
  }
  concerning(clusterIds: Iterable<string>, messageIds: Iterable<string>) {
    const clusters = new Set(clusterIds);
    const messages = new Set(messageIds);
    return [...this.values()].filter((r) => r.clusters.some((id) => clusters.has(id)) || (r.messageId !== undefined && messages.has(r.messageId)));
  }
  page(status: ReviewItem["status"] | undefined, after: number, limit: number): ReviewPage {
    const queued = [...this].map(([key, review]) => ({ review, position: this.positions!.get(key)! })).filter(({ review, position }) => (!status || review.status === status) && position > after);
    const shown = queued.slice(0, limit);
    return { reviews: shown.map((q) => q.review), next: queued.length > limit ? (shown.at(-1)?.position ?? after) : null };
  }
  positioned(status: ReviewItem["status"] | undefined, after: number, limit: number): PositionedReview[] {
    return [...this]
      .map(([key, review]) => ({ review, position: this.positions!.get(key)! }))
      .filter(({ review, position }) => (!status || review.status === status) && position > after)
      .slice(0, limit);
  }
  override clear() {
    this.positions?.clear();
    this.last = 0;
    super.clear();
  }
}

export class MemoryMergeTable extends Map<string, MergeRecord> implements MergeTable {
  involving(clusterId: string) {
    return [...this.values()].filter((merge) => clustersOfMerge(merge).includes(clusterId));
  }
}

export class MemoryConflictLog implements ConflictLog {
  private conflicts: Conflict[] = [];
  add(conflict: Conflict) {
    this.conflicts.push(conflict);
    if (this.conflicts.length > MAX_RECORDED_CONFLICTS) this.conflicts.splice(0, this.conflicts.length - MAX_RECORDED_CONFLICTS);
  }
  all() {
    return [...this.conflicts];
  }
  retain(keep: (conflict: Conflict) => boolean) {
    this.conflicts = this.conflicts.filter(keep);
  }
}

export class MemoryBlockIndex implements BlockIndex {
  private readonly blocks = new Map<string, Set<string>>();
  private readonly byCluster = new Map<string, Set<string>>();
  join(key: string, clusterId: string, max: number) {
    this.enter(clusterId, [key]);
    const block = this.blocks.get(key)!;
    return block.size > max ? null : [...block];
  }
  enter(clusterId: string, keys: string[]) {
    const entered: string[] = [];
    for (const key of keys) {
      let block = this.blocks.get(key);
      if (!block) this.blocks.set(key, (block = new Set()));
      if (block.has(clusterId)) continue;
      block.add(clusterId);
      let held = this.byCluster.get(clusterId);
      if (!held) this.byCluster.set(clusterId, (held = new Set()));
      held.add(key);
      entered.push(key);
    }
    return entered;
  }
  leave(clusterId: string, keep?: Set<string>) {
    const held = this.byCluster.get(clusterId);
    const left = [...(held ?? [])].filter((key) => !keep?.has(key));
    for (const key of left) {
      const block = this.blocks.get(key)!;
      block.delete(clusterId);
      if (block.size === 0) this.blocks.delete(key);
      held!.delete(key);
    }
    if (held?.size === 0) this.byCluster.delete(clusterId);
    return left;
  }
  keysOf(clusterId: string): string[] {
    return [...(this.byCluster.get(clusterId) ?? [])];
  }
}
