import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { generatePopulation } from "../../bench/identity/population.mjs";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import { SqlEventLinks } from "../../durable-objects/sql-event-links";
import { SqlGraphCollections } from "../../durable-objects/sql-graph-collections";
import { applyEventWithFeatures } from "../../workers/identity/apply";
import { eraseClusters, type Footprint, footprint } from "../../workers/identity/erase";
import { IdentityGraph } from "../../workers/identity/graph";
import type { ProfileFeatures } from "../../workers/identity/probabilistic";
import { DEFAULT_IDENTITY_SETTINGS, identitySettingsSchema } from "../../workers/identity/settings";
import { unmerge } from "../../workers/identity/unmerge";
import { countingSql } from "../identity/counting-sql";
import { comparable } from "../identity/graph-comparison";
import { applyPopulationEvent } from "../identity/population";
import { eraseByWalks, footprintByWalks } from "./erase-by-walks";

/** Probabilistic review on, so that the population also queues reviews that name clusters without a conflict. */
const settings = identitySettingsSchema.parse({ probabilistic: { reviewThreshold: 0.5 } });
const T0 = Date.UTC(2026, 10, 1);

/** A footprint as plain data, its map of shared identifiers as sorted pairs. */
const plain = (found: Footprint) => ({ ...found, merges: found.merges.map((m) => m.id), reviews: found.reviews.map((r) => r.id), heldElsewhere: [...found.heldElsewhere].sort() });

/** The graph tables' cells, by table, as `objectStorageText` reads them but inside a test that already runs in the object. */
const graphTables = (sql: SqlStorage) =>
  Object.fromEntries(
    sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'graph%'")
      .toArray()
      .map(({ name }) => [name, sql.exec(`SELECT * FROM ${name}`).toArray().map((row) => Object.values(row).join("\u0001")).join("\n")]),
  );

