import type { CdpEvent } from "../tracking/normalize";
import type { EventEnvelope } from "./envelope";

/**
 * Queue limits: 128 KB per message and 100 messages or 256 KB per sendBatch
 * (1 KB = 1000 bytes, ~100 bytes of metadata each). We stay well inside them.
 */
export const QUEUE_MESSAGE_BUDGET = 100_000;
const SEND_BATCH_BUDGET = 240_000;
const SEND_BATCH_MESSAGES = 100;

const encoder = new TextEncoder();

/** Packs events into envelopes of at most QUEUE_MESSAGE_BUDGET bytes each. */
export function packEnvelopes(workspaceId: string, sourceId: string, events: CdpEvent[], suppressionsAsOf?: number): { body: EventEnvelope; bytes: number }[] {
  const packed: { body: EventEnvelope; bytes: number }[] = [];
  const stamp = suppressionsAsOf === undefined ? {} : { suppressionsAsOf };
  const overhead = encoder.encode(JSON.stringify({ v: 1, workspaceId, sourceId, events: [], ...stamp })).byteLength;
  let current: CdpEvent[] = [];
  let size = overhead;
  for (const event of events) {
    const bytes = encoder.encode(JSON.stringify(event)).byteLength + 1;
    if (current.length > 0 && size + bytes > QUEUE_MESSAGE_BUDGET) {
      packed.push({ body: { v: 1, workspaceId, sourceId, events: current, ...stamp }, bytes: size });
      current = [];
      size = overhead;
    }
    current.push(event);
    size += bytes;
  }
  if (current.length > 0) packed.push({ body: { v: 1, workspaceId, sourceId, events: current, ...stamp }, bytes: size });
  return packed;
}

/**
 * Sends every event, or throws. A throw after a partial send is safe: the
 * client retries the whole request and dedup on messageId absorbs the repeats.
 */
export async function publishEvents(queue: Queue<EventEnvelope>, workspaceId: string, sourceId: string, events: CdpEvent[], suppressionsAsOf?: number): Promise<void> {
  // One event is at most 32 KB plus enrichment: it always fits one queue message.
  if (events.length === 1) {
    await queue.send({ v: 1, workspaceId, sourceId, events, ...(suppressionsAsOf === undefined ? {} : { suppressionsAsOf }) }, { contentType: "json" });
    return;
  }
  const envelopes = packEnvelopes(workspaceId, sourceId, events, suppressionsAsOf);
  let batch: MessageSendRequest<EventEnvelope>[] = [];
  let batchBytes = 0;
  for (const envelope of envelopes) {
    if (batch.length > 0 && (batch.length >= SEND_BATCH_MESSAGES || batchBytes + envelope.bytes > SEND_BATCH_BUDGET)) {
      await queue.sendBatch(batch);
      batch = [];
      batchBytes = 0;
    }
    batch.push({ body: envelope.body, contentType: "json" });
    batchBytes += envelope.bytes;
  }
  if (batch.length === 1) await queue.send(batch[0]!.body, { contentType: "json" });
  else if (batch.length > 1) await queue.sendBatch(batch);
}
