import { z } from "zod";
import type { WarehouseExportKind } from "../../db/schema";
import { encodePartitionValue, eventsPrefix, WAREHOUSE_PREFIX } from "../../export/layout";
import { text } from "../../export/parquet";
import { listAll } from "./objects";
import { anyRowMatches, type ParquetRewrite, type ParquetRow, rewriteParquet } from "./parquet";
import { isTheirEvent, type Person } from "./subject";

export interface WarehouseReport {
  filesRewritten: number;
  filesDeleted: number;
  rowsRemoved: number;
}

/** An `events` row in the shape of the archived event it was exported from, for the same rule. */
const eventOfRow = (row: ParquetRow): Record<string, unknown> => ({
  messageId: row.message_id,
  userId: row.user_id,
  anonymousId: row.anonymous_id,
  previousId: row.previous_id,
  traits: row.traits,
  context: row.context,
});

const isTheirProfile = (person: Person, row: ParquetRow) => {
  const has = (set: ReadonlySet<string>, value: string | null) => value !== null && set.has(value);
  return (
    has(person.profileIds, text(row.profile_id)) ||
    has(person.values, text(row.user_id)) ||
    has(person.values, text(row.phone)) ||
    has(person.lowered, text(row.email)?.toLowerCase() ?? null)
  );
};

/** The columns that decide whether a snapshot holds them; the JSON columns, most of a file's bytes, are read only when it does. */
const PROFILE_KEY_COLUMNS = ["profile_id", "user_id", "email", "phone"];

const filesSchema = z.array(z.object({ key: z.string(), rows: z.number(), bytes: z.number() }));

interface Fingerprints {
  before: Map<string, string>;
  after: Map<string, string>;
}

/**
 * Brings an export's `warehouse_exports` row in line with its rewritten
 * files. An events export that had read exactly the archive as it was before
 * the erasure gets the rewritten archive's fingerprint: its files now hold
 * what a new export would, so the cron need not export the hour again. Only
 * the row as it was read is changed: an export that replaced it meanwhile
 * wrote its own, later, files.
 */
async function updateExport(db: D1Database, workspaceId: string, kind: WarehouseExportKind, period: string, changes: Map<string, ParquetRewrite>, fingerprints?: Fingerprints) {
  const row = await db
    .prepare("SELECT files, source_fingerprint FROM warehouse_exports WHERE workspace_id = ?1 AND kind = ?2 AND period = ?3")
    .bind(workspaceId, kind, period)
    .first<{ files: string; source_fingerprint: string | null }>();
  if (!row) return;
  const files = filesSchema.parse(JSON.parse(row.files)).flatMap((file) => {
    const change = changes.get(file.key);
    if (!change) return [file];
    return change.deleted ? [] : [{ key: file.key, rows: change.rows, bytes: change.bytes }];
  });
  const before = fingerprints?.before.get(period);
  const fingerprint = before !== undefined && row.source_fingerprint === before ? (fingerprints!.after.get(period) ?? before) : row.source_fingerprint;
  const filesText = JSON.stringify(files);
  if (filesText === row.files && fingerprint === row.source_fingerprint) return;
  await db
    .prepare(
      "UPDATE warehouse_exports SET files = ?4, row_count = ?5, bytes = ?6, source_fingerprint = ?7 WHERE workspace_id = ?1 AND kind = ?2 AND period = ?3 AND files = ?8",
    )
    .bind(workspaceId, kind, period, filesText, files.reduce((sum, f) => sum + f.rows, 0), files.reduce((sum, f) => sum + f.bytes, 0), fingerprint, row.files)
    .run();
}

function count(report: WarehouseReport, changes: Map<string, ParquetRewrite>, key: string, change: ParquetRewrite | null) {
  if (!change?.removed) return;
  changes.set(key, change);
  report.rowsRemoved += change.removed;
  report[change.deleted ? "filesDeleted" : "filesRewritten"]++;
}

/**
 * Removes their rows from the warehouse: the `events` files of the given
 * hours (the archive's partitioning, so the hours their archived events were
 * in), and every `profiles` snapshot of the workspace, which hold a copy of
 * their profile for each day it was live. Files are found by listing R2, not
 * the registry, so a part a failed export left behind is not missed.
 */
export async function eraseWarehouse(env: Pick<Env, "ARCHIVE" | "DB">, workspaceId: string, person: Person, hours: string[], fingerprints: Fingerprints): Promise<WarehouseReport> {
  const report: WarehouseReport = { filesRewritten: 0, filesDeleted: 0, rowsRemoved: 0 };
  for (const hour of hours) {
    const changes = new Map<string, ParquetRewrite>();
    for (const object of await listAll(env.ARCHIVE, eventsPrefix(workspaceId, hour))) {
      count(report, changes, object.key, await rewriteParquet(env.ARCHIVE, object.key, (row) => isTheirEvent(person, eventOfRow(row))));
    }
    await updateExport(env.DB, workspaceId, "events", hour, changes, fingerprints);
  }

  const { results } = await env.DB.prepare("SELECT period, status FROM warehouse_exports WHERE workspace_id = ?1 AND kind = 'profiles'")
    .bind(workspaceId)
    .all<{ period: string; status: string }>();
  const statusOf = new Map(results.map((row) => [row.period, row.status]));
  const byDay = new Map<string, Map<string, ParquetRewrite>>();
  for (const object of await listAll(env.ARCHIVE, `${WAREHOUSE_PREFIX}profiles/workspace_id=${encodePartitionValue(workspaceId)}/`)) {
    const day = /\/date=(\d{4}-\d{2}-\d{2})\//.exec(object.key)?.[1];
    if (!day || !(await anyRowMatches(env.ARCHIVE, object, PROFILE_KEY_COLUMNS, (row) => isTheirProfile(person, row)))) continue;
    // A snapshot still being written names its next part by how many it has: an emptied part stays, with no rows.
    const change = await rewriteParquet(env.ARCHIVE, object.key, (row) => isTheirProfile(person, row), statusOf.get(day) === "running");
    const changes = byDay.get(day) ?? new Map<string, ParquetRewrite>();
    byDay.set(day, changes);
    count(report, changes, object.key, change);
  }
  for (const [day, changes] of byDay) if (changes.size) await updateExport(env.DB, workspaceId, "profiles", day, changes);
  return report;
}
