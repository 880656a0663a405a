/**
 * How much isolate memory the identity graph takes, and what a snapshot costs,
 * with its per-event state (event assignments and links) kept in memory (the
 * pure graph's default, and what the object did before) and kept in SQLite
 * (what the object does: durable-objects/sql-event-links.ts, here over
 * node:sqlite with a database file, as the object's storage is a file rather
 * than heap).
 *
 *   node bench/identity/capacity.mjs [people,people,...] [seed]
 *
 * Each population is the identity benchmark's (bench/identity/population.mjs),
 * resolved by the real modules as the object runs them (resolver.mjs). Heap is
 * measured after a full collection, with the population's events already in
 * memory, so the difference is the graph alone.
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
export { MemoryEventLinks } from "./workers/identity/event-links.ts";
export { toSnapshot, fromSnapshot, snapshotParts, fromSnapshotParts } from "./workers/identity/snapshot.ts";
`;

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

async function measure(resolver, stores, events, kind) {
  const dir = mkdtempSync(path.join(tmpdir(), "edge-cdp-capacity-"));
  const db = kind === "sqlite" ? new DatabaseSync(path.join(dir, "graph.sqlite")) : null;
  try {
    if (db) db.exec("PRAGMA journal_mode = WAL");
    const before = gc();
    const links = db ? new stores.SqlEventLinks(sqlOver(db)) : new stores.MemoryEventLinks();
    const graph = new resolver.IdentityGraph(0, links);
    if (db) db.exec("BEGIN");
    const run = runResolver(resolver, events, { graph });
    // The object sends buffered writes as each operation commits; here they go once, before measuring.
    links.flush?.();
    if (db) db.exec("COMMIT");
    const ms = run.ms;
    run.predicted = null;
    const heap = gc() - before;
    const storedBytes = db ? Number(db.prepare("SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()").get().bytes) : 0;
    // The object's snapshot: per-event state in memory went into one JSON; in SQLite, the graph is written in parts.
    const t0 = performance.now();
    const parts = kind === "memory" ? [JSON.stringify(stores.toSnapshot(graph, { events: true }))] : [...stores.snapshotParts(graph)];
    const snapshotMs = performance.now() - t0;
    const json = { length: parts.reduce((sum, part) => sum + part.length, 0) };
    const largestPart = Math.max(...parts.map((part) => part.length));
    const t1 = performance.now();
    if (kind === "memory") stores.fromSnapshot(JSON.parse(parts[0]), new stores.MemoryEventLinks());
    else stores.fromSnapshotParts(parts, new stores.SqlEventLinks(sqlOver(new DatabaseSync(":memory:"))));
    const loadMs = performance.now() - t1;
    const identifiers = graph.index.size;
    return { kind, heapMB: mb(heap), snapshotMB: mb(json.length), snapshotMs, loadMs, identifiers, reviews: graph.reviews.size, largestPartMB: mb(largestPart), storedMB: mb(storedBytes), eventsPerSecond: events.length / (ms / 1000) };
  } finally {
    db?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchCapacity({ sizes = [10_000, 30_000], seed = 42 } = {}) {
  const resolver = await loadResolver();
  const stores = await importTypeScript(STORE_ENTRY, "capacity");
  const rows = [];
  for (const people of sizes) {
    const { events } = generatePopulation({ people, seed });
    for (const kind of ["memory", "sqlite"]) rows.push({ people, events: events.length, ...(await measure(resolver, stores, events, kind)) });
  }
  return rows;
}

export function printCapacity(rows) {
  console.log("\nidentity graph memory (heap after GC) and snapshot, per-event state in memory vs in SQLite");
  console.log("people  events   store    identifiers  reviews  heap MB  B/event  B/identifier  snapshot MB (largest string)  write ms  load ms  events/s  SQLite MB (B/event)");
  for (const r of rows) {
    console.log(
      [
        String(r.people).padEnd(7),
        String(r.events).padEnd(8),
        r.kind.padEnd(8),
        String(r.identifiers).padStart(11),
        String(r.reviews).padStart(8),
        r.heapMB.toFixed(1).padStart(8),
        String(Math.round((r.heapMB * 1_048_576) / r.events)).padStart(8),
        String(Math.round((r.heapMB * 1_048_576) / r.identifiers)).padStart(13),
        `${r.snapshotMB.toFixed(1).padStart(12)} (${r.largestPartMB.toFixed(2)})`.padEnd(28),
        r.snapshotMs.toFixed(0).padStart(9),
        r.loadMs.toFixed(0).padStart(8),
        Math.round(r.eventsPerSecond).toLocaleString("en-US").padStart(9),
        r.storedMB ? `${r.storedMB.toFixed(1).padStart(9)} (${Math.round((r.storedMB * 1_048_576) / r.events)})` : "",
      ].join(" "),
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv[2] ? process.argv[2].split(",").map(Number) : undefined;
  const seed = process.argv[3] ? Number(process.argv[3]) : undefined;
  printCapacity(await benchCapacity({ sizes, seed }));
}
