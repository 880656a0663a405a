/**
 * Privacy benchmark, against the deploy bundle served by workerd (Miniflare) with local bindings:
 *
 *   1. What suppression costs at intake: `POST /v1/batch` of 100 events, events/s accepted with no
 *      suppressions in the workspace (the baseline, same run) and with BENCH_PRIVACY_SUPPRESSIONS
 *      (default 10,000) suppressed identifiers, which makes the edge hash every event's identifiers
 *      and look them up in its cached set. Runs alternate between two workspaces, each from a
 *      drained pipeline: the queue consumer and the identity objects share the machine with intake.
 *   2. What a deletion costs: a population of BENCH_PRIVACY_PEOPLE (default 2,000) people with
 *      BENCH_PRIVACY_EVENTS events each (default 10) is collected, then one person is deleted by
 *      email: wall time from the request to `finished`, the archive objects it rewrote out of all
 *      of them, and beside it the naive way to find their events (read, gunzip and scan every
 *      archive object of the workspace), timed on the same bucket.
 *
 *   node bench/privacy.mjs          (or BENCH_ONLY=privacy npm run bench)
 */
import autocannon from "autocannon";
import { gunzipSync } from "node:zlib";
import { startLocalServer } from "../scripts/local-server.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const SUPPRESSIONS = Number(process.env.BENCH_PRIVACY_SUPPRESSIONS ?? 10_000);
const PEOPLE = Number(process.env.BENCH_PRIVACY_PEOPLE ?? 2_000);
const EVENTS_PER_PERSON = Number(process.env.BENCH_PRIVACY_EVENTS ?? 10);
const ROUNDS = Number(process.env.BENCH_PRIVACY_ROUNDS ?? 2);
const BATCH = 100;
const WORKSPACE = "default";
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function load(url, body, headers) {
  return new Promise((resolve, reject) => {
    autocannon(
      { url, method: "POST", body, headers: { "content-type": "application/json", ...headers }, connections: CONNECTIONS, duration: SECONDS },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
}

async function admin(server, method, path, body) {
  const response = await fetch(`${server.url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminToken}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} → ${response.status}: ${text}`);
  return JSON.parse(text);
}

async function intakeWith(server, auth, label) {
  const body = JSON.stringify({
    batch: Array.from({ length: BATCH }, (_, i) => ({ type: "track", userId: `intake-${label}-${i}`, anonymousId: `anon-${label}-${i}`, event: "Product Viewed", context: { traits: { email: `intake-${i}@bench-shop.com` } } })),
  });
  const result = await load(`${server.url}/v1/batch`, body, auth);
  return { eventsPerSecond: Math.round(result.requests.average * BATCH), p50Ms: result.latency.p50, p99Ms: result.latency.p99, non2xx: result.non2xx };
}

/**
 * Waits until everything accepted so far is archived and resolved (a sentinel identify sent now
 * is visible), so one measurement does not run while the consumer still works off the last one.
 */
async function drain(server, workspace, label) {
  const userId = `sentinel-${label}-${Date.now()}`;
  const response = await fetch(`${server.url}/v1/identify`, { method: "POST", headers: { ...workspace.auth, "content-type": "application/json" }, body: JSON.stringify({ userId }) });
  if (!response.ok) throw new Error(`sentinel → ${response.status}`);
  const deadline = Date.now() + 600_000;
  for (;;) {
    const found = await admin(server, "GET", `/profiles?workspaceId=${workspace.id}&identifier=${encodeURIComponent(`user_id:${userId}`)}`);
    if (found.data.length) return;
    if (Date.now() > deadline) throw new Error("the pipeline did not drain in 10 minutes");
    await sleep(250);
  }
}

const mean = (runs, key) => Math.round(runs.reduce((sum, run) => sum + run[key], 0) / runs.length);

/**
 * Alternates runs in a workspace without suppressions and one with them, each
 * from a drained pipeline: every run leaves its workspace's identity object
 * larger, which slows later runs a little whatever they do, so alternating
 * gives both the same share of that drift.
 */
async function intakeComparison(server) {
  const plain = { id: WORKSPACE, auth: { authorization: `Basic ${Buffer.from(`${server.writeKey}:`).toString("base64")}` } };
  await admin(server, "POST", "/workspaces", { id: "bench-suppressed", name: "Suppressions benchmark" });
  const { writeKey } = await admin(server, "POST", "/sources", { workspaceId: "bench-suppressed", name: "bench" });
  const suppressed = { id: "bench-suppressed", auth: { authorization: `Basic ${Buffer.from(`${writeKey}:`).toString("base64")}` } };
  for (let i = 0; i < SUPPRESSIONS; i += 1_000) {
    const identifiers = Array.from({ length: Math.min(1_000, SUPPRESSIONS - i) }, (_, j) => ({ type: "email", value: `gone-${i + j}@bench-shop.com` }));
    await admin(server, "POST", "/privacy/suppressions", { workspaceId: suppressed.id, identifiers });
  }
  const runs = { without: [], with: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, workspace] of [["without", plain], ["with", suppressed]]) {
      runs[name].push(await intakeWith(server, workspace.auth, `${name}-${round}`));
      await drain(server, workspace, `${name}-${round}`);
    }
  }
  const summary = (list) => ({ eventsPerSecond: mean(list, "eventsPerSecond"), p50Ms: mean(list, "p50Ms"), p99Ms: mean(list, "p99Ms"), runs: list });
  const without = summary(runs.without);
  const withSuppressions = summary(runs.with);
  return { without, withSuppressions, suppressions: SUPPRESSIONS, rounds: ROUNDS, ratio: Math.round((withSuppressions.eventsPerSecond / without.eventsPerSecond) * 1000) / 1000 };
}

async function archivedEvents(server) {
  const db = await server.mf.getD1Database("DB");
  return Number((await db.prepare("SELECT coalesce(sum(event_count), 0) AS n FROM archive_objects WHERE workspace_id = ?1").bind(WORKSPACE).first()).n);
}

async function naiveScan(server, needles) {
  const bucket = await server.mf.getR2Bucket("ARCHIVE");
  const started = performance.now();
  let objects = 0;
  let matching = 0;
  let cursor;
  do {
    const page = await bucket.list({ prefix: `events/${WORKSPACE}/`, ...(cursor ? { cursor } : {}) });
    for (const object of page.objects) {
      const body = await bucket.get(object.key);
      const lines = gunzipSync(Buffer.from(await body.arrayBuffer())).toString("utf8").split("\n").filter(Boolean);
      objects++;
      for (const line of lines) {
        const event = JSON.parse(line);
        if (needles.has(event.userId) || needles.has(event.anonymousId)) matching++;
      }
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return { objects, matchingEvents: matching, ms: Math.round(performance.now() - started) };
}

export async function benchPrivacy() {
  const server = await startLocalServer({ rateLimit: 1_000_000_000, logLevel: process.env.BENCH_LOG_LEVEL ?? "none" });
  const auth = { authorization: `Basic ${Buffer.from(`${server.writeKey}:`).toString("base64")}` };
  try {
    // 1. Intake with and without suppressions.
    const intake = await intakeComparison(server);

    // 2. A deletion in a collected population.
    const before = await archivedEvents(server);
    const target = { userId: "target-person", anonymousId: "target-anon", email: "target.person@bench-shop.com" };
    const total = PEOPLE * EVENTS_PER_PERSON;
    const send = async (batch) => {
      const response = await fetch(`${server.url}/v1/batch`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ batch }) });
      if (!response.ok) throw new Error(`batch → ${response.status}`);
    };
    let pending = [];
    for (let n = 0; n < total; n++) {
      const person = n % PEOPLE;
      const isTarget = person === 0;
      pending.push({
        type: n < PEOPLE ? "identify" : "track",
        userId: isTarget ? target.userId : `p-${person}`,
        anonymousId: isTarget ? target.anonymousId : `a-${person}`,
        messageId: `priv-${n}`,
        ...(n < PEOPLE ? { traits: { email: isTarget ? target.email : `p-${person}@bench-shop.com`, plan: "pro" } } : { event: "Order Completed", properties: { total: n % 97 } }),
      });
      if (pending.length === BATCH) {
        await send(pending);
        pending = [];
      }
    }
    if (pending.length) await send(pending);
    const deadline = Date.now() + 600_000;
    while ((await archivedEvents(server)) < before + total) {
      if (Date.now() > deadline) throw new Error("the population was not archived in 10 minutes");
      await sleep(500);
    }
    const db = await server.mf.getD1Database("DB");
    while (!(await db.prepare("SELECT 1 FROM profile_identifiers WHERE workspace_id = ?1 AND type = 'user_id' AND value = ?2").bind(WORKSPACE, target.userId).first())) await sleep(200);
    await sleep(3_000); // let identity resolution settle behind the archive
    const objects = Number((await db.prepare("SELECT count(*) AS n FROM archive_objects WHERE workspace_id = ?1").bind(WORKSPACE).first()).n);

    const naive = await naiveScan(server, new Set([target.userId, target.anonymousId]));
    const started = performance.now();
    const { request } = await admin(server, "POST", "/privacy/deletions", { workspaceId: WORKSPACE, identifier: { type: "email", value: target.email } });
    const accepted = performance.now() - started;
    let done;
    while (!done) {
      const current = await admin(server, "GET", `/privacy/deletions/${request.id}?workspaceId=${WORKSPACE}`);
      if (["finished", "partial_success", "failed"].includes(current.status)) done = current;
      else await sleep(50);
    }
    const elapsed = performance.now() - started;
    return {
      intake,
      deletion: {
        people: PEOPLE,
        events: total,
        personEvents: EVENTS_PER_PERSON,
        archiveObjects: objects,
        status: done.status,
        acceptedMs: Math.round(accepted),
        finishedMs: Math.round(elapsed),
        stores: Object.fromEntries(Object.entries(done.stores).map(([name, store]) => [name, store.counts])),
        naiveScan: naive,
      },
    };
  } finally {
    await server.dispose();
  }
}

export function printPrivacy(r) {
  console.log("\nPrivacy");
  const i = r.intake;
  console.log(`  intake, /v1/batch of ${BATCH}, mean of ${i.rounds} alternating runs: ${i.without.eventsPerSecond} events/s in a workspace with no suppressions (baseline) · ${i.withSuppressions.eventsPerSecond} events/s in one with ${i.suppressions} (${i.ratio}×); p99 ${i.without.p99Ms} → ${i.withSuppressions.p99Ms} ms`);
  const d = r.deletion;
  console.log(`  deletion of 1 person (${d.personEvents} events) among ${d.people} people, ${d.events} events in ${d.archiveObjects} archive objects: ${d.status} in ${d.finishedMs} ms (answered in ${d.acceptedMs} ms)`);
  console.log(`    r2: ${JSON.stringify(d.stores.r2)}`);
  console.log(`    naive scan of every archive object to find their events: ${d.naiveScan.objects} objects read in ${d.naiveScan.ms} ms (${d.naiveScan.matchingEvents} events found)`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const results = await benchPrivacy();
  printPrivacy(results);
  console.log(JSON.stringify(results, null, 2));
}
