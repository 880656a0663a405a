/**
 * Identity end to end through the real API: the synthetic population's events sent to the deploy
 * bundle served by Miniflare (scripts/local-server.mjs) through `POST /v1/batch`, timed until the
 * identity graph has applied them.
 *
 *   node bench/identity/end-to-end.mjs [people] [seed]   (defaults: BENCH_IDENTITY_E2E_PEOPLE or 10,000; 42)
 *   BENCH_GRAPH_SHARDS=3 node bench/identity/end-to-end.mjs …   (graph shards per workspace; 1 unless set)
 *
 * - Events go in time order, in batches of BATCH_SIZE (500, each body checked to stay under the
 *   500 KB batch limit), CONCURRENCY (8) requests in flight, with the dev write key.
 * - After every batch is acknowledged, one sentinel identify (a fresh userId, timestamped after
 *   the population) is sent on its own: it is the last message on the events queue.
 * - "archived": the sum of `archive_objects.event_count` in D1 reaches every event plus the sentinel.
 * - "resolved": `GET /admin/v1/profiles?identifier=user_id:<sentinel>` finds the sentinel's profile.
 *   The consumer archives a batch before it hands it to identity, so resolved follows archived; the
 *   sentinel's queue message is the last one, so its batch is the last dispatched. (Miniflare may
 *   dispatch two consumer batches concurrently, so an earlier batch could in principle still be in
 *   its identity step at that moment; the graph is one Durable Object, which runs its calls one at
 *   a time.) Where the admin endpoint does not exist, the run stops at "archived" and says so.
 * - As a check that identity really kept up (a failed identity step retries its whole batch later,
 *   after its events were archived), up to SPOT_CHECKS anonymousIds first seen in the last
 *   SPOT_CHECK_EVENTS events are looked up too; "resolved" waits for them as well, for at most
 *   SPOT_CHECK_GRACE_S after the sentinel (a guard may legitimately drop one). Failed consumer
 *   batches ("events batch failed; retrying" in the Worker's logs) are counted.
 *
 * Order: batches leave in time order but up to CONCURRENCY of them race, and the queue consumer
 * takes up to 100 queue messages at a time, so the graph sees events in nearly, not exactly, the
 * order the in-memory benchmark (run.mjs) uses.
 */
import { fileURLToPath } from "node:url";
import { startLocalServer } from "../../scripts/local-server.mjs";
import { clusteringThroughApi } from "./api-clustering.mjs";
import { evaluate } from "./metrics.mjs";
import { generatePopulation } from "./population.mjs";

export const E2E_DEFAULT_PEOPLE = 10_000;
const BATCH_SIZE = 500;
const BATCH_BYTES = 500 * 1024;
const CONCURRENCY = 8;
const POLL_MS = 250;
const SPOT_CHECKS = 40;
const SPOT_CHECK_EVENTS = 5_000;
const SPOT_CHECK_GRACE_S = 30;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** anonymousIds whose first event is among the last `tail` events: indexed only once the last batches are resolved. */
function lateIdentifiers(events, tail, count) {
  const firstSeen = new Map();
  events.forEach((e, i) => { if (e.anonymousId && UUID.test(e.anonymousId) && !firstSeen.has(e.anonymousId)) firstSeen.set(e.anonymousId, i); });
  const late = [...firstSeen].filter(([, i]) => i >= events.length - tail).map(([id]) => `anonymous_id:${id}`);
  const step = Math.max(1, Math.floor(late.length / count));
  return late.filter((_, i) => i % step === 0).slice(0, count);
}

async function archivedCount(mf) {
  const db = await mf.getD1Database("DB");
  const row = await db.prepare("SELECT coalesce(sum(event_count), 0) AS n FROM archive_objects").first();
  return Number(row.n);
}

/** Batch bodies of at most BATCH_SIZE events and under BATCH_BYTES each. */
function batchBodies(events) {
  const bodies = [];
  for (let i = 0; i < events.length; ) {
    let n = Math.min(BATCH_SIZE, events.length - i);
    let body;
    while (Buffer.byteLength((body = JSON.stringify({ batch: events.slice(i, i + n) }))) >= BATCH_BYTES) n = Math.floor(n / 2);
    bodies.push({ body, events: n });
    i += n;
  }
  return bodies;
}

