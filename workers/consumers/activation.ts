import { routeActivation } from "../activation/routing";
import type { Destination } from "../activation/destination";
import { backoffDelay, breakerPermit, breakerRecord, breakerSignal, nextStep } from "../activation/retry";
import { fanOut } from "../delivery/fanout";
import { activationMessageSchema, type AudienceChangeMessage, type Delivery } from "../delivery/messages";
import { attemptDelivery } from "../delivery/send";
import { breakerStatement, type Counter, countStatement, deliveryStatement, destinationById, enabledDestinations, loadBreaker, recipientsStatement } from "../delivery/store";
import { retryBudgetMs } from "../env";
import type { QueuedEvent } from "../intake/envelope";
import { createLogger, errorFields, type Logger } from "../lib/logger";
import { suppressedEvents } from "../privacy/suppression-store";
import type { ActivationEnvelope } from "../segments/activation";
import { retryDelaySeconds } from "./events";

interface Item<T> {
  message: Message<unknown>;
  body: T;
}

/**
 * Consumes the activation queue. Audience and computed-trait changes are
 * fanned out to the destinations subscribed to them; deliveries are sent, one
 * destination's at a time in order but every destination in parallel, so a
 * slow or failing one does not hold up the others' sends.
 */
export async function consumeActivations(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const logger = createLogger({ queue: batch.queue, messages: batch.messages.length });
  const changes: Item<AudienceChangeMessage>[] = [];
  const byDestination = new Map<string, Item<Delivery>[]>();
  for (const message of batch.messages) {
    const parsed = activationMessageSchema.safeParse(message.body);
    if (!parsed.success) {
      // It can never succeed: kept for a person to look at, and acknowledged.
      await env.ARCHIVE.put(`quarantine/activations/${message.id}.json`, JSON.stringify({ id: message.id, body: message.body }));
      logger.error("quarantined a malformed activation message", { id: message.id });
      message.ack();
    } else if ("kind" in parsed.data) {
      const key = `${parsed.data.workspaceId}\u0000${parsed.data.destinationId}`;
      byDestination.set(key, [...(byDestination.get(key) ?? []), { message, body: parsed.data }]);
    } else changes.push({ message, body: parsed.data });
  }
  await Promise.all([fanOutChanges(env, changes), ...[...byDestination.values()].map((items) => deliverAll(env, items))]);
}

async function fanOutChanges(env: Env, changes: Item<AudienceChangeMessage>[]) {
  const destinationsOf = new Map<string, Promise<Destination[]>>();
  for (const { message, body } of changes) {
    try {
      if (!destinationsOf.has(body.workspaceId)) destinationsOf.set(body.workspaceId, enabledDestinations(env.DB, body.workspaceId));
      const destinations = await destinationsOf.get(body.workspaceId)!;
      await fanOut(env, body.workspaceId, destinations, (destination) =>
        routeActivation(destination, body as unknown as ActivationEnvelope).map((routed) => ({ ...routed, profileId: body.profileId })),
      );
      message.ack();
    } catch (error) {
      createLogger({ workspaceId: body.workspaceId }).error("audience change fan-out failed; retrying", errorFields(error));
      message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
    }
  }
}

