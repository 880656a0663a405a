/**
 * What to do after a delivery attempt, as pure functions of the outcome and of
 * time passed in: classify, back off, give up after the budget, and keep a
 * per-destination circuit breaker.
 *
 * Segment's rules: 2xx is delivered; 429, 5xx, 408, network errors and
 * timeouts are retried with exponential backoff for up to 4 hours, after which
 * the message is dead-lettered; other 4xx are permanent (retrying the same
 * bytes gets the same answer), with a reason an admin can act on.
 */

export type Outcome =
  | { kind: "response"; status: number; /** The `Retry-After` header, if any. */ retryAfter?: string | null }
  | { kind: "network_error"; message?: string }
  | { kind: "timeout" };

export type RetryCode = "rate_limited" | "server_error" | "request_timeout" | "network_error" | "timeout";
export type PermanentCode = "bad_request" | "unauthorized" | "forbidden" | "not_found" | "payload_too_large" | "unprocessable" | "client_error" | "unexpected_status";

export type Classification =
  | { verdict: "success"; status: number }
  | { verdict: "retry"; code: RetryCode; reason: string; /** From `Retry-After`, when the destination sent one. */ retryAfterMs?: number }
  | { verdict: "permanent"; code: PermanentCode; reason: string; status: number };

const PERMANENT: Record<number, [PermanentCode, string]> = {
  400: ["bad_request", "400 Bad Request: the destination refused the payload"],
  401: ["unauthorized", "401 Unauthorized: check the destination's API key or write key"],
  403: ["forbidden", "403 Forbidden: the key lacks permission for this call"],
  404: ["not_found", "404 Not Found: check the URL, instance or list id"],
  413: ["payload_too_large", "413 Payload Too Large: lower the destination's batchSize"],
  422: ["unprocessable", "422 Unprocessable Entity: the destination rejected the data"],
};

/** `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/**
 * The verdict for one attempt. `notFoundIsSuccess` is for deletions, where a
 * 404 means the person is already gone (Mailchimp answers so for a non-member).
 */
export function classifyOutcome(outcome: Outcome, options: { now: number; notFoundIsSuccess?: boolean }): Classification {
  if (outcome.kind === "timeout") return { verdict: "retry", code: "timeout", reason: "the request timed out" };
  if (outcome.kind === "network_error") return { verdict: "retry", code: "network_error", reason: `network error${outcome.message ? `: ${outcome.message}` : ""}` };
  const { status } = outcome;
  if (status >= 200 && status < 300) return { verdict: "success", status };
  if (status === 404 && options.notFoundIsSuccess) return { verdict: "success", status };
  const retryAfterMs = parseRetryAfter(outcome.retryAfter, options.now);
  const after = retryAfterMs === undefined ? {} : { retryAfterMs };
  if (status === 429) return { verdict: "retry", code: "rate_limited", reason: "429 Too Many Requests", ...after };
  if (status === 408) return { verdict: "retry", code: "request_timeout", reason: "408 Request Timeout", ...after };
  if (status >= 500 && status < 600) return { verdict: "retry", code: "server_error", reason: `${status} server error`, ...after };
  const known = PERMANENT[status];
  if (known) return { verdict: "permanent", code: known[0], reason: known[1], status };
  if (status >= 400 && status < 500) return { verdict: "permanent", code: "client_error", reason: `${status} client error`, status };
  // Redirects are not followed for deliveries (a redirect could carry the API key elsewhere), so they count as failures too.
  return { verdict: "permanent", code: "unexpected_status", reason: `unexpected status ${status}`, status };
}

export const BACKOFF_BASE_MS = 2_000;
export const BACKOFF_CAP_MS = 15 * 60_000;
export const RETRY_BUDGET_MS = 4 * 60 * 60_000;

