import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import { execRows, MAX_BOUND_PARAMETERS } from "../../durable-objects/sql-rows";

/** The object's SQL, keeping each statement's bound values. */
const recording = (sql: SqlStorage) => {
  const statements: unknown[][] = [];
  return {
    statements,
    exec: (query: string, ...bindings: unknown[]) => {
      statements.push(bindings);
      return sql.exec(query, ...bindings);
    },
  };
};

describe("rows written in statements of many rows", () => {
  it("writes 250 rows of three values 33 to a statement, in order, none over the parameter limit", async () => {
    await runInDurableObject(env.IDENTITY.getByName("sql-rows-many"), (_i: IdentityGraphShard, state) => {
      state.storage.sql.exec("CREATE TABLE t_rows (n INTEGER PRIMARY KEY, name TEXT, note TEXT)");
      const sql = recording(state.storage.sql);
      const rows = Array.from({ length: 250 }, (_, n) => [n, `row ${n}`, n % 2 ? null : "even"]);
      execRows(sql as never, rows, 3, (values) => `INSERT INTO t_rows (n, name, note) VALUES ${values}`);
      // 33 rows of three values fill 99 of the 100 parameters: seven full statements, then the last 19 rows.
      expect(sql.statements.map((bindings) => bindings.length)).toEqual([...Array(7).fill(99), 19 * 3]);
      expect(Math.max(...sql.statements.map((b) => b.length))).toBeLessThanOrEqual(MAX_BOUND_PARAMETERS);
      const stored = state.storage.sql.exec<{ n: number; name: string; note: string | null }>("SELECT n, name, note FROM t_rows ORDER BY rowid").toArray();
      expect(stored.map((r) => [r.n, r.name, r.note])).toEqual(rows);
    });
  });

  it("refuses a row of the wrong width, and a width no statement can bind, before writing anything", async () => {
    await runInDurableObject(env.IDENTITY.getByName("sql-rows-refused"), (_i: IdentityGraphShard, state) => {
      state.storage.sql.exec("CREATE TABLE t_refused (a, b)");
      const insert = (values: string) => `INSERT INTO t_refused (a, b) VALUES ${values}`;
      expect(() => execRows(state.storage.sql as never, [[1, 2], [3]], 2, insert)).toThrow("a row of 1 values where 2 were expected");
      expect(() => execRows(state.storage.sql as never, [Array(101).fill(0)], 101, insert)).toThrow("passes the limit of 100 bound parameters");
      expect(state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM t_refused").one().n).toBe(0);
    });
  });
});
