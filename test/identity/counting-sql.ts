/**
 * The object's SQL, keeping each statement's cursor so that the rows SQLite
 * read for it (`rowsRead`: every row and index entry visited, not only those
 * returned) can be summed afterwards.
 */
export function countingSql(sql: SqlStorage) {
  let statements: { query: string; cursor: SqlStorageCursor<Record<string, SqlStorageValue>> }[] = [];
  return {
    exec<T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): SqlStorageCursor<T> {
      const cursor = sql.exec<T>(query, ...bindings);
      statements.push({ query, cursor });
      return cursor;
    },
    /** Rows read since the last reset by statements naming none of the tables in `except`. */
    rowsRead(except: string[] = []) {
      const named = (query: string) => except.some((table) => new RegExp(`\\b${table}\\b`).test(query));
      return statements.filter((s) => !named(s.query)).reduce((n, s) => n + s.cursor.rowsRead, 0);
    },
    /** The statements run since the last reset. */
    queries() {
      return statements.map((s) => s.query);
    },
    reset() {
      statements = [];
    },
  };
}
