import { Analytics, type TrackParams } from "@segment/analytics-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalServer } from "../../scripts/local-server.mjs";
import { type Behaviour, behaviours, expectedSignature, type Receiver, type ReceivedRequest, startReceiver, verifyAtReceiver } from "./receivers";
import { adminCall, basicAuth, type Json, startE2eServer } from "./server";

/**
 * Activation end to end: events sent with the real `@segment/analytics-node`
 * (or `POST /v1/batch`) go through the deploy bundle — intake, dedup, archive,
 * identity, fan-out, the activation queue, the sender — to real HTTP receivers
 * on 127.0.0.1 that this file starts: a healthy one, a slow one, one that fails
 * twice then recovers, one that answers 400, and one that never answers. What
 * each receiver got is compared, by messageId, with what was sent, and the
 * admin API's delivery log and counters with what the receivers saw.
 *
 * A receiver "accepts" the messages of a request it answered with a 2xx; the
 * hanging one also saw the bytes of the request the sender gave up on, which a
 * real receiver would not have acted on (and would deduplicate by messageId).
 */

const RUN = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
const mid = (name: string) => `act-${RUN}-${name}`;
const ADMIN = "/admin/v1";
const WORKSPACE = "default";

/** The sender's own timeout (workers/delivery/send.ts). */
const SEND_TIMEOUT_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a value (not undefined) or the deadline passes; then fails with `what`. */
async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, { timeoutMs = 30_000, everyMs = 100 } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Retries `check` (assertions included) until it passes or the deadline passes, then rethrows its last failure. */
async function eventually<T>(check: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(250);
    }
  }
}

/** Waits until no receiver has had a new request for `quietMs`: a late retry or duplicate would show by then. */
async function settle(receivers: Receiver[], quietMs: number, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  const total = () => receivers.reduce((n, r) => n + r.requests.length, 0);
  let seen = total();
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > deadline) throw new Error(`receivers kept getting requests for ${timeoutMs} ms`);
    await sleep(100);
    if (total() !== seen) {
      seen = total();
      since = Date.now();
    }
  }
}

/** A receiver's accepted messages, checked against `expected`: each exactly once, nothing else. */
function exactlyOnce(counts: Map<string, number>, expected: string[]) {
  const missing = expected.filter((id) => !counts.has(id));
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([id, n]) => `${id}×${n}`);
  const unexpected = [...counts.keys()].filter((id) => !expected.includes(id));
  return { missing, duplicated, unexpected };
}
const CLEAN = { missing: [], duplicated: [], unexpected: [] };

const hasAll = (counts: Map<string, number>, ids: string[]) => ids.every((id) => counts.has(id));


interface Overview {
  received: number;
  filteredConsent: number;
  filteredIntegrations: number;
  notSubscribed: number;
  delivered: number;
  retried: number;
  failed: number;
  deadLettered: number;
  p95LatencyMs: number | null;
}

/** The admin API, Bearer authenticated; any answer is returned, for the test to judge. */
function adminClient(server: LocalServer) {
  const call = (method: string, path: string, body?: unknown) => adminCall(server, method, path, body);
  const ok = async (method: string, path: string, expected: number, body?: unknown) => {
    const reply = await call(method, path, body);
    if (reply.status !== expected) throw new Error(`${method} ${ADMIN}${path} → ${reply.status} (expected ${expected}): ${JSON.stringify(reply.body)}`);
    return reply.body;
  };
  return {
    call,
    async createDestination(fields: Json): Promise<Json> {
      const body = await ok("POST", "/destinations", 201, { ...fields, workspaceId: WORKSPACE });
      expect(body.destination).toMatchObject({ id: expect.any(String), name: fields.name, type: fields.type, secretsSet: ["signingSecret"] });
      expect(JSON.stringify(body)).not.toContain(fields.secrets.signingSecret); // write-only
      return body.destination as Json;
    },
    /** Every page of a destination's delivery log, and the overview counters. */
    async deliveries(destinationId: string): Promise<{ overview: Overview; data: Json[] }> {
      const data: Json[] = [];
      let overview: Overview | undefined;
      let next: string | null | undefined;
      for (let page = 0; page < 50; page++) {
        const query = `workspaceId=${WORKSPACE}&limit=200${next ? `&cursor=${encodeURIComponent(next)}` : ""}`;
        const body = await ok("GET", `/destinations/${destinationId}/deliveries?${query}`, 200);
        overview ??= body.overview as Overview;
        data.push(...(body.data as Json[]));
        next = body.next as string | null | undefined;
        if (!next) return { overview: overview!, data };
      }
      throw new Error("the delivery log did not end within 50 pages");
    },
    deadLetters: () => ok("GET", `/dead-letters?workspaceId=${WORKSPACE}`, 200),
    replay: (deliveryId: string) => call("POST", `/dead-letters/${encodeURIComponent(deliveryId)}/replay?workspaceId=${WORKSPACE}`),
  };
}

