import { createLogger } from "../lib/logger";

/**
 * Messages that exhausted their retries land here. They are kept in R2 under
 * `dead-letters/` (one object per message, keyed by its id, so a redelivery
 * overwrites) until a person replays them: nothing acknowledged is dropped.
 */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const logger = createLogger({ queue: batch.queue });
  const day = new Date().toISOString().slice(0, 10);
  await Promise.all(
    batch.messages.map((message) =>
      env.ARCHIVE.put(
        `dead-letters/${batch.queue}/${day}/${message.id}.json`,
        JSON.stringify({ id: message.id, queue: batch.queue, attempts: message.attempts, timestamp: message.timestamp.toISOString(), body: message.body }),
        { httpMetadata: { contentType: "application/json" } },
      ),
    ),
  );
  logger.error("dead-lettered messages stored", { count: batch.messages.length, ids: batch.messages.map((m) => m.id) });
  batch.ackAll();
}
