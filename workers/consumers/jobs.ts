import { audiencesFor } from "../identity/sharding/audiences";
import { BACKFILL_CHUNK, type JobMessage, jobMessageSchema, sendJobMessage } from "../jobs/backfill";
import { type ChunkResult, JobStopped, runArchiveReplay, runAudienceSync } from "../jobs/destination-jobs";
import { runPrivacyJob } from "../jobs/privacy-jobs";
import { DeletionPending } from "../privacy/deletion-job";
import { createLogger, errorFields, type Logger } from "../lib/logger";
import { fieldErrors } from "../lib/problem";
import { retryDelaySeconds } from "./events";

/** Mirrors `max_retries` of the jobs queue consumers in wrangler.toml: the attempt after the last retry is final. */
export const JOB_MAX_RETRIES = 10;

type JobRow = { workspaceId: string; status: string; cursor: string | null };

/**
 * Consumes the jobs queue: one chunk of a job per message (a backfill, an
 * audience sync or an archive replay, by `kind`). Messages are
 * handled one by one, each acknowledged or retried (with backoff) on its own.
 *
 * A job's chain of messages is kept exactly-once in effect by the job's
 * `cursor`, the profile id its recorded progress has reached (null: none yet):
 * - a message starting at the cursor runs its chunk, enqueues the next chunk
 *   and then records its progress, moving the cursor only from where it started,
 *   so a redelivery or a duplicate counts once;
 * - a message behind the cursor (its chunk is recorded, and its successor was
 *   enqueued before that) is a duplicate and is dropped;
 * - a message ahead of the cursor was enqueued by a chunk whose progress is not
 *   recorded yet: it waits (a retry) rather than being lost.
 * Chunks are idempotent (a backfill's in the identity object; a sync's or a
 * replay's deliveries by their deterministic ids), so running one twice is only work.
 */
export async function consumeJobs(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const logger = createLogger({ queue: batch.queue, messages: batch.messages.length });
  // Two copies of one message in a batch would run side by side and both enqueue a successor: the first stands for both.
  const seen = new Map<string, Message<unknown>>();
  const work: Promise<void>[] = [];
  for (const message of batch.messages) {
    const parsed = jobMessageSchema.safeParse(message.body);
    if (!parsed.success) {
      // It can never succeed: log it for a person to look at, and move on.
      logger.error("malformed job message acknowledged and dropped", { id: message.id, body: message.body, errors: fieldErrors(parsed.error.issues) });
      message.ack();
      continue;
    }
    const key = `${parsed.data.jobId}\u0000${parsed.data.after ?? ""}`;
    if (seen.has(key)) {
      message.ack();
      continue;
    }
    seen.set(key, message);
    work.push(handle(env, message, parsed.data, logger.child({ jobId: parsed.data.jobId, workspaceId: parsed.data.workspaceId })));
  }
  await Promise.all(work);
}

class NotYourTurn extends Error {}

async function handle(env: Env, message: Message<unknown>, job: JobMessage, logger: Logger) {
  try {
    await runChunk(env, job, logger);
    message.ack();
  } catch (error) {
    if (error instanceof JobStopped) {
      // Retrying cannot help (the destination is gone, or no longer wants it): the job fails now.
      logger.warn("job stopped; the job has failed", { ...errorFields(error), after: job.after });
      await recordFailure(env.DB, job.jobId, error, true).catch((cause) => logger.error("could not record the job's failure", errorFields(cause)));
      message.ack();
      return;
    }
    const final = message.attempts > JOB_MAX_RETRIES;
    if (error instanceof NotYourTurn && !final) {
      logger.info("job chunk waits for the chunk before it to be recorded", { after: job.after, attempts: message.attempts });
    } else if (error instanceof DeletionPending && !final) {
      // Expected while a destination is failing: the step sends again, with backoff, to the ones still pending.
      logger.warn("deletion calls pending; the step runs again", { detail: error.message, attempts: message.attempts });
      await recordFailure(env.DB, job.jobId, error, false).catch((cause) => logger.error("could not record the job's state", errorFields(cause)));
    } else {
      logger.error(final ? "job chunk failed for the last time; the job has failed" : "job chunk failed; retrying", { ...errorFields(error), after: job.after, attempts: message.attempts });
      await recordFailure(env.DB, job.jobId, error, final).catch((cause) => logger.error("could not record the job's failure", errorFields(cause)));
    }
    message.retry({ delaySeconds: error instanceof NotYourTurn ? 1 : retryDelaySeconds(message.attempts) });
  }
}

