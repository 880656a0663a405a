import type { Destination } from "../activation/destination";
import type { Message, RoutingDecision } from "../activation/routing";
import { sha256Hex } from "../lib/keys";
import type { Delivery } from "./messages";
import { type Counter, countStatement } from "./store";

export interface Routed {
  message: Message;
  profileId: string | null;
  decision: RoutingDecision;
}

/** Queue messages per `sendBatch` call (the limit is 100). */
const SEND_BATCH = 100;

/**
 * The delivery id is derived from the destination and the messages, so a
 * fan-out that runs twice (a redelivered events batch) produces the same
 * deliveries, and the delivery log lets only one of them through.
 */
export async function deliveryId(destinationId: string, messageIds: string[]): Promise<string> {
  return `dlv_${(await sha256Hex(`${destinationId}\u0000${[...messageIds].sort().join("\u0000")}`)).slice(0, 32)}`;
}

/**
 * Routes messages to a workspace's destinations and queues the ones each
 * should receive, in batches of its `batchSize`, counting what was filtered
 * and why. Returns how many deliveries were queued.
 */
export async function fanOut(env: Pick<Env, "DB" | "ACTIVATION_QUEUE">, workspaceId: string, destinations: Destination[], route: (destination: Destination) => Routed[]): Promise<number> {
  const deliveries: Delivery[] = [];
  const counters: D1PreparedStatement[] = [];
  for (const destination of destinations) {
    const routed = route(destination);
    const counts: Partial<Record<Counter, number>> = {};
    for (const { decision } of routed) {
      if (decision.reason !== "not_subscribed") counts.received = (counts.received ?? 0) + 1;
      if (decision.reason !== "delivered") counts[decision.reason] = (counts[decision.reason] ?? 0) + 1;
    }
    if (Object.keys(counts).length) counters.push(countStatement(env.DB, workspaceId, destination.id, counts));
    const chosen = routed.filter((r) => r.decision.deliver);
    for (let i = 0; i < chosen.length; i += destination.batchSize) {
      const chunk = chosen.slice(i, i + destination.batchSize);
      const messageIds = chunk.map((r) => String(r.message.messageId));
      deliveries.push({
        v: 1,
        kind: "deliver",
        deliveryId: await deliveryId(destination.id, messageIds),
        workspaceId,
        destinationId: destination.id,
        messages: chunk.map((r) => r.message) as Delivery["messages"],
        profileIds: [...new Set(chunk.map((r) => r.profileId).filter((id): id is string => id !== null))],
        attempt: 1,
        firstAttemptAt: null,
      });
    }
  }
  const queue = env.ACTIVATION_QUEUE as Queue<Delivery>;
  for (let i = 0; i < deliveries.length; i += SEND_BATCH) await queue.sendBatch(deliveries.slice(i, i + SEND_BATCH).map((body) => ({ body, contentType: "json" as const })));
  if (counters.length) await env.DB.batch(counters);
  return deliveries.length;
}
