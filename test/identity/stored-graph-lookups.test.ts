import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { generatePopulation } from "../../bench/identity/population.mjs";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import { SqlEventLinks } from "../../durable-objects/sql-event-links";
import { SqlGraphCollections, SqlIndexTable, SqlReviewTable } from "../../durable-objects/sql-graph-collections";
import { eraseClusters } from "../../workers/identity/erase";
import { IdentityGraph, type ReviewItem } from "../../workers/identity/graph";
import { MemoryReviewTable, type ReviewTable } from "../../workers/identity/graph-collections";
import { unmerge } from "../../workers/identity/unmerge";
import { countingSql } from "./counting-sql";
import { comparable, storedGraph } from "./graph-comparison";
import { applyPopulationEvent } from "./population";

const T0 = Date.UTC(2026, 10, 1);

/** The population's events, then a few of its merges undone: parts that start from the merged profile's features. */
function history(graph: IdentityGraph, events: ReturnType<typeof generatePopulation>["events"]) {
  for (const event of events) applyPopulationEvent(graph, event);
  for (const merge of [...graph.merges.values()].filter((_, i) => i % 5 === 0)) unmerge(graph, merge.id, T0);
  return graph;
}
/** Every ninth live profile: the people one erasure takes. */
const everyNinth = (graph: IdentityGraph) => graph.clusters.liveIds(null, Number.POSITIVE_INFINITY).filter((_, i) => i % 9 === 1);

/** The tables, columns and indexes of the graph, as sqlite_master and pragma_table_info list them. */
function shape(sql: SqlStorage) {
  const names = (type: string) => sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = ? AND name LIKE 'graph%' ORDER BY name", type).toArray().map((r) => r.name);
  const columns = (table: string) => sql.exec<{ name: string }>("SELECT name FROM pragma_table_info(?)", table).toArray().map((r) => r.name);
  return { tables: names("table"), indexes: names("index"), columns: Object.fromEntries(["graph_clusters", "graph_index", "graph_reviews"].map((t) => [t, columns(t)])) };
}

/** Statements that change storage (CREATE … IF NOT EXISTS of what exists changes nothing). */
const writes = (query: string) => /^(ALTER|UPDATE|INSERT|DELETE)/.test(query);

/** Takes the graph's tables back to how they were stored before erasures had lookups. */
function storeAsBefore(sql: SqlStorage) {
  for (const table of ["graph_cluster_identifiers", "graph_index_user_ids", "graph_feature_identifiers", "graph_review_clusters"]) sql.exec(`DROP TABLE ${table}`);
  for (const index of ["graph_clusters_forwarded_to", "graph_index_cluster_id", "graph_reviews_status", "graph_reviews_message_id"]) sql.exec(`DROP INDEX ${index}`);
  sql.exec("ALTER TABLE graph_clusters DROP COLUMN forwarded_to");
  sql.exec("ALTER TABLE graph_index DROP COLUMN cluster_id");
  sql.exec("ALTER TABLE graph_reviews DROP COLUMN message_id");
}

describe("a graph stored before erasures had lookups", () => {
  it("gets its columns and side tables filled once, answers every lookup as a graph stored since, and erases alike", async () => {
    const { events } = generatePopulation({ people: 60, seed: 3 });
    const inMemory = history(new IdentityGraph(), events);
    const erased = everyNinth(inMemory);

    const stored = await runInDurableObject(env.IDENTITY.getByName("stored-before-lookups"), (_i: IdentityGraphShard, state) => {
      const sql = state.storage.sql;
      const collections = new SqlGraphCollections(sql);
      const links = new SqlEventLinks(sql);
      const graph = new IdentityGraph(0, links, collections);
      state.storage.transactionSync(() => {
        history(graph, events);
        collections.writeBack();
        links.flush();
      });
      const current = shape(sql);
      storeAsBefore(sql);
      const before = shape(sql);
      // Waking over the old tables fills what they lack; waking again finds nothing to fill.
      const counted = countingSql(sql);
      const woken = new IdentityGraph(graph.counterValue(), new SqlEventLinks(sql), new SqlGraphCollections(counted));
      const firstWrites = counted.queries().filter(writes);
      const filled = shape(sql);
      const lookups = comparable(woken);
      counted.reset();
      const wokenCollections = new SqlGraphCollections(counted);
      const again = new IdentityGraph(graph.counterValue(), new SqlEventLinks(sql), wokenCollections);
      const secondWrites = counted.queries().filter(writes);
      state.storage.transactionSync(() => {
        eraseClusters(again, erased);
        wokenCollections.writeBack();
      });
      return { current, before, filled, firstWrites, secondWrites, lookups, afterErasure: comparable(storedGraph(sql, graph.counterValue())) };
    });

    expect(stored.before.tables).not.toContain("graph_cluster_identifiers");
    expect(stored.before.columns.graph_index).toEqual(["key", "value"]);
    expect(stored.filled).toEqual(stored.current);
    expect(stored.firstWrites.filter((q) => q.startsWith("ALTER TABLE")).length).toBe(3);
    expect(stored.firstWrites.filter((q) => q.startsWith("UPDATE")).length).toBeGreaterThan(100);
    expect(stored.secondWrites).toEqual([]);
    expect(stored.lookups).toEqual(comparable(inMemory));
    expect(stored.lookups.lookups.forwardingTo.some(([, ids]) => ids.length > 0)).toBe(true);
    eraseClusters(inMemory, erased);
    expect(stored.afterErasure).toEqual(comparable(inMemory));
  });
});

