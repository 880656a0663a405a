import { describe, expect, it } from "vitest";
import {
  BACKOFF_CAP_MS,
  backoffDelay,
  type BreakerState,
  breakerPermit,
  breakerRecord,
  breakerSignal,
  type Classification,
  CLOSED,
  classifyOutcome,
  nextStep,
  parseRetryAfter,
  RETRY_BUDGET_MS,
} from "../../workers/activation/retry";
import { NOW } from "./helpers";

const status = (code: number, retryAfter?: string) => classifyOutcome({ kind: "response", status: code, retryAfter }, { now: NOW });
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe("classifying an attempt", () => {
  it("counts every 2xx as delivered", () => {
    for (const code of [200, 201, 202, 204]) expect(status(code)).toEqual({ verdict: "success", status: code });
  });

  it("retries 429, 408, every 5xx, network errors and timeouts", () => {
    expect(status(429)).toEqual({ verdict: "retry", code: "rate_limited", reason: "429 Too Many Requests" });
    expect(status(408).verdict).toBe("retry");
    for (const code of [500, 502, 503, 504]) expect(status(code)).toEqual({ verdict: "retry", code: "server_error", reason: `${code} server error` });
    expect(classifyOutcome({ kind: "network_error", message: "connection reset" }, { now: NOW })).toEqual({ verdict: "retry", code: "network_error", reason: "network error: connection reset" });
    expect(classifyOutcome({ kind: "timeout" }, { now: NOW })).toEqual({ verdict: "retry", code: "timeout", reason: "the request timed out" });
  });

  it("fails 400, 401, 403, 404, 413 and 422 for good, each with a reason an admin can act on", () => {
    const permanent = [400, 401, 403, 404, 413, 422].map((code) => {
      const result = status(code);
      return result.verdict === "permanent" ? [code, result.code, result.reason] : [code, result.verdict];
    });
    expect(permanent).toEqual([
      [400, "bad_request", "400 Bad Request: the destination refused the payload"],
      [401, "unauthorized", "401 Unauthorized: check the destination's API key or write key"],
      [403, "forbidden", "403 Forbidden: the key lacks permission for this call"],
      [404, "not_found", "404 Not Found: check the URL, instance or list id"],
      [413, "payload_too_large", "413 Payload Too Large: lower the destination's batchSize"],
      [422, "unprocessable", "422 Unprocessable Entity: the destination rejected the data"],
    ]);
  });

  it("fails other 4xx and unexpected statuses (a redirect) for good too", () => {
    expect(status(409)).toMatchObject({ verdict: "permanent", code: "client_error" });
    expect(status(302)).toMatchObject({ verdict: "permanent", code: "unexpected_status" });
  });

  it("treats a 404 as done for a deletion, where it means the person is already gone", () => {
    expect(classifyOutcome({ kind: "response", status: 404 }, { now: NOW, notFoundIsSuccess: true }).verdict).toBe("success");
  });

  it("reads Retry-After as seconds or as an HTTP date", () => {
    expect(status(429, "30")).toMatchObject({ retryAfterMs: 30_000 });
    expect(status(503, new Date(NOW + 90_000).toUTCString())).toMatchObject({ retryAfterMs: 90_000 });
    expect(parseRetryAfter(new Date(NOW - 5_000).toUTCString(), NOW)).toBe(0);
    expect(parseRetryAfter("soon", NOW)).toBeUndefined();
    expect(parseRetryAfter(null, NOW)).toBeUndefined();
  });
});

describe("exponential backoff with full jitter", () => {
  it("waits up to 2 s after the first attempt, doubling each time", () => {
    const ceilings = [1, 2, 3, 4, 5].map((attempt) => backoffDelay(attempt, () => 0.999_999_9));
    expect(ceilings.map((delay) => Math.round(delay / 1000))).toEqual([2, 4, 8, 16, 32]);
  });

  it("never waits more than 15 minutes, however many attempts, nor less than 0", () => {
    expect(backoffDelay(10, () => 0.999_999_9)).toBeLessThan(BACKOFF_CAP_MS);
    expect(backoffDelay(10, () => 0.999_999_9)).toBeGreaterThan(BACKOFF_CAP_MS - 1_000);
    expect(backoffDelay(5_000, () => 0.5)).toBe(BACKOFF_CAP_MS / 2);
    expect(backoffDelay(3, () => 0)).toBe(0);
    expect(backoffDelay(3, () => 1)).toBeLessThan(8_000);
    expect(backoffDelay(3, () => -1)).toBe(0);
  });

  it("spreads waits uniformly over the whole range, so failed messages do not come back in one burst", () => {
    // mulberry32: a small seeded generator, so the test is the same on every run.
    let seed = 42;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    };
    const delays = Array.from({ length: 4_000 }, () => backoffDelay(4, random));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThan(16_000);
    const quarters = [0, 1, 2, 3].map((quarter) => delays.filter((delay) => Math.floor(delay / 4_000) === quarter).length);
    for (const count of quarters) expect(count).toBeGreaterThan(850);
    expect(new Set(delays).size).toBeGreaterThan(3_000);
  });
});

