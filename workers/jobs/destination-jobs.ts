import type { Destination } from "../activation/destination";
import { type Message, routeActivation, routeEvent } from "../activation/routing";
import { archiveHour } from "../archive/layout";
import { readArchiveObject } from "../archive/writer";
import { fanOut, type Routed } from "../delivery/fanout";
import { destinationById } from "../delivery/store";
import { audiencesFor } from "../identity/sharding/audiences";
import type { JobMessage } from "./backfill";

/**
 * The jobs that send one destination what it would otherwise never get:
 *
 * - `audience-sync`: an audience's (or computed trait's) current members, when
 *   a destination starts subscribing to it, as the messages their entry would
 *   have produced (`seq` 0, the member's `since` as the time, so the messageIds
 *   are the same on every run);
 * - `archive-replay`: the workspace's archived events received between `from`
 *   and `to`, read from R2 object by object in hour order (`archive_objects`),
 *   routed with `routeEvent` as the live stream routes them.
 *
 * Both go to that destination only, and send nothing twice: messages the
 * delivery log already shows for the destination are left out, and the
 * deliveries queued get deterministic ids (same destination, same messages),
 * which the delivery consumer lets through once.
 */

export const SYNC_CHUNK = 200;
/** Archive objects per replay chunk: each holds one consumer batch of one hour (at most a few hundred events). */
export const REPLAY_OBJECTS = 10;

export type SyncJobMessage = Extract<JobMessage, { kind: "audience-sync" }>;
export type ReplayJobMessage = Extract<JobMessage, { kind: "archive-replay" }>;

/** The job cannot go on, whatever the retries: it fails at once with this message. */
export class JobStopped extends Error {}

export interface ChunkResult {
  processed: number;
  total: number | null;
  next: string | null;
  /** Messages queued for the destination by this chunk. */
  sent: number;
}

type JobEnv = Pick<Env, "DB" | "ACTIVATION_QUEUE" | "ARCHIVE" | "IDENTITY">;

async function destinationFor(env: JobEnv, workspaceId: string, destinationId: string): Promise<Destination> {
  const destination = await destinationById(env.DB, workspaceId, destinationId);
  if (!destination) throw new JobStopped(`destination '${destinationId}' no longer exists`);
  if (!destination.enabled) throw new JobStopped(`destination '${destinationId}' is disabled`);
  return destination;
}

/**
 * The messageIds of `messageIds` that the delivery log already has for the
 * destination (whatever the delivery's status), in deliveries logged since `sinceMs`.
 */
export async function alreadyLogged(db: D1Database, workspaceId: string, destinationId: string, messageIds: string[], sinceMs: number): Promise<Set<string>> {
  if (!messageIds.length) return new Set();
  const { results } = await db
    .prepare(
      `SELECT DISTINCT m.value AS id FROM deliveries d, json_each(d.message_ids) m
       WHERE d.workspace_id = ?1 AND d.destination_id = ?2 AND d.created_at >= ?3 AND m.value IN (SELECT value FROM json_each(?4))`,
    )
    .bind(workspaceId, destinationId, sinceMs, JSON.stringify(messageIds))
    .all<{ id: string }>();
  return new Set(results.map((row) => row.id));
}

/** Fans out to the one destination the messages it has not received yet; returns how many were queued. */
async function sendNew(env: JobEnv, workspaceId: string, destination: Destination, routed: Routed[], sinceMs: number): Promise<number> {
  const logged = await alreadyLogged(
    env.DB,
    workspaceId,
    destination.id,
    routed.filter((r) => r.decision.deliver).map((r) => String(r.message.messageId)),
    sinceMs,
  );
  const fresh = routed.filter((r) => !logged.has(String(r.message.messageId)));
  if (!fresh.length) return 0;
  await fanOut(env, workspaceId, [destination], () => fresh);
  return fresh.filter((r) => r.decision.deliver).length;
}

