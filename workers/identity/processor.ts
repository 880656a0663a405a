import type { EventProcessor } from "../pipeline/processor";

/**
 * Hands deduplicated events to the workspace's identity graph. Idempotent: the
 * graph skips events it has already applied, so a redelivered batch changes nothing.
 */
export function identityProcessor(env: Pick<Env, "IDENTITY">): EventProcessor {
  return {
    name: "identity",
    async process(workspaceId, events, batch) {
      const assignments = await env.IDENTITY.getByName(workspaceId).resolveEvents(events, { sources: batch.sources });
      for (const { messageId, profileId } of assignments) if (profileId) batch.profiles.set(messageId, profileId);
    },
  };
}
