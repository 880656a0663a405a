import { chunk } from "../workers/lib/chunks";
import { ZodError, type ZodType } from "zod";
import type { GraphTable } from "../workers/identity/graph-collections";
import type { SqlExec } from "./sql-event-links";
import { execRows } from "./sql-rows";

/** Whether the object's storage has this table yet. */
export const tableExists = (sql: SqlExec, name: string) => sql.exec<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?", name).one().n > 0;

/** Adds a column to a table stored before the column existed; nothing when it is there. */
export function ensureColumn(sql: SqlExec, table: string, column: string, type: string) {
  const present = sql.exec<{ name: string }>("SELECT name FROM pragma_table_info(?)", table).toArray().some((r) => r.name === column);
  if (!present) sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
}

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
 * A list derived from each row (the identifiers a cluster holds, the user ids
 * an index entry remembers), kept in a side table of (item, owner) pairs, so
 * that the rows holding an item are found without reading the others. Its
 * key leads with the item, which is what every lookup asks by; pairs leave
 * by their exact key, so no second index by owner taxes every write.
 */
export interface SideIndex<V> {
  table: string;
  /** Column names: the item, and the key of the row it came from. */
  item: string;
  owner: string;
  of: (value: V) => Iterable<string>;
}

/** What a table keeps beside each row's JSON, all derived from the value and written with it. */
export interface TableShape<V> {
  /** Columns for queries. */
  columns?: Record<string, (value: V) => SqlStorageValue>;
  /** Indexes on those columns; `where` makes one partial (a column null for most rows costs those rows no index entry, and no index write). */
  indexes?: { on: string; where?: string }[];
  side?: SideIndex<V>;
}

/** Rows decoded at a time when a column or side table is filled for rows stored before it existed. */
const FILL_BATCH = 500;

/** Shared by every row with no items (most index entries remember no user id), rather than an empty array each. */
const NONE: readonly string[] = Object.freeze([]);

interface Cached<V> {
  value: V;
  /** The JSON stored for it ("" when set rather than read: written whatever it holds). */
  json: string;
  /** What the side table holds for the row; null when unknown (replaced without being read), and then read at write-back. */
  items: readonly string[] | null;
}

/** Keys per prefetch query: at most 1,024 characters each (an identifier key's limit), under 2 MB of UTF-8 together. */
const PREFETCH_CHUNK = 1_000;

/**
 * A keyed table with a cache of decoded rows. A value read once is the same
 * object until the operation ends, so the rules may change it in place;
 * `writeBack` writes each value the operation touched whose JSON changed,
 * with its columns and side table. Rows read stay cached across operations
 * up to `cachedRows` (least recently used go first), since a person's events
 * tend to come together; a rollback drops them all. Rows keep insertion order
 * (rowid), as a Map does. Walks and queries read rows as they stand after a
 * write-back and yield the cached object where there is one, a copy otherwise.
 */
export class SqlTable<V> implements GraphTable<V> {
  /** null: known to be absent (or deleted by this operation). */
  private readonly cache = new Map<string, Cached<V> | null>();
  /** Keys this operation read or wrote: the only ones `writeBack` looks at, and never evicted before it. */
  private readonly touched = new Set<string>();
  /** Rows this operation deleted, with their side table items when known. */
  private readonly removed = new Map<string, readonly string[] | null>();
  /** The row upsert around its VALUES list. */
  private readonly upsert: { head: string; tail: string };
  private readonly columns: Record<string, (value: V) => SqlStorageValue>;
  private readonly side: SideIndex<V> | undefined;

