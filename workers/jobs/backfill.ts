import { eq } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../db/client";
import { JOB_KINDS, jobs } from "../db/schema";
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

export type JobKind = (typeof JOB_KINDS)[number];

const chunkFields = {
  v: z.literal(1),
  jobId: z.string().min(1),
  workspaceId: z.string().min(1),
  /** Where the previous chunk stopped (a profile id, or for a replay an archive object key); null for the first. */
  after: z.string().min(1).nullable(),
};

/**
 * A jobs queue message: one chunk of one job, by `kind`.
 * - `backfill`: evaluate the workspace's next profiles against its audiences.
 * - `audience-sync`: send an audience's current members to one destination (its initial list).
 * - `archive-replay`: send one destination the archived events received between `from` and `to`.
 */
export const jobMessageSchema = z.discriminatedUnion("kind", [
  z.strictObject({ ...chunkFields, kind: z.literal("backfill") }),
  z.strictObject({ ...chunkFields, kind: z.literal("audience-sync"), destinationId: z.string().min(1), audienceId: z.string().min(1) }),
  z.strictObject({ ...chunkFields, kind: z.literal("archive-replay"), destinationId: z.string().min(1), from: z.iso.datetime(), to: z.iso.datetime() }),
  z.strictObject({ ...chunkFields, kind: z.enum(["privacy-export", "privacy-deletion"]), requestId: z.string().min(1) }),
]);
export type JobMessage = z.infer<typeof jobMessageSchema>;

export const sendJobMessage = (queue: Queue, message: JobMessage) => queue.send(message, { contentType: "json" });

/** The insert of a queued backfill job for an audience, to put in the same D1 batch as the change that needs it. */
export function backfillJobInsert(db: Db, workspaceId: string, target: string) {
  return db.insert(jobs).values({ id: generateId("job"), workspaceId, kind: "backfill", target, status: "queued" }).returning();
}

/**
 * A job's `target` says what it is for, and is enough to rebuild its first message (the maintenance cron requeues from it):
 * a backfill's audience id; an audience sync's `{destinationId}/{audienceId}`; a replay's `{destinationId}/{from}/{to}`.
 */
export const syncTarget = (destinationId: string, audienceId: string) => `${destinationId}/${audienceId}`;
export const replayTarget = (destinationId: string, from: string, to: string) => `${destinationId}/${from}/${to}`;

/** The message of a job's chunk after `after`; throws for a target that does not fit its kind. */
export function jobMessage(job: { id: string; workspaceId: string; kind: string; target: string }, after: string | null): JobMessage {
  const base = { v: 1 as const, jobId: job.id, workspaceId: job.workspaceId, after };
  const parts = job.target.split("/");
  const message =
    job.kind === "audience-sync"
      ? { ...base, kind: job.kind, destinationId: parts[0], audienceId: parts[1] }
      : job.kind === "archive-replay"
        ? { ...base, kind: job.kind, destinationId: parts[0], from: parts[1], to: parts[2] }
        : job.kind === "privacy-export" || job.kind === "privacy-deletion"
          ? { ...base, kind: job.kind, requestId: job.target }
          : { ...base, kind: job.kind };
  return jobMessageSchema.parse(message);
}

export const firstChunk = (job: { id: string; workspaceId: string; kind: string; target: string }): JobMessage => jobMessage(job, null);

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
