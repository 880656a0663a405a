import type { Conflict, GraphCollections } from "../workers/identity/graph";
import { type BlockIndex, type ConflictLog, type KeySet, MAX_RECORDED_CONFLICTS } from "../workers/identity/graph-collections";
import { conflictSchema } from "../workers/identity/snapshot";
import type { SqlExec } from "./sql-event-links";
import { CACHED_ROWS, SqlClusterTable, SqlFeatureTable, SqlIndexTable, SqlMergeTable, SqlReviewTable } from "./sql-graph-tables";

export { CACHED_ROWS, SqlClusterTable, SqlFeatureTable, SqlIndexTable, SqlMergeTable, SqlReviewTable } from "./sql-graph-tables";

/**
 * The identity graph's collections as tables in the object's SQLite: the
 * graph is read row by row as an operation needs it and written back as the
 * operation commits, so the object's memory holds what one operation touched,
 * not the graph, and waking reads nothing up front. Rows are parsed with zod:
 * stored JSON is never trusted.
 */

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
  enter(clusterId: string, keys: string[]) {
    if (keys.length === 0) return [];
    return this.sql
      .exec<{ key: string }>("INSERT OR IGNORE INTO graph_blocks (key, cluster_id) SELECT value, ? FROM json_each(?) RETURNING key", clusterId, JSON.stringify(keys))
      .toArray()
      .map((r) => r.key);
  }
  leave(clusterId: string, keep = new Set<string>()) {
    return this.sql
      .exec<{ key: string }>("DELETE FROM graph_blocks WHERE cluster_id = ? AND key NOT IN (SELECT value FROM json_each(?)) RETURNING key", clusterId, JSON.stringify([...keep]))
      .toArray()
      .map((r) => r.key);
  }
  keysOf(clusterId: string) {
    return this.sql.exec<{ key: string }>("SELECT key FROM graph_blocks WHERE cluster_id = ?", clusterId).toArray().map((r) => r.key);
  }
}

/** Every collection of a stored graph, with the two steps an operation ends with. */
export class SqlGraphCollections implements GraphCollections {
  readonly clusters: SqlClusterTable;
  readonly index: SqlIndexTable;
  readonly merges: SqlMergeTable;
  readonly reviews: SqlReviewTable;
  readonly features: SqlFeatureTable;
  readonly conflicts: SqlConflictLog;
  readonly blocks: SqlBlockIndex;
  readonly neverMerge: SqlKeySet;
  readonly tombstones: SqlKeySet;
  readonly suggested: SqlKeySet;

  constructor(sql: SqlExec, cachedRows: typeof CACHED_ROWS = CACHED_ROWS) {
    this.clusters = new SqlClusterTable(sql, cachedRows.clusters);
    this.index = new SqlIndexTable(sql, cachedRows.index);
    this.merges = new SqlMergeTable(sql, cachedRows.merges);
    this.reviews = new SqlReviewTable(sql, cachedRows.reviews);
    this.features = new SqlFeatureTable(sql, cachedRows.features);
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
