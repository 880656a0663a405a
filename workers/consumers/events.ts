import { dedupShardName, type ClaimRequest, type ClaimResult } from "../../durable-objects/dedup-shard";
import { archiveHour, archiveObjectKey } from "../archive/layout";
import { writeArchiveObject } from "../archive/writer";
import { eventEnvelopeSchema, type QueuedEvent } from "../intake/envelope";
import { sha256Hex } from "../lib/keys";
import { createLogger, errorFields } from "../lib/logger";
import type { EventProcessor } from "../pipeline/processor";

interface Claimed {
  event: QueuedEvent;
  claim: ClaimResult;
}

/** Exponential backoff for whole-batch retries: 2, 4, 8 … capped at 5 minutes. */
export const retryDelaySeconds = (attempts: number) => Math.min(300, 2 ** Math.max(1, attempts));

/**
 * Consumes the events queue: drops client retries (dedup on messageId), writes
 * the batch to the R2 archive, then hands the events to the processors. A
 * failure anywhere retries the whole batch, which every step tolerates.
 */
export async function consumeEvents(batch: MessageBatch<unknown>, env: Env, processors: EventProcessor[]): Promise<void> {
  const logger = createLogger({ queue: batch.queue, messages: batch.messages.length });
  const batchKey = (await sha256Hex(batch.messages.map((m) => m.id).sort().join(","))).slice(0, 32);

  const byWorkspace = new Map<string, ClaimRequest[]>();
  const eventsById = new Map<string, QueuedEvent>();
  const quarantined: Message<unknown>[] = [];
  for (const message of batch.messages) {
    const parsed = eventEnvelopeSchema.safeParse(message.body);
    if (!parsed.success) {
      quarantined.push(message);
      continue;
    }
    const { workspaceId, events } = parsed.data;
    const requests = byWorkspace.get(workspaceId) ?? [];
    for (const event of events) {
      requests.push({ messageId: event.messageId, claimant: message.id, batchKey });
      eventsById.set(`${workspaceId}\u0000${event.messageId}`, event);
    }
    byWorkspace.set(workspaceId, requests);
  }

  try {
    // A message that fails its schema can never succeed: keep its bytes for a person to look at, and move on.
    await Promise.all(
      quarantined.map((message) => env.ARCHIVE.put(`quarantine/events/${message.id}.json`, JSON.stringify({ id: message.id, body: message.body }))),
    );
    if (quarantined.length) logger.error("quarantined malformed queue messages", { ids: quarantined.map((m) => m.id) });

    for (const [workspaceId, requests] of byWorkspace) {
      const claimed = await claimAll(env, workspaceId, requests, eventsById);
      const fresh = claimed.filter((c) => c.claim.status !== "duplicate");
      await archive(env, workspaceId, batchKey, fresh);
      const events = fresh.map((c) => c.event);
      for (const processor of processors) if (events.length) await processor.process(workspaceId, events);
      logger.info("events consumed", { workspaceId, received: requests.length, duplicates: claimed.length - fresh.length });
    }
    batch.ackAll();
  } catch (error) {
    const attempts = Math.max(...batch.messages.map((m) => m.attempts));
    logger.error("events batch failed; retrying", { ...errorFields(error), attempts });
    batch.retryAll({ delaySeconds: retryDelaySeconds(attempts) });
  }
}

async function claimAll(env: Env, workspaceId: string, requests: ClaimRequest[], eventsById: Map<string, QueuedEvent>): Promise<Claimed[]> {
  const shards = new Map<string, ClaimRequest[]>();
  for (const request of requests) {
    const name = dedupShardName(workspaceId, request.messageId);
    shards.set(name, [...(shards.get(name) ?? []), request]);
  }
  const results = await Promise.all([...shards].map(([name, shardRequests]) => env.DEDUP.getByName(name).claim(shardRequests)));
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
 * Archives what is not archived yet. An event whose first attempt recorded a
 * different batch key is already inside that object if the object exists (R2
 * writes are atomic), so it is not written twice.
 */
async function archive(env: Env, workspaceId: string, batchKey: string, claimed: Claimed[]): Promise<void> {
  const pending: Claimed[] = [];
  for (const item of claimed) {
    if (item.claim.archived) continue;
    if (item.claim.batchKey !== batchKey) {
      const earlier = archiveObjectKey(workspaceId, archiveHour(item.event.receivedAt), item.claim.batchKey);
      if (await env.ARCHIVE.head(earlier)) {
        await markArchived(env, workspaceId, [item.event.messageId], item.claim.batchKey);
        continue;
      }
    }
    pending.push(item);
  }
  const byHour = new Map<string, QueuedEvent[]>();
  for (const { event } of pending) {
    const hour = archiveHour(event.receivedAt);
    byHour.set(hour, [...(byHour.get(hour) ?? []), event]);
  }
  for (const [hour, events] of byHour) await writeArchiveObject(env, workspaceId, hour, batchKey, events);
  if (pending.length) await markArchived(env, workspaceId, pending.map((p) => p.event.messageId), batchKey);
}

async function markArchived(env: Env, workspaceId: string, messageIds: string[], batchKey: string) {
  const shards = new Map<string, string[]>();
  for (const id of messageIds) {
    const name = dedupShardName(workspaceId, id);
    shards.set(name, [...(shards.get(name) ?? []), id]);
  }
  await Promise.all([...shards].map(([name, ids]) => env.DEDUP.getByName(name).markArchived(ids, batchKey)));
}
