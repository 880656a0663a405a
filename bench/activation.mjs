/**
 * Activation benchmark: events sent through `POST /v1/batch` (100 a request) to
 * the deploy bundle in workerd (scripts/local-server.mjs), delivered by the
 * activation pipeline to webhook receivers in this process (node:http on
 * 127.0.0.1), every destination a webhook with batchSize 100 subscribed to
 * every event. Each scenario starts a fresh server, so no breaker state, retry
 * or backlog leaks from one into the next.
 *
 *   1. burst: BENCH_ACTIVATION_EVENTS as fast as CONCURRENCY requests in flight
 *      allow, one destination: the throughput the pipeline reaches, if it gets
 *      the events through at all (see BENCHMARKS.md: a fan-out of many
 *      deliveries at once exceeds the queue's sendBatch limit);
 *   2. paced at BENCH_ACTIVATION_RATE requests/s (events/s = 100 x that):
 *      - one healthy destination;
 *      - two healthy destinations, the first (A) measured: the reference for…
 *      - …A while the second (B) refuses connections, answers 500 to everything,
 *        or (BENCH_ACTIVATION_HANG=1) never answers; A's rate as a ratio to the
 *        all-healthy run.
 *
 * "Deliveries/s" counts messages accepted (2xx) by a receiver per second, from
 * the first `/v1/batch` request to the arrival of the last message; the lag of
 * a message is from the 200 of the request that carried it to its arrival.
 *
 *   node bench/activation.mjs      (or BENCH_ONLY=activation npm run bench)
 *
 * BENCH_ACTIVATION_EVENTS (5,000), BENCH_ACTIVATION_CONCURRENCY (4),
 * BENCH_ACTIVATION_RATE (5 requests/s), BENCH_ACTIVATION_TIMEOUT_S (120: the
 * wait after the last 200 of a paced run), BENCH_ACTIVATION_BURST_WAIT_S (30),
 * BENCH_ACTIVATION_HANG (0), BENCH_ACTIVATION_QUEUED_EVENTS (50,000: see deliverySide).
 */
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { startLocalServer } from "../scripts/local-server.mjs";
import { percentile } from "./lib/stats.mjs";

const EVENTS = Number(process.env.BENCH_ACTIVATION_EVENTS ?? 5_000);
const CONCURRENCY = Number(process.env.BENCH_ACTIVATION_CONCURRENCY ?? 4);
const RATE = Number(process.env.BENCH_ACTIVATION_RATE ?? 5);
const TIMEOUT_MS = Number(process.env.BENCH_ACTIVATION_TIMEOUT_S ?? 120) * 1000;
const BURST_WAIT_MS = Number(process.env.BENCH_ACTIVATION_BURST_WAIT_S ?? 30) * 1000;
const HANG = process.env.BENCH_ACTIVATION_HANG === "1";
const QUEUED_EVENTS = Number(process.env.BENCH_ACTIVATION_QUEUED_EVENTS ?? 50_000);
const PER_REQUEST = 100;
const BATCH_SIZE = 100;
const SECRET = "whsec-bench-0123456789abcdef";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (x, digits) => Math.round(x * 10 ** digits) / 10 ** digits;