  constructor(
    protected readonly sql: SqlExec,
    protected readonly table: string,
    private readonly codec: Codec<V>,
    shape: TableShape<V> = {},
    private readonly cachedRows = 4_000,
  ) {
    this.columns = shape.columns ?? {};
    this.side = shape.side;
    const names = Object.keys(this.columns);
    const existed = tableExists(sql, table);
    sql.exec(`CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY, value TEXT NOT NULL${names.map((n) => `, ${n}`).join("")})`);
    this.upsert = {
      head: `INSERT INTO ${table} (key, value${names.map((n) => `, ${n}`).join("")})`,
      tail: `ON CONFLICT (key) DO UPDATE SET value = excluded.value${names.map((n) => `, ${n} = excluded.${n}`).join("")}`,
    };
    // A table stored before a column or the side table was added gets it here, once.
    const present = existed ? new Set(sql.exec<{ name: string }>("SELECT name FROM pragma_table_info(?)", table).toArray().map((r) => r.name)) : null;
    const newColumns = present ? names.filter((n) => !present.has(n)) : [];
    for (const name of newColumns) sql.exec(`ALTER TABLE ${table} ADD COLUMN ${name}`);
    const side = this.side;
    const newSide = side !== undefined && existed && !tableExists(sql, side.table);
    if (side) sql.exec(`CREATE TABLE IF NOT EXISTS ${side.table} (${side.item} TEXT NOT NULL, ${side.owner} TEXT NOT NULL, PRIMARY KEY (${side.item}, ${side.owner})) WITHOUT ROWID`);
    if (newColumns.length || newSide) this.fill(newColumns, newSide);
    for (const { on, where } of shape.indexes ?? []) sql.exec(`CREATE INDEX IF NOT EXISTS ${table}_${on} ON ${table} (${on})${where ? ` WHERE ${where}` : ""}`);
  }

