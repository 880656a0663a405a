import { type EventLinks, MemoryEventLinks } from "./event-links";
import {
  type BlockIndex,
  type ClusterTable,
  type ConflictLog,
  type FeatureTable,
  type IndexTable,
  type KeySet,
  MemoryBlockIndex,
  MemoryClusterTable,
  MemoryConflictLog,
  MemoryFeatureTable,
  MemoryIndexTable,
  MemoryMergeTable,
  MemoryReviewTable,
  type MergeTable,
  type ReviewTable,
} from "./graph-collections";
import type { FieldEvidence } from "./probabilistic";
import type { Identifier } from "./types";
import { identifierKey } from "./types";

/**
 * The identity graph's state, as plain data: clusters of identifiers, the links
 * (events) that joined them, the merges with their evidence, and what the
 * resolver recorded or queued. The resolver reads and writes only this shape,
 * so the same rules run over an in-memory graph (tests, benchmarks, the
 * one-at-a-time reference) and over the Durable Objects that persist it.
 */

export interface ClusterIdentifier extends Identifier {
  firstSeen: number;
  lastSeen: number;
}

export interface Cluster {
  id: string;
  /** Creation order decides the survivor of a merge: the older cluster keeps its id. */
  createdAt: number;
  seq: number;
  identifiers: Map<string, ClusterIdentifier>;
  /** Set when absorbed by a merge: every lookup follows it to the survivor. */
  forwardedTo?: string;
}

export interface MergeRecord {
  id: string;
  survivor: string;
  absorbed: string[];
  messageId: string;
  /** The event identifiers that matched each cluster: the evidence of the merge. */
  evidence: { key: string; clusterId: string }[];
  rule: "shared-identifier" | "review-approved" | "probabilistic";
  at: number;
  retracted?: { at: number; restored: string[] };
}

export type ConflictReason = "limit" | "user-id-conflict" | "never-merge" | "cluster-cap" | "quarantined";

/** A guard decision: an identifier dropped from an event, and why. */
export interface Conflict {
  messageId: string;
  dropped: string;
  reason: ConflictReason;
  /** The clusters the event would have joined. */
  clusters: string[];
  at: number;
}

export type ReviewKind = "user-id-conflict" | "cluster-cap" | "quarantine" | "probabilistic";

export interface ReviewItem {
  id: string;
  kind: ReviewKind;
  clusters: string[];
  identifiers: string[];
  messageId?: string;
  detail: string;
  /** For probabilistic candidates: the match probability and each field's contribution. */
  score?: number;
  evidence?: FieldEvidence[];
  status: "open" | "approved" | "rejected";
  at: number;
}

export interface IndexEntry {
  clusterId: string;
  /**
   * Distinct user ids seen on events with this identifier: more than the
   * threshold quarantines it, so it never holds more than threshold + 1. An
   * array, not a Set: one per identifier, a Set took a quarter of the graph's memory.
   */
  userIds: string[];
  quarantined: boolean;
  /** A person approved this identifier as legitimately shared: it is not quarantined again. */
  shared?: boolean;
}

/** Where a graph keeps each collection: in memory when left out. */
export interface GraphCollections {
  clusters: ClusterTable;
  index: IndexTable;
  merges: MergeTable;
  reviews: ReviewTable;
  features: FeatureTable;
  conflicts: ConflictLog;
  blocks: BlockIndex;
  neverMerge: KeySet;
  tombstones: KeySet;
  suggested: KeySet;
}

export class IdentityGraph {
  readonly clusters: ClusterTable;
  readonly index: IndexTable;
  readonly merges: MergeTable;
  readonly conflicts: ConflictLog;
  readonly reviews: ReviewTable;
  /** Pairs of identifier keys that must never end in one cluster without a person's approval. */
  readonly neverMerge: KeySet;
  /** Events whose links were retracted by an unmerge: replaying them links nothing. */
  readonly tombstones: KeySet;
  /** What each live cluster offers probabilistic matching. */
  readonly features: FeatureTable;
  readonly blocks: BlockIndex;
  /** Cluster pairs already scored above the review threshold: one suggestion per pair. */
  readonly suggested: KeySet;
  /** Open reviews by the identifiers they name, so a repeated conflict does not queue again. Derived, never persisted. */
  readonly openReviewsByIdentifier = new Map<string, Set<string>>();
  /**
   * Which cluster each applied event belongs to (events follow their identifiers
   * on unmerge) and the links they left: kept outside the graph's memory by the
   * Durable Object, since it grows with every event.
   */
  readonly events: EventLinks;
  /** Told of every merge as it is made, so profile state can follow it. */
  onMerge?: (merge: MergeRecord) => void;
  /**
   * Set on every graph shard but the first (`s2` on shard 2): the ids it issues
   * carry it, so ids stay unique across a workspace's shards, whose counters
   * are their own. Shard 0 issues ids as a single graph always did.
   */
  idTag: string | null = null;

