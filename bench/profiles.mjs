/**
 * Profile API benchmark: the bundle `wrangler deploy` builds, served by workerd (Miniflare) with
 * local bindings (scripts/local-server.mjs), next to a trivial Worker on the same runtime.
 *
 *   1. Seed: BENCH_PROFILES_USERS (2,000) users, each one identify with traits plus
 *      BENCH_PROFILES_TRACKS (4) track events, through `POST /v1/batch` (100 events a request,
 *      4 in flight), timed until every user's traits are visible through the Profile API.
 *   2. Reads: `GET /v1/spaces/default/collections/users/profiles/user_id:{id}/traits` with the dev
 *      access token, a random seeded user per request, saturating (BENCH_CONNECTIONS) and at a
 *      moderate fixed rate (BENCH_PROFILES_RATE, 200 req/s); `/events?limit=10` once, saturating.
 *      The trivial Worker is measured the same way (same paths, same headers) in the same run, and
 *      so is a "D1 floor" Worker: one indexed D1 SELECT of a traits blob by the path's user id and
 *      nothing else, what one local D1 round trip costs by itself.
 *      Latencies are every 2xx response's time (autocannon's `response` event), so p95 is exact.
 *   3. Freshness: BENCH_PROFILES_FRESHNESS_SAMPLES (200) identifies, each with a unique trait value
 *      for a distinct seeded user, sent at BENCH_PROFILES_FRESHNESS_RATE (20/s). From each 200 the
 *      trait is polled through `/traits?include=fresh_token` every BENCH_PROFILES_POLL_MS (5 ms,
 *      counted from the previous poll's answer) until the value shows; freshness is the time from
 *      the 200 to the answer that shows it. The polls themselves are load; their rate is reported.
 *
 *   node bench/profiles.mjs      (or BENCH_ONLY=profiles npm run bench)
 */
import autocannon from "autocannon";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseToml } from "smol-toml";
import { ROOT, startLocalServer, startTrivialWorker } from "../scripts/local-server.mjs";
import { latencySummary } from "./lib/stats.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const USERS = Number(process.env.BENCH_PROFILES_USERS ?? 2_000);
const TRACKS_PER_USER = Number(process.env.BENCH_PROFILES_TRACKS ?? 4);
const READ_RATE = Number(process.env.BENCH_PROFILES_RATE ?? 200);
const FRESHNESS_SAMPLES = Number(process.env.BENCH_PROFILES_FRESHNESS_SAMPLES ?? 200);
const FRESHNESS_RATE = Number(process.env.BENCH_PROFILES_FRESHNESS_RATE ?? 20);
const POLL_MS = Number(process.env.BENCH_PROFILES_POLL_MS ?? 5);
const FRESHNESS_TIMEOUT_MS = 30_000;
const SEED_TIMEOUT_MS = 300_000;
const SEED_BATCH = 100;
const SEED_CONCURRENCY = 4;

/** Targets from the design: Profile API p95 ≤ 10 ms locally; accepted → visible p99 ≤ 1 s. */
export const PROFILE_TARGETS = Object.freeze({ readP95Ms: 10, freshnessP99Ms: 1_000 });

