import type { Cluster, Conflict, GraphCollections, IndexEntry, MergeRecord, ReviewItem } from "../workers/identity/graph";
import { type BlockIndex, type ClusterTable, type ConflictLog, clustersOfMerge, type KeySet, MAX_RECORDED_CONFLICTS, type MergeTable } from "../workers/identity/graph-collections";
import type { ProfileFeatures } from "../workers/identity/probabilistic";
import { clusterRowSchema, conflictSchema, featuresSchema, indexEntrySchema, mergeSchema, reviewSchema } from "../workers/identity/snapshot";
import type { SqlExec } from "./sql-event-links";
import { type Codec, jsonCodec, SqlTable, tableExists } from "./sql-table";

/**
 * The identity graph's collections as tables in the object's SQLite: the
 * graph is read row by row as an operation needs it and written back as the
 * operation commits, so the object's memory holds what one operation touched,
 * not the graph, and waking reads nothing up front. Rows are parsed with zod:
 * stored JSON is never trusted.
 */

/**
 * Rows each table keeps cached between operations: about 20 MB when full. A
 * person has about six identifiers to one cluster and one set of features.
 */
export const CACHED_ROWS = { clusters: 4_000, features: 4_000, index: 16_000, merges: 1_000, reviews: 1_000 };

const clusterCodec: Codec<Cluster> = {
  encode: (c) => JSON.stringify({ id: c.id, createdAt: c.createdAt, seq: c.seq, identifiers: [...c.identifiers], ...(c.forwardedTo ? { forwardedTo: c.forwardedTo } : {}) }),
  decode: (json) => {
    const row = clusterRowSchema.parse(JSON.parse(json));
    return { ...row, identifiers: new Map(row.identifiers) };
  },
};

export class SqlClusterTable extends SqlTable<Cluster> implements ClusterTable {
  constructor(sql: SqlExec, cachedRows = CACHED_ROWS.clusters) {
    super(sql, "graph_clusters", clusterCodec, { live: (c) => (c.forwardedTo ? 0 : 1) }, cachedRows);
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

/** Merges, with a side table from each cluster a merge names to the merge, so a profile's merges are found without reading them all. */
export class SqlMergeTable extends SqlTable<MergeRecord> implements MergeTable {
  constructor(sql: SqlExec, cachedRows = CACHED_ROWS.merges) {
    super(sql, "graph_merges", jsonCodec(mergeSchema), {}, cachedRows);
    const existed = tableExists(sql, "graph_merge_clusters");
    sql.exec("CREATE TABLE IF NOT EXISTS graph_merge_clusters (cluster_id TEXT NOT NULL, merge_id TEXT NOT NULL, PRIMARY KEY (cluster_id, merge_id)) WITHOUT ROWID");
    // Merges stored before the side table existed are indexed once.
    if (!existed) for (const [key, merge] of this) this.written(key, merge);
  }
  involving(clusterId: string) {
    this.writeBack();
    return this.sql
      .exec<{ key: string; value: string }>("SELECT m.key, m.value FROM graph_merge_clusters c JOIN graph_merges m ON m.key = c.merge_id WHERE c.cluster_id = ? ORDER BY m.rowid", clusterId)
      .toArray()
      .map((row) => this.decoded(row.key, row.value));
  }
  protected override written(key: string, merge: MergeRecord) {
    this.sql.exec("INSERT OR IGNORE INTO graph_merge_clusters (cluster_id, merge_id) SELECT value, ? FROM json_each(?)", key, JSON.stringify(clustersOfMerge(merge)));
  }
  protected override deleted(key: string) {
    this.sql.exec("DELETE FROM graph_merge_clusters WHERE merge_id = ?", key);
  }
}

export class SqlReviewTable extends SqlTable<ReviewItem> {
  constructor(sql: SqlExec, cachedRows = CACHED_ROWS.reviews) {
    super(sql, "graph_reviews", jsonCodec(reviewSchema), { status: (r) => r.status }, cachedRows);
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
  readonly merges: SqlMergeTable;
  readonly reviews: SqlReviewTable;
  readonly features: SqlTable<ProfileFeatures>;
  readonly conflicts: SqlConflictLog;
  readonly blocks: SqlBlockIndex;
  readonly neverMerge: SqlKeySet;
  readonly tombstones: SqlKeySet;
  readonly suggested: SqlKeySet;

  constructor(sql: SqlExec, cachedRows: typeof CACHED_ROWS = CACHED_ROWS) {
    this.clusters = new SqlClusterTable(sql, cachedRows.clusters);
    this.index = new SqlTable(sql, "graph_index", jsonCodec(indexEntrySchema), {}, cachedRows.index);
    this.merges = new SqlMergeTable(sql, cachedRows.merges);
    this.reviews = new SqlReviewTable(sql, cachedRows.reviews);
    this.features = new SqlTable(sql, "graph_features", jsonCodec(featuresSchema), {}, cachedRows.features);
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
