import { z } from "zod";

/**
 * Shard 0's side of filling the identifier index when a workspace that lived
 * on one graph object starts using several: every identifier key its graph
 * indexes and every profile id it holds is placed on shard 0, page by page.
 * The object keeps the position, advanced only once a page's keys are placed,
 * so a consumer that fails between the two reads the same page again.
 */

const cursorSchema = z.object({ phase: z.enum(["index", "clusters", "done"]), after: z.string() });
type Cursor = z.infer<typeof cursorSchema>;

export interface PlacementPage {
  /** `[key, quarantined]`: identifier keys the graph indexes, then `profile_id:` of every cluster. */
  keys: [string, boolean][];
  /** Where the next page starts: handed back to `placed` once this page's keys are placed. */
  next: string;
  /** This page is the last: once placed, the index holds everything of this shard. */
  last: boolean;
}

const START: Cursor = { phase: "index", after: "" };

export class IndexBackfill {
  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS index_backfill (id INTEGER PRIMARY KEY CHECK (id = 1), cursor TEXT NOT NULL)");
  }

  private cursor(): Cursor {
    const row = this.sql.exec<{ cursor: string }>("SELECT cursor FROM index_backfill WHERE id = 1").toArray()[0];
    return row ? cursorSchema.parse(JSON.parse(row.cursor)) : START;
  }

  /** Whether every key is placed. A graph that holds nothing yet (a workspace spread from its start) has nothing to place. */
  done(): boolean {
    const cursor = this.cursor();
    if (cursor.phase === "done") return true;
    const empty = cursor.phase === "index" && cursor.after === "" && this.sql.exec<{ any: number }>("SELECT EXISTS (SELECT 1 FROM graph_index) OR EXISTS (SELECT 1 FROM graph_clusters) AS any").one().any === 0;
    if (empty) this.placed(JSON.stringify({ phase: "done", after: "" }));
    return empty;
  }

  /** Up to `limit` keys from the stored position on; the position does not move until `placed`. */
  page(limit: number): PlacementPage {
    let cursor = this.cursor();
    const keys: [string, boolean][] = [];
    if (cursor.phase === "index") {
      const rows = this.sql
        .exec<{ key: string; q: number | null }>("SELECT key, json_extract(value, '$.quarantined') AS q FROM graph_index WHERE key > ? ORDER BY key LIMIT ?", cursor.after, limit)
        .toArray();
      for (const row of rows) keys.push([row.key, row.q === 1]);
      cursor = rows.length < limit ? { phase: "clusters", after: "" } : { phase: "index", after: rows.at(-1)!.key };
    }
    if (cursor.phase === "clusters" && keys.length < limit) {
      const want = limit - keys.length;
      const rows = this.sql.exec<{ key: string }>("SELECT key FROM graph_clusters WHERE key > ? ORDER BY key LIMIT ?", cursor.after, want).toArray();
      for (const row of rows) keys.push([`profile_id:${row.key}`, false]);
      cursor = rows.length < want ? { phase: "done", after: "" } : { phase: "clusters", after: rows.at(-1)!.key };
    }
    return { keys, next: JSON.stringify(cursor), last: cursor.phase === "done" };
  }

  /** The page before `next` is placed in the index: the position moves on (to the end, once the last page is placed). */
  placed(next: string) {
    const cursor = cursorSchema.parse(JSON.parse(next));
    this.sql.exec("INSERT OR REPLACE INTO index_backfill (id, cursor) VALUES (1, ?)", JSON.stringify(cursor));
  }

}