/**
 * Full jitter: a uniform wait in [0, min(cap, base · 2^(attempt − 1))), where
 * `attempt` counts the attempts made so far (1 after the first failure). Full
 * rather than partial jitter because many messages fail together when a
 * destination goes down, and spreading their retries over the whole range is
 * what keeps them from arriving back in one burst.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.floor(attempt) - 1);
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** exponent);
  const draw = Math.min(Math.max(random(), 0), 1 - Number.EPSILON);
  return Math.floor(draw * ceiling);
}

export type NextStep =
  | { action: "done" }
  | { action: "retry"; at: number; delayMs: number }
  | { action: "failed"; code: PermanentCode; reason: string }
  | { action: "dead_letter"; reason: string };

/**
 * After an attempt: done, failed for good, retry at a time, or dead-letter
 * because the next attempt would fall after the budget (4 hours from the
 * first attempt). A `Retry-After` is obeyed as given rather than jittered: the
 * destination asked for exactly that.
 */
export function nextStep(input: {
  classification: Classification;
  attempt: number;
  firstAttemptAt: number;
  now: number;
  random?: () => number;
  budgetMs?: number;
}): NextStep {
  const { classification } = input;
  if (classification.verdict === "success") return { action: "done" };
  if (classification.verdict === "permanent") return { action: "failed", code: classification.code, reason: classification.reason };
  const delayMs = classification.retryAfterMs ?? backoffDelay(input.attempt, input.random);
  const at = input.now + delayMs;
  const deadline = input.firstAttemptAt + (input.budgetMs ?? RETRY_BUDGET_MS);
  if (at > deadline) return { action: "dead_letter", reason: `retry budget spent after ${input.attempt} attempts; last: ${classification.reason}` };
  return { action: "retry", at, delayMs };
}

/**
 * A per-destination circuit breaker. Closed: requests flow, consecutive
 * failures counted. Open after `failureThreshold` of them: nothing is sent
 * until `coolDownMs` has passed, so a destination that is down is not
 * hammered by every queued message. Half-open: one trial request; success
 * closes, failure reopens. A trial that never reports (its worker died)
 * is replaced by another after a further cool-down.
 */
export interface BreakerConfig {
  failureThreshold: number;
  coolDownMs: number;
}

export const DEFAULT_BREAKER: BreakerConfig = { failureThreshold: 5, coolDownMs: 60_000 };

export type BreakerState = { state: "closed"; failures: number } | { state: "open"; openedAt: number } | { state: "half_open"; trialAt: number };

export const CLOSED: BreakerState = { state: "closed", failures: 0 };

export interface BreakerPermit {
  allowed: boolean;
  state: BreakerState;
  /** When refused: when to ask again. */
  retryAt?: number;
}

/** Whether a request may go now; may move open → half-open, making this request the trial. */
export function breakerPermit(state: BreakerState, now: number, config: BreakerConfig = DEFAULT_BREAKER): BreakerPermit {
  switch (state.state) {
    case "closed":
      return { allowed: true, state };
    case "open": {
      const reopensAt = state.openedAt + config.coolDownMs;
      return now >= reopensAt ? { allowed: true, state: { state: "half_open", trialAt: now } } : { allowed: false, state, retryAt: reopensAt };
    }
    case "half_open": {
      const stuckAt = state.trialAt + config.coolDownMs;
      return now >= stuckAt ? { allowed: true, state: { state: "half_open", trialAt: now } } : { allowed: false, state, retryAt: stuckAt };
    }
  }
}

export type BreakerSignal = "healthy" | "unhealthy";

/**
 * What an attempt says about the destination, not the message: it is healthy
 * when it answered with a success or a message-specific refusal (400, 404,
 * 413, 422); unhealthy when it did not answer, asked us to slow down, failed
 * itself, or refused our credentials (401, 403: every request would fail).
 */
export function breakerSignal(classification: Classification): BreakerSignal {
  if (classification.verdict === "retry") return "unhealthy";
  if (classification.verdict === "permanent" && (classification.code === "unauthorized" || classification.code === "forbidden")) return "unhealthy";
  return "healthy";
}

export function breakerRecord(state: BreakerState, signal: BreakerSignal, now: number, config: BreakerConfig = DEFAULT_BREAKER): BreakerState {
  if (signal === "healthy") return CLOSED;
  switch (state.state) {
    case "closed": {
      const failures = state.failures + 1;
      return failures >= config.failureThreshold ? { state: "open", openedAt: now } : { state: "closed", failures };
    }
    case "half_open":
      return { state: "open", openedAt: now };
    case "open":
      // A late answer to a request sent before the breaker opened: the cool-down already runs from the opening.
      return state;
  }
}