/** Sends tracks through a fresh `@segment/analytics-node` client in one request, and waits until it was accepted. */
async function sendWithAnalyticsNode(server: LocalServer, calls: (TrackParams & { messageId: string })[]) {
  const analytics = new Analytics({ writeKey: server.writeKey, host: server.url, path: "/v1/batch", flushAt: calls.length, flushInterval: 60_000 });
  const errors: unknown[] = [];
  const statuses: number[] = [];
  analytics.on("error", (error) => errors.push(error));
  analytics.on("http_response", (response) => statuses.push(response.status));
  for (const call of calls) analytics.track(call);
  await analytics.closeAndFlush({ timeout: 30_000 });
  expect(errors).toEqual([]);
  expect(statuses).toEqual([200]); // one request: one fan-out, so every destination's first deliveries are queued together
}

const webhook = (name: string, receiver: Receiver, secret: string, extra: Json = {}) => ({
  name,
  type: "webhook",
  settings: { url: receiver.url },
  secrets: { signingSecret: secret },
  batchSize: 10,
  subscriptions: { events: [{ event: "Resilience Test" }], audiences: [], computedTraits: [] },
  ...extra,
});

/** The requests of a receiver that carry any of `ids`. */
const carrying = (receiver: Receiver, ids: string[]) => receiver.requests.filter((r) => r.messageIds.some((id) => ids.includes(id)));

