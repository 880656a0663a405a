import { z } from "zod";
import type { PrivacyRequestKind, PrivacyRequestStatus } from "../db/privacy-schema";

/**
 * The privacy request rows (`privacy_requests`): read with raw SQL so the job
 * and the routes share one shape, with the JSON columns parsed, never trusted.
 */

/** What each store step reported: its status and counts (`privacy.md` lists them). */
export const storeReportSchema = z.object({
  status: z.enum(["pending", "done", "failed"]),
  counts: z.record(z.string(), z.number()).default({}),
  detail: z.string().optional(),
  at: z.number().optional(),
});
export type StoreReport = z.infer<typeof storeReportSchema>;

/** A deletion's outcome at one destination. `unsupported`: its API cannot delete a person. */
export const destinationReportSchema = z.object({
  name: z.string(),
  type: z.string(),
  status: z.enum(["pending", "retrying", "finished", "failed", "unsupported"]),
  attempts: z.number().int(),
  lastError: z.string().optional(),
  completedAt: z.number().optional(),
});
export type DestinationReport = z.infer<typeof destinationReportSchema>;

const storesSchema = z.record(z.string(), storeReportSchema);
const destinationsSchema = z.record(z.string(), destinationReportSchema);
const idsSchema = z.array(z.string());

export interface PrivacyRequest {
  id: string;
  workspaceId: string;
  kind: PrivacyRequestKind;
  status: PrivacyRequestStatus;
  subjectHint: string;
  subjectHash: string;
  profileIds: string[];
  identifierHashes: string[];
  jobId: string | null;
  stores: Record<string, StoreReport>;
  destinations: Record<string, DestinationReport>;
  resultKey: string | null;
  resultBytes: number | null;
  error: string | null;
  requestedBy: string;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

type Row = {
  id: string;
  workspace_id: string;
  kind: PrivacyRequestKind;
  status: PrivacyRequestStatus;
  subject_hint: string;
  subject_hash: string;
  profile_ids: string;
  identifier_hashes: string;
  job_id: string | null;
  stores: string;
  destinations: string;
  result_key: string | null;
  result_bytes: number | null;
  error: string | null;
  requested_by: string;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  job_status: string | null;
  job_error: string | null;
};

const SELECT = "SELECT r.*, j.status AS job_status, j.error AS job_error FROM privacy_requests r LEFT JOIN jobs j ON j.id = r.job_id";

/** A request whose job failed on its last retry has failed, whatever its last step recorded. */
const jobFailed = (row: Row) => row.job_status === "failed" && (row.status === "initialized" || row.status === "running");

const fromRow = (row: Row): PrivacyRequest => ({
  id: row.id,
  workspaceId: row.workspace_id,
  kind: row.kind,
  status: jobFailed(row) ? "failed" : row.status,
  subjectHint: row.subject_hint,
  subjectHash: row.subject_hash,
  profileIds: idsSchema.parse(JSON.parse(row.profile_ids)),
  identifierHashes: idsSchema.parse(JSON.parse(row.identifier_hashes)),
  jobId: row.job_id,
  stores: storesSchema.parse(JSON.parse(row.stores)),
  destinations: destinationsSchema.parse(JSON.parse(row.destinations)),
  resultKey: row.result_key,
  resultBytes: row.result_bytes,
  error: jobFailed(row) ? (row.job_error ?? row.error) : row.error,
  requestedBy: row.requested_by,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  finishedAt: row.finished_at,
});

export async function getPrivacyRequest(db: D1Database, id: string): Promise<PrivacyRequest | null> {
  const row = await db.prepare(`${SELECT} WHERE r.id = ?1`).bind(id).first<Row>();
  return row ? fromRow(row) : null;
}

/** A workspace's requests of one kind, newest first, paged by (created_at, id). */
export async function listPrivacyRequests(db: D1Database, workspaceId: string, kind: PrivacyRequestKind, limit: number, before?: { createdAt: number; id: string }) {
  const { results } = await db
    .prepare(
      `${SELECT} WHERE r.workspace_id = ?1 AND r.kind = ?2 AND (?3 IS NULL OR r.created_at < ?3 OR (r.created_at = ?3 AND r.id < ?4))
       ORDER BY r.created_at DESC, r.id DESC LIMIT ?5`,
    )
    .bind(workspaceId, kind, before?.createdAt ?? null, before?.id ?? "", limit + 1)
    .all<Row>();
  const page = results.slice(0, limit).map(fromRow);
  const last = page.at(-1);
  return { page, next: results.length > limit && last ? `${last.createdAt}.${last.id}` : null };
}

export type RequestUpdate = Partial<Pick<PrivacyRequest, "status" | "stores" | "destinations" | "resultKey" | "resultBytes" | "error" | "finishedAt">>;

/** Applies a step's outcome. A request that has ended is not changed again. */
export async function updatePrivacyRequest(db: D1Database, id: string, update: RequestUpdate, now = Date.now()): Promise<void> {
  const sets: string[] = ["updated_at = ?2"];
  const values: unknown[] = [id, now];
  const put = (column: string, value: unknown) => {
    values.push(value);
    sets.push(`${column} = ?${values.length}`);
  };
  if (update.status !== undefined) put("status", update.status);
  if (update.stores !== undefined) put("stores", JSON.stringify(update.stores));
  if (update.destinations !== undefined) put("destinations", JSON.stringify(update.destinations));
  if (update.resultKey !== undefined) put("result_key", update.resultKey);
  if (update.resultBytes !== undefined) put("result_bytes", update.resultBytes);
  if (update.error !== undefined) put("error", update.error);
  if (update.finishedAt !== undefined) put("finished_at", update.finishedAt);
  await db
    .prepare(`UPDATE privacy_requests SET ${sets.join(", ")} WHERE id = ?1 AND status IN ('initialized', 'running')`)
    .bind(...values)
    .run();
}
