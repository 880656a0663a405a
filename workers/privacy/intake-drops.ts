import { createLogger, errorFields } from "../lib/logger";
import { DROP_REASONS, type DropReason, recentDays, utcDay } from "./collection";

/**
 * Counters of events dropped at intake (`intake_drops`: workspace, UTC day,
 * reason). They are statistics, not records: a count lost to a failed write
 * is logged, never retried at the cost of an event.
 */

export type DropCounts = Partial<Record<DropReason, number>>;

type Pending = { workspaceId: string; day: string; reason: DropReason; count: number };

function upserts(db: D1Database, drops: Pending[]): D1PreparedStatement[] {
  return drops.map((drop) =>
    db
      .prepare("INSERT INTO intake_drops (workspace_id, day, reason, count) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (workspace_id, day, reason) DO UPDATE SET count = count + excluded.count")
      .bind(drop.workspaceId, drop.day, drop.reason, drop.count),
  );
}

const pendingOf = (workspaceId: string, counts: DropCounts, now: Date | number): Pending[] =>
  DROP_REASONS.filter((reason) => (counts[reason] ?? 0) > 0).map((reason) => ({ workspaceId, day: utcDay(now), reason, count: counts[reason]! }));

/** Adds to the counters now, in one D1 batch. */
export async function countIntakeDrops(db: D1Database, workspaceId: string, counts: DropCounts, now: Date | number = Date.now()): Promise<void> {
  const statements = upserts(db, pendingOf(workspaceId, counts, now));
  if (statements.length) await db.batch(statements);
}

/**
 * The edge's counting: requests add to this isolate's pending counts, and one
 * flush at a time writes them, so a burst of dropped traffic makes a D1 write
 * per flush rather than per request. The flush runs in the `waitUntil` of the
 * request that started it; counts added meanwhile go out in its next round,
 * or with the next request's flush. A flush that never finished (the isolate
 * cut it off) stops blocking others after FLUSH_STALE_MS.
 */
const pending = new Map<string, Pending>();
let flushStartedAt = 0;
const FLUSH_STALE_MS = 5_000;
const FLUSH_ROUNDS = 5;

export function recordIntakeDrops(waitUntil: (promise: Promise<unknown>) => void, db: D1Database, workspaceId: string, counts: DropCounts, now = Date.now()): void {
  for (const drop of pendingOf(workspaceId, counts, now)) {
    const key = `${drop.workspaceId}\u0000${drop.day}\u0000${drop.reason}`;
    const existing = pending.get(key);
    if (existing) existing.count += drop.count;
    else pending.set(key, drop);
  }
  if (pending.size === 0 || now - flushStartedAt < FLUSH_STALE_MS) return;
  flushStartedAt = now;
  waitUntil(flush(db));
}

async function flush(db: D1Database): Promise<void> {
  try {
    for (let round = 0; round < FLUSH_ROUNDS && pending.size > 0; round++) {
      const drops = [...pending.values()];
      pending.clear();
      try {
        await db.batch(upserts(db, drops));
      } catch (error) {
        createLogger().error("intake drop counts not written", { ...errorFields(error), drops: drops.length });
        return;
      }
    }
  } finally {
    flushStartedAt = 0;
  }
}

export interface DailyDrops {
  day: string;
  suppressed: number;
  consent: number;
}

/** The last `days` UTC days of counters, oldest first, days without drops included as zeros. */
export async function intakeDropsByDay(db: D1Database, workspaceId: string, days: number, now: Date | number = Date.now()): Promise<DailyDrops[]> {
  const range = recentDays(days, now);
  const { results: rows } = await db
    .prepare("SELECT day, reason, count FROM intake_drops WHERE workspace_id = ?1 AND day >= ?2 AND day <= ?3")
    .bind(workspaceId, range[0]!, range.at(-1)!)
    .all<{ day: string; reason: string; count: number }>();
  const byDay = new Map(range.map((day) => [day, { day, suppressed: 0, consent: 0 }]));
  for (const row of rows) {
    const entry = byDay.get(row.day);
    if (entry && (DROP_REASONS as readonly string[]).includes(row.reason)) entry[row.reason as DropReason] += row.count;
  }
  return [...byDay.values()];
}
