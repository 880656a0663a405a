import { SqlEventLinks } from "../../durable-objects/sql-event-links";
import { SqlGraphCollections } from "../../durable-objects/sql-graph-collections";
import { IdentityGraph, type ReviewItem } from "../../workers/identity/graph";
import { featureKeys } from "../../workers/identity/graph-collections";
import type { ProfileFeatures } from "../../workers/identity/probabilistic";
import { toSnapshot } from "../../workers/identity/snapshot";

/** The graph as JSON with events, every collection sorted, so it does not depend on how a store iterates. */
export function comparable(graph: IdentityGraph) {
  const snapshot = toSnapshot(graph);
  const byJson = <T>(items: T[]) => [...items].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  return {
    ...snapshot,
    clusters: byJson(snapshot.clusters),
    index: byJson(snapshot.index),
    merges: byJson(snapshot.merges),
    reviews: byJson(snapshot.reviews),
    neverMerge: byJson(snapshot.neverMerge),
    tombstones: byJson(snapshot.tombstones),
    features: byJson(snapshot.features),
    suggested: byJson(snapshot.suggested),
    eventCluster: byJson(snapshot.eventCluster ?? []),
    links: byJson(snapshot.links ?? []),
    blocks: snapshot.clusters.map((c) => [c.id, graph.blocks.keysOf(c.id).sort()]),
    mergesOf: snapshot.clusters.map((c) => [c.id, graph.merges.involving(c.id).map((m) => m.id)]),
    lookups: lookups(graph, snapshot),
  };
}

/** What every lookup an erasure or the review listing uses answers, for every cluster, identifier, user id and event the graph names. */
function lookups(graph: IdentityGraph, snapshot: ReturnType<typeof toSnapshot>) {
  const sorted = (items: Iterable<string>) => [...items].sort();
  const each = <T>(keys: string[], answer: (key: string) => T) => keys.map((key): [string, T] => [key, answer(key)]);
  const clusterIds = sorted(snapshot.clusters.map((c) => c.id));
  const keys = sorted(
    new Set([...snapshot.index.map(([key]) => key), ...snapshot.clusters.flatMap((c) => c.identifiers.map(([key]) => key)), ...snapshot.features.flatMap(([, f]) => featureKeys(f as ProfileFeatures))]),
  );
  const userIds = sorted(new Set(snapshot.index.flatMap(([, entry]) => entry.userIds)));
  const reviewEvents = sorted(new Set(snapshot.reviews.flatMap((r) => (r.messageId ? [r.messageId] : []))));
  const queue = (status?: ReviewItem["status"]) => {
    const ids: string[] = [];
    for (let after: number | null = 0; after !== null; ) {
      const page = graph.reviews.page(status, after, 2);
      ids.push(...page.reviews.map((r) => r.id));
      after = page.next;
    }
    return ids;
  };
  return {
    forwardingTo: each(clusterIds, (id) => sorted(graph.clusters.forwardingTo(id))),
    liveIdsOf: [...graph.clusters.liveIdsOf([...clusterIds, "prof_unknown"])].sort(),
    liveHolder: each(keys, (key) => graph.clusters.liveHolder(key, new Set()) ?? null),
    routingTo: each(clusterIds, (id) => sorted(graph.index.routingTo([id]))),
    remembering: each(userIds, (userId) => sorted(graph.index.remembering([userId]))),
    listing: each(keys, (key) => sorted(graph.features.listing([key]))),
    reviewsNaming: each(clusterIds, (id) => graph.reviews.concerning([id], []).map((r) => r.id)),
    reviewsQueuedBy: each(reviewEvents, (messageId) => graph.reviews.concerning([], [messageId]).map((r) => r.id)),
    queue: [queue(), queue("open"), queue("approved"), queue("rejected")],
  };
}

/** A graph over the object's tables, as the object builds one. */
export const storedGraph = (sql: SqlStorage, counter = 0) => new IdentityGraph(counter, new SqlEventLinks(sql), new SqlGraphCollections(sql));
