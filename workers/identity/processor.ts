import { callDurableObject } from "../lib/durable-object-retry";
import type { EventProcessor } from "../pipeline/processor";

/**
 * Hands deduplicated events to the workspace's identity graph. Idempotent: the
 * graph skips events it has already applied, so a redelivered batch changes nothing.
 * That is also what makes a retried call safe: one that reached the graph before
 * its connection dropped gets the same assignments back the second time. An
 * overloaded graph throws `DurableObjectOverloaded`, which the events consumer
 * turns into a delayed redelivery of the batch.
 */
export function identityProcessor(env: Pick<Env, "IDENTITY">): EventProcessor {
  return {
    name: "identity",
    async process(workspaceId, events, batch) {
      const assignments = await callDurableObject(
        () => env.IDENTITY.getByName(workspaceId),
        (graph) => graph.resolveEvents(events, { sources: batch.sources }),
        { object: `IDENTITY:${workspaceId}` },
      );
      for (const { messageId, profileId } of assignments) if (profileId) batch.profiles.set(messageId, profileId);
    },
  };
}