async function runChunk(env: Env, job: JobMessage, logger: Logger) {
  const row = await env.DB.prepare("SELECT workspace_id AS workspaceId, status, cursor FROM jobs WHERE id = ?1").bind(job.jobId).first<JobRow>();
  if (!row) {
    logger.warn("job message for a job that does not exist dropped");
    return;
  }
  if (row.status === "succeeded" || row.status === "failed") return;
  const position = (cursor: string | null) => cursor ?? "";
  if (position(job.after) > position(row.cursor)) throw new NotYourTurn(`job '${job.jobId}' has not recorded the chunk before '${job.after}' yet`);
  if (job.after !== row.cursor) return;

  // The job's own workspace, whatever the message says.
  const chunk = await runKind(env, { ...job, workspaceId: row.workspaceId });
  const now = Date.now();
  if (chunk.next !== null) {
    // Enqueued before the progress is recorded: a failure in between repeats the chunk, never loses its successor.
    await sendJobMessage(env.JOBS_QUEUE, { ...job, workspaceId: row.workspaceId, after: chunk.next });
    await env.DB.prepare(
      "UPDATE jobs SET status = 'running', processed = processed + ?1, total = ?2, cursor = ?3, error = NULL, updated_at = ?4 WHERE id = ?5 AND cursor IS ?6 AND status IN ('queued', 'running')",
    )
      .bind(chunk.processed, chunk.total, chunk.next, now, job.jobId, job.after)
      .run();
  } else {
    await env.DB.prepare(
      "UPDATE jobs SET status = 'succeeded', processed = processed + ?1, total = ?2, error = NULL, updated_at = ?3, finished_at = ?3 WHERE id = ?4 AND cursor IS ?5 AND status IN ('queued', 'running')",
    )
      .bind(chunk.processed, chunk.total, now, job.jobId, job.after)
      .run();
  }
  logger.info("job chunk done", { kind: job.kind, after: job.after, processed: chunk.processed, total: chunk.total, next: chunk.next, ...("changed" in chunk ? { changed: chunk.changed } : { sent: chunk.sent }) });
}

function runKind(env: Env, job: JobMessage): Promise<ChunkResult | { processed: number; total: number; next: string | null; changed: number }> {
  switch (job.kind) {
    case "backfill":
      // Over every graph shard, one profile id order: the cursor stays a profile id (identity/sharding/audience-backfill.ts).
      return audiencesFor(env, job.workspaceId).backfillAudiences(job.after, BACKFILL_CHUNK);
    case "audience-sync":
      return runAudienceSync(env, job);
    case "archive-replay":
      return runArchiveReplay(env, job);
    case "privacy-export":
    case "privacy-deletion":
      return runPrivacyJob(env, job);
  }
}

/** The error is shown on the job while it retries; the last attempt's failure fails the job (its message goes to the dead-letter queue). */
async function recordFailure(db: D1Database, jobId: string, error: unknown, final: boolean) {
  const detail = error instanceof Error ? error.message : String(error);
  const now = Date.now();
  await db
    .prepare(
      `UPDATE jobs SET error = ?1, updated_at = ?2, status = CASE WHEN ?3 THEN 'failed' ELSE status END, finished_at = CASE WHEN ?3 THEN ?2 ELSE finished_at END
       WHERE id = ?4 AND status IN ('queued', 'running')`,
    )
    .bind(detail.slice(0, 1000), now, final ? 1 : 0, jobId)
    .run();
}
