import { systemAuditStatement } from "../admin/audit";
import { archiveHour } from "../archive/layout";
import { pruneEventsOnEveryShard, setEventRetentionOnEveryShard } from "../identity/sharding/event-retention";
import { createLogger, errorFields } from "../lib/logger";
import { DEFAULT_PRIVACY_SETTINGS, type PrivacySettings, privacySettingsSchema, type RetentionKind, retentionSchema } from "../privacy/settings";

/**
 * Retention per workspace and data type, enforced by the maintenance cron.
 * Each run deletes at most a fixed amount per data type per workspace, so a
 * backlog (the first run, a shortened period) drains over the following runs
 * instead of holding D1's write lock or running past the cron's time limit.
 */

export interface RetentionLimits {
  /** D1 rows per table (events, delivery log, audit log). */
  rows: number;
  /** R2 archive objects, each with its `archive_objects` row and `archive_index` rows. */
  archiveObjects: number;
}

/**
 * With the cron every 5 minutes, 288 runs a day: up to 1.44 M rows per table and
 * 288 K archive objects (about 28 M events at 100 per object) per workspace a day.
 */
export const RETENTION_LIMITS: RetentionLimits = { rows: 5_000, archiveObjects: 1_000 };

/** Keys per R2 delete call and per D1 batch: one batch stays small however many people an object indexes. */
const ARCHIVE_CHUNK = 100;

export const DAY_MS = 86_400_000;
export const RETENTION_KINDS = Object.keys(retentionSchema.shape) as RetentionKind[];
export const RETENTION_ACTOR = "system:retention" as const;

export interface WorkspaceRetention {
  /** Per data type with a period: how many went (archive: objects). Types kept forever are absent. */
  deleted: Partial<Record<RetentionKind, number>>;
  /** Types that reached the run's limit: the next run continues with them. */
  backlog: RetentionKind[];
  failed: RetentionKind[];
}

export interface RetentionRun {
  workspaces: Record<string, WorkspaceRetention>;
  deleted: Record<RetentionKind, number>;
  /** Workspaces with a backlog left for the next run. */
  backlog: number;
  /** Data types (per workspace) that failed, and workspaces whose stored settings would not parse. */
  failures: number;
}

interface Step {
  deleted: number;
  more: boolean;
}

type RetentionEnv = Pick<Env, "DB" | "ARCHIVE" | "IDENTITY">;

/** Deletes, in every workspace, what is older than the workspace's retention allows (its settings, or the defaults). */
export async function enforceRetention(env: RetentionEnv, now: Date, limits: RetentionLimits = RETENTION_LIMITS): Promise<RetentionRun> {
  const logger = createLogger({ task: "retention" });
  const run: RetentionRun = { workspaces: {}, deleted: Object.fromEntries(RETENTION_KINDS.map((kind) => [kind, 0])) as Record<RetentionKind, number>, backlog: 0, failures: 0 };
  const { results } = await env.DB.prepare(
    "SELECT w.id AS id, p.settings AS settings FROM workspaces w LEFT JOIN privacy_settings p ON p.workspace_id = w.id ORDER BY w.id",
  ).all<{ id: string; settings: string | null }>();

  for (const row of results) {
    const settings = parseStored(row.settings);
    if (!settings) {
      // Falling back to the defaults could delete what the workspace chose to keep longer.
      logger.error("workspace skipped: its stored privacy settings do not parse", { workspaceId: row.id });
      run.failures += 1;
      continue;
    }
    const result = await enforceForWorkspace(env, row.id, settings, now, limits);
    run.workspaces[row.id] = result;
    for (const [kind, count] of Object.entries(result.deleted) as [RetentionKind, number][]) run.deleted[kind] += count;
    if (result.backlog.length > 0) run.backlog += 1;
    run.failures += result.failed.length;
  }
  return run;
}

