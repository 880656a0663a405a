/**
 * How much isolate memory the identity graph holds, and what waking costs,
 * with the graph kept in memory (snapshots in parts, per-event state in
 * SQLite: what the object did before) and kept in SQLite tables (what the
 * object does: durable-objects/graph-store.ts), both here over node:sqlite
 * with a database file, as the object's storage is a file rather than heap.
 *
 *   node bench/identity/capacity.mjs [people,people,...] [seed] [cache scale]
 *
 * Each population is the identity benchmark's (bench/identity/population.mjs),
 * resolved by the real modules as the object runs them (resolver.mjs), in
 * operations of 100 events (one queue batch each), each ending as the object's
 * does. Heap is measured after a full collection, with the population's events
 * already in memory, so the difference is what the graph keeps between operations.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import v8 from "node:v8";
import vm from "node:vm";
import { importTypeScript } from "../lib/bundle.mjs";
import { generatePopulation } from "./population.mjs";
import { loadResolver, runResolver } from "./resolver.mjs";

const STORE_ENTRY = `
export { SqlEventLinks } from "./durable-objects/sql-event-links.ts";
export { CACHED_ROWS, SqlGraphCollections } from "./durable-objects/sql-graph-collections.ts";
export { snapshotParts, fromSnapshotParts } from "./workers/identity/snapshot.ts";
`;
const OPERATION_EVENTS = 100;

/** `SqlStorage.exec` over node:sqlite: the subset SqlEventLinks uses. */
function sqlOver(db) {
  const statements = new Map();
  return {
    exec(query, ...bindings) {
      let statement = statements.get(query);
      if (!statement) statements.set(query, (statement = db.prepare(query)));
      const isRead = /^\s*(SELECT|WITH)/i.test(query);
      const rows = isRead ? statement.all(...bindings) : (statement.run(...bindings), []);
      return { toArray: () => rows, one: () => rows[0] };
    },
  };
}

/** A full collection, without asking the caller for --expose-gc. */
let collect;
const gc = () => {
  if (!collect) {
    v8.setFlagsFromString("--expose-gc");
    collect = vm.runInNewContext("gc");
  }
  for (let i = 0; i < 3; i++) collect();
  return process.memoryUsage().heapUsed;
};
const mb = (bytes) => bytes / 1_048_576;

async function measure(resolver, stores, events, kind, cacheScale) {
  const cached = Object.fromEntries(Object.entries(stores.CACHED_ROWS).map(([table, rows]) => [table, Math.round(rows * cacheScale)]));
  const dir = mkdtempSync(path.join(tmpdir(), "edge-cdp-capacity-"));
  const db = new DatabaseSync(path.join(dir, "graph.sqlite"));
  try {
    // Commits are not flushed to disk one by one: an object's storage confirms writes in the background too (output gates).
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    const sql = sqlOver(db);
    const before = gc();
    const links = new stores.SqlEventLinks(sql);
    const collections = kind === "tables" ? new stores.SqlGraphCollections(sql, cached) : undefined;
    const graph = new resolver.IdentityGraph(0, links, collections);
    db.exec("BEGIN");
    const commit = () => {
      collections?.writeBack();
      links.flush();
      db.exec("COMMIT");
      collections?.forget({ rolledBack: false });
      db.exec("BEGIN");
    };
    const run = runResolver(resolver, events, { graph, batch: { size: OPERATION_EVENTS, commit } });
    db.exec("COMMIT");
    const identifiers = graph.index.size;
    const reviews = graph.reviews.size;
    run.predicted = null;
    collections?.forget({ rolledBack: false });
    const heap = gc() - before;
    const storedBytes = Number(db.prepare("SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()").get().bytes);
    // Waking: the graph in memory loads its snapshot (written here, in parts); the stored graph reads its open reviews and one identifier.
    let snapshotMs = null;
    const t1 = performance.now();
    if (kind === "memory") {
      const t0 = performance.now();
      const parts = [...stores.snapshotParts(graph)];
      snapshotMs = performance.now() - t0;
      const t = performance.now();
      stores.fromSnapshotParts(parts, new stores.SqlEventLinks(sql));
      return result(performance.now() - t);
    }
    const woken = new resolver.IdentityGraph(graph.counterValue(), new stores.SqlEventLinks(sql), new stores.SqlGraphCollections(sql));
    woken.clusterOf(events[0].userId ? `user_id:${events[0].userId}` : `anonymous_id:${events[0].anonymousId}`);
    return result(performance.now() - t1);

    function result(wakeMs) {
      return { kind, heapMB: mb(heap), wakeMs, snapshotMs, identifiers, reviews, storedMB: mb(storedBytes), eventsPerSecond: events.length / (run.ms / 1000) };
    }
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `cacheScale` multiplies the object's row cache bounds (CACHED_ROWS), to see what a larger or smaller cache buys. */
export async function benchCapacity({ sizes = [10_000, 30_000], seed = 42, cacheScale = 1 } = {}) {
  const resolver = await loadResolver();
  const stores = await importTypeScript(STORE_ENTRY, "capacity");
  const rows = [];
  for (const people of sizes) {
    const { events } = generatePopulation({ people, seed });
    for (const kind of ["memory", "tables"]) rows.push({ people, events: events.length, cacheScale, ...(await measure(resolver, stores, events, kind, cacheScale)) });
  }
  return rows;
}

export function printCapacity(rows) {
  console.log(`\nidentity graph memory kept between operations (heap after GC) and waking, graph in memory vs in SQLite tables (operations of ${OPERATION_EVENTS} events, row cache x${rows[0]?.cacheScale ?? 1})`);
  console.log("people  events   graph    identifiers  reviews  heap MB  B/identifier  snapshot ms  wake ms  events/s  SQLite MB (B/event)");
  for (const r of rows) {
    console.log(
      [
        String(r.people).padEnd(7),
        String(r.events).padEnd(8),
        r.kind.padEnd(8),
        String(r.identifiers).padStart(11),
        String(r.reviews).padStart(8),
        r.heapMB.toFixed(1).padStart(8),
        String(Math.round((r.heapMB * 1_048_576) / r.identifiers)).padStart(13),
        (r.snapshotMs === null ? "-" : r.snapshotMs.toFixed(0)).padStart(12),
        r.wakeMs.toFixed(0).padStart(8),
        Math.round(r.eventsPerSecond).toLocaleString("en-US").padStart(9),
        `${r.storedMB.toFixed(1).padStart(10)} (${Math.round((r.storedMB * 1_048_576) / r.events)})`,
      ].join(" "),
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv[2] ? process.argv[2].split(",").map(Number) : undefined;
  const seed = process.argv[3] ? Number(process.argv[3]) : undefined;
  const cacheScale = process.argv[4] ? Number(process.argv[4]) : undefined;
  printCapacity(await benchCapacity({ sizes, seed, cacheScale }));
}
