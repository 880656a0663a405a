/**
 * The real segment code, bundled with esbuild for Node: the domain modules (workers/segments) and
 * the Durable Object's `AudienceEngine` (durable-objects/audience-engine.ts) itself, so the
 * incremental path measured is the one the identity object runs on every event, SQL and JSON included.
 *
 * The engine takes the object's `SqlStorage`; `sqlStorage()` gives it one over Node's built-in
 * SQLite (`node:sqlite`, Node 22), in memory: the same SQL statements and JSON text as in the
 * object, without workerd's storage layer (disk, output gates). Each `exec` prepares its statement
 * once and caches it, as workerd does.
 *
 *   const engine = await loadSegments();
 *   const audiences = new engine.AudienceEngine(engine.sqlStorage(), traitsOf, emit);
 */
import { importTypeScript } from "../lib/bundle.mjs";

const ENTRY = `
export { AudienceEngine } from "./durable-objects/audience-engine.ts";
export { Catalog, audienceSchema } from "./workers/segments/catalog.ts";
export { applyEvent, emptyState, pruneState } from "./workers/segments/aggregates.ts";
export { evaluate, evaluateAggregates, computeTrait, computeTraitFromState } from "./workers/segments/evaluate.ts";
export { computedTraitSpec, specKey, requiredStatistics, aggregateSpecs } from "./workers/segments/specs.ts";
export { canonical } from "./workers/segments/time.ts";
export { personEventOf } from "./durable-objects/profile-store.ts";
`;

let loaded;

/** Bundles the modules above into one ES module in a temp directory, imports it, removes the directory. Once per process. */
export function loadSegments() {
  loaded ??= (async () => ({ ...(await importTypeScript(ENTRY, "segments")), sqlStorage: await sqlStorageFactory() }))();
  return loaded;
}

/** `node:sqlite` without its one-time ExperimentalWarning on stderr. */
async function sqlStorageFactory() {
  const emitWarning = process.emitWarning;
  process.emitWarning = (warning, ...rest) => {
    if (String(warning?.message ?? warning).includes("SQLite")) return;
    return emitWarning.call(process, warning, ...rest);
  };
  let DatabaseSync;
  try {
    ({ DatabaseSync } = await import("node:sqlite"));
  } catch (error) {
    throw new Error(`the segments benchmark needs node:sqlite (Node >= 22.5; npm scripts use the node devDependency): ${error.message}`);
  } finally {
    process.emitWarning = emitWarning;
  }
  /** The subset of workerd's `SqlStorage` the engine uses: `exec(query, ...bindings)` → a cursor with `toArray()` and `one()`. */
  return () => {
    const db = new DatabaseSync(":memory:");
    const statements = new Map();
    return {
      db,
      exec(query, ...bindings) {
        let statement = statements.get(query);
        if (!statement) statements.set(query, (statement = db.prepare(query)));
        const rows = statement.all(...bindings);
        return {
          toArray: () => rows,
          one: () => {
            if (rows.length !== 1) throw new Error(`expected exactly one row, got ${rows.length}: ${query}`);
            return rows[0];
          },
          [Symbol.iterator]: () => rows[Symbol.iterator](),
        };
      },
      close: () => db.close(),
    };
  };
}
