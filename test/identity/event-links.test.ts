import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import { SqlEventLinks } from "../../durable-objects/sql-event-links";
import { eraseClusters } from "../../workers/identity/erase";
import { MemoryEventLinks } from "../../workers/identity/event-links";
import { IdentityGraph } from "../../workers/identity/graph";
import { applyEvent } from "../../workers/identity/resolve";
import { DEFAULT_IDENTITY_SETTINGS } from "../../workers/identity/settings";
import { fromSnapshotParts, snapshotParts, toSnapshot } from "../../workers/identity/snapshot";
import { splitIdentifiers, unmerge } from "../../workers/identity/unmerge";
import { queuedEvents } from "./queued-events";

const T0 = Date.UTC(2026, 10, 1);
const ids = (keys: string[]) => keys.map((k) => ({ type: k.slice(0, k.indexOf(":")), value: k.slice(k.indexOf(":") + 1) }));

/** A household: merges, an unmerge, a split and an erasure, so every write of the store is used. */
function household(graph: IdentityGraph) {
  const apply = (messageId: string, keys: string[], n: number) => applyEvent(graph, DEFAULT_IDENTITY_SETTINGS, { messageId, at: T0 + n * 60_000, identifiers: ids(keys) });
  apply("h1", ["user_id:mum", "anonymous_id:tablet"], 1);
  apply("h2", ["anonymous_id:tablet"], 2);
  apply("h3", ["email:mum@acme-shop.com", "anonymous_id:phone-1"], 3);
  const merged = apply("h4", ["user_id:mum", "email:mum@acme-shop.com"], 4);
  apply("h5", ["anonymous_id:phone-1", "device_id:d-9"], 5);
  apply("k1", ["user_id:kid", "anonymous_id:laptop"], 6);
  apply("k2", ["anonymous_id:laptop", "email:kid@acme-shop.com"], 7);
  unmerge(graph, merged.merge!.id, T0 + 8 * 60_000);
  const mum = graph.clusterOf("user_id:mum")!.id;
  splitIdentifiers(graph, mum, ["anonymous_id:tablet"]);
  apply("h6", ["user_id:mum", "anonymous_id:tablet"], 9);
  eraseClusters(graph, [graph.clusterOf("user_id:kid")!.id]);
  return graph;
}

/** The snapshot with events, in an order that does not depend on how a store iterates. */
function comparable(graph: IdentityGraph) {
  const snapshot = toSnapshot(graph);
  return { ...snapshot, eventCluster: [...(snapshot.eventCluster ?? [])].sort(), links: [...(snapshot.links ?? [])].sort((a, b) => a[1].messageId.localeCompare(b[1].messageId)) };
}

const event = queuedEvents("links");

type Row = Record<string, SqlStorageValue>;
const rows = (stub: DurableObjectStub<IdentityGraphShard>, query: string) => runInDurableObject(stub, (_i: IdentityGraphShard, state) => state.storage.sql.exec<Row>(query).toArray());

