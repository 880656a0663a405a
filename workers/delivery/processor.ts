import { type Message, routeEvent } from "../activation/routing";
import type { EventProcessor } from "../pipeline/processor";
import { fanOut } from "./fanout";
import { enabledDestinations } from "./store";

/**
 * Hands resolved events to the workspace's destinations: each is routed by
 * consent, `integrations` and subscriptions, and queued for delivery. A
 * redelivered batch queues the same deliveries again, which the delivery log
 * lets through once.
 */
export function activationProcessor(env: Pick<Env, "DB" | "ACTIVATION_QUEUE">): EventProcessor {
  return {
    name: "activation",
    async process(workspaceId, events, batch) {
      const destinations = await enabledDestinations(env.DB, workspaceId);
      if (!destinations.length) return;
      await fanOut(env, workspaceId, destinations, (destination) =>
        events.map((event) => ({ message: event as Message, profileId: batch.profiles.get(event.messageId) ?? null, decision: routeEvent(destination, event as Message) })),
      );
    },
  };
}