describe("activation to webhook receivers, against the deploy bundle", () => {
  let server: LocalServer;
  let admin: ReturnType<typeof adminClient>;
  const receivers = {} as Record<"healthy" | "slow" | "flaky" | "badRequest" | "hanging" | "ads", Receiver>;
  const destinations = {} as Record<keyof typeof receivers, Json>;
  const SECRETS = {
    healthy: "whsec-healthy-0123456789abcdef",
    slow: "whsec-slow-0123456789abcdef",
    flaky: "whsec-flaky-0123456789abcdef",
    badRequest: "whsec-400-0123456789abcdef",
    hanging: "whsec-hanging-0123456789abcdef",
    ads: "whsec-ads-0123456789abcdef",
  };
  const BEHAVIOURS: Record<keyof typeof receivers, Behaviour> = {
    healthy: behaviours.healthy(),
    slow: behaviours.slow(2_000),
    flaky: behaviours.failFirst(2, 500),
    badRequest: behaviours.always(400),
    hanging: behaviours.hang(),
    ads: behaviours.healthy(),
  };
  const ADS_NAME = "Ads Webhook";

  /** Wave 1: tracks every resilience destination subscribes to (the healthy one subscribes to everything). */
  const WAVE_1 = Array.from({ length: 25 }, (_, i) => ({
    messageId: mid(`r-${String(i).padStart(2, "0")}`),
    userId: `act-user-${RUN}-${i % 5}`,
    event: "Resilience Test",
    properties: { index: i, price: i + 0.5, currency: "EUR", tags: ["a", `t${i}`] },
  }));
  const WAVE_1_IDS = WAVE_1.map((m) => m.messageId);
  let wave1SentAt = 0;

  /** Wave 2: what the consent destination (category "advertising", named ADS_NAME) must and must not receive. */
  const consent = (advertising: boolean | undefined) => ({ consent: { categoryPreferences: advertising === undefined ? { analytics: true } : { advertising, analytics: true } } });
  const CONSENT_CALLS: (TrackParams & { messageId: string; expected: boolean; why: string })[] = [
    { messageId: mid("c-refused"), context: consent(false), expected: false, why: "advertising: false" },
    { messageId: mid("c-granted"), context: consent(true), expected: true, why: "advertising: true" },
    { messageId: mid("c-none"), expected: true, why: "no consent object" },
    { messageId: mid("c-missing"), context: consent(undefined), expected: false, why: "consent object without the category" },
    { messageId: mid("i-only-this"), integrations: { All: false, [ADS_NAME]: true }, expected: true, why: "All: false, this destination: true" },
    { messageId: mid("i-off"), integrations: { [ADS_NAME]: false }, expected: false, why: "this destination: false" },
    { messageId: mid("i-all-off"), integrations: { All: false }, expected: false, why: "All: false" },
    { messageId: mid("c-refused-i-on"), context: consent(false), integrations: { [ADS_NAME]: true }, expected: false, why: "integrations cannot override refused consent" },
  ].map((c, i) => ({ ...c, userId: `act-consent-${RUN}-${i}`, event: "Consent Check", properties: { case: c.why } }));

  beforeAll(async () => {
    const [started, ...rest] = await Promise.all([startE2eServer(), ...Object.values(BEHAVIOURS).map((b) => startReceiver(b))]);
    server = started;
    Object.keys(BEHAVIOURS).forEach((key, i) => (receivers[key as keyof typeof receivers] = rest[i]!));
    admin = adminClient(server);
    destinations.healthy = await admin.createDestination(
      webhook("Healthy Hook", receivers.healthy, SECRETS.healthy, { subscriptions: { events: [{}], audiences: [], computedTraits: [] } }), // `{}`: every event
    );
    destinations.slow = await admin.createDestination(webhook("Slow Hook", receivers.slow, SECRETS.slow));
    destinations.flaky = await admin.createDestination(webhook("Flaky Hook", receivers.flaky, SECRETS.flaky));
    destinations.badRequest = await admin.createDestination(webhook("Bad Request Hook", receivers.badRequest, SECRETS.badRequest));
    // One delivery for all of wave 1, so it times out once rather than once per batch.
    destinations.hanging = await admin.createDestination(webhook("Hanging Hook", receivers.hanging, SECRETS.hanging, { batchSize: 100 }));
    destinations.ads = await admin.createDestination(
      webhook(ADS_NAME, receivers.ads, SECRETS.ads, { consentCategories: ["advertising"], subscriptions: { events: [{ event: "Consent Check" }], audiences: [], computedTraits: [] } }),
    );
  });

  afterAll(async () => {
    await Promise.all(Object.values(receivers).map((r) => r.close()));
    await server?.dispose();
  });

  it("fans one batch out to every destination: the healthy receiver gets each event once, while the hanging one is still timing out", async () => {
    wave1SentAt = Date.now();
    await sendWithAnalyticsNode(server, WAVE_1);

    await waitFor("the healthy receiver to accept all of wave 1", () => (hasAll(receivers.healthy.accepted(), WAVE_1_IDS) ? true : undefined), { timeoutMs: 30_000 });
    const healthyDone = Math.max(...carrying(receivers.healthy, WAVE_1_IDS).map((r) => r.arrivedAt));
    const hangingFirst = await waitFor("the hanging receiver's first request", () => receivers.hanging.requests[0]);
    // The healthy one's events arrived while the hanging one's request was still open.
    expect(hangingFirst.abandonedAt).toBeUndefined();
    expect(exactlyOnce(receivers.healthy.accepted(), WAVE_1_IDS)).toEqual(CLEAN);

    // The sender gives up on the hanging receiver after its 10 s timeout…
    await waitFor("the sender to abandon the hanging request", () => hangingFirst.abandonedAt, { timeoutMs: SEND_TIMEOUT_MS + 15_000 });
    // …and only now does the receiver come back, so the retry is what delivers.
    receivers.hanging.setBehaviour(behaviours.healthy());
    const openMs = hangingFirst.abandonedAt! - hangingFirst.arrivedAt;
    expect(openMs).toBeGreaterThanOrEqual(SEND_TIMEOUT_MS - 1_000);
    expect(openMs).toBeLessThan(SEND_TIMEOUT_MS + 5_000);
    expect(healthyDone).toBeLessThan(hangingFirst.abandonedAt!);
    expect(healthyDone - wave1SentAt).toBeLessThan(SEND_TIMEOUT_MS / 2);
    expect(hangingFirst.messageIds.sort()).toEqual([...WAVE_1_IDS].sort());
  });

  it("signs every request: the receiver's own HMAC-SHA256 of the raw body with the configured secret matches X-Signature", () => {
    const signed: [Receiver, string][] = [
      [receivers.healthy, SECRETS.healthy],
      [receivers.slow, SECRETS.slow],
      [receivers.flaky, SECRETS.flaky],
      [receivers.badRequest, SECRETS.badRequest],
      [receivers.hanging, SECRETS.hanging],
    ];
    for (const [receiver, secret] of signed) {
      expect(receiver.requests.length).toBeGreaterThan(0);
      for (const request of receiver.requests) {
        expect(request.method).toBe("POST");
        expect(request.path).toBe("/hook");
        expect(request.headers["content-type"]).toMatch(/^application\/json/);
        expect(verifyAtReceiver(request, secret)).toBeNull();
        // Not vacuous: another destination's secret, or one changed byte of the body, does not verify.
        expect(verifyAtReceiver(request, SECRETS.ads)).toBe("signature does not match");
        expect(request.headers["x-signature"]).not.toBe(expectedSignature(secret, `${request.rawBody} `));
      }
    }
    // The messages arrive as sent.
    const byId = new Map(receivers.healthy.requests.flatMap((r) => r.payload!.batch.map((m) => [String(m.messageId), m] as const)));
    for (const sent of WAVE_1) {
      expect(byId.get(sent.messageId)).toMatchObject({ type: "track", messageId: sent.messageId, userId: sent.userId, event: sent.event, properties: sent.properties });
    }
  });

  it("the slow receiver (answers after 2 s) gets every event exactly once", async () => {
    await waitFor("the slow receiver to accept all of wave 1", () => (hasAll(receivers.slow.accepted(), WAVE_1_IDS) ? true : undefined));
    expect(exactlyOnce(receivers.slow.accepted(), WAVE_1_IDS)).toEqual(CLEAN);
    expect(receivers.slow.requests.every((r) => r.status === 200)).toBe(true);
    const { overview, data } = await eventually(async () => {
      const log = await admin.deliveries(destinations.slow!.id);
      expect(log.overview).toMatchObject({ received: 25, delivered: 25, retried: 0, failed: 0, deadLettered: 0 });
      return log;
    });
    expect(data.length).toBe(receivers.slow.requests.length);
    for (const row of data) expect(row).toMatchObject({ status: "delivered", attempts: 1 });
    expect(overview.p95LatencyMs).toBeGreaterThanOrEqual(1_900);
  });

  it("the receiver that answers 500 twice then recovers gets every event exactly once in the end", async () => {
    await waitFor("the flaky receiver to accept all of wave 1", () => (hasAll(receivers.flaky.accepted(), WAVE_1_IDS) ? true : undefined), { timeoutMs: 45_000 });
    const failed = receivers.flaky.requests.filter((r) => r.status === 500);
    expect(failed).toHaveLength(2);
    expect(exactlyOnce(receivers.flaky.accepted(), WAVE_1_IDS)).toEqual(CLEAN);
    // Only what a failed request carried was sent again: each message went out once, plus once per failed request that held it.
    const retriedIds = failed.flatMap((r) => r.messageIds);
    const sends = (id: string) => receivers.flaky.requests.filter((r) => r.messageIds.includes(id)).length;
    for (const id of WAVE_1_IDS) expect(sends(id), id).toBe(1 + retriedIds.filter((failedId) => failedId === id).length);
    const { data } = await eventually(async () => {
      const log = await admin.deliveries(destinations.flaky!.id);
      expect(log.overview).toMatchObject({ received: 25, delivered: 25, retried: retriedIds.length, failed: 0, deadLettered: 0 });
      return log;
    });
    expect(data.map((row) => row.status)).toEqual(data.map(() => "delivered"));
    // Two failed attempts in all, whichever deliveries they hit.
    expect(data.reduce((sum, row) => sum + row.attempts - 1, 0)).toBe(2);
  });

  it("the receiver that answers 400 gets each batch once; the log says failed, with the reason, and nothing is retried", async () => {
    const { data } = await eventually(async () => {
      const log = await admin.deliveries(destinations.badRequest!.id);
      expect(log.overview).toMatchObject({ received: 25, delivered: 0, failed: 25, retried: 0, deadLettered: 0 });
      return log;
    });
    expect(hasAll(receivers.badRequest.seen(), WAVE_1_IDS)).toBe(true);
    // Longer than the first backoff (< 2 s) plus the queue's batching: a retry would have come by now.
    await settle([receivers.badRequest], 4_000);
    expect(exactlyOnce(receivers.badRequest.seen(), WAVE_1_IDS)).toEqual(CLEAN);
    expect(receivers.badRequest.requests).toHaveLength(3); // 25 events, batchSize 10
    expect(receivers.badRequest.requests.map((r) => r.status)).toEqual([400, 400, 400]);
    expect(data).toHaveLength(3);
    for (const row of data) {
      expect(row).toMatchObject({ status: "failed", attempts: 1 });
      expect(String(row.lastError)).toMatch(/400 Bad Request/);
    }
    expect(await admin.deliveries(destinations.badRequest!.id).then((log) => log.overview)).toMatchObject({ retried: 0, failed: 25 });
  });

  it("the hanging receiver's batch is retried after the timeout and delivered once it answers", async () => {
    await waitFor("the hanging receiver to accept all of wave 1 after it recovered", () => (hasAll(receivers.hanging.accepted(), WAVE_1_IDS) ? true : undefined), {
      timeoutMs: 45_000,
    });
    expect(exactlyOnce(receivers.hanging.accepted(), WAVE_1_IDS)).toEqual(CLEAN);
    expect(receivers.hanging.requests[0]!.abandonedAt).toBeDefined();
    await eventually(async () => {
      const { overview, data } = await admin.deliveries(destinations.hanging!.id);
      expect(overview).toMatchObject({ received: 25, delivered: 25, failed: 0, deadLettered: 0 });
      expect(overview.retried).toBeGreaterThanOrEqual(25);
      expect(data).toHaveLength(1);
      expect(data[0]).toMatchObject({ status: "delivered" });
      expect(data[0]!.attempts).toBeGreaterThanOrEqual(2);
    });
  });

  it("consent and integrations: filtered as Segment does, with the overview counting why", async () => {
    const calls = CONSENT_CALLS;
    await sendWithAnalyticsNode(
      server,
      calls.map(({ expected: _e, why: _w, ...call }) => call),
    );
    const delivered = calls.filter((c) => c.expected).map((c) => c.messageId);

    await waitFor("the consent destination to receive its events", () => (hasAll(receivers.ads.accepted(), delivered) ? true : undefined));
    // The healthy destination is in no category and has no entry in `integrations`: only `All: false` keeps it out.
    const toHealthy = calls.filter((c) => !(c.integrations && (c.integrations as Json).All === false)).map((c) => c.messageId);
    await waitFor("the healthy receiver to get the consent events", () => (hasAll(receivers.healthy.accepted(), toHealthy) ? true : undefined));
    await settle([receivers.ads, receivers.healthy], 3_000);

    const got = receivers.ads.accepted();
    expect(Object.fromEntries(calls.map((c) => [c.why, got.get(c.messageId) ?? 0]))).toEqual(Object.fromEntries(calls.map((c) => [c.why, c.expected ? 1 : 0])));
    expect(exactlyOnce(got, delivered)).toEqual(CLEAN);
    for (const request of receivers.ads.requests) expect(verifyAtReceiver(request, SECRETS.ads)).toBeNull();

    await eventually(async () => {
      const { overview } = await admin.deliveries(destinations.ads!.id);
      expect(overview).toMatchObject({
        received: calls.length, // filtered messages were received by the routing, then filtered
        filteredConsent: 3,
        filteredIntegrations: 2,
        notSubscribed: WAVE_1.length, // wave 1 is not "Consent Check"
        delivered: 3,
        retried: 0,
        failed: 0,
        deadLettered: 0,
      });
    });
    await eventually(async () => {
      const { overview } = await admin.deliveries(destinations.healthy!.id);
      expect(overview).toMatchObject({ received: WAVE_1.length + calls.length, filteredConsent: 0, filteredIntegrations: 2, notSubscribed: 0, delivered: WAVE_1.length + calls.length - 2 });
    });
  });

  it("counts a message a destination does not subscribe to as notSubscribed, whatever its `integrations` say", async () => {
    // The slow destination subscribes to "Resilience Test" only, so every "Consent Check" is outside its subscriptions;
    // two of them carry `integrations: { All: false }`. The overview documents `received` as the messages it subscribes to
    // and `notSubscribed` as those it does not (not in `received`).
    await eventually(async () => {
      const { overview } = await admin.deliveries(destinations.slow!.id);
      expect(overview).toMatchObject({ received: WAVE_1.length, filteredConsent: 0, filteredIntegrations: 0, notSubscribed: CONSENT_CALLS.length, delivered: WAVE_1.length });
    }, 5_000);
  });

  it("after recovery, nothing is lost or duplicated at any receiver", async () => {
    await settle(Object.values(receivers), 3_000);
    // The healthy destination (every event, no category) misses only what `integrations: { All: false }` turns off.
    const healthyExpected = [...WAVE_1_IDS, ...CONSENT_CALLS.filter((c) => (c.integrations as Json | undefined)?.All !== false).map((c) => c.messageId)];
    expect(exactlyOnce(receivers.healthy.accepted(), healthyExpected)).toEqual(CLEAN);
    for (const key of ["slow", "flaky", "hanging"] as const) expect({ [key]: exactlyOnce(receivers[key].accepted(), WAVE_1_IDS) }).toEqual({ [key]: CLEAN });
    expect(exactlyOnce(receivers.badRequest.seen(), WAVE_1_IDS)).toEqual(CLEAN);
    expect(receivers.badRequest.accepted().size).toBe(0);
    expect(exactlyOnce(receivers.ads.seen(), CONSENT_CALLS.filter((c) => c.expected).map((c) => c.messageId))).toEqual(CLEAN);
    // No receiver ever got a request without a valid batch.
    for (const receiver of Object.values(receivers)) expect(receiver.requests.filter((r: ReceivedRequest) => !r.payload)).toEqual([]);
  });

  it("a burst — 1,000 events in one /v1/batch request — reaches the healthy receiver, each exactly once", async () => {
    // Only the healthy destination subscribes to these. Its deliveries of 10 are ~4 KB each; fan-out queues
    // them together, and the queue takes at most 256 KB per sendBatch (128 KB per message).
    const burst = Array.from({ length: 1_000 }, (_, i) => ({ type: "track", messageId: mid(`b-${String(i).padStart(4, "0")}`), userId: `act-burst-${RUN}-${i % 50}`, event: "Burst Test", properties: { i } }));
    const ids = burst.map((e) => e.messageId);
    const response = await fetch(`${server.url}/v1/batch`, {
      method: "POST",
      headers: { authorization: basicAuth(server.writeKey), "content-type": "application/json" },
      body: JSON.stringify({ batch: burst }),
    });
    expect(response.status).toBe(200);
    const arrived = () => ids.filter((id) => receivers.healthy.accepted().has(id)).length;
    try {
      await waitFor("the healthy receiver to accept the burst", () => (arrived() === ids.length ? true : undefined), { timeoutMs: 20_000 });
    } catch (error) {
      const { overview } = await admin.deliveries(destinations.healthy!.id);
      throw new Error(`${(error as Error).message}: ${arrived()} of ${ids.length} arrived; the healthy destination's overview: ${JSON.stringify(overview)}`);
    }
    await settle([receivers.healthy], 2_000);
    const counts = new Map([...receivers.healthy.accepted()].filter(([id]) => id.startsWith(mid("b-"))));
    expect(exactlyOnce(counts, ids)).toEqual(CLEAN);
  });
});

