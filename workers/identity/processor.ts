import { callDurableObject } from "../lib/durable-object-retry";
import type { EventProcessor } from "../pipeline/processor";
import { GraphShards } from "./sharding/graph-shards";
import { IdentifierIndex } from "./sharding/identifier-index";
import { ShardRouter } from "./sharding/router";

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
          ? await routed(env, workspaceId, graphShards, events, batch.sources)
          : await callDurableObject(
              () => env.IDENTITY.getByName(workspaceId),
              (graph) => graph.resolveEvents(events, { sources: batch.sources }),
              { object: `IDENTITY:${workspaceId}` },
            );
      for (const { messageId, profileId } of assignments) if (profileId) batch.profiles.set(messageId, profileId);
    },
  };
}

async function routed(env: Pick<Env, "IDENTITY" | "IDENTIFIER_INDEX">, workspaceId: string, count: number, events: Parameters<EventProcessor["process"]>[1], sources: Record<string, string>) {
  const shards = new GraphShards(env.IDENTITY, workspaceId);
  // Shard 0 keeps the workspace's identity settings: identifiers are extracted here as the shards extract them.
  const settings = await shards.shard(0).getSettings();
  return new ShardRouter(shards, new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId), count, settings).resolve(events, sources);
}