describe("erasing through lookups", () => {
  it("erases each of a population's people exactly as the walks over whole collections did, in memory and in tables", async () => {
    const { events } = generatePopulation({ people: 120, seed: 7 });
    const reference = new IdentityGraph();
    const graph = new IdentityGraph();
    for (const event of events) for (const g of [reference, graph]) applyPopulationEvent(g, event, settings);
    // Unmerged parts start from the merged profile's features: the case erasure scrubs other profiles' features for.
    const unmerged = [...graph.merges.values()].filter((_, i) => i % 6 === 0).map((m) => m.id);
    for (const mergeId of unmerged) for (const g of [reference, graph]) unmerge(g, mergeId, T0);
    // Every fifth person, and the profiles that kept their ids through an unmerge, whose parts started from their features.
    const kept = unmerged.map((mergeId) => graph.resolve(graph.merges.get(mergeId)!.survivor).id);
    const people = [...new Set([...kept, ...graph.clusters.liveIds(null, Number.POSITIVE_INFINITY).filter((_, i) => i % 5 === 0)])];

    const found: Footprint[] = [];
    const met = { othersFeatures: 0, entriesByUserIdOnly: 0 };
    for (const id of people) {
      const before = footprint(graph, [id]);
      expect(plain(before), id).toEqual(plain(footprintByWalks(reference, [id])));
      const own = new Set(before.ownKeys);
      met.othersFeatures += graph.features.listing(own).filter((c) => !before.clusterIds.includes(c)).length;
      const routed = new Set(graph.index.routingTo(before.clusterIds));
      const userIds = before.ownKeys.filter((k) => k.startsWith("user_id:")).map((k) => k.slice("user_id:".length));
      met.entriesByUserIdOnly += graph.index.remembering(userIds).filter((k) => !own.has(k) && !routed.has(k)).length;
      eraseByWalks(reference, [id]);
      found.push(eraseClusters(graph, [id]));
    }
    expect(comparable(graph)).toEqual(comparable(reference));
    // Not a vacuous agreement: the erasures met every case the lookups replace a walk for.
    expect(found.filter((f) => f.clusterIds.length > 1).length).toBeGreaterThan(0);
    expect(found.filter((f) => f.heldElsewhere.size > 0).length).toBeGreaterThan(0);
    expect(found.filter((f) => f.reviews.length > 0).length).toBeGreaterThan(0);
    expect(met.othersFeatures).toBeGreaterThan(0);
    expect(met.entriesByUserIdOnly).toBeGreaterThan(0);

    const stored = await runInDurableObject(env.IDENTITY.getByName("erase-population"), (_i: IdentityGraphShard, state) => {
      const sql = state.storage.sql;
      const collections = new SqlGraphCollections(sql);
      const links = new SqlEventLinks(sql);
      const inTables = new IdentityGraph(0, links, collections);
      const step = (run: () => void) => {
        state.storage.transactionSync(() => {
          run();
          collections.writeBack();
          links.flush();
        });
        collections.forget({ rolledBack: false });
      };
      step(() => {
        for (const event of events) applyPopulationEvent(inTables, event, settings);
      });
      step(() => {
        for (const mergeId of unmerged) unmerge(inTables, mergeId, T0);
      });
      for (const id of people) step(() => eraseClusters(inTables, [id]));
      return comparable(new IdentityGraph(inTables.counterValue(), new SqlEventLinks(sql), new SqlGraphCollections(sql)));
    });
    expect(stored).toEqual(comparable(graph));
  });

  it("forgets an erased user id in an entry routing to someone else, even once no conflict names it any more", async () => {
    const history = (graph: IdentityGraph) => {
      const apply = (messageId: string, keys: string[], n: number) =>
        applyEventWithFeatures(graph, settings, { messageId, at: T0 + n, identifiers: keys.map((k) => ({ type: k.slice(0, k.indexOf(":")), value: k.slice(k.indexOf(":") + 1) })) });
      apply("sam-1", ["user_id:sam", "anonymous_id:tablet"], 1);
      // Pat logs in on Sam's tablet, then Sam again: the tablet is handed over twice and remembers both user ids.
      apply("pat-1", ["user_id:pat", "anonymous_id:tablet"], 2);
      apply("sam-2", ["user_id:sam", "anonymous_id:tablet"], 3);
      // The conflict log keeps only the latest decisions: once these are gone, nothing of Pat's names the tablet.
      graph.conflicts.retain(() => false);
      return graph;
    };
    const check = (graph: IdentityGraph) => {
      expect(graph.index.get("anonymous_id:tablet")!.userIds).toEqual(["sam", "pat"]);
      const erased = eraseClusters(graph, [graph.clusterOf("user_id:pat")!.id]);
      expect(erased.identifierKeys).toEqual(["user_id:pat"]);
      return { entry: graph.index.get("anonymous_id:tablet"), remembering: graph.index.remembering(["pat"]) };
    };

    const reference = history(new IdentityGraph());
    eraseByWalks(reference, [reference.clusterOf("user_id:pat")!.id]);
    const inMemory = check(history(new IdentityGraph()));
    expect(inMemory.entry).toEqual(reference.index.get("anonymous_id:tablet"));
    expect(inMemory).toEqual({ entry: { clusterId: reference.clusterOf("user_id:sam")!.id, userIds: ["sam"], quarantined: false }, remembering: [] });

    const inTables = await runInDurableObject(env.IDENTITY.getByName("erase-forgotten-user-id"), (_i: IdentityGraphShard, state) => {
      const sql = state.storage.sql;
      const collections = new SqlGraphCollections(sql);
      const result = check(history(new IdentityGraph(0, new SqlEventLinks(sql), collections)));
      collections.writeBack();
      return { ...result, stored: graphTables(sql) };
    });
    expect({ entry: inTables.entry, remembering: inTables.remembering }).toEqual(inMemory);
    expect(inTables.stored.graph_index_user_ids).not.toMatch(/\bpat\b/);
    expect(inTables.stored.graph_index_user_ids).toContain("sam");
  });
});