  get(key: string): V | undefined {
    let cached = this.cache.get(key);
    if (cached === undefined) {
      const row = this.sql.exec<{ value: string }>(`SELECT value FROM ${this.table} WHERE key = ?`, key).toArray()[0];
      cached = row ? this.read(key, row.value) : null;
      this.cache.set(key, cached);
    } else if (!this.touched.has(key)) {
      // Re-inserted so the Map's order is least recently used first. Eviction waits for the operation's end, so one move per operation is enough.
      this.cache.delete(key);
      this.cache.set(key, cached);
    }
    this.touched.add(key);
    return cached?.value;
  }
  has(key: string) {
    return this.get(key) !== undefined;
  }
  /**
   * Reads the rows of `keys` not cached yet in one query per thousand keys,
   * the absent ones cached as absent, so the lookups that follow read
   * nothing: one statement instead of one per key. Changes nothing.
   */
  prefetch(keys: Iterable<string>) {
    const missing = [...new Set(keys)].filter((key) => !this.cache.has(key));
    for (const part of chunk(missing, PREFETCH_CHUNK)) {
      const rows = this.sql.exec<{ key: string; value: string }>(`SELECT key, value FROM ${this.table} WHERE key IN (SELECT value FROM json_each(?))`, JSON.stringify(part)).toArray();
      for (const row of rows) this.cache.set(row.key, this.read(row.key, row.value));
      for (const key of part) if (!this.cache.has(key)) this.cache.set(key, null);
    }
  }
  /** The cached value, null when known absent, undefined when not cached: a look that reads nothing and moves nothing in the cache. */
  protected peek(key: string): V | null | undefined {
    const cached = this.cache.get(key);
    return cached === undefined ? undefined : (cached?.value ?? null);
  }
  set(key: string, value: V) {
    const prior = this.cache.get(key);
    // A row deleted earlier in this operation is still stored, with its side rows, until write-back.
    const items = prior ? prior.items : prior === null && !this.removed.has(key) ? NONE : null;
    this.cache.delete(key);
    this.cache.set(key, { value, json: "", items });
    this.touched.add(key);
    this.removed.delete(key);
    return this;
  }
  delete(key: string) {
    const existing = this.get(key) !== undefined ? this.cache.get(key)! : null;
    this.cache.set(key, null);
    if (existing) this.removed.set(key, existing.items);
    return existing !== null;
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

  /** Keys of the rows matching `where`, in insertion order, reading nothing else. */
  protected keys(where: string, ...bindings: unknown[]): string[] {
    this.writeBack();
    return this.sql.exec<{ key: string }>(`SELECT key FROM ${this.table} ${where} ORDER BY rowid`, ...bindings).toArray().map((r) => r.key);
  }

  /**
   * Writes every value the operation changed or added, and its deletions:
   * rows, deletions and side rows each in statements of many rows.
   */
  writeBack() {
    const names = Object.keys(this.columns);
    const upserts: unknown[][] = [];
    const gone: string[][] = [];
    const added: string[][] = [];
    for (const key of this.touched) {
      const entry = this.cache.get(key);
      if (!entry) continue;
      const json = this.codec.encode(entry.value);
      if (json === entry.json) continue;
      const before = this.side && (entry.items ?? this.storedItems(key));
      upserts.push([key, json, ...names.map((n) => this.columns[n]!(entry.value))]);
      entry.json = json;
      if (this.side) entry.items = this.sideChanges(key, before!, this.itemsOf(entry.value), gone, added);
    }
    const deleted: string[][] = [];
    for (const [key, items] of this.removed) {
      if (this.side) this.sideChanges(key, items ?? this.storedItems(key), NONE, gone, added);
      deleted.push([key]);
    }
    this.removed.clear();
    execRows(this.sql, upserts, 2 + names.length, (rows) => `${this.upsert.head} VALUES ${rows} ${this.upsert.tail}`);
    execRows(this.sql, deleted, 1, (rows) => `DELETE FROM ${this.table} WHERE key IN (VALUES ${rows})`);
    const side = this.side;
    if (!side) return;
    // A row's items that went and came are disjoint, and rows differ by owner, so every removal can go before every addition.
    execRows(this.sql, gone, 2, (rows) => `DELETE FROM ${side.table} WHERE (${side.item}, ${side.owner}) IN (VALUES ${rows})`);
    this.addSideRows(added);
  }

  private addSideRows(pairs: string[][]) {
    const side = this.side;
    if (side) execRows(this.sql, pairs, 2, (rows) => `INSERT OR IGNORE INTO ${side.table} (${side.item}, ${side.owner}) VALUES ${rows}`);
  }

  /** The side rows that take a row's items from `before` to `after`, as (item, owner) pairs to delete and to add; returns `after`. */
  private sideChanges(key: string, before: readonly string[], after: readonly string[], gone: string[][], added: string[][]) {
    for (const item of before) if (!after.includes(item)) gone.push([item, key]);
    for (const item of after) if (!before.includes(item)) added.push([item, key]);
    return after;
  }

  private itemsOf(value: V): readonly string[] {
    const items = [...new Set(this.side!.of(value))];
    return items.length ? items : NONE;
  }

  /** A row's side items as stored: for a row replaced or deleted without having been read. */
  private storedItems(key: string): readonly string[] {
    const row = this.sql.exec<{ value: string }>(`SELECT value FROM ${this.table} WHERE key = ?`, key).toArray()[0];
    return row ? this.itemsOf(decodeRow(this.codec, this.table, key, row.value)) : NONE;
  }

  /** Rows stored before a column or the side table existed get it, a batch at a time, so memory holds one batch however large the table. */
  private fill(columns: string[], side: boolean) {
    const update = `UPDATE ${this.table} SET ${columns.map((n) => `${n} = ?`).join(", ")} WHERE rowid = ?`;
    for (let after = 0; ; ) {
      const rows = this.sql.exec<{ id: number; key: string; value: string }>(`SELECT rowid AS id, key, value FROM ${this.table} WHERE rowid > ? ORDER BY rowid LIMIT ?`, after, FILL_BATCH).toArray();
      const added: string[][] = [];
      for (const row of rows) {
        const value = decodeRow(this.codec, this.table, row.key, row.value);
        if (columns.length) this.sql.exec(update, ...columns.map((n) => this.columns[n]!(value)), row.id);
        if (side) this.sideChanges(row.key, NONE, this.itemsOf(value), [], added);
      }
      this.addSideRows(added);
      if (rows.length < FILL_BATCH) return;
      after = rows.at(-1)!.id;
    }
  }

  private read(key: string, json: string): Cached<V> {
    const value = decodeRow(this.codec, this.table, key, json);
    return { value, json, items: this.side ? this.itemsOf(value) : NONE };
  }

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
