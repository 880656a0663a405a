import { SqlEventLinks } from "../../durable-objects/sql-event-links";
import { SqlGraphCollections } from "../../durable-objects/sql-graph-collections";
import { IdentityGraph } from "../../workers/identity/graph";
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
  };
}

/** A graph over the object's tables, as the object builds one. */
export const storedGraph = (sql: SqlStorage, counter = 0) => new IdentityGraph(counter, new SqlEventLinks(sql), new SqlGraphCollections(sql));
