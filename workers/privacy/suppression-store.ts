import type { QueuedEvent } from "../intake/envelope";
import { chunkBySize } from "../lib/chunks";
import { generateId } from "../lib/keys";
import { eventKeyHashes, type SuppressionReason, suppressionEntries } from "./suppression";

/**
 * Suppressions in D1 (`suppressions`): one row per stored form of a suppressed
 * identifier, keyed by its salted hash, all rows of one identifier sharing the
 * suppression's id. Nothing here holds the identifier in the clear.
 *
 * Hashes travel as one JSON parameter read with `json_each`, so a statement
 * binds a handful of parameters (D1 allows 100) whatever the number of hashes;
 * the JSON stays far below D1's 1 MB value limit at HASHES_PER_STATEMENT.
 */

const HASHES_PER_STATEMENT = 10_000;
const ROW_CHUNK_CHARS = 400_000;

export interface Suppression {
  id: string;
  hint: string;
  reason: SuppressionReason;
  requestId: string | null;
  createdBy: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

export interface SuppressOptions {
  reason: SuppressionReason;
  /** The deletion request that asked for it. */
  requestId?: string | null;
  /** Who did it: `token:…`, `root`, or the workflow's name. */
  actor: string;
  now?: number;
}

/** Each distinct key's suppression, in order: `created` is false when it was suppressed already. */
export interface SuppressionPlan {
  suppressions: { id: string; hint: string; created: boolean }[];
  /** The writes, for the caller to run in one D1 batch with whatever records them (the audit log). */
  statements: D1PreparedStatement[];
}

type Row = { key_hash: string; id: string };

/** Which of `hashes` are suppressed in the workspace, and under which suppression id. One statement per 10,000 hashes, one round trip. */
async function suppressedRows(db: D1Database, workspaceId: string, hashes: readonly string[]): Promise<Row[]> {
  const unique = [...new Set(hashes)];
  if (unique.length === 0) return [];
  const statements = chunkBySize(unique, () => 1, HASHES_PER_STATEMENT).map((chunk) =>
    db
      .prepare("SELECT key_hash, id FROM suppressions WHERE workspace_id = ?1 AND key_hash IN (SELECT value FROM json_each(?2))")
      .bind(workspaceId, JSON.stringify(chunk)),
  );
  if (statements.length === 1) return (await statements[0]!.all<Row>()).results;
  return (await db.batch<Row>(statements)).flatMap((result) => result.results);
}

async function hasSuppressions(db: D1Database, workspaceId: string): Promise<boolean> {
  return (await db.prepare("SELECT 1 FROM suppressions WHERE workspace_id = ?1 LIMIT 1").bind(workspaceId).first()) !== null;
}

/** The subset of `hashes` (`identifierKeyHash` values) that is suppressed in the workspace. */
export async function suppressedKeyHashes(db: D1Database, workspaceId: string, hashes: readonly string[]): Promise<Set<string>> {
  return new Set((await suppressedRows(db, workspaceId, hashes)).map((row) => row.key_hash));
}

/**
 * Plans suppressing `keys` (`type:value` as identity resolution stores them):
 * every form of each key (see `suppressionForms`) is stored, so variants of
 * the same mailbox match too. Idempotent: a key suppressed already keeps its
 * suppression. Every key's own form is claimed before any collapsed form, so
 * a collapsed form that is also another key in the list stays that key's.
 */
export async function planSuppressions(db: D1Database, workspaceId: string, keys: readonly string[], options: SuppressOptions): Promise<SuppressionPlan> {
  const entries = suppressionEntries(workspaceId, keys);
  const claimed = new Map((await suppressedRows(db, workspaceId, entries.flatMap((e) => e.hashes))).map((row) => [row.key_hash, row.id]));
  const rows: { h: string; id: string; hint: string }[] = [];
  const suppressions = entries.map((entry) => {
    const own = entry.hashes[0]!;
    const existing = claimed.get(own);
    if (existing) return { id: existing, hint: entry.hint, created: false };
    const id = generateId("sup");
    claimed.set(own, id);
    rows.push({ h: own, id, hint: entry.hint });
    return { id, hint: entry.hint, created: true };
  });
  entries.forEach((entry, i) => {
    if (!suppressions[i]!.created) return;
    for (const hash of entry.hashes.slice(1)) {
      if (claimed.has(hash)) continue;
      claimed.set(hash, suppressions[i]!.id);
      rows.push({ h: hash, id: suppressions[i]!.id, hint: entry.hint });
    }
  });
  const now = options.now ?? Date.now();
  const statements = chunkBySize(rows, (row) => row.hint.length + 120, ROW_CHUNK_CHARS).map((chunk) =>
    // Two concurrent calls may plan the same key: the first insert wins, the second changes nothing.
    db
      .prepare(
        `INSERT INTO suppressions (workspace_id, key_hash, id, hint, reason, request_id, created_by, created_at)
         SELECT ?1, j.value ->> '$.h', j.value ->> '$.id', j.value ->> '$.hint', ?2, ?3, ?4, ?5 FROM json_each(?6) AS j WHERE true
         ON CONFLICT (workspace_id, key_hash) DO NOTHING`,
      )
      .bind(workspaceId, options.reason, options.requestId ?? null, options.actor, now, JSON.stringify(chunk)),
  );
  return { suppressions, statements };
}

/**
 * Suppresses `keys` for good: events carrying any of them are dropped at
 * intake from now on. Returns the suppression id of each distinct key, in order.
 * The deletion workflow calls this with every identifier of the deleted person.
 */
export async function suppress(db: D1Database, workspaceId: string, keys: readonly string[], options: SuppressOptions): Promise<string[]> {
  const plan = await planSuppressions(db, workspaceId, keys, options);
  if (plan.statements.length) await db.batch(plan.statements);
  forgetEdgeSuppressions(workspaceId);
  return plan.suppressions.map((s) => s.id);
}

/** The rows of one suppression differ only in their hash. */
const SUMMARY = "id, min(hint) AS hint, min(reason) AS reason, min(request_id) AS requestId, min(created_by) AS createdBy, min(created_at) AS createdAt";

/** A suppression by id, in any workspace (the caller checks access). */
export async function suppressionById(db: D1Database, id: string): Promise<(Suppression & { workspaceId: string }) | null> {
  return db.prepare(`SELECT min(workspace_id) AS workspaceId, ${SUMMARY} FROM suppressions WHERE id = ?1 GROUP BY id`).bind(id).first<Suppression & { workspaceId: string }>();
}

/** The delete, for the caller to batch with its audit entry. */
export const unsuppressStatement = (db: D1Database, workspaceId: string, id: string) =>
  db.prepare("DELETE FROM suppressions WHERE workspace_id = ?1 AND id = ?2").bind(workspaceId, id);

/** Lifts a suppression: its identifiers are collected again. False when there was none by that id. */
export async function unsuppress(db: D1Database, workspaceId: string, id: string): Promise<boolean> {
  const result = await unsuppressStatement(db, workspaceId, id).run();
  forgetEdgeSuppressions(workspaceId);
  return (result.meta?.changes ?? 0) > 0;
}

/** `next` cursors are `{createdAt}.{id}` of the last suppression of the page. */
export function parseSuppressionCursor(cursor: string): { createdAt: number; id: string } | null {
  const match = /^(\d{1,16})\.(.{1,64})$/.exec(cursor);
  return match ? { createdAt: Number(match[1]), id: match[2]! } : null;
}

/** A page of the workspace's suppressions, newest first. */
export async function listSuppressions(db: D1Database, workspaceId: string, cursor: string | null | undefined, limit: number): Promise<{ data: Suppression[]; next: string | null }> {
  const after = cursor ? parseSuppressionCursor(cursor) : null;
  if (cursor && !after) throw new RangeError(`not a suppression cursor: ${cursor}`);
  const page = after ? "AND (created_at < ?3 OR (created_at = ?3 AND id < ?4))" : "";
  const { results: rows } = await db
    .prepare(`SELECT ${SUMMARY} FROM suppressions WHERE workspace_id = ?1 ${page} GROUP BY id ORDER BY createdAt DESC, id DESC LIMIT ?2`)
    .bind(workspaceId, limit + 1, ...(after ? [after.createdAt, after.id] : []))
    .all<Suppression>();
  const data = rows.slice(0, limit);
  const last = data.at(-1);
  return { data, next: rows.length > limit && last ? `${last.createdAt}.${last.id}` : null };
}

/**
 * Which events carry a suppressed identifier. `authoritative` reads D1 now
 * (the queue consumer), or, given `since`, only the suppressions created
 * since then (intake checked the older ones); otherwise the edge's isolate
 * cache answers when it can.
 */
export async function suppressedEvents(db: D1Database, workspaceId: string, events: readonly QueuedEvent[], mode: "edge" | "authoritative", since?: number): Promise<boolean[]> {
  return (await checkSuppressed(db, workspaceId, events, mode, since)).suppressed;
}

/**
 * The check, with the time it is good as of: every suppression created before
 * `asOf` was taken into account (the edge's cache load, or now for a D1 read).
 */
export async function checkSuppressed(
  db: D1Database,
  workspaceId: string,
  events: readonly QueuedEvent[],
  mode: "edge" | "authoritative",
  since?: number,
): Promise<{ suppressed: boolean[]; asOf: number }> {
  const none = (asOf: number) => ({ suppressed: events.map(() => false), asOf });
  const now = Date.now();
  if (mode === "edge") {
    const cached = await edgeSuppressions(db, workspaceId);
    // The common case: a workspace without suppressions costs no hashing at all.
    if (cached && cached.hashes.size === 0) return none(cached.loadedAt);
    const { perEvent, distinct } = eventKeyHashes(workspaceId, events);
    const suppressed = cached?.hashes ?? (await suppressedKeyHashes(db, workspaceId, distinct));
    return { suppressed: perEvent.map((hashes) => hashes.some((hash) => suppressed.has(hash))), asOf: cached?.loadedAt ?? now };
  }
  // Authoritative: one indexed lookup says whether there is anything (new) to match at all.
  const recent = since === undefined ? null : await recentSuppressions(db, workspaceId, since);
  if (recent ? recent.size === 0 : !(await hasSuppressions(db, workspaceId))) return none(now);
  const { perEvent, distinct } = eventKeyHashes(workspaceId, events);
  const suppressed = recent ?? (await suppressedKeyHashes(db, workspaceId, distinct));
  return { suppressed: perEvent.map((hashes) => hashes.some((hash) => suppressed.has(hash))), asOf: now };
}

/** Suppressions created since `since` (epoch ms); a stamp so old that more than the edge bound are newer is answered with null: check them all. */
async function recentSuppressions(db: D1Database, workspaceId: string, since: number): Promise<Set<string> | null> {
  const { results } = await db
    .prepare("SELECT key_hash FROM suppressions WHERE workspace_id = ?1 AND created_at >= ?2 LIMIT ?3")
    .bind(workspaceId, since, EDGE_CACHE_MAX_PER_WORKSPACE + 1)
    .all<{ key_hash: string }>();
  return results.length > EDGE_CACHE_MAX_PER_WORKSPACE ? null : new Set(results.map((row) => row.key_hash));
}

/**
 * The edge's isolate cache: per workspace, every suppressed hash, refreshed at
 * most every EDGE_CACHE_TTL_MS, so a new suppression reaches every edge within
 * 10 s (the queue consumer catches what passes meanwhile). Bounded: a
 * workspace with more than EDGE_CACHE_MAX_PER_WORKSPACE suppressions is not
 * cached, and each request checks its own hashes in D1 instead; past
 * EDGE_CACHE_MAX_TOTAL hashes in one isolate the oldest workspaces are evicted.
 */
export const EDGE_CACHE_TTL_MS = 10_000;
export const EDGE_CACHE_MAX_PER_WORKSPACE = 50_000;
const EDGE_CACHE_MAX_TOTAL = 200_000;

type EdgeSet = { hashes: Set<string>; loadedAt: number };
const edgeCache = new Map<string, { set: EdgeSet | null; expires: number }>();
let edgeCacheTotal = 0;

/** Loads in progress: concurrent requests of an isolate share one read instead of each reading every suppression. */
const edgeLoads = new Map<string, Promise<EdgeSet | null>>();

async function edgeSuppressions(db: D1Database, workspaceId: string, now = Date.now()): Promise<EdgeSet | null> {
  const hit = edgeCache.get(workspaceId);
  if (hit && hit.expires > now) return hit.set;
  let load = edgeLoads.get(workspaceId);
  if (!load) {
    load = loadEdgeSuppressions(db, workspaceId, now).finally(() => edgeLoads.delete(workspaceId));
    edgeLoads.set(workspaceId, load);
  }
  return load;
}

async function loadEdgeSuppressions(db: D1Database, workspaceId: string, now: number): Promise<EdgeSet | null> {
  const { results: rows } = await db
    .prepare("SELECT key_hash FROM suppressions WHERE workspace_id = ?1 LIMIT ?2")
    .bind(workspaceId, EDGE_CACHE_MAX_PER_WORKSPACE + 1)
    .all<{ key_hash: string }>();
  // Loaded as of the read's start: a suppression created before it is in the set.
  const set = rows.length > EDGE_CACHE_MAX_PER_WORKSPACE ? null : { hashes: new Set(rows.map((row) => row.key_hash)), loadedAt: now };
  forgetEdgeSuppressions(workspaceId);
  for (const [oldest] of edgeCache) {
    if (edgeCacheTotal + (set?.hashes.size ?? 0) <= EDGE_CACHE_MAX_TOTAL) break;
    forgetEdgeSuppressions(oldest);
  }
  edgeCache.set(workspaceId, { set, expires: now + EDGE_CACHE_TTL_MS });
  edgeCacheTotal += set?.hashes.size ?? 0;
  return set;
}

export function forgetEdgeSuppressions(workspaceId: string): void {
  const entry = edgeCache.get(workspaceId);
  if (!entry) return;
  edgeCacheTotal -= entry.set?.hashes.size ?? 0;
  edgeCache.delete(workspaceId);
}