describe("the retry budget", () => {
  const retry = (classification: Classification, attempt: number, now: number) => nextStep({ classification, attempt, firstAttemptAt: NOW, now, random: () => 0.5 });

  it("schedules a retry with the jittered backoff while time remains", () => {
    expect(retry(status(503), 1, NOW)).toEqual({ action: "retry", at: NOW + 1_000, delayMs: 1_000 });
  });

  it("obeys Retry-After exactly instead of its own backoff", () => {
    expect(retry(status(429, "120"), 1, NOW)).toEqual({ action: "retry", at: NOW + 120_000, delayMs: 120_000 });
  });

  it("dead-letters once the next attempt would fall after 4 hours from the first", () => {
    expect(RETRY_BUDGET_MS).toBe(4 * HOUR);
    expect(retry(status(500), 20, NOW + 4 * HOUR - 8 * MINUTE)).toMatchObject({ action: "retry" });
    expect(retry(status(500), 20, NOW + 4 * HOUR - 7 * MINUTE)).toEqual({ action: "dead_letter", reason: "retry budget spent after 20 attempts; last: 500 server error" });
    expect(retry(status(429, "3600"), 3, NOW + 3.5 * HOUR)).toMatchObject({ action: "dead_letter" });
  });

  it("stops at once on success or a permanent failure", () => {
    expect(retry(status(200), 1, NOW)).toEqual({ action: "done" });
    expect(retry(status(401), 1, NOW)).toEqual({ action: "failed", code: "unauthorized", reason: "401 Unauthorized: check the destination's API key or write key" });
  });
});

describe("the circuit breaker", () => {
  const config = { failureThreshold: 3, coolDownMs: 60_000 };
  const fail = (state: BreakerState, at = NOW) => breakerRecord(state, "unhealthy", at, config);

  it("stays closed below the threshold, and a success resets the count", () => {
    const twice = fail(fail(CLOSED));
    expect(twice).toEqual({ state: "closed", failures: 2 });
    expect(breakerRecord(twice, "healthy", NOW, config)).toEqual(CLOSED);
    expect(breakerPermit(twice, NOW, config).allowed).toBe(true);
  });

  it("opens after N consecutive failures and refuses requests until the cool-down has passed", () => {
    const open = fail(fail(fail(CLOSED)), NOW);
    expect(open).toEqual({ state: "open", openedAt: NOW });
    expect(breakerPermit(open, NOW + 59_999, config)).toEqual({ allowed: false, state: open, retryAt: NOW + 60_000 });
  });

  it("lets one trial through after the cool-down (half-open), holding the rest", () => {
    const open: BreakerState = { state: "open", openedAt: NOW };
    const trial = breakerPermit(open, NOW + 60_000, config);
    expect(trial).toEqual({ allowed: true, state: { state: "half_open", trialAt: NOW + 60_000 } });
    expect(breakerPermit(trial.state, NOW + 61_000, config).allowed).toBe(false);
  });

  it("closes when the trial succeeds and reopens, with a fresh cool-down, when it fails", () => {
    const halfOpen: BreakerState = { state: "half_open", trialAt: NOW };
    expect(breakerRecord(halfOpen, "healthy", NOW + 1_000, config)).toEqual(CLOSED);
    expect(fail(halfOpen, NOW + 1_000)).toEqual({ state: "open", openedAt: NOW + 1_000 });
  });

  it("allows another trial when the first never reported back", () => {
    expect(breakerPermit({ state: "half_open", trialAt: NOW }, NOW + 60_000, config).allowed).toBe(true);
  });

  it("keeps the cool-down running from the opening when a late failure arrives", () => {
    expect(fail({ state: "open", openedAt: NOW }, NOW + 30_000)).toEqual({ state: "open", openedAt: NOW });
  });

  it("counts outages and refused credentials against the destination, not a refusal of one message", () => {
    expect([503, 429, 401, 403].map((code) => breakerSignal(status(code)))).toEqual(["unhealthy", "unhealthy", "unhealthy", "unhealthy"]);
    expect(breakerSignal(classifyOutcome({ kind: "timeout" }, { now: NOW }))).toBe("unhealthy");
    expect([200, 400, 404, 413, 422].map((code) => breakerSignal(status(code)))).toEqual(["healthy", "healthy", "healthy", "healthy", "healthy"]);
  });
});
