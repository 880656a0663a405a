/**
 * Segment membership end to end, on the deploy bundle in workerd (scripts/local-server.mjs):
 *
 *   1. The workspace's catalog: the benchmark's 50 computed traits and 100 segments (workload.mjs)
 *      through `POST /admin/v1/computed-traits` and `POST /admin/v1/segments` (segment references
 *      remapped to the ids the API gives), so every event is evaluated against 150 definitions as in
 *      the in-memory benchmark. BENCH_SEGMENTS_E2E_CATALOG=0 leaves it out.
 *   2. The measured segment, through `POST /admin/v1/segments` with the dev admin token:
 *      "ordered for 100 or more in the last 7 days". A warm-up user must enter it before sampling.
 *   3. BENCH_SEGMENTS_E2E_SAMPLES (200) `POST /v1/track` "Order Completed" (revenue 150) for distinct
 *      new users, one every 1/BENCH_SEGMENTS_E2E_RATE s (10/s). From each 200, two loops poll every
 *      BENCH_SEGMENTS_POLL_MS (5 ms, counted from the previous answer) with the dev access token:
 *      `…/profiles/user_id:{id}/segments` until the segment's key shows (membership visible), and,
 *      as the same-run baseline, `…/events?limit=1` until the track itself shows (the profile's
 *      write-through, which carries the membership too, without needing any segment).
 *
 * When the admin route is missing or refuses the segment, the result says `skipped` and why.
 */
import { startLocalServer } from "../../scripts/local-server.mjs";
import { latencySummary, round1 } from "../lib/stats.mjs";
import { audiences as workloadAudiences } from "./workload.mjs";

const SAMPLES = Number(process.env.BENCH_SEGMENTS_E2E_SAMPLES ?? 200);
const RATE = Number(process.env.BENCH_SEGMENTS_E2E_RATE ?? 10);
const POLL_MS = Number(process.env.BENCH_SEGMENTS_POLL_MS ?? 5);
const WITH_CATALOG = process.env.BENCH_SEGMENTS_E2E_CATALOG !== "0";
const TIMEOUT_MS = 30_000;
export const MEMBERSHIP_TARGET_P99_MS = 1_000;

const SPACE = "default";
const basic = (user) => `Basic ${Buffer.from(`${user}:`).toString("base64")}`;
const ADMIN = { authorization: "Bearer dev-admin-token", "content-type": "application/json" };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const profilePath = (userId, tail) => `/v1/spaces/${SPACE}/collections/users/profiles/${encodeURIComponent(`user_id:${userId}`)}/${tail}`;

async function post(url, path, body) {
  const response = await fetch(`${url}${path}`, { method: "POST", headers: ADMIN, body: JSON.stringify(body) });
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: response.status, json, text };
}

const excerpt = (text) => (text.length > 300 ? `${text.slice(0, 300)}…` : text);

/** The 150 definitions of the in-memory benchmark, created through the admin API; what failed is reported, not fatal. */
async function createCatalog(url, audienceSchema) {
  const ids = new Map();
  const remap = (node) => {
    if (Array.isArray(node)) return node.map(remap);
    if (node && typeof node === "object") {
      if (node.kind === "segment" && typeof node.segment === "string") return { ...node, segment: ids.get(node.segment) ?? node.segment };
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, remap(v)]));
    }
    return node;
  };
  const started = performance.now();
  const out = { created: 0, failed: 0, firstError: null };
  for (const audience of workloadAudiences(audienceSchema)) {
    const path = audience.kind === "segment" ? "/admin/v1/segments" : "/admin/v1/computed-traits";
    const response = await post(url, path, { workspaceId: SPACE, key: audience.key, name: audience.name, definition: remap(audience.definition) });
    const created = response.json?.segment ?? response.json?.computedTrait;
    if (response.status === 201 && created?.id) {
      ids.set(audience.id, created.id);
      out.created++;
    } else {
      out.failed++;
      out.firstError ??= `${path} ${audience.key}: ${response.status} ${excerpt(response.text)}`;
    }
  }
  out.seconds = +((performance.now() - started) / 1000).toFixed(2);
  return out;
}

