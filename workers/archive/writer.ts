import type { QueuedEvent } from "../intake/envelope";
import { sha256Hex } from "../lib/keys";
import { archiveObjectKey } from "./layout";

export interface ArchiveWrite {
  key: string;
  eventCount: number;
  bytes: number;
}

/** The ids an erasure will look a person up by; hashed so the index itself holds no personal data. */
export function personKeys(event: QueuedEvent): string[] {
  const keys = new Set<string>();
  if (event.userId) keys.add(event.userId);
  if (event.anonymousId) keys.add(event.anonymousId);
  if (event.previousId) keys.add(event.previousId);
  return [...keys];
}

/** 5,000 hashes of 64 hex characters is ~340 KB of JSON per statement. */
const INDEX_CHUNK = 5_000;

export const identifierHash = (workspaceId: string, value: string) => sha256Hex(`${workspaceId}\u0000${value}`);

async function gzip(text: string): Promise<ArrayBuffer> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(stream).arrayBuffer();
}

/** An archive object's body: one JSON line per event, gzipped. Shared with the erasure, which rewrites objects in place. */
export const encodeArchiveLines = (lines: object[]): Promise<ArrayBuffer> => gzip(lines.map((line) => JSON.stringify(line)).join("\n") + "\n");

/** The events of an archive object's body. */
export async function decodeArchiveLines(body: ReadableStream): Promise<Record<string, unknown>[]> {
  const text = await new Response(body.pipeThrough(new DecompressionStream("gzip"))).text();
  return text
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/**
 * Writes one gzip NDJSON object per (consumer batch, hour), then records it in
 * D1 with the person index. Both writes are idempotent: the key is derived from
 * the batch, and the index rows are upserts.
 */
export async function writeArchiveObject(
  env: Pick<Env, "ARCHIVE" | "DB">,
  workspaceId: string,
  hour: string,
  batchKey: string,
  events: QueuedEvent[],
): Promise<ArchiveWrite> {
  const key = archiveObjectKey(workspaceId, hour, batchKey);
  const body = await encodeArchiveLines(events.map((event) => ({ ...event, workspaceId })));
  await env.ARCHIVE.put(key, body, {
    httpMetadata: { contentType: "application/x-ndjson", contentEncoding: "gzip" },
    customMetadata: { workspaceId, eventCount: String(events.length), hour },
  });
  const hashes = await Promise.all([...new Set(events.flatMap(personKeys))].map((value) => identifierHash(workspaceId, value)));
  const indexInserts = [];
  // One statement per chunk whatever the number of people: json_each keeps us under D1's 100 bound
  // parameters, and chunks keep each JSON string far below D1's 1 MB string limit.
  for (let i = 0; i < hashes.length; i += INDEX_CHUNK) {
    indexInserts.push(
      env.DB.prepare("INSERT OR IGNORE INTO archive_index (workspace_id, identifier_hash, object_key) SELECT ?1, value, ?2 FROM json_each(?3)").bind(
        workspaceId,
        key,
        JSON.stringify(hashes.slice(i, i + INDEX_CHUNK)),
      ),
    );
  }
  await env.DB.batch([
    env.DB.prepare(
      "INSERT INTO archive_objects (key, workspace_id, hour, event_count, bytes) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(key) DO UPDATE SET event_count = excluded.event_count, bytes = excluded.bytes",
    ).bind(key, workspaceId, hour, events.length, body.byteLength),
    ...indexInserts,
  ]);
  return { key, eventCount: events.length, bytes: body.byteLength };
}

/** Reads an archive object back as events (used by replays, exports and tests). */
export async function readArchiveObject(bucket: R2Bucket, key: string): Promise<Record<string, unknown>[] | null> {
  const object = await bucket.get(key);
  if (!object) return null;
  return decodeArchiveLines(object.body);
}