export async function benchIdentityEndToEnd({
  people = Number(process.env.BENCH_IDENTITY_E2E_PEOPLE ?? E2E_DEFAULT_PEOPLE),
  seed = 42,
  timeoutSeconds = Number(process.env.BENCH_IDENTITY_E2E_TIMEOUT ?? 900),
  graphShards = Number(process.env.BENCH_GRAPH_SHARDS ?? 1),
} = {}) {
  const pop = generatePopulation({ people, seed });
  const { events } = pop;
  const bodies = batchBodies(events);
  const sentinelId = `bench-sentinel-${Date.now().toString(36)}`;
  const lastTime = Date.parse(events.at(-1).timestamp);
  const sentinel = { type: "identify", userId: sentinelId, anonymousId: `${sentinelId}-anon`, messageId: `${sentinelId}-msg`, timestamp: new Date(lastTime + 1000).toISOString(), context: { ip: "203.0.113.7" } };

  const spotChecks = lateIdentifiers(events, SPOT_CHECK_EVENTS, SPOT_CHECKS);
  // Count failed consumer batches from the Worker's error logs; pass the lines through only if asked.
  const showLogs = process.env.BENCH_LOG_LEVEL !== undefined && process.env.BENCH_LOG_LEVEL !== "none";
  let failedBatches = 0;
  const write = process.stderr.write;
  process.stderr.write = function (chunk, ...rest) {
    const text = String(chunk);
    if (text.startsWith("[edge-cdp ")) {
      failedBatches += text.split("events batch failed").length - 1;
      if (!showLogs) return true;
    }
    return write.call(this, chunk, ...rest);
  };
  const inspectorPort = process.env.BENCH_INSPECTOR_PORT ? Number(process.env.BENCH_INSPECTOR_PORT) : undefined;
  const vars = graphShards > 1 ? { IDENTITY_GRAPH_SHARDS: String(graphShards) } : {};
  const server = await startLocalServer({ rateLimit: 1_000_000_000, logLevel: showLogs ? process.env.BENCH_LOG_LEVEL : "error", inspectorPort, vars });
  try {
    const writeAuth = { authorization: `Basic ${Buffer.from(`${server.writeKey}:`).toString("base64")}`, "content-type": "application/json" };
    const adminAuth = { authorization: `Bearer ${server.adminToken}` };
    const lookupUrlOf = (key) => `${server.url}/admin/v1/profiles?workspaceId=default&identifier=${encodeURIComponent(key)}`;
    const lookupUrl = lookupUrlOf(`user_id:${sentinelId}`);
    const found = (url) => fetch(url, { headers: adminAuth }).then((r) => (r.ok ? r.json() : { data: [] })).then((body) => Boolean(body.data?.length));
    const probe = await fetch(lookupUrl, { headers: adminAuth });
    await probe.arrayBuffer();
    const canLookup = probe.status === 200;

    const started = performance.now();
    let next = 0, rejected = 0, firstError = null;
    const lane = async () => {
      while (next < bodies.length) {
        const { body } = bodies[next++];
        const response = await fetch(`${server.url}/v1/batch`, { method: "POST", headers: writeAuth, body });
        if (!response.ok) { rejected++; firstError ??= `${response.status} ${await response.text()}`; } else await response.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
    if (rejected) throw new Error(`${rejected} batches rejected, first: ${firstError}`);
    const sent = await fetch(`${server.url}/v1/batch`, { method: "POST", headers: writeAuth, body: JSON.stringify({ batch: [sentinel] }) });
    if (!sent.ok) throw new Error(`sentinel rejected: ${sent.status} ${await sent.text()}`);
    const acceptedSeconds = (performance.now() - started) / 1000;

    const expected = events.length + 1;
    const deadline = performance.now() + timeoutSeconds * 1000;
    let archived = 0, archivedSeconds = null, sentinelSeconds = null, resolvedSeconds = null;
    const pending = new Set(spotChecks);
    while (performance.now() < deadline) {
      if (archivedSeconds === null) {
        archived = await archivedCount(server.mf);
        if (archived >= expected) archivedSeconds = (performance.now() - started) / 1000;
      }
      if (archivedSeconds !== null) {
        if (!canLookup) break;
        if (sentinelSeconds === null && (await found(lookupUrl))) sentinelSeconds = (performance.now() - started) / 1000;
        if (sentinelSeconds !== null) {
          const keys = [...pending];
          (await Promise.all(keys.map((key) => found(lookupUrlOf(key))))).forEach((ok, i) => ok && pending.delete(keys[i]));
          const now = (performance.now() - started) / 1000;
          if (pending.size === 0) { resolvedSeconds = now; break; }
          if (now - sentinelSeconds > SPOT_CHECK_GRACE_S) break;
        }
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    // Scored after the clock stopped: the clustering the graph ended with, read back through the admin API.
    const clustering = resolvedSeconds !== null ? await clusteringThroughApi(server.url, server.adminToken) : null;
    const quality = clustering ? { ...scoreOf(evaluate(pop.truth, clustering.predicted), clustering.profiles), reviews: reviewsOf(clustering, pop.truth) } : null;
    const perSecond = (s) => (s === null ? null : Math.round(events.length / s));
    return {
      people,
      graphShards,
      seed,
      events: events.length,
      batches: bodies.length,
      batchSize: BATCH_SIZE,
      concurrency: CONCURRENCY,
      adminLookup: canLookup,
      archivedEvents: archived,
      acceptedSeconds: +acceptedSeconds.toFixed(2),
      archivedSeconds: archivedSeconds === null ? null : +archivedSeconds.toFixed(2),
      sentinelSeconds: sentinelSeconds === null ? null : +sentinelSeconds.toFixed(2),
      resolvedSeconds: resolvedSeconds === null ? null : +resolvedSeconds.toFixed(2),
      spotChecks: { looked: spotChecks.length, found: spotChecks.length - pending.size },
      failedConsumerBatches: failedBatches,
      acceptedEventsPerSecond: perSecond(acceptedSeconds),
      archivedEventsPerSecond: perSecond(archivedSeconds),
      resolvedEventsPerSecond: perSecond(resolvedSeconds),
      timedOut: canLookup ? resolvedSeconds === null : archivedSeconds === null,
      quality,
    };
  } finally {
    await server.dispose();
    process.stderr.write = write;
  }
}

const round = (x, digits = 4) => +x.toFixed(digits);

/**
 * The open review queue by kind, and how many probabilistic suggestions name two profiles of one
 * person (each profile counted as the person most of its events belong to).
 */
function reviewsOf({ predicted, reviews }, truth) {
  const votes = new Map();
  for (const [messageId, profileId] of predicted) {
    const person = truth.get(messageId);
    if (person === undefined) continue;
    let counts = votes.get(profileId);
    if (!counts) votes.set(profileId, (counts = new Map()));
    counts.set(person, (counts.get(person) ?? 0) + 1);
  }
  const personOf = (profileId) => [...(votes.get(profileId) ?? new Map())].sort((a, b) => b[1] - a[1])[0]?.[0];
  const byKind = {};
  for (const review of reviews) byKind[review.kind] = (byKind[review.kind] ?? 0) + 1;
  const probabilistic = reviews.filter((r) => r.kind === "probabilistic");
  const samePerson = probabilistic.filter((r) => r.profiles.length === 2 && personOf(r.profiles[0]) !== undefined && personOf(r.profiles[0]) === personOf(r.profiles[1])).length;
  return { open: reviews.length, byKind, probabilisticSamePerson: samePerson };
}

function scoreOf(m, profiles) {
  return {
    profiles,
    pairwise: { precision: round(m.pairwise.precision), recall: round(m.pairwise.recall), f1: round(m.pairwise.f1) },
    bcubed: { precision: round(m.bcubed.precision), recall: round(m.bcubed.recall), f1: round(m.bcubed.f1) },
    unassignedEvents: m.unassigned,
    overMergedClusters: m.overMergedClusters,
    largestCluster: m.largestCluster,
    fragmentsPerPerson: round(m.fragmentsPerPerson, 3),
  };
}

export function printIdentityEndToEnd(e) {
  const fmt = (n) => (n === null ? "n/a" : Math.round(n).toLocaleString("en-US"));
  console.log(`\nIdentity end to end: ${fmt(e.people)} people, ${fmt(e.events)} events in ${fmt(e.batches)} batches of <= ${e.batchSize}, ${e.concurrency} in flight, through POST /v1/batch, ${e.graphShards} graph shard(s)`);
  console.log(`  accepted (every batch acknowledged): ${e.acceptedSeconds} s = ${fmt(e.acceptedEventsPerSecond)} events/s`);
  console.log(`  archived in R2 (D1 archive_objects): ${e.archivedSeconds ?? "timed out"} s = ${fmt(e.archivedEventsPerSecond)} events/s (${fmt(e.archivedEvents)} archived)`);
  if (e.adminLookup) {
    console.log(`  resolved (sentinel's profile and ${e.spotChecks.looked} late-first-seen anonymousIds visible through GET /admin/v1/profiles): ${e.resolvedSeconds ?? "not reached"} s = ${fmt(e.resolvedEventsPerSecond)} events/s collect -> resolved`);
    console.log(`  sentinel resolved at ${e.sentinelSeconds ?? "n/a"} s; spot checks found ${e.spotChecks.found}/${e.spotChecks.looked}; failed consumer batches (retried): ${e.failedConsumerBatches}`);
  }
  else console.log("  resolved: not measured (GET /admin/v1/profiles does not exist in this build); the figure above stops at archived");
  const q = e.quality;
  if (q) {
    console.log(`  clustering read back through the admin API (${fmt(q.profiles)} live profiles): pairwise precision ${q.pairwise.precision}, recall ${q.pairwise.recall}, F1 ${q.pairwise.f1}; ` +
      `B-cubed precision ${q.bcubed.precision}, recall ${q.bcubed.recall}, F1 ${q.bcubed.f1}`);
    console.log(`  over-merged profiles ${fmt(q.overMergedClusters)}, largest ${q.largestCluster.people} people / ${fmt(q.largestCluster.events)} events, ` +
      `fragments per person ${q.fragmentsPerPerson}, events in no profile ${fmt(q.unassignedEvents)}`);
    const kinds = Object.entries(q.reviews.byKind).sort().map(([kind, n]) => `${kind} ${fmt(n)}`).join(", ");
    console.log(`  open reviews ${fmt(q.reviews.open)} (${kinds || "none"}); probabilistic suggestions naming two profiles of one person: ${fmt(q.reviews.probabilisticSamePerson)}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const people = process.argv[2] ? Number(process.argv[2]) : undefined;
  const seed = process.argv[3] ? Number(process.argv[3]) : undefined;
  printIdentityEndToEnd(await benchIdentityEndToEnd({ ...(people ? { people } : {}), ...(seed !== undefined ? { seed } : {}) }));
}
