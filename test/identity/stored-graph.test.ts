import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import { SqlEventLinks } from "../../durable-objects/sql-event-links";
import type { GraphStore } from "../../durable-objects/graph-store";
import type { ProfileStore } from "../../durable-objects/profile-store";
import { SqlGraphCollections } from "../../durable-objects/sql-graph-collections";
import { SqlTable } from "../../durable-objects/sql-table";
import { eraseClusters } from "../../workers/identity/erase";
import { MemoryEventLinks } from "../../workers/identity/event-links";
import { IdentityGraph } from "../../workers/identity/graph";
import { applyEvent } from "../../workers/identity/resolve";
import { DEFAULT_IDENTITY_SETTINGS } from "../../workers/identity/settings";
import { fromSnapshotParts, snapshotParts, toSnapshot } from "../../workers/identity/snapshot";
import { splitIdentifiers, unmerge } from "../../workers/identity/unmerge";
import { comparable, storedGraph } from "./graph-comparison";
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

const event = queuedEvents("links");

type Row = Record<string, SqlStorageValue>;
const rows = (stub: DurableObjectStub<IdentityGraphShard>, query: string) => runInDurableObject(stub, (_i: IdentityGraphShard, state) => state.storage.sql.exec<Row>(query).toArray());

describe("the stored graph", () => {
  it("is the same in SQLite as in memory after merges, an unmerge, a split and an erasure, read back by a fresh graph", async () => {
    const inMemory = household(new IdentityGraph(0, new MemoryEventLinks()));
    const stub = env.IDENTITY.getByName("stored-contract");
    const inSql = await runInDurableObject(stub, (_i: IdentityGraphShard, state) => {
      const sql = state.storage.sql;
      const collections = new SqlGraphCollections(sql);
      const links = new SqlEventLinks(sql);
      const graph = household(new IdentityGraph(0, links, collections));
      collections.writeBack();
      links.flush();
      // A graph built afresh over the same tables reads everything from storage.
      return comparable(storedGraph(sql, graph.counterValue()));
    });
    expect(inSql).toEqual(comparable(inMemory));
    expect(inSql.links.map(([, link]) => link.messageId).sort()).toEqual(["h1", "h2", "h3", "h5", "h6", "h1#split"].sort());
    expect(inSql.eventCluster.map(([messageId]) => messageId)).not.toContain("k1");
    expect(inSql.blocks.length).toBeGreaterThan(0);
    expect(inSql.mergesOf.some(([, merges]) => (merges as string[]).length > 0)).toBe(true);
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

  it("wakes with the same profiles, links and assignments, reading its tables rather than replaying anything", async () => {
    const stub = env.IDENTITY.getByName("links-wake");
    const [first] = await stub.resolveEvents([event({ anonymousId: "w1", traits: { email: "w@acme-shop.com" } })]);
    await stub.resolveEvents([event({ anonymousId: "w2" })]);
    const [merging] = await stub.resolveEvents([event({ anonymousId: "w2", traits: { email: "w@acme-shop.com" } })]);
    const undone = await stub.unmerge(merging!.mergeId!);
    expect(undone.ok).toBe(true);
    await stub.resolveEvents([event({ anonymousId: "w3", userId: "w-user" }), event({ anonymousId: "w3", traits: { email: "w@acme-shop.com" } }), event({ anonymousId: "w2", deviceId: "x" })]);
    const graphTables = "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('snapshot', 'operations')";
    const before = { ids: (await rows(stub, "SELECT key FROM graph_clusters")).map((r) => r.key), links: await rows(stub, "SELECT message_id, cluster_id, keys FROM graph_links ORDER BY message_id"), events: await rows(stub, "SELECT * FROM graph_event_clusters ORDER BY message_id"), profile: await stub.profile(first!.profileId!) };
    expect(await rows(stub, graphTables)).toEqual([]);

    await evictDurableObject(stub);
    expect(await stub.profile(first!.profileId!)).toEqual(before.profile);
    expect(await rows(stub, "SELECT message_id, cluster_id, keys FROM graph_links ORDER BY message_id")).toEqual(before.links);
    expect(await rows(stub, "SELECT * FROM graph_event_clusters ORDER BY message_id")).toEqual(before.events);
    expect(before.profile!.links.map((l) => l.messageId)).toHaveLength(3);
    // Ids keep counting from where they were: a new profile does not reuse one.
    const [later] = await stub.resolveEvents([event({ anonymousId: "w9" })]);
    expect(before.ids.length).toBeGreaterThan(2);
    expect(before.ids).not.toContain(later!.profileId);
  });

  it("refuses a stored row that does not validate, naming what is wrong, and keeps the rest readable", async () => {
    const stub = env.IDENTITY.getByName("stored-invalid");
    const [good] = await stub.resolveEvents([event({ userId: "fine" })]);
    await runInDurableObject(stub, (instance: IdentityGraphShard, state) => {
      state.storage.sql.exec("INSERT INTO graph_index (key, value) VALUES ('user_id:broken', ?)", JSON.stringify({ clusterId: 7 }));
      expect(() => instance.lookup("user_id:broken")).toThrow(/graph_index row "user_id:broken" is invalid: clusterId: /);
    });
    expect((await stub.lookup("user_id:fine"))!.profileId).toBe(good!.profileId);
  });
});

describe("a graph stored before its collections were tables", () => {
  const legacyTables = (sql: SqlStorage) => {
    sql.exec("CREATE TABLE snapshot (chunk INTEGER PRIMARY KEY, seq INTEGER NOT NULL, data TEXT NOT NULL)");
    sql.exec("CREATE TABLE operations (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL)");
  };

  it("moves a snapshot with per-event state inside it (version 1) into the tables and drops it", async () => {
    const old = household(new IdentityGraph());
    const v2 = toSnapshot(old);
    // Links inside each cluster, no top-level list.
    const v1 = { ...v2, v: 1, links: undefined, clusters: v2.clusters.map((c) => ({ ...c, links: (v2.links ?? []).filter(([id]) => id === c.id).map(([, link]) => link) })) };
    const stub = env.IDENTITY.getByName("links-upgrade");
    await runInDurableObject(stub, (_i: IdentityGraphShard, state) => {
      legacyTables(state.storage.sql);
      state.storage.sql.exec("INSERT INTO snapshot (chunk, seq, data) VALUES (0, 0, ?)", JSON.stringify({ graph: v1, settings: DEFAULT_IDENTITY_SETTINGS }));
    });
    await evictDurableObject(stub);

    const mum = await stub.lookup("user_id:mum");
    expect(mum!.links.map((l) => l.messageId).sort()).toEqual(old.events.links(old.clusterOf("user_id:mum")!.id).map((l) => l.messageId).sort());
    expect(await stub.appliedEvents()).toBe(old.events.count());
    expect(await rows(stub, "SELECT name FROM sqlite_master WHERE name IN ('snapshot', 'operations')")).toEqual([]);
    const stored = await runInDurableObject(stub, (_i: IdentityGraphShard, state) => comparable(storedGraph(state.storage.sql, old.counterValue())));
    expect(stored).toEqual(comparable(old));
  });

  it("moves a snapshot in parts and replays the operations logged after it", async () => {
    const stub = env.IDENTITY.getByName("legacy-parts");
    const old = household(new IdentityGraph());
    const settings = { ...DEFAULT_IDENTITY_SETTINGS, clusterCap: 40 };
    const logged = { kind: "events", inputs: [{ messageId: "after-1", at: T0 + 3_600_000, identifiers: ids(["user_id:mum", "phone:+15550100"]) }] };
    await runInDurableObject(stub, (_i: IdentityGraphShard, state) => {
      const sql = state.storage.sql;
      legacyTables(sql);
      [JSON.stringify({ settings }), ...snapshotParts(old, 400)].forEach((data, chunk) => sql.exec("INSERT INTO snapshot (chunk, seq, data) VALUES (?, 0, ?)", chunk, data));
      sql.exec("INSERT INTO operations (op) VALUES (?)", JSON.stringify(logged));
      // Per-event state was already in its tables.
      const links = new SqlEventLinks(sql);
      for (const [messageId, clusterId] of old.events.assignments()) links.assign(messageId, clusterId);
      for (const { clusterId, link } of old.events.allLinks()) links.addLink(clusterId, link);
      links.flush();
    });
    await evictDurableObject(stub);

    const mum = await stub.lookup("user_id:mum");
    expect(mum!.identifiers.map((i) => `${i.type}:${i.value}`)).toContain("phone:+15550100");
    expect((await stub.getSettings()).clusterCap).toBe(40);
    applyEvent(old, settings, { ...logged.inputs[0]! });
    const stored = await runInDurableObject(stub, (_i: IdentityGraphShard, state) => comparable(storedGraph(state.storage.sql, old.counterValue())));
    expect(stored).toEqual(comparable(old));
  });
});

describe("snapshots in parts, the format older graphs are read from", () => {
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

describe("a stored table", () => {
  const codec = { encode: (v: { n: number }) => JSON.stringify(v), decode: (json: string) => JSON.parse(json) as { n: number } };
  /** The object's SQL, noting the key of each row its upserts sent (a statement may send many rows of key and value). */
  const counting = (sql: SqlStorage) => {
    const writes = { keys: [] as unknown[] };
    return {
      writes,
      exec: (query: string, ...bindings: unknown[]) => {
        if (query.startsWith("INSERT")) writes.keys.push(...bindings.filter((_, i) => i % 2 === 0));
        return sql.exec(query, ...bindings);
      },
    };
  };

  it("writes back only the rows an operation changed, in place or with set", async () => {
    await runInDurableObject(env.IDENTITY.getByName("table-writes"), (_i: IdentityGraphShard, state) => {
      const sql = counting(state.storage.sql);
      const table = new SqlTable(sql as never, "t_writes", codec);
      table.set("a", { n: 1 });
      table.set("b", { n: 2 });
      table.writeBack();
      table.forget({ rolledBack: false });
      sql.writes.keys = [];
      table.get("a")!.n = 10;
      expect(table.get("b")).toEqual({ n: 2 });
      table.set("c", { n: 3 });
      table.writeBack();
      expect(sql.writes.keys).toEqual(["a", "c"]);
      const fresh = new SqlTable(state.storage.sql, "t_writes", codec);
      expect([...fresh]).toEqual([["a", { n: 10 }], ["b", { n: 2 }], ["c", { n: 3 }]]);
    });
  });

  it("keeps at most its bound of rows cached, and forgets what a rolled-back operation changed", async () => {
    await runInDurableObject(env.IDENTITY.getByName("table-cache"), (_i: IdentityGraphShard, state) => {
      const sql = state.storage.sql;
      const table = new SqlTable(sql, "t_cache", codec, {}, 2);
      for (const [i, key] of ["a", "b", "c"].entries()) table.set(key, { n: i });
      table.writeBack();
      table.forget({ rolledBack: false });
      // Changed behind the cache's back: only a row that is no longer cached shows it.
      sql.exec("UPDATE t_cache SET value = '{\"n\":99}'");
      expect(table.get("a")).toEqual({ n: 99 });
      expect(table.get("c")).toEqual({ n: 2 });

      table.get("c")!.n = 42;
      table.forget({ rolledBack: true });
      expect(table.get("c")).toEqual({ n: 99 });
    });
  });

  it("leaves storage and the graph as they were when an operation throws", async () => {
    const stub = env.IDENTITY.getByName("stored-rollback");
    const [first] = await stub.resolveEvents([event({ userId: "rb-user", traits: { email: "rb@acme-shop.com" } })]);
    const before = await stub.lookup("email:rb@acme-shop.com");
    await runInDurableObject(stub, (instance: IdentityGraphShard) => {
      const graphs = (instance as unknown as { graphs: GraphStore }).graphs;
      expect(() =>
        graphs.atomically(() => {
          const graph = graphs.graph();
          graph.clusters.get(first!.profileId!)!.identifiers.clear();
          graph.index.delete("email:rb@acme-shop.com");
          graph.nextId("prof");
          throw new Error("fails half way");
        }),
      ).toThrow("fails half way");
    });
    expect(await stub.lookup("email:rb@acme-shop.com")).toEqual(before);
    const [next] = await stub.resolveEvents([event({ userId: "rb-other" })]);
    expect(next!.profileId).not.toBe(first!.profileId);
    expect(await stub.lookup("user_id:rb-other")).toMatchObject({ profileId: next!.profileId });
  });

  it("drops the event rows a resolve call held when it throws, so the next call writes only its own", async () => {
    const stub = env.IDENTITY.getByName("stored-rows-rollback");
    const doomed = event({ userId: "rows-doomed", traits: { plan: "pro" } });
    await runInDurableObject(stub, (instance: IdentityGraphShard) => {
      const { graphs, store } = instance as unknown as { graphs: GraphStore; store: ProfileStore };
      const failing = () =>
        graphs.atomically(() =>
          store.recording([doomed.messageId], () => {
            expect(store.recordEvent(doomed, "src_web", "prof_doomed", ["user_id:rows-doomed"])).not.toBeNull();
            throw new Error("fails half way");
          }),
        );
      expect(failing).toThrow("fails half way");
    });
    const [next] = await stub.resolveEvents([event({ userId: "rows-next", traits: { plan: "free" } })]);
    await runInDurableObject(stub, (_instance: IdentityGraphShard, state) => {
      const column = (query: string) => state.storage.sql.exec<{ v: string }>(query).toArray().map((row) => row.v);
      expect(column("SELECT message_id AS v FROM profile_events")).toEqual([next!.messageId]);
      expect(column("SELECT profile_id AS v FROM profile_traits")).toEqual([next!.profileId]);
      expect(column("SELECT key AS v FROM identifier_sources")).toEqual(["user_id:rows-next"]);
    });
  });
});
