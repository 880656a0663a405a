import { drizzle } from "drizzle-orm/d1";
import * as privacySchema from "./privacy-schema";
import * as tables from "./schema";

const schema = { ...tables, ...privacySchema };

export const createDb = (d1: D1Database) => drizzle(d1, { schema });
export type Db = ReturnType<typeof createDb>;

/**
 * Most tracking requests never touch D1 (credentials are cached), so the
 * Drizzle instance is built on first use rather than on every request.
 */
export function lazyDb(d1: D1Database): Db {
  let db: Db | undefined;
  return new Proxy({} as Db, {
    get(_target, property) {
      db ??= createDb(d1);
      const value = Reflect.get(db, property, db);
      return typeof value === "function" ? value.bind(db) : value;
    },
  });
}
