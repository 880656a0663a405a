import { and, eq } from "drizzle-orm";
import { createDb } from "../db/client";
import { warehouseExports, type WarehouseExportFile, type WarehouseExportKind } from "../db/schema";

export type WarehouseExport = typeof warehouseExports.$inferSelect;

/** Failed runs after which the cron leaves an export alone until an admin runs it again (or, for events, its hour changes). */
export const MAX_ATTEMPTS = 3;

export async function getExport(d1: D1Database, workspaceId: string, kind: WarehouseExportKind, period: string): Promise<WarehouseExport | undefined> {
  return createDb(d1)
    .select()
    .from(warehouseExports)
    .where(and(eq(warehouseExports.workspaceId, workspaceId), eq(warehouseExports.kind, kind), eq(warehouseExports.period, period)))
    .get();
}

/** Inserts or replaces the export's row as a whole: each run owns its row. */
export async function saveExport(d1: D1Database, row: WarehouseExport): Promise<void> {
  const { workspaceId, kind, period, ...rest } = row;
  await createDb(d1)
    .insert(warehouseExports)
    .values(row)
    .onConflictDoUpdate({ target: [warehouseExports.workspaceId, warehouseExports.kind, warehouseExports.period], set: rest });
}

/** Records a failed run, keeping what the last good run wrote. */
export async function recordFailure(d1: D1Database, workspaceId: string, kind: WarehouseExportKind, period: string, error: unknown, now: Date): Promise<WarehouseExport> {
  const previous = await getExport(d1, workspaceId, kind, period);
  const message = error instanceof Error ? error.message : String(error);
  const row: WarehouseExport = {
    workspaceId,
    kind,
    period,
    status: "failed",
    files: previous?.files ?? [],
    rowCount: previous?.rowCount ?? 0,
    bytes: previous?.bytes ?? 0,
    sourceFingerprint: previous?.sourceFingerprint ?? null,
    cursor: null,
    attempts: (previous?.status === "failed" ? previous.attempts : 0) + 1,
    error: message.slice(0, 1_000),
    startedAt: previous?.startedAt ?? now,
    finishedAt: now,
  };
  await saveExport(d1, row);
  return row;
}

/** Deletes every object under `prefix` that this run did not write: parts left over from a larger earlier export. */
export async function deleteStale(bucket: R2Bucket, prefix: string, written: WarehouseExportFile[]): Promise<string[]> {
  const keep = new Set(written.map((file) => file.key));
  const stale: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, cursor });
    for (const object of page.objects) if (!keep.has(object.key)) stale.push(object.key);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  // R2 deletes up to 1,000 keys per call.
  for (let i = 0; i < stale.length; i += 1_000) await bucket.delete(stale.slice(i, i + 1_000));
  return stale;
}

export const PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet";
