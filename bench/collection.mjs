/**
 * Collection benchmark: the bundle `wrangler deploy` builds, served by workerd
 * (Miniflare) with local bindings, next to a trivial Worker on the same runtime.
 *
 *   1. single-event `POST /v1/track` requests/s and latency vs the trivial Worker,
 *      and vs a "bindings floor" Worker that only calls the rate limiter and the
 *      queue (what the local emulation of those two bindings costs by itself);
 *   2. batched intake: `POST /v1/batch` of 100 events, events/s accepted;
 *   3. end to end: from the first accepted batch until the queue consumer has
 *      deduplicated and archived every accepted event in R2.
 */
import autocannon from "autocannon";
import { startLocalServer, startTrivialWorker } from "../scripts/local-server.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const BATCH_SIZE = 100;

/** Moderate load for the latency target: a fixed rate well below saturation. */
const MODERATE_RATE = Number(process.env.BENCH_MODERATE_RATE ?? 200);

function load(url, { body, headers = {}, rate }) {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        method: "POST",
        body,
        headers: { "content-type": "application/json", ...headers },
        connections: rate ? 4 : CONNECTIONS,
        duration: SECONDS,
        ...(rate ? { overallRate: rate } : {}),
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
}

const summary = (r) => ({
  requestsPerSecond: Math.round(r.requests.average),
  p50Ms: r.latency.p50,
  p99Ms: r.latency.p99,
  non2xx: r.non2xx,
  errors: r.errors,
  // Requests still in flight when the run ends are counted by autocannon but never answered.
  ok: r["2xx"],
});

async function archivedCount(mf) {
  const db = await mf.getD1Database("DB");
  const row = await db.prepare("SELECT coalesce(sum(event_count), 0) AS n FROM archive_objects").first();
  return Number(row.n);
}

export const TRACK_BODY = JSON.stringify({
  userId: "bench-user",
  event: "Product Viewed",
  properties: { product_id: "p-1", price: 19.99, category: "shoes" },
  context: { userAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1" },
});

export async function benchCollection() {
  const auth = { authorization: `Basic ${Buffer.from("dev-write-key:").toString("base64")}` };
  const trackBody = TRACK_BODY;

  const trivial = await startTrivialWorker();
  const baseline = summary(await load(`${trivial.url}/v1/track`, { body: trackBody, headers: auth }));
  await trivial.dispose();
  const floorWorker = await startTrivialWorker({ withBindings: true });
  const bindingsFloor = summary(await load(`${floorWorker.url}/v1/track`, { body: trackBody, headers: auth }));
  await floorWorker.dispose();

  const server = await startLocalServer({ rateLimit: 1_000_000_000, logLevel: process.env.BENCH_LOG_LEVEL ?? "none" });
  try {
    const single = summary(await load(`${server.url}/v1/track`, { body: trackBody, headers: auth }));
    const moderate = summary(await load(`${server.url}/v1/track`, { body: trackBody, headers: auth, rate: MODERATE_RATE }));

    const batchBody = JSON.stringify({
      batch: Array.from({ length: BATCH_SIZE }, (_, i) => ({ type: "track", userId: `bench-${i}`, event: "Order Completed", properties: { revenue: i, currency: "EUR" } })),
    });
    const started = performance.now();
    const batched = summary(await load(`${server.url}/v1/batch`, { body: batchBody, headers: auth }));
    const intakeSeconds = (performance.now() - started) / 1000;
    // A fresh server: everything accepted in both runs must reach the archive.
    const expected = single.ok + moderate.ok + batched.ok * BATCH_SIZE;
    const acceptedEvents = batched.ok * BATCH_SIZE;
    let archived = await archivedCount(server.mf);
    const deadline = performance.now() + 120_000;
    while (archived < expected && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      archived = await archivedCount(server.mf);
    }
    const endToEndSeconds = (performance.now() - started) / 1000;

    return {
      connections: CONNECTIONS,
      seconds: SECONDS,
      trivialWorker: baseline,
      bindingsFloor,
      track: single,
      trackModerate: { ...moderate, rate: MODERATE_RATE },
      trackVsTrivial: +(single.requestsPerSecond / baseline.requestsPerSecond).toFixed(3),
      trackVsBindingsFloor: +(single.requestsPerSecond / bindingsFloor.requestsPerSecond).toFixed(3),
      batch: { ...batched, eventsPerSecond: Math.round(acceptedEvents / intakeSeconds), batchSize: BATCH_SIZE },
      endToEnd: {
        acceptedEvents: expected,
        archivedEvents: archived,
        // Measured from the start of the batched run; the single-event run before it was archived as it went.
        seconds: +endToEndSeconds.toFixed(2),
        eventsPerSecond: Math.round((acceptedEvents) / endToEndSeconds),
      },
    };
  } finally {
    await server.dispose();
  }
}