describe("per-event graph state", () => {
  it("is the same in SQLite as in memory after merges, an unmerge, a split and an erasure", async () => {
    const inMemory = household(new IdentityGraph(0, new MemoryEventLinks()));
    const stub = env.IDENTITY.getByName("links-contract");
    const inSql = await runInDurableObject(stub, (_i: IdentityGraphShard, state) => comparable(household(new IdentityGraph(0, new SqlEventLinks(state.storage.sql)))));
    expect(inSql).toEqual(comparable(inMemory));
    expect(inSql.links.map(([, link]) => link.messageId)).toEqual(["h1", "h2", "h3", "h5", "h6", "h1#split"].sort());
    expect(inSql.eventCluster.map(([messageId]) => messageId)).not.toContain("k1");
  });

  it("is kept out of the object's snapshots", async () => {
    const stub = env.IDENTITY.getByName("links-snapshot");
    const events = Array.from({ length: 600 }, (_, i) => event({ userId: `u${i % 150}`, anonymousId: `dev-${i % 150}-${i % 2}` }));
    for (let i = 0; i < events.length; i += 1) await stub.resolveEvents([events[i]!]);
    const [settings, head, ...parts] = (await rows(stub, "SELECT data FROM snapshot ORDER BY chunk")).map((r) => JSON.parse(String(r.data)) as Record<string, unknown>);
    expect(Object.keys(settings!)).toEqual(["settings"]);
    expect(head).toMatchObject({ v: 3 });
    expect(parts.length).toBeGreaterThan(0);
    for (const part of parts) {
      expect(part).not.toHaveProperty("eventCluster");
      expect(part).not.toHaveProperty("links");
      for (const cluster of (part.clusters ?? []) as Record<string, unknown>[]) expect(cluster).not.toHaveProperty("links");
    }
    expect(await rows(stub, "SELECT count(*) AS n FROM graph_links")).toEqual([{ n: 600 }]);
    expect(await stub.appliedEvents()).toBe(600);
  });

  it("applies an event repeated within one batch once, and answers both copies with its profile", async () => {
    const stub = env.IDENTITY.getByName("links-repeat");
    const twice = event({ anonymousId: "r1", traits: { email: "r@acme-shop.com" } });
    const [first, again, other] = await stub.resolveEvents([twice, twice, event({ anonymousId: "r2" })]);
    expect(again).toEqual({ messageId: twice.messageId, profileId: first!.profileId, dropped: [] });
    expect(other!.profileId).not.toBe(first!.profileId);
    expect(await stub.appliedEvents()).toBe(2);
    expect(await rows(stub, "SELECT count(*) AS n FROM graph_links")).toEqual([{ n: 2 }]);
  });

  it("wakes with the same links and assignments, replaying the log over tables that already hold it", async () => {
    const stub = env.IDENTITY.getByName("links-wake");
    const [first] = await stub.resolveEvents([event({ anonymousId: "w1", traits: { email: "w@acme-shop.com" } })]);
    await stub.resolveEvents([event({ anonymousId: "w2" })]);
    const [merging] = await stub.resolveEvents([event({ anonymousId: "w2", traits: { email: "w@acme-shop.com" } })]);
    // The unmerge takes a snapshot; what follows is only in the log and in the tables.
    const undone = await stub.unmerge(merging!.mergeId!);
    expect(undone.ok).toBe(true);
    await stub.resolveEvents([event({ anonymousId: "w3", userId: "w-user" }), event({ anonymousId: "w3", traits: { email: "w@acme-shop.com" } }), event({ anonymousId: "w2", deviceId: "x" })]);
    const before = { links: await rows(stub, "SELECT message_id, cluster_id, keys FROM graph_links ORDER BY message_id"), events: await rows(stub, "SELECT * FROM graph_event_clusters ORDER BY message_id"), profile: await stub.profile(first!.profileId!) };
    const logged = await rows(stub, "SELECT count(*) AS n FROM operations");
    expect(logged[0]!.n).toBeGreaterThan(0);

    await evictDurableObject(stub);
    expect(await stub.profile(first!.profileId!)).toEqual(before.profile);
    expect(await rows(stub, "SELECT message_id, cluster_id, keys FROM graph_links ORDER BY message_id")).toEqual(before.links);
    expect(await rows(stub, "SELECT * FROM graph_event_clusters ORDER BY message_id")).toEqual(before.events);
    expect(before.profile!.links.map((l) => l.messageId)).toHaveLength(3);
  });

  it("moves the per-event state of an older snapshot into SQLite and rewrites the snapshot without it", async () => {
    const old = household(new IdentityGraph());
    const v2 = toSnapshot(old);
    // The format before this store existed: links inside each cluster, no top-level list.
    const v1 = { ...v2, v: 1, links: undefined, clusters: v2.clusters.map((c) => ({ ...c, links: (v2.links ?? []).filter(([id]) => id === c.id).map(([, link]) => link) })) };
    const stub = env.IDENTITY.getByName("links-upgrade");
    await runInDurableObject(stub, (_i: IdentityGraphShard, state) => {
      state.storage.sql.exec("INSERT INTO snapshot (chunk, seq, data) VALUES (0, 0, ?)", JSON.stringify({ graph: v1, settings: DEFAULT_IDENTITY_SETTINGS }));
    });
    await evictDurableObject(stub);

    const mum = await stub.lookup("user_id:mum");
    expect(mum!.links.map((l) => l.messageId).sort()).toEqual(old.events.links(old.clusterOf("user_id:mum")!.id).map((l) => l.messageId).sort());
    expect(await stub.appliedEvents()).toBe(old.events.count());
    // Rewritten in parts, without per-event state.
    const parts = (await rows(stub, "SELECT data FROM snapshot ORDER BY chunk")).map((r) => String(r.data));
    expect(parts[0]).toMatch(/^\{"settings":/);
    expect(parts.join("")).not.toContain('"links"');
  });
});

describe("snapshots in parts", () => {
  it("cuts the graph into parts of bounded size that rebuild the same graph", () => {
    const graph = household(new IdentityGraph());
    const parts = [...snapshotParts(graph, 300)];
    expect(parts.length).toBeGreaterThan(8);
    // A part closes once it passes the bound, so none is over it by more than its last item.
    for (const part of parts.slice(1)) expect(part.length).toBeLessThan(300 + 1_000);
    const rebuilt = fromSnapshotParts(parts, new MemoryEventLinks());
    expect(toSnapshot(rebuilt, { events: false })).toEqual(toSnapshot(graph, { events: false }));
  });

  it("refuses a part that does not validate, naming what is wrong", () => {
    const [head, ...rest] = [...snapshotParts(household(new IdentityGraph()))];
    expect(() => fromSnapshotParts([head!, '{"clusters":[{"id":7}]}', ...rest])).toThrow(/clusters/);
  });
});
