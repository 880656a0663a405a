import { callDurableObject } from "../lib/durable-object-retry";
import type { EventProcessor } from "../pipeline/processor";
import { routeBatch } from "./sharding/route-batch";

/**
 * Hands deduplicated events to the workspace's identity graph. Idempotent: the
 * graph skips events it has already applied, so a redelivered batch changes nothing.
 * That is also what makes a retried call safe: one that reached the graph before
 * its connection dropped gets the same assignments back the second time. An
 * overloaded graph throws `DurableObjectOverloaded`, which the events consumer
 * turns into a delayed redelivery of the batch.
 *
 * With more than one graph shard, events go through the router, which places
 * identifiers with the identifier index and brings people together before an
 * event that reaches several of them (sharding/router.ts).
 */
export function identityProcessor(env: Pick<Env, "IDENTITY" | "IDENTIFIER_INDEX">, graphShards = 1): EventProcessor {
  return {
    name: "identity",
    async process(workspaceId, events, batch) {
      const assignments =
        graphShards > 1
          ? await routeBatch(env, workspaceId, graphShards, events, batch.sources)
          : await callDurableObject(
              () => env.IDENTITY.getByName(workspaceId),
              (graph) => graph.resolveEvents(events, { sources: batch.sources }),
              { object: `IDENTITY:${workspaceId}` },
            );
      for (const { messageId, profileId } of assignments) if (profileId) batch.profiles.set(messageId, profileId);
    },
  };
}
