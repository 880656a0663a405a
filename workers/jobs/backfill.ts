import { eq } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../db/client";
import { jobs } from "../db/schema";
import { generateId } from "../lib/keys";

/**
 * A backfill brings a workspace's existing profiles up to date with its
 * segments and computed traits after one of them was created or edited. It
 * runs through the jobs queue one chunk per message: each message asks the
 * workspace's identity object to evaluate the next `BACKFILL_CHUNK` profiles
 * (in profile id order, after `after`), records the progress in the job's D1
 * row, and enqueues the message for the chunk after it.
 */

export const BACKFILL_CHUNK = 200;

export const jobMessageSchema = z.strictObject({
  v: z.literal(1),
  jobId: z.string().min(1),
  workspaceId: z.string().min(1),
  kind: z.literal("backfill"),
  /** The last profile id of the previous chunk; null for the first. */
  after: z.string().min(1).nullable(),
});
export type JobMessage = z.infer<typeof jobMessageSchema>;

export const sendJobMessage = (queue: Queue, message: JobMessage) => queue.send(message, { contentType: "json" });

/** The insert of a queued backfill job for an audience, to put in the same D1 batch as the change that needs it. */
export function backfillJobInsert(db: Db, workspaceId: string, target: string) {
  return db.insert(jobs).values({ id: generateId("job"), workspaceId, kind: "backfill", target, status: "queued" }).returning();
}

export const firstChunk = (job: { id: string; workspaceId: string }): JobMessage => ({ v: 1, jobId: job.id, workspaceId: job.workspaceId, kind: "backfill", after: null });

export type JobRow = typeof jobs.$inferSelect;

/**
 * Enqueues a job's first chunk. When the queue refuses it, the job stays
 * `queued` with the error; the maintenance cron sends the first chunk again
 * for a queued job that has not moved for `STALLED_JOB_MS`.
 */
export async function enqueueJob(db: Db, queue: Queue, job: JobRow): Promise<JobRow> {
  try {
    await sendJobMessage(queue, firstChunk(job));
    return job;
  } catch (error) {
    return recordJobError(db, job.id, `could not be queued (${errorText(error)}); the maintenance cron queues it again`, "queued");
  }
}

/** A queued job with no progress and no change for this long lost its first message (a retrying chunk updates the job on every failure). */
export const STALLED_JOB_MS = 10 * 60_000;

export async function recordJobError(db: Db, jobId: string, error: string, status: "queued" | "failed"): Promise<JobRow> {
  const now = new Date();
  const [row] = await db
    .update(jobs)
    .set({ status, error: error.slice(0, 1000), updatedAt: now, finishedAt: status === "failed" ? now : null })
    .where(eq(jobs.id, jobId))
    .returning();
  return row!;
}

export const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));