const SPACE = "default";
const PLANS = ["free", "pro", "enterprise"];
const basic = (user) => `Basic ${Buffer.from(`${user}:`).toString("base64")}`;
const userId = (i) => `bench-user-${i}`;
const profilePath = (i, tail) => `/v1/spaces/${SPACE}/collections/users/profiles/${encodeURIComponent(`user_id:${userId(i)}`)}/${tail}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** GETs of `tail` for a random seeded user per request; every 2xx response's latency kept. */
function readLoad(baseUrl, tail, { rate } = {}) {
  const latencies = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: baseUrl,
        headers: { authorization: basic("dev-access-token") },
        connections: rate ? 4 : CONNECTIONS,
        duration: SECONDS,
        ...(rate ? { overallRate: rate } : {}),
        requests: [{ method: "GET", setupRequest: (request) => ({ ...request, path: profilePath(Math.floor(Math.random() * USERS), tail) }) }],
      },
      (error, r) => {
        if (error) return reject(error);
        resolve({
          requestsPerSecond: Math.round(r.requests.average),
          ...latencySummary(latencies),
          non2xx: r.non2xx,
          errors: r.errors,
          ...(rate ? { rate } : {}),
        });
      },
    );
    instance.on("response", (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) latencies.push(ms);
    });
  });
}

/**
 * The least a D1-backed read can do on this runtime: look one row up by primary key in a local D1
 * database of USERS rows and return its JSON. Same runtime and compatibility settings as the real
 * Worker, as Miniflare from wrangler's own dependency.
 */
const D1_FLOOR_SCRIPT = `export default {
  async fetch(request, env) {
    const match = /user_id%3A([^/]+)/.exec(new URL(request.url).pathname);
    const row = await env.DB.prepare("SELECT traits FROM profiles WHERE user_id = ?").bind(decodeURIComponent(match?.[1] ?? "")).first();
    if (!row) return new Response('{"error":"not found"}', { status: 404, headers: { "content-type": "application/json" } });
    return new Response('{"traits":' + row.traits + '}', { headers: { "content-type": "application/json" } });
  },
};`;

async function startD1Floor() {
  const requireFromRoot = createRequire(path.join(ROOT, "package.json"));
  const { Miniflare, Log, LogLevel, convertV4MiniflareOptions } = createRequire(requireFromRoot.resolve("wrangler/package.json"))("miniflare");
  const config = parseToml(await readFile(path.join(ROOT, "wrangler.toml"), "utf8"));
  const mf = new Miniflare(convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: 0,
    log: new Log(LogLevel.WARN),
    cf: false,
    name: "d1-floor",
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags,
    modules: true,
    script: D1_FLOOR_SCRIPT,
    d1Databases: ["DB"],
  }));
  try {
    const ready = await mf.ready;
    const db = await mf.getD1Database("DB");
    await db.exec("CREATE TABLE profiles (user_id TEXT PRIMARY KEY, traits TEXT NOT NULL)");
    const insert = db.prepare("INSERT INTO profiles (user_id, traits) VALUES (?, ?)");
    for (let i = 0; i < USERS; i += 500) {
      await db.batch(Array.from({ length: Math.min(500, USERS - i) }, (_, k) => insert.bind(userId(i + k), JSON.stringify(seedEvents(i + k)[0].traits))));
    }
    return { url: ready.origin, dispose: () => mf.dispose() };
  } catch (error) {
    await mf.dispose().catch(() => {});
    throw error;
  }
}

function seedEvents(i) {
  const at = Date.now() - 60_000;
  const identify = {
    type: "identify",
    userId: userId(i),
    messageId: `seed-identify-${i}`,
    timestamp: new Date(at).toISOString(),
    traits: {
      email: `user${i}@bench-mail.dev`,
      first_name: `First${i % 97}`,
      last_name: `Last${i % 89}`,
      plan: PLANS[i % PLANS.length],
      logins: i % 50,
      country: i % 2 ? "DE" : "US",
      newsletter: i % 3 === 0,
      created_at: new Date(at - i * 3_600_000).toISOString(),
    },
  };
  const tracks = Array.from({ length: TRACKS_PER_USER }, (_, k) => ({
    type: "track",
    userId: userId(i),
    messageId: `seed-track-${i}-${k}`,
    timestamp: new Date(at + (k + 1) * 1000).toISOString(),
    event: k % 2 ? "Product Viewed" : "Order Completed",
    properties: { product_id: `p-${k}`, revenue: 10 + k, currency: "EUR" },
  }));
  return [identify, ...tracks];
}

async function traitsOf(url, i, query = "") {
  const response = await fetch(`${url}${profilePath(i, "traits")}${query}`, { headers: { authorization: basic("dev-access-token") } });
  if (response.status === 404) {
    await response.arrayBuffer();
    return null;
  }
  if (!response.ok) throw new Error(`GET traits of ${userId(i)}: ${response.status} ${await response.text()}`);
  return (await response.json()).traits;
}

/** Sends every seed event, then waits until every user's `plan` trait reads back. */
async function seed(url) {
  const events = Array.from({ length: USERS }, (_, i) => seedEvents(i)).flat();
  const bodies = [];
  for (let i = 0; i < events.length; i += SEED_BATCH) bodies.push(JSON.stringify({ batch: events.slice(i, i + SEED_BATCH) }));
  const headers = { authorization: basic("dev-write-key"), "content-type": "application/json" };
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: SEED_CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const response = await fetch(`${url}/v1/batch`, { method: "POST", headers, body: bodies[next++] });
        if (!response.ok) throw new Error(`seed batch rejected: ${response.status} ${await response.text()}`);
        await response.arrayBuffer();
      }
    }),
  );
  const acceptedSeconds = (performance.now() - started) / 1000;

  // The last user first (its batch is the last sent), then every user, 8 lookups in flight.
  const deadline = performance.now() + SEED_TIMEOUT_MS;
  const pending = new Set(Array.from({ length: USERS }, (_, i) => USERS - 1 - i));
  while (pending.size) {
    if (performance.now() > deadline) throw new Error(`seeding: ${pending.size} of ${USERS} profiles still not visible after ${SEED_TIMEOUT_MS / 1000} s`);
    const ids = [...pending];
    let cursor = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (cursor < ids.length) {
          const i = ids[cursor++];
          const traits = await traitsOf(url, i, "?include=plan");
          if (traits?.plan === PLANS[i % PLANS.length]) pending.delete(i);
          else break; // this lane stops at the first user not yet visible; all are looked at again after a pause
        }
      }),
    );
    if (pending.size) await sleep(100);
  }
  const visibleSeconds = (performance.now() - started) / 1000;
  return {
    users: USERS,
    events: events.length,
    requests: bodies.length,
    acceptedSeconds: +acceptedSeconds.toFixed(2),
    visibleSeconds: +visibleSeconds.toFixed(2),
    eventsPerSecondToVisible: Math.round(events.length / visibleSeconds),
  };
}

/** One identify with a unique trait value, then tight polling of `/traits` until it reads back. */
async function freshnessSample(url, i, runId, counters) {
  const value = `fresh-${runId}-${i}`;
  const sent = performance.now();
  const response = await fetch(`${url}/v1/identify`, {
    method: "POST",
    headers: { authorization: basic("dev-write-key"), "content-type": "application/json" },
    body: JSON.stringify({ userId: userId(i), traits: { fresh_token: value } }),
  });
  if (response.status !== 200) throw new Error(`identify rejected: ${response.status} ${await response.text()}`);
  await response.arrayBuffer();
  const accepted = performance.now();
  while (performance.now() - accepted < FRESHNESS_TIMEOUT_MS) {
    counters.polls++;
    const traits = await traitsOf(url, i, "?include=fresh_token");
    if (traits?.fresh_token === value) return { acceptMs: accepted - sent, visibleMs: performance.now() - accepted };
    await sleep(POLL_MS);
  }
  return { acceptMs: accepted - sent, visibleMs: null };
}

async function freshness(url) {
  const runId = Date.now().toString(36);
  const counters = { polls: 0 };
  const started = performance.now();
  const samples = await Promise.all(
    // Distinct users, spread over the seeded range, one every 1/rate seconds.
    Array.from({ length: FRESHNESS_SAMPLES }, (_, k) =>
      sleep((k * 1000) / FRESHNESS_RATE).then(() => freshnessSample(url, Math.floor((k * USERS) / FRESHNESS_SAMPLES), runId, counters)),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const visible = samples.filter((s) => s.visibleMs !== null);
  return {
    rate: FRESHNESS_RATE,
    pollMs: POLL_MS,
    ...latencySummary(visible.map((s) => s.visibleMs)),
    timedOut: samples.length - visible.length,
    accept: latencySummary(samples.map((s) => s.acceptMs)),
    pollsPerSecond: Math.round(counters.polls / seconds),
  };
}

export async function benchProfiles() {
  const trivial = await startTrivialWorker();
  let baseline;
  try {
    baseline = {
      traits: await readLoad(trivial.url, "traits"),
      traitsModerate: await readLoad(trivial.url, "traits", { rate: READ_RATE }),
    };
  } finally {
    await trivial.dispose();
  }
  const floorWorker = await startD1Floor();
  let d1Floor;
  try {
    d1Floor = {
      traits: await readLoad(floorWorker.url, "traits"),
      traitsModerate: await readLoad(floorWorker.url, "traits", { rate: READ_RATE }),
    };
  } finally {
    await floorWorker.dispose();
  }

  const server = await startLocalServer({ rateLimit: 1_000_000_000, logLevel: process.env.BENCH_LOG_LEVEL ?? "error" });
  try {
    const seeded = await seed(server.url);
    const traits = await readLoad(server.url, "traits");
    const traitsModerate = await readLoad(server.url, "traits", { rate: READ_RATE });
    const events = await readLoad(server.url, "events?limit=10");
    const fresh = await freshness(server.url);
    return {
      connections: CONNECTIONS,
      seconds: SECONDS,
      targets: PROFILE_TARGETS,
      seed: seeded,
      trivialWorker: baseline,
      d1Floor,
      traits,
      traitsModerate,
      events,
      traitsVsTrivial: +(traits.requestsPerSecond / baseline.traits.requestsPerSecond).toFixed(3),
      traitsVsD1Floor: +(traits.requestsPerSecond / d1Floor.traits.requestsPerSecond).toFixed(3),
      readP95TargetMet: traitsModerate.p95Ms !== null && traitsModerate.p95Ms <= PROFILE_TARGETS.readP95Ms,
      freshness: fresh,
      freshnessP99TargetMet: fresh.timedOut === 0 && fresh.p99Ms !== null && fresh.p99Ms <= PROFILE_TARGETS.freshnessP99Ms,
    };
  } finally {
    await server.dispose();
  }
}

export function printProfiles(p) {
  const row = (r) => ({ "req/s": r.requestsPerSecond, "p50 ms": r.p50Ms, "p95 ms": r.p95Ms, "p99 ms": r.p99Ms, "non-2xx": r.non2xx });
  const s = p.seed;
  console.log(`\nProfile API (${p.connections} connections saturating, 4 at a fixed rate; ${p.seconds} s per run)`);
  console.log(
    `seed: ${s.users.toLocaleString("en-US")} users, ${s.events.toLocaleString("en-US")} events in ${s.requests} POST /v1/batch; accepted in ${s.acceptedSeconds} s, every profile visible through /traits at ${s.visibleSeconds} s (${s.eventsPerSecondToVisible.toLocaleString("en-US")} events/s)`,
  );
  console.table({
    "trivial Worker, saturating": row(p.trivialWorker.traits),
    [`trivial Worker at ${p.trivialWorker.traitsModerate.rate} req/s`]: row(p.trivialWorker.traitsModerate),
    "D1 floor (one indexed SELECT), saturating": row(p.d1Floor.traits),
    [`D1 floor at ${p.d1Floor.traitsModerate.rate} req/s`]: row(p.d1Floor.traitsModerate),
    "GET …/traits, saturating": row(p.traits),
    [`GET …/traits at ${p.traitsModerate.rate} req/s`]: row(p.traitsModerate),
    "GET …/events?limit=10, saturating": row(p.events),
  });
  console.log(`/traits vs trivial Worker (saturating): ${(p.traitsVsTrivial * 100).toFixed(1)} %; vs the D1 floor: ${(p.traitsVsD1Floor * 100).toFixed(1)} %`);
  console.log(
    `read p95 at ${p.traitsModerate.rate} req/s: ${p.traitsModerate.p95Ms} ms (target <= ${p.targets.readP95Ms} ms: ${p.readP95TargetMet ? "met" : "NOT met"}); saturating: ${p.traits.p95Ms} ms`,
  );
  const f = p.freshness;
  console.log(`\nFreshness: identify 200 -> trait visible through /traits (${f.samples} samples at ${f.rate}/s, polled every ${f.pollMs} ms, ${f.pollsPerSecond} polls/s)`);
  console.table({
    "accepted -> visible": { "p50 ms": f.p50Ms, "p95 ms": f.p95Ms, "p99 ms": f.p99Ms, "min ms": f.minMs, "max ms": f.maxMs, "timed out": f.timedOut },
    "POST /v1/identify (for reference)": { "p50 ms": f.accept.p50Ms, "p95 ms": f.accept.p95Ms, "p99 ms": f.accept.p99Ms, "min ms": null, "max ms": f.accept.maxMs, "timed out": null },
  });
  console.log(`freshness p99: ${f.p99Ms} ms (target <= ${p.targets.freshnessP99Ms} ms: ${p.freshnessP99TargetMet ? "met" : "NOT met"})`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) printProfiles(await benchProfiles());
