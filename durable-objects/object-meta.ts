/**
 * Integer facts an object keeps about itself (D1 write version, write-through
 * watermarks, retention, last prune), one row each in its `meta` table.
 */
export class ObjectMeta {
  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
  }

  get(key: string): number | null {
    return this.sql.exec<{ value: number }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  set(key: string, value: number) {
    this.sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO UPDATE SET value = excluded.value", key, value);
  }

  /** Moves a mark forward, never back. */
  raise(key: string, value: number) {
    this.sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO UPDATE SET value = max(value, excluded.value)", key, value);
  }

  /** Adds one (from 0) and answers the new value. */
  increment(key: string): number {
    return this.sql.exec<{ value: number }>("INSERT INTO meta (key, value) VALUES (?, 1) ON CONFLICT DO UPDATE SET value = value + 1 RETURNING value", key).one().value;
  }
}
