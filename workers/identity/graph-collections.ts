import type { Cluster, Conflict, MergeRecord } from "./graph";

/**
 * The collections the identity graph is made of, as the rules use them. The
 * pure graph keeps each in memory (a Map or a Set satisfies these); the
 * Durable Object backs them with its SQLite storage, so its memory holds only
 * what the operation in hand touched, however large the graph grows.
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

/** The clusters, with the walks over live ones that backfills and listings need. */
export interface ClusterTable extends GraphTable<Cluster> {
  /** Live (not forwarded) cluster ids in id order, after `after`. */
  liveIds(after: string | null, limit: number): string[];
  liveCount(): number;
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

/** Blocking key → the clusters that had it, for probabilistic matching. Entries may be stale (merged away): readers resolve them. */
export interface BlockIndex {
  /** Adds the cluster to the block; returns its members, or null when the block holds more than `max` (too common to be a lead). */
  join(key: string, clusterId: string, max: number): string[] | null;
  /** Takes the cluster out of every block, or out of those not in `keep`. */
  leave(clusterId: string, keep?: Set<string>): void;
  /** The blocks holding the cluster. */
  keysOf(clusterId: string): string[];
}

export class MemoryClusterTable extends Map<string, Cluster> implements ClusterTable {
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
    let block = this.blocks.get(key);
    if (!block) this.blocks.set(key, (block = new Set()));
    block.add(clusterId);
    let keys = this.byCluster.get(clusterId);
    if (!keys) this.byCluster.set(clusterId, (keys = new Set()));
    keys.add(key);
    return block.size > max ? null : [...block];
  }
  leave(clusterId: string, keep?: Set<string>) {
    for (const key of this.byCluster.get(clusterId) ?? []) {
      if (keep?.has(key)) continue;
      const block = this.blocks.get(key)!;
      block.delete(clusterId);
      if (block.size === 0) this.blocks.delete(key);
      this.byCluster.get(clusterId)!.delete(key);
    }
    if (!this.byCluster.get(clusterId)?.size) this.byCluster.delete(clusterId);
  }
  keysOf(clusterId: string): string[] {
    return [...(this.byCluster.get(clusterId) ?? [])];
  }
}
