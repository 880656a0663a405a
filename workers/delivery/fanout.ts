import type { Destination } from "../activation/destination";
import type { Message, RoutingDecision } from "../activation/routing";
import { chunkBySize } from "../lib/chunks";
import { sha256Hex } from "../lib/keys";
import type { Delivery } from "./messages";
import { type Counter, countStatement } from "./store";

export interface Routed {
  message: Message;
  profileId: string | null;
  decision: RoutingDecision;
}

/**
 * Queue limits: 100 messages and 256 KB per `sendBatch`, 128 KB per message.
 * A delivery stays under DELIVERY_BYTES (one event is at most 32 KB plus
 * enrichment, so it always fits), and a send under SEND_BYTES.
 */
const SEND_MESSAGES = 100;
const SEND_BYTES = 200_000;
const DELIVERY_BYTES = 96_000;

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
    // At most `batchSize` messages and DELIVERY_BYTES of JSON per delivery.
    for (const chunk of chunkBySize(routed.filter((r) => r.decision.deliver), (r) => byteLength(r.message), DELIVERY_BYTES, destination.batchSize)) {
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
  for (const group of chunkBySize(deliveries, byteLength, SEND_BYTES, SEND_MESSAGES)) await queue.sendBatch(group.map((body) => ({ body, contentType: "json" as const })));
  if (counters.length) await env.DB.batch(counters);
  return deliveries.length;
}

const encoder = new TextEncoder();
const byteLength = (value: unknown) => encoder.encode(JSON.stringify(value)).length;
