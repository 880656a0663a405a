import { type Destination, destinationSchema } from "../activation/destination";
import type { DeliveryReason } from "../activation/routing";
import { type BreakerState, CLOSED } from "../activation/retry";
import { createLogger } from "../lib/logger";

/**
 * The delivery side's D1 state: destination configs, the delivery log (who
 * received whose data, and how it went), per-day counters per destination, and
 * each destination's circuit breaker.
 */

export type DeliveryStatus = "delivered" | "retrying" | "failed" | "dead_lettered";
/** `received`: messages routed to the destination; the reasons say what became of them. */
export type Counter = "received" | DeliveryReason | "retried" | "failed" | "dead_lettered";

/** A workspace's enabled destinations; a stored config that no longer parses is skipped and logged, never sent to. */
export async function enabledDestinations(db: D1Database, workspaceId: string): Promise<Destination[]> {
  const { results } = await db.prepare("SELECT id, config FROM destinations WHERE workspace_id = ? AND enabled = 1").bind(workspaceId).all<{ id: string; config: string }>();
  return results.flatMap((row) => {
    const parsed = destinationSchema.safeParse(JSON.parse(row.config));
    if (parsed.success) return [parsed.data];
    createLogger({ workspaceId, destinationId: row.id }).error("stored destination config is invalid; skipped", { issues: parsed.error.issues.length });
    return [];
  });
}

export async function destinationById(db: D1Database, workspaceId: string, destinationId: string): Promise<Destination | null> {
  const row = await db.prepare("SELECT config FROM destinations WHERE workspace_id = ? AND id = ?").bind(workspaceId, destinationId).first<{ config: string }>();
  if (!row) return null;
  const parsed = destinationSchema.safeParse(JSON.parse(row.config));
  return parsed.success ? parsed.data : null;
}

const day = (now: number) => new Date(now).toISOString().slice(0, 10);

/** Adds to a destination's counters for the day: one statement per destination, whatever the counts. */
export function countStatement(db: D1Database, workspaceId: string, destinationId: string, counts: Partial<Record<Counter, number>>, now = Date.now()): D1PreparedStatement {
  const c = (key: Counter) => counts[key] ?? 0;
  return db
    .prepare(
      `INSERT INTO destination_counters (workspace_id, destination_id, day, received, filtered_consent, filtered_integrations, not_subscribed, delivered, retried, failed, dead_lettered)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
       ON CONFLICT (workspace_id, destination_id, day) DO UPDATE SET received = received + excluded.received,
         filtered_consent = filtered_consent + excluded.filtered_consent, filtered_integrations = filtered_integrations + excluded.filtered_integrations,
         not_subscribed = not_subscribed + excluded.not_subscribed, delivered = delivered + excluded.delivered, retried = retried + excluded.retried,
         failed = failed + excluded.failed, dead_lettered = dead_lettered + excluded.dead_lettered`,
    )
    .bind(workspaceId, destinationId, day(now), c("received"), c("filtered_consent"), c("filtered_integrations"), c("not_subscribed"), c("delivered"), c("retried"), c("failed"), c("dead_lettered"));
}

export interface DeliveryRecord {
  id: string;
  workspaceId: string;
  destinationId: string;
  status: DeliveryStatus;
  messageIds: string[];
  profileIds: string[];
  attempts: number;
  lastError: string | null;
  latencyMs: number | null;
  firstAttemptAt: number;
}

/** One row per delivery (a batch for one destination), updated by each attempt: idempotent by delivery id. */
export function deliveryStatement(db: D1Database, record: DeliveryRecord, now = Date.now()): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO deliveries (id, workspace_id, destination_id, status, message_ids, profile_ids, attempts, last_error, latency_ms, first_attempt_at, created_at, updated_at)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, message_ids = excluded.message_ids, attempts = max(attempts, excluded.attempts),
         last_error = excluded.last_error, latency_ms = excluded.latency_ms, updated_at = excluded.updated_at`,
    )
    .bind(record.id, record.workspaceId, record.destinationId, record.status, JSON.stringify(record.messageIds), JSON.stringify(record.profileIds), record.attempts, record.lastError, record.latencyMs, record.firstAttemptAt, now);
}

/** Records that the destination was sent data about these profiles (see `destination_recipients`); one statement whatever their number. */
export function recipientsStatement(db: D1Database, workspaceId: string, destinationId: string, profileIds: readonly string[], now = Date.now()): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO destination_recipients (workspace_id, profile_id, destination_id, first_sent_at, last_sent_at)
       SELECT ?1, value, ?2, ?4, ?4 FROM json_each(?3) WHERE true
       ON CONFLICT DO UPDATE SET last_sent_at = max(last_sent_at, excluded.last_sent_at)`,
    )
    .bind(workspaceId, destinationId, JSON.stringify([...new Set(profileIds)]), now);
}

export async function loadBreaker(db: D1Database, destinationId: string): Promise<BreakerState> {
  const row = await db.prepare("SELECT state FROM destination_breakers WHERE destination_id = ?").bind(destinationId).first<{ state: string }>();
  return row ? (JSON.parse(row.state) as BreakerState) : CLOSED;
}

export function breakerStatement(db: D1Database, destinationId: string, state: BreakerState, now = Date.now()): D1PreparedStatement {
  return db
    .prepare("INSERT INTO destination_breakers (destination_id, state, updated_at) VALUES (?, ?, ?) ON CONFLICT (destination_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at")
    .bind(destinationId, JSON.stringify(state), now);
}
