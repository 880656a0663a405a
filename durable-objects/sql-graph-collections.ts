import { ZodError, type ZodType } from "zod";
import type { Cluster, Conflict, GraphCollections, IndexEntry, MergeRecord, ReviewItem } from "../workers/identity/graph";
import { type BlockIndex, type ClusterTable, type ConflictLog, type GraphTable, type KeySet, MAX_RECORDED_CONFLICTS } from "../workers/identity/graph-collections";
import type { ProfileFeatures } from "../workers/identity/probabilistic";
import { clusterRowSchema, conflictSchema, featuresSchema, indexEntrySchema, mergeSchema, reviewSchema } from "../workers/identity/snapshot";
import type { SqlExec } from "./sql-event-links";

/**
 * The identity graph's collections as tables in the object's SQLite: the
 * graph is read row by row as an operation needs it and written back as the
 * operation commits, so the object's memory holds what one operation touched,
 * not the graph, and waking reads nothing up front. Rows are parsed with zod:
 * stored JSON is never trusted.
 */

interface Codec<V> {
  encode(value: V): string;
  decode(json: string): V;
}

const jsonCodec = <V>(schema: ZodType): Codec<V> => ({
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

  constructor(
    protected readonly sql: SqlExec,
    protected readonly table: string,
    private readonly codec: Codec<V>,
    /** Columns kept beside the JSON for queries, derived from the value. */
    private readonly columns: Record<string, (value: V) => SqlStorageValue> = {},
    private readonly cachedRows = 4_000,
  ) {
    const extra = Object.keys(columns).map((name) => `, ${name}`).join("");
    sql.exec(`CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY, value TEXT NOT NULL${extra})`);
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
    for (const row of rows) yield [row.key, this.cache.get(row.key)?.value ?? decodeRow(this.codec, this.table, row.key, row.value)];
  }

  /** Writes every value the operation changed or added, and its deletions. */
  writeBack() {
    const names = Object.keys(this.columns);
    const upsert = `INSERT INTO ${this.table} (key, value${names.map((n) => `, ${n}`).join("")}) VALUES (?, ?${names.map(() => ", ?").join("")}) ON CONFLICT (key) DO UPDATE SET value = excluded.value${names.map((n) => `, ${n} = excluded.${n}`).join("")}`;
    for (const key of this.touched) {
      const entry = this.cache.get(key);
      if (!entry) continue;
      const json = this.codec.encode(entry.value);
      if (json === entry.json) continue;
      this.sql.exec(upsert, key, json, ...names.map((n) => this.columns[n]!(entry.value)));
      entry.json = json;
    }
    for (const key of this.removed) this.sql.exec(`DELETE FROM ${this.table} WHERE key = ?`, key);
    this.removed.clear();
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

const clusterCodec: Codec<Cluster> = {
  encode: (c) => JSON.stringify({ id: c.id, createdAt: c.createdAt, seq: c.seq, identifiers: [...c.identifiers], ...(c.forwardedTo ? { forwardedTo: c.forwardedTo } : {}) }),
  decode: (json) => {
    const row = clusterRowSchema.parse(JSON.parse(json));
    return { ...row, identifiers: new Map(row.identifiers) };
  },
};

export class SqlClusterTable extends SqlTable<Cluster> implements ClusterTable {
  constructor(sql: SqlExec) {
    super(sql, "graph_clusters", clusterCodec, { live: (c) => (c.forwardedTo ? 0 : 1) });
  }
  liveIds(after: string | null, limit: number) {
    this.writeBack();
    return this.sql
      .exec<{ key: string }>(`SELECT key FROM graph_clusters WHERE live = 1 AND key > ? ORDER BY key LIMIT ?`, after ?? "", Number.isFinite(limit) ? limit : -1)
      .toArray()
      .map((r) => r.key);
  }
  liveCount() {
    this.writeBack();
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM graph_clusters WHERE live = 1").one().n;
  }
}

export class SqlReviewTable extends SqlTable<ReviewItem> {
  constructor(sql: SqlExec) {
    super(sql, "graph_reviews", jsonCodec(reviewSchema), { status: (r) => r.status }, 1_000);
  }
  /** Open reviews, read once when the graph is built to index them by identifier. */
  open(): ReviewItem[] {
    return [...this.rows("WHERE status = 'open'")].map(([, review]) => review);
  }
}

/** A small set of keys, read in full once and written through as it changes. */
export class SqlKeySet implements KeySet {
  private keys: Set<string> | null = null;

  constructor(
    private readonly sql: SqlExec,
    private readonly table: string,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY) WITHOUT ROWID`);
  }
  private all(): Set<string> {
    this.keys ??= new Set(this.sql.exec<{ key: string }>(`SELECT key FROM ${this.table}`).toArray().map((r) => r.key));
    return this.keys;
  }
  has(key: string) {
    return this.all().has(key);
  }
  add(key: string) {
    if (!this.all().has(key)) this.sql.exec(`INSERT INTO ${this.table} (key) VALUES (?)`, key);
    this.all().add(key);
    return this;
  }
  delete(key: string) {
    if (!this.all().delete(key)) return false;
    this.sql.exec(`DELETE FROM ${this.table} WHERE key = ?`, key);
    return true;
  }
  get size() {
    return this.all().size;
  }
  [Symbol.iterator]() {
    return [...this.all()][Symbol.iterator]();
  }
  /** After a rollback: read again from storage. */
  forget() {
    this.keys = null;
  }
}

export class SqlConflictLog implements ConflictLog {
  constructor(private readonly sql: SqlExec) {
    sql.exec("CREATE TABLE IF NOT EXISTS graph_conflicts (seq INTEGER PRIMARY KEY AUTOINCREMENT, value TEXT NOT NULL)");
  }
  add(conflict: Conflict) {
    this.sql.exec("INSERT INTO graph_conflicts (value) VALUES (?)", JSON.stringify(conflict));
  }
  all() {
    this.trim();
    return this.sql.exec<{ value: string }>("SELECT value FROM graph_conflicts ORDER BY seq").toArray().map((r) => conflictSchema.parse(JSON.parse(r.value)) as Conflict);
  }
  retain(keep: (conflict: Conflict) => boolean) {
    for (const row of this.sql.exec<{ seq: number; value: string }>("SELECT seq, value FROM graph_conflicts").toArray()) {
      if (!keep(conflictSchema.parse(JSON.parse(row.value)) as Conflict)) this.sql.exec("DELETE FROM graph_conflicts WHERE seq = ?", row.seq);
    }
  }
  /** Once per operation rather than per conflict. */
  trim() {
    this.sql.exec("DELETE FROM graph_conflicts WHERE seq <= (SELECT max(seq) FROM graph_conflicts) - ?", MAX_RECORDED_CONFLICTS);
  }
}

export class SqlBlockIndex implements BlockIndex {
  constructor(private readonly sql: SqlExec) {
    sql.exec("CREATE TABLE IF NOT EXISTS graph_blocks (key TEXT NOT NULL, cluster_id TEXT NOT NULL, PRIMARY KEY (key, cluster_id)) WITHOUT ROWID");
    sql.exec("CREATE INDEX IF NOT EXISTS graph_blocks_cluster ON graph_blocks (cluster_id)");
  }
  join(key: string, clusterId: string, max: number) {
    this.sql.exec("INSERT OR IGNORE INTO graph_blocks (key, cluster_id) VALUES (?, ?)", key, clusterId);
    const members = this.sql.exec<{ cluster_id: string }>("SELECT cluster_id FROM graph_blocks WHERE key = ? LIMIT ?", key, Number.isFinite(max) ? max + 1 : -1).toArray();
    return members.length > max ? null : members.map((r) => r.cluster_id);
  }
  leave(clusterId: string, keep = new Set<string>()) {
    this.sql.exec("DELETE FROM graph_blocks WHERE cluster_id = ? AND key NOT IN (SELECT value FROM json_each(?))", clusterId, JSON.stringify([...keep]));
  }
  keysOf(clusterId: string) {
    return this.sql.exec<{ key: string }>("SELECT key FROM graph_blocks WHERE cluster_id = ?", clusterId).toArray().map((r) => r.key);
  }
}

/** Every collection of a stored graph, with the two steps an operation ends with. */
export class SqlGraphCollections implements GraphCollections {
  readonly clusters: SqlClusterTable;
  readonly index: SqlTable<IndexEntry>;
  readonly merges: SqlTable<MergeRecord>;
  readonly reviews: SqlReviewTable;
  readonly features: SqlTable<ProfileFeatures>;
  readonly conflicts: SqlConflictLog;
  readonly blocks: SqlBlockIndex;
  readonly neverMerge: SqlKeySet;
  readonly tombstones: SqlKeySet;
  readonly suggested: SqlKeySet;

  constructor(sql: SqlExec) {
    this.clusters = new SqlClusterTable(sql);
    // A person has about six identifiers to one cluster and one set of features.
    this.index = new SqlTable(sql, "graph_index", jsonCodec(indexEntrySchema), {}, 16_000);
    this.merges = new SqlTable(sql, "graph_merges", jsonCodec(mergeSchema), {}, 1_000);
    this.reviews = new SqlReviewTable(sql);
    this.features = new SqlTable(sql, "graph_features", jsonCodec(featuresSchema));
    this.conflicts = new SqlConflictLog(sql);
    this.blocks = new SqlBlockIndex(sql);
    this.neverMerge = new SqlKeySet(sql, "graph_never_merge");
    this.tombstones = new SqlKeySet(sql, "graph_tombstones");
    this.suggested = new SqlKeySet(sql, "graph_suggested");
  }

  private tables() {
    return [this.clusters, this.index, this.merges, this.reviews, this.features];
  }

  /** Writes what the operation changed; runs inside its transaction. */
  writeBack() {
    for (const table of this.tables()) table.writeBack();
    this.conflicts.trim();
  }

  /** Ends an operation; after a rollback every cached row and key set is dropped, so the next read comes from storage. */
  forget({ rolledBack }: { rolledBack: boolean }) {
    for (const table of this.tables()) table.forget({ rolledBack });
    if (rolledBack) for (const set of [this.neverMerge, this.tombstones, this.suggested]) set.forget();
  }
}