export async function runAudienceSync(env: JobEnv, job: SyncJobMessage): Promise<ChunkResult> {
  const destination = await destinationFor(env, job.workspaceId, job.destinationId);
  const { audiences, computedTraits } = destination.subscriptions;
  if (!audiences.includes(job.audienceId) && !computedTraits.includes(job.audienceId)) {
    throw new JobStopped(`destination '${job.destinationId}' no longer subscribes to '${job.audienceId}'`);
  }
  // Every graph shard's members, merged in profile id order.
  const page = await audiencesFor(env, job.workspaceId).audienceSyncPage(job.audienceId, job.after, SYNC_CHUNK);
  if (!page) throw new JobStopped(`'${job.audienceId}' is not a segment or computed trait of workspace '${job.workspaceId}'`);
  const routed: Routed[] = page.envelopes.flatMap((envelope) => routeActivation(destination, envelope).map((r) => ({ ...r, profileId: envelope.profileId })));
  // A member's sync messages can only have been logged after they became a member.
  const sent = await sendNew(env, job.workspaceId, destination, routed, page.oldest ?? 0);
  return { processed: page.envelopes.length, total: page.total, next: page.next, sent };
}

export async function runArchiveReplay(env: JobEnv, job: ReplayJobMessage): Promise<ChunkResult> {
  const destination = await destinationFor(env, job.workspaceId, job.destinationId);
  const fromMs = Date.parse(job.from);
  const toMs = Date.parse(job.to);
  const fromHour = archiveHour(new Date(fromMs).toISOString());
  const toHour = archiveHour(new Date(toMs).toISOString());
  // A workspace's keys start `events/{workspace}/{yyyy}/{mm}/{dd}/{hh}/`: key order is hour order.
  const { results: objects } = await env.DB.prepare(
    "SELECT key FROM archive_objects WHERE workspace_id = ?1 AND hour >= ?2 AND hour <= ?3 AND key > ?4 ORDER BY hour, key LIMIT ?5",
  )
    .bind(job.workspaceId, fromHour, toHour, job.after ?? "", REPLAY_OBJECTS)
    .all<{ key: string }>();
  const totalRow = await env.DB.prepare("SELECT coalesce(sum(event_count), 0) AS n FROM archive_objects WHERE workspace_id = ?1 AND hour >= ?2 AND hour <= ?3")
    .bind(job.workspaceId, fromHour, toHour)
    .first<{ n: number }>();

  let processed = 0;
  const events = new Map<string, Message>();
  for (const object of objects) {
    const lines = await readArchiveObject(env.ARCHIVE, object.key);
    if (!lines) throw new Error(`archive object ${object.key} is listed in archive_objects but missing from R2`);
    processed += lines.length;
    for (const line of lines) {
      const { workspaceId: _workspaceId, ...event } = line;
      const receivedAt = Date.parse(String(event.receivedAt));
      const messageId = typeof event.messageId === "string" ? event.messageId : null;
      if (messageId === null || !(receivedAt >= fromMs && receivedAt < toMs) || events.has(messageId)) continue;
      events.set(messageId, event);
    }
  }
  const profiles = await profilesOf(env.DB, job.workspaceId, [...events.keys()]);
  const routed: Routed[] = [...events.values()].map((event) => ({
    message: event,
    profileId: profiles.get(String(event.messageId)) ?? null,
    decision: routeEvent(destination, event),
  }));
  // An event can only have been delivered after it was received.
  const sent = await sendNew(env, job.workspaceId, destination, routed, fromMs);
  return { processed, total: totalRow?.n ?? null, next: objects.length === REPLAY_OBJECTS ? objects.at(-1)!.key : null, sent };
}

/** The profile each event was resolved to, for the delivery log, as the write-through recorded it (within event retention). */
async function profilesOf(db: D1Database, workspaceId: string, messageIds: string[]): Promise<Map<string, string>> {
  if (!messageIds.length) return new Map();
  const { results } = await db
    .prepare("SELECT message_id AS messageId, profile_id AS profileId FROM profile_events WHERE workspace_id = ?1 AND message_id IN (SELECT value FROM json_each(?2))")
    .bind(workspaceId, JSON.stringify(messageIds))
    .all<{ messageId: string; profileId: string }>();
  return new Map(results.map((row) => [row.messageId, row.profileId]));
}
