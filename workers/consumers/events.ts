import { dedupShardName, type ClaimRequest, type ClaimResult, type DedupShard } from "../../durable-objects/dedup-shard";
import { archiveHour, archiveObjectKey } from "../archive/layout";
import { readArchiveObject, writeArchiveObject } from "../archive/writer";
import { eventEnvelopeSchema, type QueuedEvent } from "../intake/envelope";
import { callDurableObject, DurableObjectOverloaded, isOverloaded } from "../lib/durable-object-retry";
import { groupBy } from "../lib/group-by";
import { sha256Hex } from "../lib/keys";
import { createLogger, errorFields, type Logger } from "../lib/logger";
import type { EventProcessor } from "../pipeline/processor";
import { countIntakeDrops } from "../privacy/intake-drops";
import { suppressedEvents } from "../privacy/suppression-store";

interface Claimed {
  event: QueuedEvent;
  claim: ClaimResult;
}

/**
 * How far before an envelope's stamp the consumer still looks for new
 * suppressions: covers clock skew between the Worker that created a
 * suppression and the edge that stamped, and a D1 read replica's lag.
 */
export const STAMP_MARGIN_MS = 60_000;

/** Exponential backoff for whole-batch retries: 2, 4, 8 … capped at 5 minutes. */
export const retryDelaySeconds = (attempts: number) => Math.min(300, 2 ** Math.max(1, attempts));

/**
 * The shortest redelivery delay after a Durable Object was overloaded. Every
 * batch of the workspace goes to the same identity object, so coming back
 * within seconds adds to the load it is shedding; half a minute lets it drain.
 */
export const OVERLOADED_RETRY_DELAY_SECONDS = 30;

/**
 * Consumes the events queue: drops client retries (dedup on messageId) and
 * events carrying a suppressed identifier, writes the batch to the R2
 * archive, then hands the events to the processors. A failure anywhere
 * retries the whole batch, which every step tolerates.
 */
export async function consumeEvents(batch: MessageBatch<unknown>, env: Env, processors: EventProcessor[]): Promise<void> {
  const logger = createLogger({ queue: batch.queue, messages: batch.messages.length });
  const batchKey = (await sha256Hex(batch.messages.map((m) => m.id).sort().join(","))).slice(0, 32);

  const byWorkspace = new Map<string, ClaimRequest[]>();
  const eventsById = new Map<string, QueuedEvent>();
  const sourcesByWorkspace = new Map<string, Record<string, string>>();
  const quarantined: Message<unknown>[] = [];
  const stampByWorkspace = new Map<string, number | null>();
  for (const message of batch.messages) {
    const parsed = eventEnvelopeSchema.safeParse(message.body);
    if (!parsed.success) {
      quarantined.push(message);
      continue;
    }
    const { workspaceId, sourceId, events, suppressionsAsOf } = parsed.data;
    // The oldest stamp of the workspace's messages; one without a stamp means a full check.
    const asOf = stampByWorkspace.has(workspaceId) ? stampByWorkspace.get(workspaceId)! : (suppressionsAsOf ?? null);
    stampByWorkspace.set(workspaceId, asOf === null || suppressionsAsOf === undefined ? null : Math.min(asOf, suppressionsAsOf));
    let requests = byWorkspace.get(workspaceId);
    if (!requests) byWorkspace.set(workspaceId, (requests = []));
    for (const event of events) {
      requests.push({ messageId: event.messageId, claimant: message.id, batchKey });
      eventsById.set(`${workspaceId}\u0000${event.messageId}`, event);
      const sources = sourcesByWorkspace.get(workspaceId) ?? {};
      sources[event.messageId] = sourceId;
      sourcesByWorkspace.set(workspaceId, sources);
    }
  }

  try {
    // A message that fails its schema can never succeed: keep its bytes for a person to look at, and move on.
    await Promise.all(
      quarantined.map((message) => env.ARCHIVE.put(`quarantine/events/${message.id}.json`, JSON.stringify({ id: message.id, body: message.body }))),
    );
    if (quarantined.length) logger.error("quarantined malformed queue messages", { ids: quarantined.map((m) => m.id) });

    const suppressedByWorkspace = new Map<string, number>();
    for (const [workspaceId, requests] of byWorkspace) {
      const claimed = await claimAll(env, workspaceId, requests, eventsById);
      const fresh = claimed.filter((c) => c.claim.status !== "duplicate");
      // Authoritative, unlike the edge's cached check: an event queued before its suppression, retried,
      // or let through by a stale edge cache stops here, before the archive, identity and activation.
      const stamp = stampByWorkspace.get(workspaceId) ?? null;
      const since = stamp === null ? undefined : stamp - STAMP_MARGIN_MS;
      const suppressed = await suppressedEvents(env.DB, workspaceId, fresh.map((c) => c.event), "authoritative", since);
      const kept = fresh.filter((_, i) => !suppressed[i]);
      if (kept.length < fresh.length) suppressedByWorkspace.set(workspaceId, fresh.length - kept.length);
      await archive(env, workspaceId, batchKey, kept);
      const events = kept.map((c) => c.event);
      const context = { sources: sourcesByWorkspace.get(workspaceId) ?? {}, profiles: new Map<string, string>() };
      for (const processor of processors) if (events.length) await processor.process(workspaceId, events, context);
      logger.info("events consumed", { workspaceId, received: requests.length, duplicates: claimed.length - fresh.length, suppressed: fresh.length - kept.length });
    }
    // Counted once the batch has succeeded, so a retried batch does not count its drops twice.
    await countSuppressedDrops(env.DB, suppressedByWorkspace, logger);
    batch.ackAll();
  } catch (error) {
    const attempts = Math.max(...batch.messages.map((m) => m.attempts));
    if (isOverloaded(error)) {
      const delaySeconds = Math.max(OVERLOADED_RETRY_DELAY_SECONDS, retryDelaySeconds(attempts));
      const object = error instanceof DurableObjectOverloaded ? error.object : "unknown";
      logger.error("events batch failed: Durable Object overloaded; retrying later", { ...errorFields(error), object, attempts, delaySeconds });
      batch.retryAll({ delaySeconds });
      return;
    }
    logger.error("events batch failed; retrying", { ...errorFields(error), attempts });
    batch.retryAll({ delaySeconds: retryDelaySeconds(attempts) });
  }
}

