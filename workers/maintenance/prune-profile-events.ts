import { EVENT_RETENTION_DAYS } from "../profiles/event-record";

/** Rows per statement: small enough that one cron run never holds D1's write lock for long. */
const PRUNE_BATCH = 5_000;

/**
 * The Profile API's `/events` keeps EVENT_RETENTION_DAYS of history; older rows
 * go, a bounded number per run (the cron runs every 5 minutes, so a backlog
 * drains over a few runs). Traits are unaffected: they live on the profile row.
 */
export async function pruneProfileEvents(d1: D1Database, now: Date): Promise<number> {
  const cutoff = now.getTime() - EVENT_RETENTION_DAYS * 86_400_000;
  const result = await d1
    .prepare("DELETE FROM profile_events WHERE rowid IN (SELECT rowid FROM profile_events WHERE timestamp < ?1 LIMIT ?2)")
    .bind(cutoff, PRUNE_BATCH)
    .run();
  return result.meta.changes ?? 0;
}