function parseStored(json: string | null): PrivacySettings | null {
  if (json === null) return DEFAULT_PRIVACY_SETTINGS;
  try {
    const parsed = privacySettingsSchema.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

async function enforceForWorkspace(env: RetentionEnv, workspaceId: string, settings: PrivacySettings, now: Date, limits: RetentionLimits): Promise<WorkspaceRetention> {
  const logger = createLogger({ task: "retention", workspaceId });
  const steps: Record<RetentionKind, (cutoff: number) => Promise<Step>> = {
    archive: async (cutoff) => {
      const archive = await pruneArchive(env, workspaceId, cutoff, limits.archiveObjects);
      const warehouse = await pruneWarehouse(env, workspaceId, cutoff, limits.archiveObjects);
      return { deleted: archive.deleted + warehouse.deleted, more: archive.more || warehouse.more };
    },
    events: (cutoff) => deleteRows(env.DB, "profile_events", "timestamp", workspaceId, cutoff, limits.rows),
    objectEvents: (cutoff) => pruneObjectEvents(env, workspaceId, cutoff),
    // A delivery still being retried is in flight: its row is the retry's bookkeeping, so it waits until it settles.
    deliveryLog: (cutoff) => deleteRows(env.DB, "deliveries", "created_at", workspaceId, cutoff, limits.rows, "status <> 'retrying'"),
    auditLog: (cutoff) => deleteRows(env.DB, "audit_log", "created_at", workspaceId, cutoff, limits.rows),
    accessExports: (cutoff) => expireAccessExports(env, workspaceId, cutoff, limits.archiveObjects),
  };

  const result: WorkspaceRetention = { deleted: {}, backlog: [], failed: [] };
  const cutoffs: Partial<Record<RetentionKind, string>> = {};
  try {
    await tellObjectItsPeriod(env, workspaceId, settings.retention.objectEvents);
  } catch (error) {
    logger.error("the identity object was not told its event retention", errorFields(error));
    result.failed.push("objectEvents");
  }
  for (const kind of RETENTION_KINDS) {
    const days = settings.retention[kind];
    if (days === null) continue;
    const cutoff = now.getTime() - days * DAY_MS;
    cutoffs[kind] = new Date(cutoff).toISOString();
    try {
      const step = await steps[kind](cutoff);
      result.deleted[kind] = step.deleted;
      if (step.more) result.backlog.push(kind);
    } catch (error) {
      // One store failing (an object being redeployed, say) leaves the others to do their part; the next run retries it.
      logger.error("retention step failed", { kind, ...errorFields(error) });
      if (!result.failed.includes(kind)) result.failed.push(kind);
    }
  }

  try {
    const swept = await sweepAbandonedWork(env, workspaceId, now.getTime());
    if (swept) logger.warn("removed the work of privacy requests whose jobs failed", { objects: swept });
  } catch (error) {
    logger.error("could not sweep abandoned privacy work", errorFields(error));
  }

  const total = Object.values(result.deleted).reduce((sum, n) => sum + n, 0);
  if (total > 0) {
    const details = { deleted: result.deleted, cutoffs, backlog: result.backlog, ...(result.failed.length > 0 ? { failed: result.failed } : {}) };
    await systemAuditStatement(env.DB, { workspaceId, actor: RETENTION_ACTOR, action: "privacy.retention.enforced", target: workspaceId, details, at: now.getTime() }).run();
  }
  return result;
}

/**
 * R2 first, then D1: an object deleted whose rows remain is found again and
 * finished by the next run, whereas rows deleted first would leave an object
 * nothing lists any more, kept forever.
 */
async function pruneArchive(env: RetentionEnv, workspaceId: string, cutoff: number, limit: number): Promise<Step> {
  // An object holds the events received in its hour: it goes once the whole hour is past the cutoff.
  const cutoffHour = archiveHour(new Date(cutoff).toISOString());
  const { results } = await env.DB.prepare("SELECT key FROM archive_objects WHERE workspace_id = ?1 AND hour < ?2 ORDER BY hour, key LIMIT ?3")
    .bind(workspaceId, cutoffHour, limit)
    .all<{ key: string }>();
  const keys = results.map((r) => r.key);
  for (let i = 0; i < keys.length; i += ARCHIVE_CHUNK) {
    const chunk = keys.slice(i, i + ARCHIVE_CHUNK);
    await env.ARCHIVE.delete(chunk);
    const json = JSON.stringify(chunk);
    await env.DB.batch([
      env.DB.prepare("DELETE FROM archive_index WHERE workspace_id = ?1 AND object_key IN (SELECT value FROM json_each(?2))").bind(workspaceId, json),
      env.DB.prepare("DELETE FROM archive_objects WHERE workspace_id = ?1 AND key IN (SELECT value FROM json_each(?2))").bind(workspaceId, json),
    ]);
  }
  return { deleted: keys.length, more: keys.length >= limit };
}

/**
 * The warehouse export is built from the archive and follows its period: a
 * Parquet partition (an events hour, a profiles snapshot day) goes with its
 * files once it is past the cutoff, so no copy of an event outlives the
 * archive it came from (nor escapes a deletion, which finds files through the archive).
 */
async function pruneWarehouse(env: RetentionEnv, workspaceId: string, cutoff: number, limit: number): Promise<Step> {
  const cutoffHour = archiveHour(new Date(cutoff).toISOString());
  const { results } = await env.DB.prepare(
    `SELECT kind, period, files FROM warehouse_exports WHERE workspace_id = ?1 AND status <> 'running'
       AND ((kind = 'events' AND period < ?2) OR (kind = 'profiles' AND period < ?3)) ORDER BY period LIMIT ?4`,
  )
    .bind(workspaceId, cutoffHour, cutoffHour.slice(0, 10), limit)
    .all<{ kind: string; period: string; files: string }>();
  let files = 0;
  for (const row of results) {
    const keys = (JSON.parse(row.files) as { key: string }[]).map((file) => file.key);
    for (let i = 0; i < keys.length; i += ARCHIVE_CHUNK) await env.ARCHIVE.delete(keys.slice(i, i + ARCHIVE_CHUNK));
    await env.DB.prepare("DELETE FROM warehouse_exports WHERE workspace_id = ?1 AND kind = ?2 AND period = ?3").bind(workspaceId, row.kind, row.period).run();
    files += keys.length;
  }
  return { deleted: files, more: results.length >= limit };
}

/**
 * A privacy request's clear-text work object is removed when its job ends; one
 * whose job failed for good is removed here, a week on.
 */
export const ABANDONED_WORK_MS = 7 * DAY_MS;

async function sweepAbandonedWork(env: RetentionEnv, workspaceId: string, now: number): Promise<number> {
  const listed = await env.ARCHIVE.list({ prefix: `privacy/work/${workspaceId}/`, limit: 1000 });
  const stale = listed.objects.filter((object) => object.uploaded.getTime() < now - ABANDONED_WORK_MS).map((object) => object.key);
  if (stale.length) await env.ARCHIVE.delete(stale);
  return stale.length;
}

/** Drops the event payloads past the cutoff on every graph shard, each in one statement of its own storage: it reports no backlog. */
async function pruneObjectEvents(env: RetentionEnv, workspaceId: string, cutoff: number): Promise<Step> {
  return { deleted: await pruneEventsOnEveryShard(env, workspaceId, cutoff), more: false };
}

/**
 * The object also prunes on its own, daily, by the period it was last told. The
 * settings route tells it on a change; telling it on every run as well puts right
 * a change that could not reach it then.
 */
async function tellObjectItsPeriod(env: RetentionEnv, workspaceId: string, days: number | null): Promise<void> {
  // Every graph shard: each prunes the people it holds.
  const told = await setEventRetentionOnEveryShard(env, workspaceId, days);
  if (!told.ok) throw new Error(`the identity object refused the period: ${told.errors.map((e) => e.message).join("; ")}`);
}

/** Access-request documents past the period: the R2 object goes, the request row stays with a note of why its download is gone. */
async function expireAccessExports(env: RetentionEnv, workspaceId: string, cutoff: number, limit: number): Promise<Step> {
  const { results } = await env.DB.prepare(
    "SELECT id, result_key FROM privacy_requests WHERE workspace_id = ?1 AND kind = 'export' AND result_key IS NOT NULL AND finished_at < ?2 ORDER BY finished_at LIMIT ?3",
  )
    .bind(workspaceId, cutoff, limit)
    .all<{ id: string; result_key: string }>();
  if (!results.length) return { deleted: 0, more: false };
  await env.ARCHIVE.delete(results.map((r) => r.result_key));
  await env.DB.prepare("UPDATE privacy_requests SET result_key = NULL, result_bytes = NULL, error = 'the document expired under the workspace retention (accessExports)' WHERE id IN (SELECT value FROM json_each(?1))")
    .bind(JSON.stringify(results.map((r) => r.id)))
    .run();
  return { deleted: results.length, more: results.length >= limit };
}

type RetainedTable = "profile_events" | "deliveries" | "audit_log";

/** Table, column and condition are this file's constants, never input. */
async function deleteRows(db: D1Database, table: RetainedTable, timeColumn: "timestamp" | "created_at", workspaceId: string, cutoff: number, limit: number, also?: string): Promise<Step> {
  const where = `workspace_id = ?1 AND ${timeColumn} < ?2${also ? ` AND ${also}` : ""}`;
  const result = await db.prepare(`DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE ${where} LIMIT ?3)`).bind(workspaceId, cutoff, limit).run();
  const deleted = result.meta.changes ?? 0;
  return { deleted, more: deleted >= limit };
}