/** A webhook receiver answering per `mode` ("ok", "500", "hang"); records each accepted message's first arrival. */
async function startReceiver(mode = "ok") {
  const arrivals = new Map();
  let requests = 0;
  let duplicates = 0;
  const server = createServer((req, res) => {
    requests++;
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      if (mode === "hang") return;
      if (mode === "500") {
        res.writeHead(500).end();
        return;
      }
      const now = Date.now();
      try {
        for (const message of JSON.parse(Buffer.concat(chunks).toString("utf8")).batch) {
          if (arrivals.has(message.messageId)) duplicates++;
          else arrivals.set(message.messageId, now);
        }
      } catch {
        // counted as a request only
      }
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/hook`,
    arrivals,
    stats: () => ({ requests, accepted: arrivals.size, duplicates }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

/** A URL nothing listens on: the port is bound, then released, so connections are refused. */
async function refusedUrl() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}/hook`;
}

async function createDestination(server, name, url) {
  const response = await fetch(`${server.url}/admin/v1/destinations`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({
      workspaceId: "default",
      name,
      type: "webhook",
      settings: { url },
      secrets: { signingSecret: SECRET },
      batchSize: BATCH_SIZE,
      subscriptions: { events: [{}], audiences: [], computedTraits: [] },
    }),
  });
  const body = await response.json();
  if (response.status !== 201) throw new Error(`POST /admin/v1/destinations -> ${response.status}: ${JSON.stringify(body)}`);
  return body.destination;
}

async function overview(server, id) {
  const response = await fetch(`${server.url}/admin/v1/destinations/${id}/deliveries?workspaceId=default&limit=1`, { headers: { authorization: `Bearer ${server.adminToken}` } });
  return response.ok ? (await response.json()).overview : { status: response.status };
}

/** Track `i` of a run: small, ~350 bytes once enriched. */
const track = (run, i) => ({ type: "track", messageId: `${run}-${i}`, userId: `bench-user-${i % 1000}`, event: "Order Completed", properties: { revenue: i % 200, currency: "EUR" } });

/**
 * Sends EVENTS tracks, PER_REQUEST a request: `rate` requests per second on a
 * fixed schedule (each starts on time, whatever the others are doing), or with
 * `rate` null as fast as CONCURRENCY requests in flight allow. Returns when each
 * message was accepted (its request's 200).
 */
async function sendEvents(server, run, rate) {
  const auth = `Basic ${Buffer.from(`${server.writeKey}:`).toString("base64")}`;
  const acceptedAt = new Map();
  const requests = Math.ceil(EVENTS / PER_REQUEST);
  const post = async (r) => {
    const batch = [];
    for (let i = r * PER_REQUEST; i < Math.min(EVENTS, (r + 1) * PER_REQUEST); i++) batch.push(track(run, i));
    const response = await fetch(`${server.url}/v1/batch`, { method: "POST", headers: { authorization: auth, "content-type": "application/json" }, body: JSON.stringify({ batch }) });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`POST /v1/batch -> ${response.status}`);
    const now = Date.now();
    for (const m of batch) acceptedAt.set(m.messageId, now);
  };
  if (rate) {
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: requests }, async (_, r) => {
        await sleep(Math.max(0, t0 + (r * 1000) / rate - Date.now()));
        await post(r);
      }),
    );
  } else {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < requests) await post(next++);
      }),
    );
  }
  return acceptedAt;
}

/**
 * One scenario on a fresh server: destination A (healthy, measured) and, with
 * `second` ("ok", "refused", "500", "hang"), destination B; EVENTS events at
 * `rate` requests/s (null: a burst); until A has them all, or `waitMs` after the last 200.
 */
async function scenario({ second, rate, waitMs = TIMEOUT_MS }) {
  const server = await startLocalServer({ rateLimit: 1_000_000_000, logLevel: process.env.BENCH_LOG_LEVEL ?? "none" });
  const a = await startReceiver("ok");
  const b = second && second !== "refused" ? await startReceiver(second) : null;
  try {
    const db = await server.mf.getD1Database("DB");
    const destA = await createDestination(server, "Bench A", a.url);
    const destB = second ? await createDestination(server, "Bench B", second === "refused" ? await refusedUrl() : b.url) : null;
    const run = `act-${Date.now().toString(36)}-${second ?? "one"}-${rate ?? "burst"}`;
    const t0 = Date.now();
    const acceptedAt = await sendEvents(server, run, rate);
    const sent = Date.now();
    const deadline = sent + waitMs;
    while (a.arrivals.size < EVENTS && Date.now() < deadline) await sleep(50);
    const arrivals = [...a.arrivals.values()];
    const last = arrivals.length ? Math.max(...arrivals) : Date.now();
    const seconds = (last - t0) / 1000;
    const lags = [...a.arrivals].map(([id, at]) => at - acceptedAt.get(id)).sort((x, y) => x - y);
    await sleep(500); // for the counters of the last batches to land
    const archived = Number((await db.prepare("SELECT coalesce(sum(event_count), 0) AS n FROM archive_objects").first()).n);
    return {
      second: second ?? null,
      eventsPerSecondSent: rate ? rate * PER_REQUEST : null,
      archived,
      delivered: a.arrivals.size,
      timedOut: a.arrivals.size < EVENTS,
      sendSeconds: round((sent - t0) / 1000, 2),
      seconds: round(seconds, 2),
      deliveriesPerSecond: Math.round(a.arrivals.size / seconds),
      /** From the last 200 to the last arrival at A. */
      tailMs: arrivals.length ? last - sent : null,
      lagMs: { p50: percentile(lags, 50), p95: percentile(lags, 95), p99: percentile(lags, 99), max: lags.at(-1) ?? null },
      ...(await receiverFigures(server, { a, b, destA, destB })),
    };
  } finally {
    await closeAll(server, a, b);
  }
}

