import type { Destination } from "../activation/destination";
import { formatBatch, type HttpRequest } from "../activation/formatters";
import { type Classification, classifyOutcome } from "../activation/retry";
import type { Message } from "../activation/routing";

/** A destination that has not answered in this long is treated as a network failure, and retried. */
export const REQUEST_TIMEOUT_MS = 10_000;

export interface AttemptResult {
  /** Messages every request of which succeeded. */
  delivered: string[];
  /** Messages no retry can deliver to this type, with why. */
  skipped: { messageId: string; reason: string }[];
  /** The first failure, if any: the messages not in `delivered` or `skipped` wait on it. */
  failure?: Classification;
  latencyMs: number;
}

/**
 * One attempt at a batch: the formatter's requests, in order, each with a
 * timeout. It stops at the first failure, so a message is never sent again
 * once its requests succeeded: a retry carries only what is still pending.
 */
export async function attemptDelivery(destination: Destination, messages: Message[], now = Date.now()): Promise<AttemptResult> {
  const started = performance.now();
  const { requests, skipped } = await formatBatch(destination, messages, { now });
  const failedIds = new Set<string>();
  let failure: Classification | undefined;
  for (const request of requests) {
    if (failure) {
      for (const id of request.messageIds) failedIds.add(id);
      continue;
    }
    const classification = await sendRequest(request);
    if (classification.verdict !== "success") {
      failure = classification;
      for (const id of request.messageIds) failedIds.add(id);
    }
  }
  const skippedIds = new Set(skipped.map((s) => s.messageId));
  const delivered = messages.map((m) => String(m.messageId)).filter((id) => !failedIds.has(id) && !skippedIds.has(id));
  return { delivered, skipped, ...(failure ? { failure } : {}), latencyMs: Math.round(performance.now() - started) };
}

/** Sends one formatted request with the delivery timeout and classifies what came back (`notFoundIsSuccess` for deletions). */
export async function sendRequest(request: HttpRequest, options: { notFoundIsSuccess?: boolean } = {}): Promise<Classification> {
  try {
    const response = await fetch(request.url, { method: request.method, headers: request.headers, body: request.body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    await response.body?.cancel();
    return classifyOutcome({ kind: "response", status: response.status, retryAfter: response.headers.get("retry-after") }, { now: Date.now(), ...options });
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
    return classifyOutcome(timedOut ? { kind: "timeout" } : { kind: "network_error", message: String(error) }, { now: Date.now() });
  }
}
