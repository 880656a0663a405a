import type { SqlExec } from "./sql-event-links";

/** Bound parameters per statement: the limit of a Durable Object's SQLite. */
export const MAX_BOUND_PARAMETERS = 100;

const placeholderCache = new Map<string, string>();

/** `(?, ?), (?, ?)` for `rows` rows of `width` values: built once per shape. */
function placeholders(rows: number, width: number): string {
  const shape = `${rows}x${width}`;
  let text = placeholderCache.get(shape);
  if (text === undefined) {
    const row = `(${Array.from({ length: width }, () => "?").join(", ")})`;
    placeholderCache.set(shape, (text = Array.from({ length: rows }, () => row).join(", ")));
  }
  return text;
}

/**
 * Runs a statement over many rows in as few calls as the parameter limit
 * allows: `statement` receives the rows' placeholders (`(?, ?), (?, ?)`) and
 * returns the SQL. Each call into SQLite has a fixed cost that dominates small
 * writes, and values bound this way are not escaped into a JSON parameter.
 * Full groups share one SQL text, so the runtime's statement cache keeps them
 * prepared. Rows are sent in order; every row must have `width` values.
 */
export function execRows(sql: SqlExec, rows: readonly (readonly unknown[])[], width: number, statement: (placeholders: string) => string) {
  const perStatement = Math.floor(MAX_BOUND_PARAMETERS / width);
  if (perStatement < 1) throw new Error(`a row of ${width} values passes the limit of ${MAX_BOUND_PARAMETERS} bound parameters`);
  for (let start = 0; start < rows.length; start += perStatement) {
    const part = rows.slice(start, start + perStatement);
    const bindings: unknown[] = [];
    for (const row of part) {
      if (row.length !== width) throw new Error(`a row of ${row.length} values where ${width} were expected`);
      for (const value of row) bindings.push(value);
    }
    sql.exec(statement(placeholders(part.length, width)), ...bindings);
  }
}
