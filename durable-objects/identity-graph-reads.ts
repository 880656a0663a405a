import { clustersOfMerge } from "../workers/identity/graph-collections";
import { IdentityGraphAudienceRpc } from "./identity-graph-audience-rpc";
import type { ProfileStore } from "./profile-store";
import { accountMembers, accountRow, graphView, profileRow } from "./profile-views";

/**
 * The identity graph object's read RPCs: the review queue and merges (with
 * the copies a listing or a decision over graph shards needs), profiles by
 * id or identifier, their events, accounts, and how many events are applied.
 * None of them changes anything (views in profile-views.ts). Part of
 * `IdentityGraphShard` (identity-graph.ts), which extends it.
 */
export abstract class IdentityGraphReads extends IdentityGraphAudienceRpc {
  /** A page of the review queue (of one status, or all) after the queue position `after` (0: the first page); reads that page only. */
  reviews(status: "open" | "approved" | "rejected" | undefined, after: number, limit: number) {
    return this.load().reviews.page(status, after, limit);
  }

  merge(mergeId: string) {
    return this.load().merges.get(mergeId) ?? null;
  }

  /**
   * A page of the review queue for the listing over graph shards: each review
   * with its queue position, and whether this shard lists it. A review naming
   * people on two shards is copied in both; only the shard holding the first
   * profile it names lists it (that profile's person carries a copy wherever
   * they go), so the merged listing shows it once. Reads that page only.
   */
  reviewQueue(status: "open" | "approved" | "rejected" | undefined, after: number, limit: number) {
    const graph = this.load();
    const rows = graph.reviews.positioned(status, after, limit + 1);
    const listed = (clusters: string[]) => clusters[0] === undefined || graph.clusters.has(clusters[0]);
    return { reviews: rows.slice(0, limit).map(({ review, position }) => ({ review, position, listed: listed(review.clusters) })), more: rows.length > limit };
  }

  /** This shard's copy of a review, with the profiles it names that this shard holds: it is decided where all of them are. */
  reviewCopy(reviewId: string) {
    const graph = this.load();
    const review = graph.reviews.get(reviewId);
    return review ? { review, held: review.clusters.filter((id) => graph.clusters.has(id)) } : null;
  }

  /** This shard's copy of a merge, with the profiles it names that this shard holds: it is unmerged where all of them are. */
  mergeCopy(mergeId: string) {
    const graph = this.load();
    const merge = graph.merges.get(mergeId);
    return merge ? { merge, held: clustersOfMerge(merge).filter((id) => graph.clusters.has(id)) } : null;
  }

  /** The live profile holding an identifier (`type:value`), following merges. */
  lookup(key: string) {
    const cluster = this.load().clusterOf(key);
    return cluster ? graphView(this.load(), this.store, cluster.id) : null;
  }

  /** Live profiles in creation order (ids count up), after `after`, with their identifiers: the admin listing. */
  listProfiles(after: string | null = null, limit = 100) {
    const graph = this.load();
    const ids = graph.clusters.liveIds(after, limit + 1);
    return {
      total: graph.clusters.liveCount(),
      profiles: ids.slice(0, limit).map((id) => ({ profileId: id, identifiers: [...graph.clusters.get(id)!.identifiers.values()] })),
      next: ids.length > limit ? ids[limit - 1]! : null,
    };
  }

  /** How many events the graph has applied: callers wait on it to see their writes. */
  appliedEvents(): number {
    return this.load().events.count();
  }

  profile(profileId: string) {
    const graph = this.load();
    return graph.clusters.has(profileId) ? graphView(graph, this.store, profileId) : null;
  }

  /** The live profile holding `type:value` (or `profile_id:{id}`), read here: the strongly consistent read. */
  profileByKey(key: string) {
    const graph = this.load();
    const id = key.startsWith("profile_id:") ? key.slice("profile_id:".length) : undefined;
    const cluster = id !== undefined ? (graph.clusters.has(id) ? graph.resolve(id) : undefined) : graph.clusterOf(key);
    return cluster ? profileRow(graph, this.store, this.audiences, cluster.id, Date.now()) : null;
  }

  profileEvents(profileId: string, options: Parameters<ProfileStore["events"]>[1]) {
    return this.store.events(profileId, options);
  }

  account(groupId: string) {
    return accountRow(this.store, groupId);
  }

  accountMembers(groupId: string) {
    return accountMembers(this.load(), this.store, groupId);
  }
}