  constructor(
    private counter = 0,
    events?: EventLinks,
    collections?: GraphCollections,
  ) {
    this.events = events ?? new MemoryEventLinks();
    this.clusters = collections?.clusters ?? new MemoryClusterTable();
    this.index = collections?.index ?? new MemoryIndexTable();
    this.merges = collections?.merges ?? new MemoryMergeTable();
    this.reviews = collections?.reviews ?? new MemoryReviewTable();
    this.features = collections?.features ?? new MemoryFeatureTable();
    this.conflicts = collections?.conflicts ?? new MemoryConflictLog();
    this.blocks = collections?.blocks ?? new MemoryBlockIndex();
    this.neverMerge = collections?.neverMerge ?? new Set();
    this.tombstones = collections?.tombstones ?? new Set();
    this.suggested = collections?.suggested ?? new Set();
    // Indexed only: setting them again would write every open review back with the first operation.
    if (collections) for (const review of collections.reviews.open()) this.indexOpenReview(review);
  }

  counterValue(): number {
    return this.counter;
  }

  nextId(prefix: string): string {
    this.counter += 1;
    const tag = this.idTag ? `${this.idTag}_` : "";
    return `${prefix}_${tag}${this.counter.toString(36).padStart(6, "0")}`;
  }

  nextSeq(): number {
    return ++this.counter;
  }

  /** Follows forwarding pointers to the live cluster. */
  resolve(clusterId: string): Cluster {
    let cluster = this.clusters.get(clusterId);
    if (!cluster) throw new Error(`unknown cluster ${clusterId}`);
    while (cluster.forwardedTo) cluster = this.clusters.get(cluster.forwardedTo)!;
    return cluster;
  }

  /** The live cluster an id is, followed through merges; null when this graph does not hold it (erased, handed over, never here). */
  liveIdOf(clusterId: string): string | null {
    return this.clusters.has(clusterId) ? this.resolve(clusterId).id : null;
  }

  clusterOf(key: string): Cluster | undefined {
    const entry = this.index.get(key);
    return entry && !entry.quarantined ? this.resolve(entry.clusterId) : undefined;
  }

  clusterOfEvent(messageId: string): Cluster | undefined {
    const id = this.events.clusterOf(messageId);
    return id ? this.resolve(id) : undefined;
  }


  /** Every live cluster: for in-memory graphs (tests, benchmarks); stored graphs walk `clusters.liveIds` instead. */
  liveClusters(): Cluster[] {
    return this.clusters.liveIds(null, Number.POSITIVE_INFINITY).map((id) => this.clusters.get(id)!);
  }

  addReview(review: ReviewItem) {
    this.reviews.set(review.id, review);
    this.indexOpenReview(review);
  }

  private indexOpenReview(review: ReviewItem) {
    if (review.status !== "open") return;
    for (const key of review.identifiers) {
      let ids = this.openReviewsByIdentifier.get(key);
      if (!ids) this.openReviewsByIdentifier.set(key, (ids = new Set()));
      ids.add(review.id);
    }
  }

  closeReview(review: ReviewItem, status: "approved" | "rejected") {
    review.status = status;
    for (const key of review.identifiers) this.openReviewsByIdentifier.get(key)?.delete(review.id);
  }

  /** An open review of this kind already naming `identifier` between any of these clusters. */
  findOpenReview(kind: ReviewItem["kind"], identifier: string, clusterIds: string[]): ReviewItem | undefined {
    const live = new Set(clusterIds.map((id) => this.resolve(id).id));
    for (const id of this.openReviewsByIdentifier.get(identifier) ?? []) {
      const review = this.reviews.get(id)!;
      if (review.kind === kind && review.clusters.some((c) => live.has(this.resolve(c).id))) return review;
    }
    return undefined;
  }

  /** True when a person already said `identifier` must not join any of these clusters. */
  rejectedBetween(identifier: string, clusterIds: string[]): boolean {
    if (this.neverMerge.size === 0) return false;
    return clusterIds.some((id) => [...this.resolve(id).identifiers.keys()].some((key) => key !== identifier && this.neverMerge.has(IdentityGraph.pairKey(identifier, key))));
  }

  static pairKey(a: string, b: string): string {
    return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
  }
}

export { identifierKey };
export type { Link } from "./event-links";