describe("dead letters, with a 6 s retry budget", () => {
  let server: LocalServer;
  let admin: ReturnType<typeof adminClient>;
  let receiver: Receiver;
  let destination: Json;
  const SECRET = "whsec-dead-letter-0123456789";
  const EVENTS = Array.from({ length: 5 }, (_, i) => ({
    type: "track",
    messageId: mid(`dl-${i}`),
    userId: `act-dl-${RUN}-${i}`,
    event: "Resilience Test",
    properties: { index: i },
  }));
  const IDS = EVENTS.map((e) => e.messageId);

  beforeAll(async () => {
    [server, receiver] = await Promise.all([startE2eServer({ vars: { ACTIVATION_RETRY_BUDGET_SECONDS: "6" } }), startReceiver(behaviours.always(500))]);
    admin = adminClient(server);
    // One delivery for the five events: fewer failures than open the circuit breaker (5), which would hold retries for 60 s.
    destination = await admin.createDestination(webhook("Always Failing Hook", receiver, SECRET, { batchSize: 100 }));
  });

  afterAll(async () => {
    await receiver?.close();
    await server?.dispose();
  });

  it("a receiver that always answers 500 ends dead_lettered, listed at /admin/v1/dead-letters; once fixed, a replay delivers each message exactly once", async () => {
    const response = await fetch(`${server.url}/v1/batch`, {
      method: "POST",
      headers: { authorization: basicAuth(server.writeKey), "content-type": "application/json" },
      body: JSON.stringify({ batch: EVENTS }),
    });
    expect(response.status).toBe(200);

    const { overview, data } = await eventually(async () => {
      const log = await admin.deliveries(destination.id);
      expect(log.overview).toMatchObject({ received: 5, delivered: 0, deadLettered: 5 });
      return log;
    }, 45_000);
    expect(receiver.requests.length).toBeGreaterThanOrEqual(2); // retried before giving up
    expect(receiver.requests.every((r) => r.status === 500)).toBe(true);
    expect(exactlyOnce(receiver.accepted(), [])).toEqual(CLEAN);
    expect(overview.retried).toBe(5 * (receiver.requests.length - 1));
    expect(data).toHaveLength(1);
    const row = data[0]!;
    expect(row).toMatchObject({ status: "dead_lettered", attempts: receiver.requests.length });
    expect(String(row.lastError)).toMatch(/retry budget/);
    const deliveryId = String(row.id);

    // Nothing more is sent once dead-lettered.
    const before = receiver.requests.length;
    await settle([receiver], 3_000);
    expect(receiver.requests.length).toBe(before);

    const listed = await admin.deadLetters();
    const entry = (listed.data as Json[]).find((d) => d.id === deliveryId);
    expect(entry, JSON.stringify(listed)).toBeDefined();
    expect(entry).toMatchObject({ destinationId: destination.id, messageIds: IDS, attempts: receiver.requests.length, reason: expect.stringMatching(/retry budget/) });

    receiver.setBehaviour(behaviours.healthy());
    const replay = await admin.replay(deliveryId);
    expect(replay.status, JSON.stringify(replay.body)).toBeGreaterThanOrEqual(200);
    expect(replay.status, JSON.stringify(replay.body)).toBeLessThan(300);

    await waitFor("the replay to reach the fixed receiver", () => (hasAll(receiver.accepted(), IDS) ? true : undefined), { timeoutMs: 30_000 });
    await settle([receiver], 3_000);
    expect(exactlyOnce(receiver.accepted(), IDS)).toEqual(CLEAN);
    for (const request of receiver.requests) expect(verifyAtReceiver(request, SECRET)).toBeNull();
    await eventually(async () => {
      const log = await admin.deliveries(destination.id);
      expect(log.overview).toMatchObject({ received: 5, delivered: 5, deadLettered: 5 });
      expect(log.data).toHaveLength(1);
      expect(log.data[0]).toMatchObject({ id: deliveryId, status: "delivered", attempts: 1, messageIds: IDS });
    });
    // It is no longer dead-lettered: a second replay is refused, and sends nothing.
    expect((await admin.deadLetters()).data).toEqual([]);
    const again = await admin.replay(deliveryId);
    expect(again.status, JSON.stringify(again.body)).toBe(409);
    await settle([receiver], 2_000);
    expect(exactlyOnce(receiver.accepted(), IDS)).toEqual(CLEAN);
  });
});