async function getJson(url, path) {
  const response = await fetch(`${url}${path}`, { headers: { authorization: basic("dev-access-token") } });
  if (response.status === 404) {
    await response.arrayBuffer();
    return null;
  }
  if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** Polls `check` every POLL_MS (from the previous answer) until it holds; ms from `from`, or null on timeout. */
async function pollUntil(check, from, counters) {
  while (performance.now() - from < TIMEOUT_MS) {
    counters.polls++;
    if (await check()) return performance.now() - from;
    await sleep(POLL_MS);
  }
  return null;
}

async function track(url, userId, messageId) {
  const sent = performance.now();
  const response = await fetch(`${url}/v1/track`, {
    method: "POST",
    headers: { authorization: basic("dev-write-key"), "content-type": "application/json" },
    body: JSON.stringify({
      userId,
      messageId,
      event: "Order Completed",
      properties: { order_id: `o-${messageId}`, revenue: 150, currency: "EUR", products: [{ product_id: "p-0", category: "shoes", price: 150 }] },
    }),
  });
  if (response.status !== 200) throw new Error(`track rejected: ${response.status} ${await response.text()}`);
  await response.arrayBuffer();
  return { sent, accepted: performance.now() };
}

async function sample(url, key, userId, messageId, counters) {
  const { sent, accepted } = await track(url, userId, messageId);
  const [membershipMs, eventMs] = await Promise.all([
    pollUntil(async () => (await getJson(url, profilePath(userId, "segments")))?.data?.some((s) => s.key === key) ?? false, accepted, counters),
    pollUntil(async () => JSON.stringify((await getJson(url, profilePath(userId, "events?limit=1")))?.data ?? []).includes(messageId), accepted, counters),
  ]);
  return { acceptMs: accepted - sent, membershipMs, eventMs };
}

/** @param {{ audienceSchema: import("zod").ZodType }} segments the bundled segment modules (engine.mjs), to validate the catalog */
export async function benchSegmentsEndToEnd(segments) {
  const base = { samples: SAMPLES, rate: RATE, pollMs: POLL_MS, targetP99Ms: MEMBERSHIP_TARGET_P99_MS };
  let server;
  try {
    server = await startLocalServer({ rateLimit: 1_000_000_000, logLevel: process.env.BENCH_LOG_LEVEL ?? "error" });
  } catch (error) {
    return { ...base, status: "skipped", reason: `the local server did not start: ${excerpt(String(error?.message ?? error))}` };
  }
  try {
    const url = server.url;
    const runId = Date.now().toString(36);
    const catalog = WITH_CATALOG ? await createCatalog(url, segments.audienceSchema) : null;

    const key = `bench_buyers_${runId}`;
    const definition = { kind: "event", event: "Order Completed", where: [{ property: "revenue", op: "gte", value: 100 }], window: { within: { days: 7 } } };
    const created = await post(url, "/admin/v1/segments", { workspaceId: SPACE, key, name: "Bench: ordered 100+ in 7 days", definition });
    if (created.status !== 201) {
      const reason =
        created.status === 404
          ? `POST /admin/v1/segments answered 404, so the route is probably not there yet: ${excerpt(created.text)}`
          : `POST /admin/v1/segments answered ${created.status}: ${excerpt(created.text)}`;
      return { ...base, status: "skipped", reason, catalog };
    }
    const segment = { id: created.json?.segment?.id ?? null, key, job: created.json?.job?.id ?? null };

    const counters = { polls: 0 };
    const warmup = await sample(url, key, `seg-e2e-${runId}-warmup`, `seg-e2e-${runId}-warmup`, counters);
    if (warmup.membershipMs === null) {
      return { ...base, status: "failed", reason: `segment ${segment.id} created, but a matching track's membership was not visible within ${TIMEOUT_MS / 1000} s`, catalog, segment, warmup };
    }

    counters.polls = 0;
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: SAMPLES }, (_, k) => sleep((k * 1000) / RATE).then(() => sample(url, key, `seg-e2e-${runId}-${k}`, `seg-e2e-${runId}-m${k}`, counters))),
    );
    const seconds = (performance.now() - started) / 1000;
    const visible = results.filter((r) => r.membershipMs !== null).map((r) => r.membershipMs);
    const membership = { ...latencySummary(visible), timedOut: results.length - visible.length };
    const eventVisible = results.filter((r) => r.eventMs !== null).map((r) => r.eventMs);
    // Per sample, how much later the membership showed than the event (negative: earlier; both are polled).
    const gaps = results.filter((r) => r.membershipMs !== null && r.eventMs !== null).map((r) => r.membershipMs - r.eventMs);
    return {
      ...base,
      status: "measured",
      catalog,
      segment,
      warmupMs: round1(warmup.membershipMs),
      membership,
      eventVisible: { ...latencySummary(eventVisible), timedOut: results.length - eventVisible.length },
      membershipMinusEvent: latencySummary(gaps),
      accept: latencySummary(results.map((r) => r.acceptMs)),
      pollsPerSecond: Math.round(counters.polls / seconds),
      targetMet: membership.timedOut === 0 && membership.p99Ms !== null && membership.p99Ms <= MEMBERSHIP_TARGET_P99_MS,
    };
  } catch (error) {
    return { ...base, status: "failed", reason: excerpt(String(error?.stack ?? error)) };
  } finally {
    await server.dispose();
  }
}
