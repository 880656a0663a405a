import { decodeArchiveLines, encodeArchiveLines, identifierHash, personKeys, readArchiveObject } from "../../archive/writer";
import { fingerprintOf } from "../../export/events";
import { isHour } from "../../export/layout";
import { text } from "../../export/parquet";
import type { QueuedEvent } from "../../intake/envelope";
import { rewriteObject } from "./objects";
import { isTheirEvent, type Person } from "./subject";

/** Values or message ids per D1 statement: one bound JSON array each, far below D1's 1 MB string limit. */
const CHUNK = 5_000;

const chunks = <T>(items: T[]) => Array.from({ length: Math.ceil(items.length / CHUNK) }, (_, i) => items.slice(i * CHUNK, (i + 1) * CHUNK));

/** `events/{ws}/{yyyy}/{mm}/{dd}/{hh}/{batch}.ndjson.gz` → `yyyy-mm-ddThh`, read from the end because a workspace id may hold `/`. */
export function hourOfArchiveKey(key: string): string | null {
  const [yyyy, mm, dd, hh] = key.split("/").slice(-5, -1);
  const hour = `${yyyy}-${mm}-${dd}T${hh}`;
  return isHour(hour) ? hour : null;
}

/**
 * The archive index knows people only by `userId`, `anonymousId` and
 * `previousId`. A message of theirs may have reached their profile through
 * another identifier (an email, a merge), so the ids it does carry, and the
 * hour it was received, are read from the profile events table, which keeps
 * each resolved event's envelope. A message no longer there is found only if
 * it shares an object with their other events.
 */
async function lookUpMessages(db: D1Database, workspaceId: string, messageIds: string[]): Promise<{ ids: string[]; hours: string[] }> {
  const ids = new Set<string>();
  const hours = new Set<string>();
  for (const chunk of chunks(messageIds)) {
    const { results } = await db
      .prepare(
        `SELECT payload ->> '$.user_id' AS user_id, payload ->> '$.anonymous_id' AS anonymous_id, payload ->> '$.previous_id' AS previous_id,
                substr(payload ->> '$.received_at', 1, 13) AS hour
         FROM profile_events WHERE workspace_id = ?1 AND message_id IN (SELECT value FROM json_each(?2))`,
      )
      .bind(workspaceId, JSON.stringify(chunk))
      .all<Record<"user_id" | "anonymous_id" | "previous_id" | "hour", unknown>>();
    for (const row of results) {
      for (const id of [row.user_id, row.anonymous_id, row.previous_id].map(text)) if (id) ids.add(id);
      if (typeof row.hour === "string" && isHour(row.hour)) hours.add(row.hour);
    }
  }
  return { ids: [...ids], hours: [...hours] };
}

/** Keys of the objects the index lists for any of the values, oldest hour first (keys sort by hour within a workspace). */
async function indexedKeys(db: D1Database, workspaceId: string, values: string[]): Promise<string[]> {
  const hashes = await Promise.all(values.map((value) => identifierHash(workspaceId, value)));
  const keys = new Set<string>();
  for (const chunk of chunks(hashes)) {
    const { results } = await db
      .prepare("SELECT DISTINCT object_key FROM archive_index WHERE workspace_id = ?1 AND identifier_hash IN (SELECT value FROM json_each(?2))")
      .bind(workspaceId, JSON.stringify(chunk))
      .all<{ object_key: string }>();
    for (const row of results) keys.add(row.object_key);
  }
  return [...keys].sort();
}

interface Candidates {
  keys: string[];
  /** Hours of their messages' receipt, as far as the profile events table tells. */
  messageHours: string[];
}

async function candidates(db: D1Database, workspaceId: string, person: Person): Promise<Candidates> {
  const messages = await lookUpMessages(db, workspaceId, [...person.messageIds]);
  return { keys: await indexedKeys(db, workspaceId, [...new Set([...person.values, ...messages.ids])]), messageHours: messages.hours };
}

/** `{objects}:{events}:{bytes}` per hour, as the warehouse export records the archive it read. */
export async function hourFingerprints(db: D1Database, workspaceId: string, hours: string[]): Promise<Map<string, string>> {
  const rows: { hour: string; key: string; event_count: number; bytes: number }[] = [];
  for (const chunk of chunks(hours)) {
    const { results } = await db
      .prepare("SELECT hour, key, event_count, bytes FROM archive_objects WHERE workspace_id = ?1 AND hour IN (SELECT value FROM json_each(?2))")
      .bind(workspaceId, JSON.stringify(chunk))
      .all<{ hour: string; key: string; event_count: number; bytes: number }>();
    rows.push(...results);
  }
  return new Map(hours.map((hour) => [hour, fingerprintOf(rows.filter((row) => row.hour === hour))]));
}

export interface ArchiveReport {
  objectsRewritten: number;
  objectsDeleted: number;
  eventsRemoved: number;
}

export interface ArchiveErasure {
  report: ArchiveReport;
  /** Hours whose warehouse event files may hold their rows: those of every object looked at, and of their messages. */
  hours: string[];
  /** The hours' archive fingerprints before the rewrite: an export that matched them matches the rewritten archive once its files are rewritten too. */
  fingerprintsBefore: Map<string, string>;
  /** Drops the index rows that pointed at them. Run last, so that an erasure cut short finds the same objects, and hours, again. */
  unindex: () => Promise<void>;
}

interface Outcome {
  removed: Record<string, unknown>[];
  kept: Record<string, unknown>[] | null;
  bytes: number;
}

/**
 * Rewrites every archive object that holds their events without them,
 * keeping its key and metadata, and deletes one left empty; `archive_objects`
 * follows. Adds the messageIds of the events removed to `person.messageIds`,
 * for the warehouse. Objects already rewritten by an earlier run are read and
 * left as they are, their `archive_objects` row corrected if that run stopped
 * before writing it.
 */
