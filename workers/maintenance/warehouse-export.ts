import { exportEventsHour, type ExportEventsOptions } from "../export/events";
import { dayOf, hourOf } from "../export/layout";
import { exportProfilesSnapshot } from "../export/profiles";
import { MAX_ATTEMPTS } from "../export/registry";
import { createLogger, errorFields } from "../lib/logger";

/** An hour is exported once it ended this long ago: the events queue retries a failing batch for up to ~20 minutes. */
export const EXPORT_GRACE_MS = 20 * 60_000;
/** Hours the cron looks back for hours not exported yet, or whose archive changed since. Older hours: `POST /admin/v1/exports`. */
export const EXPORT_LOOKBACK_HOURS = 7 * 24;
/** Work per cron run (every 5 minutes): a backlog of hours drains at 12 per run, 144 an hour. */
export const MAX_EVENT_HOURS_PER_RUN = 12;
export const MAX_PROFILE_FILES_PER_RUN = 10;

export interface WarehouseExportLimits {
  eventHours?: number;
  profileFiles?: number;
  rowsPerFile?: number;
}

export interface PendingHour {
  workspaceId: string;
  hour: string;
}

/**
 * Completed hours (within the look-back) of existing workspaces with archived
 * events that were never exported, or whose archive objects changed since
 * their export (late or rewritten objects), or whose export failed fewer than
 * MAX_ATTEMPTS times; oldest first.
 */
export async function pendingEventHours(d1: D1Database, now: Date): Promise<PendingHour[]> {
  const last = hourOf(now.getTime() - EXPORT_GRACE_MS - 3_600_000);
  const first = hourOf(now.getTime() - EXPORT_LOOKBACK_HOURS * 3_600_000);
  // `workspace_id IN (…)` lets each workspace's range use the (workspace_id, hour) index.
  const [archived, exported] = await d1.batch<Record<string, unknown>>([
    d1
      .prepare(
        `SELECT workspace_id, hour, count(*) || ':' || sum(event_count) || ':' || sum(bytes) AS fingerprint
         FROM archive_objects WHERE workspace_id IN (SELECT id FROM workspaces) AND hour >= ?1 AND hour <= ?2
         GROUP BY workspace_id, hour`,
      )
      .bind(first, last),
    d1
      .prepare("SELECT workspace_id, period, status, source_fingerprint, attempts FROM warehouse_exports WHERE kind = 'events' AND period >= ?1 AND period <= ?2")
      .bind(first, last),
  ]);
  const done = new Map<string, { status: string; fingerprint: string | null; attempts: number }>();
  for (const row of exported!.results as { workspace_id: string; period: string; status: string; source_fingerprint: string | null; attempts: number }[]) {
    done.set(`${row.workspace_id}\u0000${row.period}`, { status: row.status, fingerprint: row.source_fingerprint, attempts: row.attempts });
  }
  const pending: PendingHour[] = [];
  for (const row of archived!.results as { workspace_id: string; hour: string; fingerprint: string }[]) {
    const previous = done.get(`${row.workspace_id}\u0000${row.hour}`);
    const due =
      !previous ||
      (previous.status === "failed" ? previous.attempts < MAX_ATTEMPTS : previous.status === "done" && previous.fingerprint !== row.fingerprint);
    if (due) pending.push({ workspaceId: row.workspace_id, hour: row.hour });
  }
  return pending.sort((a, b) => a.hour.localeCompare(b.hour) || a.workspaceId.localeCompare(b.workspaceId));
}

/**
 * The warehouse export's share of the maintenance cron: a bounded number of
 * completed event hours, then the day's profile snapshots (resumed across runs
 * when a workspace needs more files than one run writes). A failing export is
 * recorded and logged, and the rest go on.
 */
export async function runWarehouseExport(env: Env, now: Date, limits: WarehouseExportLimits = {}) {
  const logger = createLogger({ job: "warehouse-export", at: now.toISOString() });
  const options: ExportEventsOptions = { now, ...(limits.rowsPerFile ? { rowsPerFile: limits.rowsPerFile } : {}) };
  const summary = { eventHours: 0, eventRows: 0, profileSnapshots: 0, profileFiles: 0, failures: 0 };

  for (const { workspaceId, hour } of (await pendingEventHours(env.DB, now)).slice(0, limits.eventHours ?? MAX_EVENT_HOURS_PER_RUN)) {
    try {
      const result = await exportEventsHour(env, workspaceId, hour, options);
      summary.eventHours++;
      summary.eventRows += result.rowCount;
    } catch (error) {
      summary.failures++;
      logger.error("warehouse export of an events hour failed", { workspaceId, hour, ...errorFields(error) });
    }
  }

  const day = dayOf(now.getTime());
  let budget = limits.profileFiles ?? MAX_PROFILE_FILES_PER_RUN;
  const { results: workspaces } = await env.DB.prepare(
    `SELECT w.id AS id, e.status AS status, e.attempts AS attempts, json_array_length(e.files) AS files FROM workspaces w
     LEFT JOIN warehouse_exports e ON e.workspace_id = w.id AND e.kind = 'profiles' AND e.period = ?1 ORDER BY w.id`,
  )
    .bind(day)
    .all<{ id: string; status: string | null; attempts: number | null; files: number | null }>();
  for (const workspace of workspaces) {
    if (budget <= 0) break;
    if (workspace.status === "done" || (workspace.status === "failed" && (workspace.attempts ?? 0) >= MAX_ATTEMPTS)) continue;
    try {
      // A running snapshot resumes with the files it has; any other starts over.
      const before = workspace.status === "running" ? (workspace.files ?? 0) : 0;
      const result = await exportProfilesSnapshot(env, workspace.id, day, {
        now,
        maxFiles: budget,
        ...(limits.rowsPerFile ? { rowsPerFile: limits.rowsPerFile } : {}),
      });
      const written = result.files.length - before;
      budget -= Math.max(1, written);
      summary.profileFiles += written;
      if (result.status === "done") summary.profileSnapshots++;
    } catch (error) {
      summary.failures++;
      budget--;
      logger.error("warehouse export of a profiles snapshot failed", { workspaceId: workspace.id, day, ...errorFields(error) });
    }
  }
  return summary;
}
