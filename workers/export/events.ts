import { readArchiveObject } from "../archive/writer";
import type { WarehouseExportFile } from "../db/schema";
import { eventsPrefix, partName } from "./layout";
import { type ColumnSpec, epochMillis, text, writeParquet } from "./parquet";
import { deleteStale, PARQUET_CONTENT_TYPE, recordFailure, saveExport, type WarehouseExport } from "./registry";

/** Rows per Parquet file: an hour with more events is split into `part-00000`, `part-00001`, … */
export const EVENT_ROWS_PER_FILE = 20_000;

/** Message ids per `profile_events` lookup: one bound JSON array, so D1's 100-parameter limit never applies. */
const SOURCE_LOOKUP_CHUNK = 5_000;

interface EventRow {
  event: Record<string, unknown>;
  timestamp: number;
  receivedAt: number;
  sourceId: string | null;
}

const field = (name: string) => (row: EventRow) => text(row.event[name]);
const json = (name: string) => (row: EventRow) => row.event[name] ?? null;

/** The `events` table. Its partition columns (`workspace_id`, `date`, `hour`) are in the path. */
export const EVENT_COLUMNS: ColumnSpec<EventRow>[] = [
  { name: "message_id", kind: "string", required: true, value: field("messageId") },
  { name: "type", kind: "string", required: true, value: field("type") },
  { name: "event", kind: "string", value: field("event") },
  { name: "name", kind: "string", value: field("name") },
  { name: "category", kind: "string", value: field("category") },
  { name: "user_id", kind: "string", value: field("userId") },
  { name: "anonymous_id", kind: "string", value: field("anonymousId") },
  { name: "group_id", kind: "string", value: field("groupId") },
  { name: "previous_id", kind: "string", value: field("previousId") },
  { name: "timestamp", kind: "timestamp", required: true, value: (row) => row.timestamp },
  { name: "received_at", kind: "timestamp", required: true, value: (row) => row.receivedAt },
  { name: "sent_at", kind: "timestamp", value: (row) => epochMillis(row.event.sentAt) },
  { name: "original_timestamp", kind: "timestamp", value: (row) => epochMillis(row.event.originalTimestamp) },
  { name: "source_id", kind: "string", value: (row) => row.sourceId },
  { name: "properties", kind: "json", value: json("properties") },
  { name: "traits", kind: "json", value: json("traits") },
  { name: "context", kind: "json", value: json("context") },
];

interface ArchiveObjectRow {
  key: string;
  event_count: number;
  bytes: number;
}

/** `{objects}:{events}:{bytes}` of an hour's archive objects: changes whenever an object is added or rewritten. */
export const fingerprintOf = (objects: ArchiveObjectRow[]) =>
  `${objects.length}:${objects.reduce((sum, o) => sum + o.event_count, 0)}:${objects.reduce((sum, o) => sum + o.bytes, 0)}`;

export interface ExportEventsOptions {
  rowsPerFile?: number;
  now?: Date;
}

/**
 * Exports one workspace's archived events of one hour (by `receivedAt`, as the
 * archive partitions them) to `warehouse/events/workspace_id=…/date=…/hour=…/`.
 * Idempotent: the same archive gives the same keys and rows, each messageId
 * once; parts an earlier, larger export left behind are deleted. Records the
 * result in `warehouse_exports`, with the fingerprint of the archive objects it read.
 */
export async function exportEventsHour(env: Pick<Env, "ARCHIVE" | "DB">, workspaceId: string, hour: string, options: ExportEventsOptions = {}): Promise<WarehouseExport> {
  const now = options.now ?? new Date();
  const rowsPerFile = options.rowsPerFile ?? EVENT_ROWS_PER_FILE;
  try {
    const { results: objects } = await env.DB.prepare("SELECT key, event_count, bytes FROM archive_objects WHERE workspace_id = ?1 AND hour = ?2 ORDER BY key")
      .bind(workspaceId, hour)
      .all<ArchiveObjectRow>();
    const prefix = eventsPrefix(workspaceId, hour);
    const files: WarehouseExportFile[] = [];
    const seen = new Set<string>();
    let pending: EventRow[] = [];

    const flush = async () => {
      if (!pending.length) return;
      const rows = pending;
      pending = [];
      await fillSources(env.DB, workspaceId, rows);
      // Sorted by time, so each row group's min/max statistics let readers skip it.
      rows.sort((a, b) => a.timestamp - b.timestamp || String(a.event.messageId).localeCompare(String(b.event.messageId)));
      const key = `${prefix}${partName(files.length)}`;
      const file = writeParquet(EVENT_COLUMNS, rows, { "edge-cdp.table": "events", "edge-cdp.workspace_id": workspaceId, "edge-cdp.hour": hour });
      await env.ARCHIVE.put(key, file.body, {
        httpMetadata: { contentType: PARQUET_CONTENT_TYPE },
        customMetadata: { workspaceId, table: "events", hour, rows: String(file.rows) },
      });
      files.push({ key, rows: file.rows, bytes: file.body.byteLength });
    };

    for (const object of objects) {
      const events = await readArchiveObject(env.ARCHIVE, object.key);
      if (!events) throw new Error(`archive object ${object.key} is listed in archive_objects but missing from R2`);
      for (const event of events) {
        const messageId = text(event.messageId);
        if (messageId === null || seen.has(messageId)) continue;
        seen.add(messageId);
        const receivedAt = epochMillis(event.receivedAt);
        if (receivedAt === null) continue;
        pending.push({ event, receivedAt, timestamp: epochMillis(event.timestamp) ?? receivedAt, sourceId: text(event.sourceId) });
        if (pending.length >= rowsPerFile) await flush();
      }
    }
    await flush();
    await deleteStale(env.ARCHIVE, prefix, files);

    const row: WarehouseExport = {
      workspaceId,
      kind: "events",
      period: hour,
      status: "done",
      files,
      rowCount: files.reduce((sum, f) => sum + f.rows, 0),
      bytes: files.reduce((sum, f) => sum + f.bytes, 0),
      sourceFingerprint: fingerprintOf(objects),
      cursor: null,
      attempts: 0,
      error: null,
      startedAt: now,
      finishedAt: new Date(),
    };
    await saveExport(env.DB, row);
    return row;
  } catch (error) {
    await recordFailure(env.DB, workspaceId, "events", hour, error, new Date());
    throw error;
  }
}

/**
 * The archive's lines carry no source (it is on the queue envelope), so the
 * source of each event is read from `profile_events`, which the write-through
 * fills for every event resolved to a profile within EVENT_RETENTION_DAYS. An
 * event whose line names `sourceId` keeps it.
 */
async function fillSources(d1: D1Database, workspaceId: string, rows: EventRow[]): Promise<void> {
  const missing = rows.filter((row) => row.sourceId === null);
  const ids = missing.map((row) => String(row.event.messageId));
  const found = new Map<string, string>();
  for (let i = 0; i < ids.length; i += SOURCE_LOOKUP_CHUNK) {
    const { results } = await d1
      .prepare(
        "SELECT message_id, source_id FROM profile_events WHERE workspace_id = ?1 AND message_id IN (SELECT value FROM json_each(?2)) AND source_id IS NOT NULL",
      )
      .bind(workspaceId, JSON.stringify(ids.slice(i, i + SOURCE_LOOKUP_CHUNK)))
      .all<{ message_id: string; source_id: string }>();
    for (const result of results) found.set(result.message_id, result.source_id);
  }
  for (const row of missing) row.sourceId = found.get(String(row.event.messageId)) ?? null;
}