export async function eraseArchive(env: Pick<Env, "ARCHIVE" | "DB">, workspaceId: string, person: Person): Promise<ArchiveErasure> {
  const report: ArchiveReport = { objectsRewritten: 0, objectsDeleted: 0, eventsRemoved: 0 };
  const { keys, messageHours } = await candidates(env.DB, workspaceId, person);
  const hours = [...new Set([...keys.map(hourOfArchiveKey).filter((hour): hour is string => hour !== null), ...messageHours])].sort();
  const fingerprintsBefore = await hourFingerprints(env.DB, workspaceId, hours);
  const listed = new Map<string, { event_count: number; bytes: number }>();
  for (const chunk of chunks(keys)) {
    const { results } = await env.DB.prepare("SELECT key, event_count, bytes FROM archive_objects WHERE key IN (SELECT value FROM json_each(?1))")
      .bind(JSON.stringify(chunk))
      .all<{ key: string; event_count: number; bytes: number }>();
    for (const row of results) listed.set(row.key, row);
  }
  const unindexing: D1PreparedStatement[] = [];
  for (const key of keys) {
    const outcome = await rewriteObject<Outcome>(env.ARCHIVE, key, async (object) => {
      const kept: Record<string, unknown>[] = [];
      const removed: Record<string, unknown>[] = [];
      for (const event of await decodeArchiveLines(object.body)) (isTheirEvent(person, event) ? removed : kept).push(event);
      if (!removed.length) return { result: { removed, kept, bytes: object.size } };
      if (!kept.length) return { delete: true, result: { removed, kept: null, bytes: 0 } };
      const body = await encodeArchiveLines(kept);
      return {
        put: body,
        options: { httpMetadata: object.httpMetadata, customMetadata: { ...object.customMetadata, eventCount: String(kept.length) } },
        result: { removed, kept, bytes: body.byteLength },
      };
    });
    const kept = outcome?.kept ?? null;
    const removed = outcome?.removed ?? [];
    if (removed.length) {
      report.eventsRemoved += removed.length;
      report[kept ? "objectsRewritten" : "objectsDeleted"]++;
      for (const event of removed) person.messageIds.add(String(event.messageId));
    }
    const row = listed.get(key);
    if (!kept) {
      if (row) await env.DB.prepare("DELETE FROM archive_objects WHERE key = ?1").bind(key).run();
      unindexing.push(env.DB.prepare("DELETE FROM archive_index WHERE workspace_id = ?1 AND object_key = ?2").bind(workspaceId, key));
      continue;
    }
    if (row && (row.event_count !== kept.length || row.bytes !== outcome!.bytes)) {
      await env.DB.prepare("UPDATE archive_objects SET event_count = ?2, bytes = ?3 WHERE key = ?1").bind(key, kept.length, outcome!.bytes).run();
    }
    // The object's index rows come to list exactly the ids its events still carry: theirs go, and so do those
    // of events removed for another reason (an email trait), even when an earlier run removed the events.
    const remaining = new Set(await Promise.all([...new Set(kept.flatMap((event) => personKeys(event as QueuedEvent)))].map((id) => identifierHash(workspaceId, id))));
    const { results: indexed } = await env.DB.prepare("SELECT identifier_hash FROM archive_index WHERE workspace_id = ?1 AND object_key = ?2")
      .bind(workspaceId, key)
      .all<{ identifier_hash: string }>();
    const stale = indexed.map((entry) => entry.identifier_hash).filter((hash) => !remaining.has(hash));
    for (const chunk of chunks(stale)) {
      unindexing.push(
        env.DB.prepare("DELETE FROM archive_index WHERE workspace_id = ?1 AND object_key = ?2 AND identifier_hash IN (SELECT value FROM json_each(?3))").bind(
          workspaceId,
          key,
          JSON.stringify(chunk),
        ),
      );
    }
  }
  return {
    report,
    hours,
    fingerprintsBefore,
    unindex: async () => {
      // A hundred objects' deletions per round trip: few round trips, and no batch so large it risks D1's time limit.
      for (let i = 0; i < unindexing.length; i += 100) await env.DB.batch(unindexing.slice(i, i + 100));
    },
  };
}

export interface ArchivedEvents {
  events: Record<string, unknown>[];
  objectsRead: number;
  truncated: boolean;
}

const receivedOrder = (a: Record<string, unknown>, b: Record<string, unknown>) =>
  String(a.receivedAt ?? "").localeCompare(String(b.receivedAt ?? "")) ||
  String(a.timestamp ?? "").localeCompare(String(b.timestamp ?? "")) ||
  String(a.messageId ?? "").localeCompare(String(b.messageId ?? ""));

/**
 * Their archived events, oldest receipt first, read from at most `maxObjects`
 * objects, oldest hours first: a truncated answer is complete up to the hour
 * it stopped at.
 */
export async function readArchivedEvents(env: Pick<Env, "ARCHIVE" | "DB">, workspaceId: string, person: Person, maxObjects: number): Promise<ArchivedEvents> {
  const { keys } = await candidates(env.DB, workspaceId, person);
  const read = keys.slice(0, maxObjects);
  const byMessage = new Map<string, Record<string, unknown>>();
  for (const key of read) {
    for (const event of (await readArchiveObject(env.ARCHIVE, key)) ?? []) {
      if (isTheirEvent(person, event)) byMessage.set(String(event.messageId), event);
    }
  }
  return { events: [...byMessage.values()].sort(receivedOrder), objectsRead: read.length, truncated: keys.length > read.length };
}