/** What each receiver got, and what each destination's delivery log says. */
async function receiverFigures(server, { a, b, destA, destB }) {
  return {
    receiverA: a.stats(),
    overviewA: await overview(server, destA.id),
    receiverB: b ? b.stats() : null,
    overviewB: destB ? await overview(server, destB.id) : null,
  };
}

async function closeAll(server, a, b) {
  await a.close();
  await b?.close();
  await server.dispose();
}

/** An event as intake leaves it (the shape the archive holds), for deliveries queued directly. */
const queuedEvent = (run, i) => ({
  ...track(run, i),
  receivedAt: new Date().toISOString(),
  timestamp: new Date().toISOString(),
  context: { ip: "127.0.0.1", location: { country: "US", region: "Texas", city: "Austin", timezone: "America/Chicago", latitude: 30.2713, longitude: -97.7426 } },
  integrations: {},
  workspaceId: "default",
});

/**
 * The delivery side alone, saturated: QUEUED_EVENTS events as deliveries of 100 put
 * straight on the activation queue (the messages fan-out would queue, in
 * sendBatch calls of 5, under the queue's size limit), for A and, with
 * `second`, for B, interleaved; until A has them all. It measures the
 * consumer and sender without intake, identity and fan-out in front.
 */
async function deliverySide({ second }) {
  const server = await startLocalServer({ rateLimit: 1_000_000_000, logLevel: process.env.BENCH_LOG_LEVEL ?? "none" });
  const a = await startReceiver("ok");
  const b = second && second !== "refused" ? await startReceiver(second) : null;
  try {
    const queue = await server.mf.getQueueProducer("ACTIVATION_QUEUE");
    const destA = await createDestination(server, "Bench A", a.url);
    const destB = second ? await createDestination(server, "Bench B", second === "refused" ? await refusedUrl() : b.url) : null;
    const run = `dq-${Date.now().toString(36)}-${second ?? "one"}`;
    const deliveries = [];
    for (let k = 0; k * BATCH_SIZE < QUEUED_EVENTS; k++) {
      const messages = Array.from({ length: Math.min(BATCH_SIZE, QUEUED_EVENTS - k * BATCH_SIZE) }, (_, j) => queuedEvent(run, k * BATCH_SIZE + j));
      for (const destination of destB ? [destA, destB] : [destA]) {
        deliveries.push({ v: 1, kind: "deliver", deliveryId: `dlv_${run}_${k}_${destination.id}`, workspaceId: "default", destinationId: destination.id, messages, profileIds: [], attempt: 1, firstAttemptAt: null });
      }
    }
    const t0 = Date.now();
    for (let i = 0; i < deliveries.length; i += 5) await queue.sendBatch(deliveries.slice(i, i + 5).map((body) => ({ body, contentType: "json" })));
    const queued = Date.now();
    const deadline = queued + TIMEOUT_MS;
    while (a.arrivals.size < QUEUED_EVENTS && Date.now() < deadline) await sleep(50);
    const arrivals = [...a.arrivals.values()];
    const last = arrivals.length ? Math.max(...arrivals) : Date.now();
    const seconds = (last - t0) / 1000;
    await sleep(500);
    return {
      second: second ?? null,
      delivered: a.arrivals.size,
      timedOut: a.arrivals.size < QUEUED_EVENTS,
      queueSeconds: round((queued - t0) / 1000, 2),
      seconds: round(seconds, 2),
      deliveriesPerSecond: Math.round(a.arrivals.size / seconds),
      ...(await receiverFigures(server, { a, b, destA, destB })),
    };
  } finally {
    await closeAll(server, a, b);
  }
}

