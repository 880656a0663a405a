import type { Db } from "../db/client";
import type { audiences } from "../db/schema";
import { enqueueJob, errorText, type JobRow, recordJobError } from "../jobs/backfill";
import type { ShardedAudiences } from "../identity/sharding/audiences";
import type { Logger } from "../lib/logger";
import type { Audience } from "../segments/catalog";

/**
 * Segments and computed traits live in D1 (the source of truth) and are
 * evaluated by the workspace's identity object, which holds a copy (each of
 * its graph shards does: identity/sharding/audiences.ts). Every
 * change is committed to D1 first and then applied to the object; a backfill
 * job then brings existing profiles up to date. When the object cannot be
 * reached, the change stays committed and the maintenance cron applies it
 * (see maintenance/audience-sync.ts).
 */

export type AudienceRow = typeof audiences.$inferSelect;
/** Where a definition is put: every graph shard of the workspace. */
export type AudienceTarget = Pick<ShardedAudiences, "putAudience">;

export const audienceOf = (row: AudienceRow): Audience => ({ id: row.id, kind: row.kind, key: row.key, name: row.name, definition: row.definition, version: row.version }) as Audience;

/** Puts a definition to the object; throws when it cannot, or when the object refuses what D1 accepted. */
export async function putToObject(graph: AudienceTarget, audience: Audience): Promise<void> {
  const result = await graph.putAudience(audience);
  if (!result.ok) throw new Error(`the identity object refused the definition: ${result.errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`);
}

/**
 * Applies a committed change: the object gets the definition, then the
 * backfill job (when the definition changed) gets its first chunk. Returns the
 * job as it now stands: `failed`, with the reason, when the object could not
 * take the definition (the cron applies it and starts a new backfill).
 */
export async function applyAudience(env: Env, db: Db, graph: AudienceTarget, audience: Audience, job: JobRow | null, logger: Logger): Promise<JobRow | null> {
  try {
    await putToObject(graph, audience);
  } catch (error) {
    logger.error("saved audience not applied to the identity object; the maintenance cron applies it", { audienceId: audience.id, error: errorText(error) });
    if (!job) return null;
    return recordJobError(db, job.id, `the definition could not be applied to the workspace's profiles (${errorText(error)}); the maintenance cron applies it and starts a new backfill within 5 minutes`, "failed");
  }
  return job ? enqueueJob(db, env.JOBS_QUEUE, job) : null;
}
