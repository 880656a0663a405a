import { and, asc, eq, isNull, lt } from "drizzle-orm";
import { audienceOf } from "../audiences/apply";
import { createDb } from "../db/client";
import { audiences, jobs } from "../db/schema";
import { audiencesFor } from "../identity/sharding/audiences";
import { backfillJobInsert, enqueueJob, STALLED_JOB_MS } from "../jobs/backfill";
import { createLogger, errorFields } from "../lib/logger";

/** Stalled jobs re-sent per run. */
const REQUEUE_LIMIT = 100;

/**
 * D1 holds the segments and computed traits; each workspace's identity object
 * (each of its graph shards) holds the copy it evaluates. A change the object missed (it could not be
 * reached when the change was saved) is applied here: definitions it lacks or
 * holds in another version are put to it, with a backfill when a definition
 * changed, and definitions D1 no longer has are removed. Backfill jobs whose
 * first message was lost are queued again.
 */
export async function syncAudiences(env: Env, now: Date) {
  const logger = createLogger({ job: "audience-sync", at: now.toISOString() });
  const db = createDb(env.DB);
  const rows = await db.select().from(audiences).orderBy(asc(audiences.workspaceId), asc(audiences.id)).all();
  const byWorkspace = new Map<string, typeof rows>();
  for (const row of rows) {
    const group = byWorkspace.get(row.workspaceId);
    if (group) group.push(row);
    else byWorkspace.set(row.workspaceId, [row]);
  }
  const counts = { workspaces: byWorkspace.size, put: 0, removed: 0, backfills: 0, requeued: 0 };
  for (const [workspaceId, wanted] of byWorkspace) {
    try {
      // Every graph shard holds the definitions: each one is compared with D1 and put right (identity/sharding/audiences.ts).
      const { put, removed, redefined } = await audiencesFor(env, workspaceId).repair(wanted.map(audienceOf));
      counts.put += put;
      counts.removed += removed;
      if (redefined) {
        const [job] = await backfillJobInsert(db, workspaceId, redefined);
        await enqueueJob(db, env.JOBS_QUEUE, job!);
        counts.backfills++;
      }
    } catch (error) {
      logger.error("could not bring the identity object's audiences up to date", { workspaceId, ...errorFields(error) });
    }
  }
  const stalled = await db
    .select()
    .from(jobs)
    .where(and(eq(jobs.status, "queued"), isNull(jobs.cursor), eq(jobs.processed, 0), lt(jobs.updatedAt, new Date(now.getTime() - STALLED_JOB_MS))))
    .limit(REQUEUE_LIMIT)
    .all();
  for (const job of stalled) {
    const [touched] = await db.update(jobs).set({ updatedAt: now }).where(and(eq(jobs.id, job.id), eq(jobs.status, "queued"))).returning();
    if (touched) await enqueueJob(db, env.JOBS_QUEUE, touched);
    counts.requeued++;
  }
  if (counts.put || counts.removed || counts.requeued) logger.warn("audiences repaired", counts);
  return counts;
}