export async function benchActivation() {
  const burst = await scenario({ rate: null, waitMs: BURST_WAIT_MS });
  const one = await scenario({ rate: RATE });
  const twoHealthy = await scenario({ second: "ok", rate: RATE });
  const refused = await scenario({ second: "refused", rate: RATE });
  const failing = await scenario({ second: "500", rate: RATE });
  const hanging = HANG ? await scenario({ second: "hang", rate: RATE }) : null;
  const ratio = (s) => (s && twoHealthy.deliveriesPerSecond ? round(s.deliveriesPerSecond / twoHealthy.deliveriesPerSecond, 3) : null);
  const queued = {
    one: await deliverySide({}),
    twoHealthy: await deliverySide({ second: "ok" }),
    secondRefused: await deliverySide({ second: "refused" }),
    secondFailing: await deliverySide({ second: "500" }),
    secondHanging: HANG ? await deliverySide({ second: "hang" }) : null,
  };
  const queuedRatio = (s) => (s && queued.twoHealthy.deliveriesPerSecond ? round(s.deliveriesPerSecond / queued.twoHealthy.deliveriesPerSecond, 3) : null);
  return {
    events: EVENTS,
    perRequest: PER_REQUEST,
    batchSize: BATCH_SIZE,
    concurrency: CONCURRENCY,
    pacedEventsPerSecond: RATE * PER_REQUEST,
    queuedEvents: QUEUED_EVENTS,
    burst,
    one,
    twoHealthy,
    secondRefused: refused,
    secondFailing: failing,
    secondHanging: hanging,
    ratios: { secondRefused: ratio(refused), secondFailing: ratio(failing), secondHanging: ratio(hanging) },
    deliverySide: {
      ...queued,
      ratios: { secondRefused: queuedRatio(queued.secondRefused), secondFailing: queuedRatio(queued.secondFailing), secondHanging: queuedRatio(queued.secondHanging) },
    },
  };
}

export function printActivation(r) {
  console.log(`\nActivation: ${r.events.toLocaleString("en-US")} events via POST /v1/batch (${r.perRequest} a request) -> webhook destinations, batchSize ${r.batchSize}`);
  const b = r.burst;
  console.log(
    `burst (${r.concurrency} requests in flight, all accepted in ${b.sendSeconds} s): ${b.archived.toLocaleString("en-US")} archived, ${b.delivered.toLocaleString("en-US")} delivered to the one destination` +
      (b.timedOut ? ` (not all within ${BURST_WAIT_MS / 1000} s of the last 200)` : ` in ${b.seconds} s = ${b.deliveriesPerSecond.toLocaleString("en-US")} deliveries/s`),
  );
  const row = (s) => ({
    "A delivered": s.delivered,
    "A deliveries/s": s.deliveriesPerSecond,
    "tail ms": s.tailMs,
    "lag p50 ms": s.lagMs.p50,
    "lag p95 ms": s.lagMs.p95,
    "lag max ms": s.lagMs.max,
    "A requests": s.receiverA.requests,
    "A dups": s.receiverA.duplicates,
    "B requests": s.receiverB?.requests ?? "-",
    "B retried": s.overviewB?.retried ?? "-",
    "timed out": s.timedOut,
  });
  console.log(`paced at ${r.pacedEventsPerSecond} events/s:`);
  console.table({
    "one healthy destination": row(r.one),
    "two healthy (A measured)": row(r.twoHealthy),
    "B refuses connections": row(r.secondRefused),
    "B answers 500": row(r.secondFailing),
    ...(r.secondHanging ? { "B never answers": row(r.secondHanging) } : {}),
  });
  const pct = (x) => (x === null ? "n/a" : `${(x * 100).toFixed(1)} %`);
  console.log(`A's deliveries/s vs all healthy: B refusing ${pct(r.ratios.secondRefused)}, B 500 ${pct(r.ratios.secondFailing)}${r.secondHanging ? `, B hanging ${pct(r.ratios.secondHanging)}` : ""}`);

  const q = r.deliverySide;
  const queuedRow = (s) => ({
    "A delivered": s.delivered,
    "A deliveries/s": s.deliveriesPerSecond,
    "s": s.seconds,
    "A requests": s.receiverA.requests,
    "A dups": s.receiverA.duplicates,
    "B requests": s.receiverB?.requests ?? "-",
    "B retried": s.overviewB?.retried ?? "-",
    "timed out": s.timedOut,
  });
  console.log(`delivery side alone, saturated (${r.queuedEvents.toLocaleString("en-US")} events as deliveries of ${r.batchSize} put straight on the activation queue):`);
  console.table({
    "one healthy destination": queuedRow(q.one),
    "two healthy (A measured)": queuedRow(q.twoHealthy),
    "B refuses connections": queuedRow(q.secondRefused),
    "B answers 500": queuedRow(q.secondFailing),
    ...(q.secondHanging ? { "B never answers": queuedRow(q.secondHanging) } : {}),
  });
  console.log(`A's deliveries/s vs all healthy: B refusing ${pct(q.ratios.secondRefused)}, B 500 ${pct(q.ratios.secondFailing)}${q.secondHanging ? `, B hanging ${pct(q.ratios.secondHanging)}` : ""}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  printActivation(await benchActivation());
}