async function countSuppressedDrops(db: D1Database, counts: Map<string, number>, logger: Logger): Promise<void> {
  try {
    await Promise.all([...counts].map(([workspaceId, suppressed]) => countIntakeDrops(db, workspaceId, { suppressed })));
  } catch (error) {
    // A counter is not worth redoing the batch for.
    logger.error("intake drop counts not written", errorFields(error));
  }
}

/**
 * Both shard calls are idempotent, so a retryable error is retried in place
 * rather than by redelivering the whole batch: `claim` run twice with the same
 * claimant answers "mine" where it first answered "new", and the consumer
 * treats the two alike; `markArchived` sets the same columns to the same values.
 */
const dedupCall = <R>(env: Env, name: string, call: (shard: DurableObjectStub<DedupShard>) => Promise<R>) =>
  callDurableObject(() => env.DEDUP.getByName(name), call, { object: `DEDUP:${name}` });

async function claimAll(env: Env, workspaceId: string, requests: ClaimRequest[], eventsById: Map<string, QueuedEvent>): Promise<Claimed[]> {
  const shards = groupBy(requests, (request) => dedupShardName(workspaceId, request.messageId));
  const results = await Promise.all([...shards].map(([name, shardRequests]) => dedupCall(env, name, (shard) => shard.claim(shardRequests))));
  // Two copies of one messageId inside the same batch: the first wins, the rest are duplicates.
  const seen = new Set<string>();
  return results.flat().map((claim) => {
    const duplicateInBatch = seen.has(claim.messageId);
    seen.add(claim.messageId);
    return {
      event: eventsById.get(`${workspaceId}\u0000${claim.messageId}`)!,
      claim: duplicateInBatch ? { ...claim, status: "duplicate" as const } : claim,
    };
  });
}

/**
 * Archives what is not archived yet, exactly once, whatever an earlier attempt
 * managed to do before it failed:
 * - an event first claimed under another batch key is inside that object if the
 *   object exists (R2 writes are atomic), so it is only marked;
 * - this batch's own object may exist from an earlier attempt of the same batch,
 *   so it is read and merged by messageId rather than overwritten.
 */
async function archive(env: Env, workspaceId: string, batchKey: string, claimed: Claimed[]): Promise<void> {
  const pending = claimed.filter((item) => !item.claim.archived);
  const earlierObjects = groupBy(
    pending.filter((item) => item.claim.batchKey !== batchKey),
    (item) => archiveObjectKey(workspaceId, archiveHour(item.event.receivedAt), item.claim.batchKey),
  );
  const alreadyArchived = new Set<string>();
  for (const [key, items] of earlierObjects) {
    if (!(await env.ARCHIVE.head(key))) continue;
    await markArchived(env, workspaceId, items.map((item) => item.event.messageId), items[0]!.claim.batchKey);
    for (const item of items) alreadyArchived.add(item.event.messageId);
  }
  const toWrite = pending.filter((item) => !alreadyArchived.has(item.event.messageId));
  for (const [hour, items] of groupBy(toWrite, (item) => archiveHour(item.event.receivedAt))) {
    const key = archiveObjectKey(workspaceId, hour, batchKey);
    const existing = ((await readArchiveObject(env.ARCHIVE, key)) ?? []) as QueuedEvent[];
    const present = new Set(existing.map((event) => event.messageId));
    const events = [...existing, ...items.map((item) => item.event).filter((event) => !present.has(event.messageId))];
    await writeArchiveObject(env, workspaceId, hour, batchKey, events);
  }
  if (toWrite.length) await markArchived(env, workspaceId, toWrite.map((item) => item.event.messageId), batchKey);
}

async function markArchived(env: Env, workspaceId: string, messageIds: string[], batchKey: string) {
  const shards = groupBy(messageIds, (id) => dedupShardName(workspaceId, id));
  await Promise.all([...shards].map(([name, ids]) => dedupCall(env, name, (shard) => shard.markArchived(ids, batchKey))));
}
