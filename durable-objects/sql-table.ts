import { ZodError, type ZodType } from "zod";
import type { GraphTable } from "../workers/identity/graph-collections";
import type { SqlExec } from "./sql-event-links";

/** Whether the object's storage has this table yet. */
export const tableExists = (sql: SqlExec, name: string) => sql.exec<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?", name).one().n > 0;

export interface Codec<V> {
  encode(value: V): string;
  decode(json: string): V;
}

export const jsonCodec = <V>(schema: ZodType): Codec<V> => ({
  encode: (value) => JSON.stringify(value),
  decode: (json) => schema.parse(JSON.parse(json)) as V,
});

/** A row that does not validate names its table, its key and each invalid path, rather than surfacing a bare ZodError. */
function decodeRow<V>(codec: Codec<V>, table: string, key: string, json: string): V {
  try {
    return codec.decode(json);
  } catch (error) {
    const detail = error instanceof ZodError ? error.issues.map((issue) => `${issue.path.join(".") || "(row)"}: ${issue.message}`).join("; ") : String(error);
    throw new Error(`stored ${table} row ${JSON.stringify(key)} is invalid: ${detail}`);
  }
}

/**
 * A keyed table with a cache of decoded rows. A value read once is the same
 * object until the operation ends, so the rules may change it in place;
 * `writeBack` writes each value the operation touched whose JSON changed.
 * Rows read stay cached across operations up to `cachedRows` (least recently
 * used go first), since a person's events tend to come together; a rollback
 * drops them all. Rows keep insertion order (rowid), as a Map does. Walks read
 * rows as they stand after a write-back and yield the cached object where
 * there is one, a copy otherwise.
 */
export class SqlTable<V> implements GraphTable<V> {
  /** null: known to be absent (or deleted by this operation). */
  private readonly cache = new Map<string, { value: V; json: string } | null>();
  /** Keys this operation read or wrote: the only ones `writeBack` looks at, and never evicted before it. */
  private readonly touched = new Set<string>();
  private readonly removed = new Set<string>();
  private readonly upsert: string;

  constructor(
    protected readonly sql: SqlExec,
    protected readonly table: string,
    private readonly codec: Codec<V>,
    /** Columns kept beside the JSON for queries, derived from the value. */
    private readonly columns: Record<string, (value: V) => SqlStorageValue> = {},
    private readonly cachedRows = 4_000,
  ) {
    const names = Object.keys(columns);
    sql.exec(`CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY, value TEXT NOT NULL${names.map((n) => `, ${n}`).join("")})`);
    this.upsert = `INSERT INTO ${table} (key, value${names.map((n) => `, ${n}`).join("")}) VALUES (?, ?${names.map(() => ", ?").join("")}) ON CONFLICT (key) DO UPDATE SET value = excluded.value${names.map((n) => `, ${n} = excluded.${n}`).join("")}`;
  }

  get(key: string): V | undefined {
    let cached = this.cache.get(key);
    if (cached === undefined) {
      const row = this.sql.exec<{ value: string }>(`SELECT value FROM ${this.table} WHERE key = ?`, key).toArray()[0];
      cached = row ? { value: decodeRow(this.codec, this.table, key, row.value), json: row.value } : null;
    } else this.cache.delete(key);
    // Re-inserted so the Map's order is least recently used first.
    this.cache.set(key, cached);
    this.touched.add(key);
    return cached?.value;
  }
  has(key: string) {
    return this.get(key) !== undefined;
  }
  set(key: string, value: V) {
    this.cache.delete(key);
    this.cache.set(key, { value, json: "" });
    this.touched.add(key);
    this.removed.delete(key);
    return this;
  }
  delete(key: string) {
    const existed = this.get(key) !== undefined;
    this.cache.set(key, null);
    if (existed) this.removed.add(key);
    return existed;
  }
  get size() {
    this.writeBack();
    return this.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM ${this.table}`).one().n;
  }
  *[Symbol.iterator](): IterableIterator<[string, V]> {
    yield* this.rows("");
  }
  *values(): IterableIterator<V> {
    for (const [, value] of this) yield value;
  }

  /** Rows matching `where` (SQL over the table's columns), in insertion order. */
  protected *rows(where: string, ...bindings: unknown[]): IterableIterator<[string, V]> {
    this.writeBack();
    // Read in full before yielding, so a caller may change the table while walking it.
    const rows = this.sql.exec<{ key: string; value: string }>(`SELECT key, value FROM ${this.table} ${where} ORDER BY rowid`, ...bindings).toArray();
    for (const row of rows) yield [row.key, this.decoded(row.key, row.value)];
  }

  /** Writes every value the operation changed or added, and its deletions. */
  writeBack() {
    const names = Object.keys(this.columns);
    for (const key of this.touched) {
      const entry = this.cache.get(key);
      if (!entry) continue;
      const json = this.codec.encode(entry.value);
      if (json === entry.json) continue;
      this.sql.exec(this.upsert, key, json, ...names.map((n) => this.columns[n]!(entry.value)));
      entry.json = json;
      this.written(key, entry.value);
    }
    for (const key of this.removed) {
      this.sql.exec(`DELETE FROM ${this.table} WHERE key = ?`, key);
      this.deleted(key);
    }
    this.removed.clear();
  }

  /** Hooks for tables that keep a side index up to date. */
  protected written(_key: string, _value: V) {}
  protected deleted(_key: string) {}

  /** A row read by a query of a subclass: the cached object where there is one. */
  protected decoded(key: string, json: string): V {
    return this.cache.get(key)?.value ?? decodeRow(this.codec, this.table, key, json);
  }

  /** Ends an operation: after a commit the cache keeps its most recent rows; after a rollback it may hold what storage no longer has, and is dropped. */
  forget({ rolledBack }: { rolledBack: boolean }) {
    this.touched.clear();
    this.removed.clear();
    if (rolledBack) this.cache.clear();
    for (const key of this.cache.keys()) {
      if (this.cache.size <= this.cachedRows) break;
      this.cache.delete(key);
    }
  }
}
