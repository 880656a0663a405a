import type { WarehouseExportFile } from "../db/schema";
import { partName, profilesPrefix } from "./layout";
import { type ColumnSpec, writeParquet } from "./parquet";
import { deleteStale, getExport, PARQUET_CONTENT_TYPE, recordFailure, saveExport, type WarehouseExport } from "./registry";
import type { ProfilesTableRow } from "../db/rows";

/** Profiles per Parquet file; a larger workspace gets `part-00000`, `part-00001`, … */
export const PROFILE_ROWS_PER_FILE = 20_000;

/** Profiles per D1 read: keyset pages on the primary key, three bound parameters each. */
const PAGE = 1_000;

type ProfileRow = Pick<
  ProfilesTableRow,
  "profile_id" | "user_id" | "email" | "phone" | "first_name" | "last_name" | "created_at" | "first_seen_at" | "last_seen_at" | "updated_at" | "traits" | "computed_traits" | "segments"
>;

/** D1 holds these as JSON text; the writer takes values (and writes them back as JSON). Text that does not parse stays a JSON string. */
function parsed(textValue: string | null): unknown {
  if (textValue === null) return null;
  try {
    return JSON.parse(textValue);
  } catch {
    return textValue;
  }
}

/** The `profiles` table. Its partition columns (`workspace_id`, `date`) are in the path. */
export const PROFILE_COLUMNS: ColumnSpec<ProfileRow>[] = [
  { name: "profile_id", kind: "string", required: true, value: (r) => r.profile_id },
  { name: "user_id", kind: "string", value: (r) => r.user_id },
  { name: "email", kind: "string", value: (r) => r.email },
  { name: "phone", kind: "string", value: (r) => r.phone },
  { name: "first_name", kind: "string", value: (r) => r.first_name },
  { name: "last_name", kind: "string", value: (r) => r.last_name },
  { name: "created_at", kind: "timestamp", required: true, value: (r) => r.created_at },
  { name: "first_seen_at", kind: "timestamp", value: (r) => r.first_seen_at },
  { name: "last_seen_at", kind: "timestamp", value: (r) => r.last_seen_at },
  { name: "updated_at", kind: "timestamp", required: true, value: (r) => r.updated_at },
  { name: "traits", kind: "json", required: true, value: (r) => parsed(r.traits) },
  { name: "computed_traits", kind: "json", required: true, value: (r) => parsed(r.computed_traits) },
  { name: "segments", kind: "json", required: true, value: (r) => parsed(r.segments) },
];

export interface ExportProfilesOptions {
  rowsPerFile?: number;
  /** Files this call may write; a snapshot that needs more stays `running` and the next call resumes it. */
  maxFiles?: number;
  /** Start the day's snapshot over even if one is running or done. */
  restart?: boolean;
  now?: Date;
}

/**
 * Writes (or continues) the day's snapshot of a workspace's live profiles
 * (`canonical_id IS NULL`) to `warehouse/profiles/workspace_id=…/date=…/`.
 * Profiles are read in profile id order in keyset pages, and files are cut at
 * `rowsPerFile`. After each file the progress is saved, so a snapshot larger
 * than one run's budget resumes where it stopped. When it completes, parts an
 * earlier snapshot of the same day left behind are deleted.
 */
export async function exportProfilesSnapshot(env: Pick<Env, "ARCHIVE" | "DB">, workspaceId: string, day: string, options: ExportProfilesOptions = {}): Promise<WarehouseExport> {
  const rowsPerFile = options.rowsPerFile ?? PROFILE_ROWS_PER_FILE;
  const maxFiles = options.maxFiles ?? Number.POSITIVE_INFINITY;
  const prefix = profilesPrefix(workspaceId, day);
  const previous = await getExport(env.DB, workspaceId, "profiles", day);
  if (previous?.status === "done" && !options.restart) return previous;
  const resume = previous?.status === "running" && !options.restart;
  const state: WarehouseExport = resume
    ? { ...previous! }
    : {
        workspaceId,
        kind: "profiles",
        period: day,
        status: "running",
        files: [],
        rowCount: 0,
        bytes: 0,
        sourceFingerprint: null,
        cursor: null,
        attempts: previous?.status === "failed" ? previous.attempts : 0,
        error: null,
        startedAt: options.now ?? new Date(),
        finishedAt: null,
      };
  try {
    for (let written = 0; state.status === "running" && written < maxFiles; written++) {
      const rows = await readProfiles(env.DB, workspaceId, state.cursor ?? "", rowsPerFile);
      if (rows.length) {
        const key = `${prefix}${partName(state.files.length)}`;
        const file = writeParquet(PROFILE_COLUMNS, rows, { "edge-cdp.table": "profiles", "edge-cdp.workspace_id": workspaceId, "edge-cdp.date": day });
        await env.ARCHIVE.put(key, file.body, {
          httpMetadata: { contentType: PARQUET_CONTENT_TYPE },
          customMetadata: { workspaceId, table: "profiles", date: day, rows: String(file.rows) },
        });
        const entry: WarehouseExportFile = { key, rows: file.rows, bytes: file.body.byteLength };
        state.files = [...state.files, entry];
        state.rowCount += entry.rows;
        state.bytes += entry.bytes;
        state.cursor = rows[rows.length - 1]!.profile_id;
      }
      if (rows.length < rowsPerFile) {
        await deleteStale(env.ARCHIVE, prefix, state.files);
        Object.assign(state, { status: "done", cursor: null, attempts: 0, finishedAt: new Date() } satisfies Partial<WarehouseExport>);
      }
      await saveExport(env.DB, state);
    }
    return state;
  } catch (error) {
    await recordFailure(env.DB, workspaceId, "profiles", day, error, new Date());
    throw error;
  }
}

async function readProfiles(d1: D1Database, workspaceId: string, after: string, limit: number): Promise<ProfileRow[]> {
  const rows: ProfileRow[] = [];
  while (rows.length < limit) {
    const want = Math.min(PAGE, limit - rows.length);
    const { results } = await d1
      .prepare(
        `SELECT profile_id, user_id, email, phone, first_name, last_name, created_at, first_seen_at, last_seen_at, updated_at, traits, computed_traits, segments
         FROM profiles WHERE workspace_id = ?1 AND canonical_id IS NULL AND profile_id > ?2 ORDER BY profile_id LIMIT ?3`,
      )
      .bind(workspaceId, rows.length ? rows[rows.length - 1]!.profile_id : after, want)
      .all<ProfileRow>();
    rows.push(...results);
    if (results.length < want) break;
  }
  return rows;
}