/** A person of `tag`: anonymous browsing with features, a sign-up merged into it, and someone else's user id sent with their email, queued for review. */
function person(graph: IdentityGraph, tag: string, n: number, phone: string) {
  // No names: namesakes' profiles would be suggested as one person, and the people here are strangers.
  const features: Partial<ProfileFeatures> = { emails: [`${tag}@acme-shop.com`], phones: [], ips: [], userAgents: [] };
  const apply = (suffix: string, keys: string[], withFeatures = false) =>
    applyEventWithFeatures(graph, DEFAULT_IDENTITY_SETTINGS, {
      messageId: `${tag}-${suffix}`,
      at: T0 + n * 100 + Number(suffix),
      identifiers: keys.map((k) => ({ type: k.slice(0, k.indexOf(":")), value: k.slice(k.indexOf(":") + 1) })),
      ...(withFeatures ? { features } : {}),
    });
  apply("1", [`anonymous_id:${tag}-anon`, `email:${tag}@acme-shop.com`], true);
  apply("2", [`user_id:${tag}-user`, `phone:${phone}`]);
  apply("3", [`user_id:${tag}-user`, `email:${tag}@acme-shop.com`]);
  apply("4", [`user_id:twin-of-${tag}`, `email:${tag}@acme-shop.com`]);
}

/** Erases Pat from a graph stored with `others` other people; returns the rows the erasure read and the graph tables after it. */
function erasureAmong(name: string, others: number) {
  return runInDurableObject(env.IDENTITY.getByName(name), (_i: IdentityGraphShard, state) => {
    const sql = state.storage.sql;
    const built = new SqlGraphCollections(sql);
    const links = new SqlEventLinks(sql);
    const graph = new IdentityGraph(0, links, built);
    state.storage.transactionSync(() => {
      for (let n = 0; n < others; n++) person(graph, `other${n}`, n, `+1415555${1000 + n}`);
      person(graph, "pat", others, "+14155559999");
      built.writeBack();
      links.flush();
    });
    // As a woken object: nothing cached. The event tables are their own store, and read apart.
    const counted = countingSql(sql);
    const collections = new SqlGraphCollections(counted);
    const woken = new IdentityGraph(graph.counterValue(), new SqlEventLinks(sql), collections);
    counted.reset();
    let erased: Footprint | undefined;
    state.storage.transactionSync(() => {
      erased = eraseClusters(woken, [woken.clusterOf("user_id:pat-user")!.id]);
      collections.writeBack();
    });
    // Bounded or small by design, and read whole: the latest 5,000 conflicts, never-merge and suggested pairs, tombstones.
    const rowsRead = counted.rowsRead(["graph_conflicts", "graph_never_merge", "graph_suggested", "graph_tombstones"]);
    const { identifierKeys, messageIds, clusterIds, merges, reviews } = erased!;
    return { rowsRead, erased: { identifierKeys, messageIds, clusters: clusterIds.length, merges: merges.length, reviews: reviews.length }, clusterIds, stored: graphTables(sql) };
  });
}

describe("an erasure in a graph stored in tables", () => {
  it("reads the same rows whether 10 or 150 other people are stored: only the person's", async () => {
    const few = await erasureAmong("erase-reads-few", 10);
    const many = await erasureAmong("erase-reads-many", 150);
    expect(few.erased).toEqual(many.erased);
    expect(few.erased).toMatchObject({ clusters: 2, merges: 1, reviews: 1 });
    expect(many.rowsRead).toBe(few.rowsRead);
    // Well under the other people's 450 clusters or 750 identifiers: no table was walked.
    expect(many.rowsRead).toBeLessThan(300);
  });

  it("leaves none of the person's values in any graph table, its lookup columns and side tables included", async () => {
    const { stored, clusterIds } = await erasureAmong("erase-leaves-nothing", 5);
    const sides = ["graph_cluster_identifiers", "graph_index_user_ids", "graph_feature_identifiers", "graph_review_clusters", "graph_merge_clusters"];
    expect(Object.keys(stored)).toEqual(expect.arrayContaining(sides));
    for (const value of ["pat-anon", "pat-user", "pat@acme-shop.com", "+14155559999", "pat-1", "pat-3", ...clusterIds]) {
      expect(Object.keys(stored).filter((table) => stored[table]!.includes(value)), value).toEqual([]);
    }
    // The side tables are not merely empty: the other people are still in them.
    for (const table of sides.slice(0, 3)) expect(stored[table], table).toContain("other4");
    for (const table of sides.slice(3)) expect(stored[table], table).not.toBe("");
  });
});