/** One destination's deliveries, in order, under its circuit breaker. */
async function deliverAll(env: Env, items: Item<Delivery>[]) {
  const { workspaceId, destinationId } = items[0]!.body;
  const logger = createLogger({ workspaceId, destinationId });
  const destination = await destinationById(env.DB, workspaceId, destinationId);
  if (!destination || !destination.enabled) {
    logger.warn("deliveries for a destination that is gone or disabled were dropped", { deliveries: items.length });
    for (const item of items) item.message.ack();
    return;
  }
  items = await withoutSuppressed(env.DB, items, logger);
  let breaker = await loadBreaker(env.DB, destinationId);
  // Once an attempt in this invocation found the destination down, its other deliveries wait for the
  // next one instead of each spending a timeout here: the invocation, and every other destination's
  // acknowledgements, would otherwise wait on all of them.
  let downFor: number | null = null;
  const counts: Partial<Record<Counter, number>> = {};
  const add = (key: Counter, n: number) => (counts[key] = (counts[key] ?? 0) + n);
  for (const { message, body } of items) {
    try {
      if (await alreadySettled(env.DB, body)) {
        message.ack();
        continue;
      }
      const now = Date.now();
      if (downFor !== null) {
        await requeue(env, body, downFor);
        message.ack();
        continue;
      }
      const permit = breakerPermit(breaker, now);
      if (!permit.allowed) {
        // The destination is down: wait for the breaker rather than spend an attempt.
        await requeue(env, body, Math.max(1, Math.ceil(((permit.retryAt ?? now) - now) / 1000)));
        message.ack();
        continue;
      }
      breaker = permit.state;
      const firstAttemptAt = body.firstAttemptAt ?? now;
      const result = await attemptDelivery(destination, body.messages, now);
      add("delivered", result.delivered.length);
      add("failed", result.skipped.length);
      const done = new Set([...result.delivered, ...result.skipped.map((s) => s.messageId)]);
      const pending = body.messages.filter((m) => !done.has(m.messageId));
      let status: "delivered" | "retrying" | "failed" | "dead_lettered" = "delivered";
      let lastError = result.skipped.length ? result.skipped.map((s) => `${s.messageId}: ${s.reason}`).join("; ") : null;
      if (result.failure) {
        breaker = breakerRecord(breaker, breakerSignal(result.failure), Date.now());
        if (breakerSignal(result.failure) === "unhealthy") downFor = Math.max(1, Math.ceil(backoffDelay(body.attempt) / 1000));
        const step = nextStep({ classification: result.failure, attempt: body.attempt, firstAttemptAt, now: Date.now(), budgetMs: retryBudgetMs(env) });
        lastError = result.failure.verdict === "success" ? lastError : result.failure.reason;
        if (step.action === "retry") {
          status = "retrying";
          add("retried", pending.length);
          await requeue(env, { ...body, messages: pending, attempt: body.attempt + 1, firstAttemptAt }, Math.max(1, Math.ceil(step.delayMs / 1000)));
        } else if (step.action === "dead_letter") {
          status = "dead_lettered";
          add("dead_lettered", pending.length);
          lastError = step.reason;
          await env.ARCHIVE.put(deadLetterKey(body), JSON.stringify({ ...body, messages: pending, firstAttemptAt, reason: step.reason }));
        } else {
          status = "failed";
          add("failed", pending.length);
        }
      } else breaker = breakerRecord(breaker, "healthy", Date.now());
      // An attempt may have reached the destination whatever its outcome: it counts as having received their data.
      await env.DB.batch([
        deliveryStatement(env.DB, {
          id: body.deliveryId,
          workspaceId,
          destinationId,
          status,
          messageIds: body.messages.map((m) => m.messageId),
          profileIds: body.profileIds,
          attempts: body.attempt,
          lastError,
          latencyMs: result.latencyMs,
          firstAttemptAt,
        }),
        recipientsStatement(env.DB, workspaceId, destinationId, body.profileIds),
      ]);
      message.ack();
    } catch (error) {
      logger.error("delivery failed unexpectedly; the queue retries it", { ...errorFields(error), deliveryId: body.deliveryId });
      message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
    }
  }
  await env.DB.batch([breakerStatement(env.DB, destinationId, breaker), countStatement(env.DB, workspaceId, destinationId, counts)]);
}

/**
 * Messages about a person suppressed since they were queued (a deletion in
 * progress) are not sent: a delivery after the destination's deletion call
 * would re-create them there. A delivery left with nothing is acknowledged.
 */
async function withoutSuppressed(db: D1Database, items: Item<Delivery>[], logger: Logger): Promise<Item<Delivery>[]> {
  const messages = items.flatMap((item) => item.body.messages);
  // Audience messages may carry no context; identifier extraction reads it.
  const events = messages.map((m) => ({ context: {}, ...m }) as unknown as QueuedEvent);
  const suppressed = await suppressedEvents(db, items[0]!.body.workspaceId, events, "authoritative");
  if (!suppressed.includes(true)) return items;
  const dropped = new Set(messages.filter((_, i) => suppressed[i]).map((m) => m.messageId));
  logger.info("messages about suppressed people dropped before delivery", { messages: dropped.size });
  return items.flatMap((item) => {
    const kept = item.body.messages.filter((m) => !dropped.has(m.messageId));
    if (kept.length) return [{ ...item, body: { ...item.body, messages: kept } }];
    item.message.ack();
    return [];
  });
}

/** A copy of a delivery whose attempt the log already has (a queue duplicate, or a redelivered fan-out) is not sent again. */
async function alreadySettled(db: D1Database, body: Delivery): Promise<boolean> {
  const prior = await db.prepare("SELECT status, attempts FROM deliveries WHERE id = ?").bind(body.deliveryId).first<{ status: string; attempts: number }>();
  if (!prior) return false;
  return prior.status !== "retrying" || prior.attempts >= body.attempt;
}

async function requeue(env: Env, body: Delivery, delaySeconds: number) {
  await (env.ACTIVATION_QUEUE as Queue<Delivery>).send(body, { contentType: "json", delaySeconds });
}

export const deadLetterKey = (body: Pick<Delivery, "workspaceId" | "destinationId" | "deliveryId">) => `dead-letters/activations/${body.workspaceId}/${body.destinationId}/${body.deliveryId}.json`;