const review = (n: number, status: ReviewItem["status"]): ReviewItem => ({
  id: `rev_${String(n).padStart(6, "0")}`,
  kind: "user-id-conflict",
  clusters: [`prof_a${n}`, `prof_b${n}`],
  identifiers: [`email:r${n}@acme-shop.com`],
  messageId: `m-${n}`,
  detail: "two user ids",
  status,
  at: T0 + n,
});
const statusOf = (n: number): ReviewItem["status"] => (["open", "open", "approved", "rejected"] as const)[n % 4]!;

/** Every page of a status, `limit` at a time, through the cursor; `between` runs after each page. */
function pages(table: ReviewTable, status: ReviewItem["status"] | undefined, limit: number, between: (page: ReviewItem[]) => void = () => {}) {
  const read: string[][] = [];
  for (let after: number | null = 0; after !== null; ) {
    const page = table.page(status, after, limit);
    read.push(page.reviews.map((r) => r.id));
    between(page.reviews);
    after = page.next;
  }
  return read;
}

describe("the review queue in tables", () => {
  it("reads one page of it, however long the queue and wherever the page starts", async () => {
    const reads = await runInDurableObject(env.IDENTITY.getByName("review-queue-reads"), (_i: IdentityGraphShard, state) => {
      const counted = countingSql(state.storage.sql);
      const table = new SqlReviewTable(counted);
      for (let n = 1; n <= 600; n++) table.set(review(n, statusOf(n)).id, review(n, statusOf(n)));
      table.writeBack();
      table.forget({ rolledBack: false });
      return [0, 300, 590].flatMap((after) =>
        [undefined, "open" as const].map((status) => {
          counted.reset();
          const page = table.page(status, after, 5);
          return { rowsRead: counted.rowsRead(), shown: page.reviews.length };
        }),
      );
    });
    for (const { rowsRead, shown } of reads) {
      expect(shown).toBeGreaterThan(0);
      // The page and the one row past it that says another follows.
      expect(rowsRead).toBe(5 + 1);
    }
  });

  it("pages through each status in queue order, skipping and repeating nothing while reviews already shown are erased", async () => {
    const fill = (table: ReviewTable) => {
      for (let n = 1; n <= 40; n++) table.set(review(n, statusOf(n)).id, review(n, statusOf(n)));
    };
    const memory = new MemoryReviewTable();
    fill(memory);
    const expected = (status?: ReviewItem["status"]) => [...memory.values()].filter((r) => !status || r.status === status).map((r) => r.id);
    const inMemory = [undefined, "open", "approved", "rejected"].map((status) => pages(memory, status as ReviewItem["status"] | undefined, 3));
    // An erasure between two pages takes a review the last page showed, and the last review of all.
    const erasing = (table: ReviewTable) => (shown: ReviewItem[]) => {
      if (shown[0]) table.delete(shown[0].id);
      table.delete("rev_000040");
    };

    const inTables = await runInDurableObject(env.IDENTITY.getByName("review-queue-pages"), (_i: IdentityGraphShard, state) => {
      const table = new SqlReviewTable(state.storage.sql);
      fill(table);
      const all = [undefined, "open", "approved", "rejected"].map((status) => pages(table, status as ReviewItem["status"] | undefined, 3));
      return { all, whileErasing: pages(table, "open", 3, erasing(table)) };
    });

    expect(inTables.all).toEqual(inMemory);
    expect(inMemory.map((read) => read.flat())).toEqual([expected(), expected("open"), expected("approved"), expected("rejected")]);
    expect(inMemory[1]!.map((page) => page.length)).toEqual([3, 3, 3, 3, 3, 3, 2]);
    const openBefore = expected("open").filter((id) => id !== "rev_000040");
    expect(inTables.whileErasing.flat()).toEqual(openBefore);
    expect(pages(memory, "open", 3, erasing(memory)).flat()).toEqual(openBefore);
  });
});

describe("the identifier index in tables", () => {
  it("reads a batch's identifiers ahead in a statement per thousand keys, after which their lookups read nothing and answer as before", async () => {
    const result = await runInDurableObject(env.IDENTITY.getByName("index-prefetch"), (_i: IdentityGraphShard, state) => {
      const counted = countingSql(state.storage.sql);
      const stored = new SqlIndexTable(counted);
      for (let n = 0; n < 1_500; n++) stored.set(`anonymous_id:d${n}`, { clusterId: `prof_${n}`, userIds: n % 2 ? [`u${n}`] : [], quarantined: n % 7 === 0 });
      stored.writeBack();
      stored.forget({ rolledBack: false });
      const table = new SqlIndexTable(counted);
      // 2,500 keys, of which the 750 below d1500 are stored; one is cached already.
      const keys = Array.from({ length: 2_500 }, (_, n) => `anonymous_id:d${n * 2 - (n % 2)}`);
      table.get(keys[0]!);
      counted.reset();
      table.prefetch([...keys, ...keys]);
      const prefetchStatements = counted.queries().length;
      counted.reset();
      const found = keys.map((key) => table.get(key));
      const fresh = new SqlIndexTable(state.storage.sql);
      return { prefetchStatements, after: counted.queries().length, same: found.every((entry, i) => JSON.stringify(entry) === JSON.stringify(fresh.get(keys[i]!))), stored: found.filter(Boolean).length };
    });
    expect(result.prefetchStatements).toBe(3);
    expect(result.after).toBe(0);
    expect(result.same).toBe(true);
    expect(result.stored).toBe(750);
  });
});
