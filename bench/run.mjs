/**
 * `npm run bench`: runs every benchmark and prints its figures beside the
 * baseline measured in the same run. Results are also written to
 * bench/results/latest.json. BENCH_SECONDS and BENCH_CONNECTIONS tune the load.
 *
 * Identity (bench/identity/): resolution quality and speed on the synthetic
 * population (BENCH_IDENTITY_PEOPLE, default 10,000), then the same population
 * end to end through the API (BENCH_IDENTITY_E2E_PEOPLE, default 10,000;
 * BENCH_IDENTITY_E2E=0 skips it) with its clustering read back through the
 * admin API and scored, the identity object on its own with the same
 * population (skipped with it), and the graph's memory per population
 * (BENCH_IDENTITY_CAPACITY, people per run, "10000,30000" by default).
 * BENCH_ONLY=identity runs only these and replaces the `identity` entry of an
 * existing latest.json, keeping the rest.
 *
 * Profile API (bench/profiles.mjs): read latency and throughput of `/traits` and `/events` beside a
 * trivial Worker and a one-SELECT D1 Worker, and identify → visible freshness (BENCH_PROFILES_*
 * tune it). BENCH_ONLY=profiles runs only it and replaces the `profiles` entry the same way.
 *
 * Segments (bench/segments.mjs): evaluation cost per event with 100 segments and 50 computed
 * traits, incremental beside the naive full-history baseline, then track → membership visible end
 * to end (BENCH_SEGMENTS_* tune it). BENCH_ONLY=segments runs only it and replaces `segments`.
 *
 * Activation (bench/activation.mjs): deliveries/s to local webhook receivers for events sent through
 * `/v1/batch`, and a healthy destination's throughput while a second one is down, as a ratio to the
 * all-healthy run (BENCH_ACTIVATION_* tune it). BENCH_ONLY=activation runs only it and replaces `activation`.
 *
 * Privacy (bench/privacy.mjs): intake events/s with and without suppressions, and one person's
 * deletion among a collected population beside a naive scan of the archive (BENCH_PRIVACY_* tune
 * it). BENCH_ONLY=privacy runs only it and replaces `privacy`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { benchActivation, printActivation } from "./activation.mjs";
import { benchCollection, TRACK_BODY } from "./collection.mjs";
import { benchCapacity, printCapacity } from "./identity/capacity.mjs";
import { benchIdentityEndToEnd, printIdentityEndToEnd } from "./identity/end-to-end.mjs";
import { benchIdentityObjectAlone, printIdentityObjectAlone } from "./identity/object-alone.mjs";
import { benchIdentity, printIdentity } from "./identity/run.mjs";
import { benchPrivacy, printPrivacy } from "./privacy.mjs";
import { benchProfiles, printProfiles } from "./profiles.mjs";
import { benchSegments, printSegments } from "./segments.mjs";
import { benchWranglerDev } from "./wrangler-dev.mjs";

const RESULTS = new URL("./results/latest.json", import.meta.url);
const only = process.env.BENCH_ONLY;
if (only !== undefined && !["identity", "profiles", "segments", "activation", "privacy"].includes(only)) throw new Error(`BENCH_ONLY must be "identity", "profiles", "segments", "activation" or "privacy", got ${only}`);
const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version };
const at = new Date().toISOString();

const results =
  only
    ? { ...(existsSync(RESULTS) ? JSON.parse(readFileSync(RESULTS, "utf8")) : {}) }
    : {
        machine,
        at,
        collection: await benchCollection(),
        wranglerDev: process.env.BENCH_WRANGLER_DEV === "1" ? await benchWranglerDev(TRACK_BODY) : null,
      };

if (!only) printCollection(results);

if (!only || only === "profiles") {
  results.profiles = { machine, at, ...(await benchProfiles()) };
  printProfiles(results.profiles);
}

if (!only || only === "identity") {
  // After the collection and Profile API servers are gone: the in-memory resolver is CPU-bound.
  const resolution = await benchIdentity();
  printIdentity(resolution);
  const capacity = await benchCapacity({ sizes: (process.env.BENCH_IDENTITY_CAPACITY ?? "10000,30000").split(",").map(Number) });
  printCapacity(capacity);
  const endToEnd = process.env.BENCH_IDENTITY_E2E === "0" ? null : await benchIdentityEndToEnd();
  if (endToEnd) printIdentityEndToEnd(endToEnd);
  const objectAlone = process.env.BENCH_IDENTITY_E2E === "0" ? null : await benchIdentityObjectAlone({ people: endToEnd?.people });
  if (objectAlone) printIdentityObjectAlone(objectAlone);
  results.identity = { machine, at, resolution, capacity, endToEnd, objectAlone };
}

if (!only || only === "segments") {
  results.segments = { machine, at, ...(await benchSegments()) };
  printSegments(results.segments);
}

if (!only || only === "activation") {
  results.activation = { machine, at, ...(await benchActivation()) };
  printActivation(results.activation);
}

if (!only || only === "privacy") {
  results.privacy = { machine, at, ...(await benchPrivacy()) };
  printPrivacy(results.privacy);
}

mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(RESULTS, JSON.stringify(results, null, 2));

function printCollection(results) {
  const c = results.collection;
  console.log(`\nCollection (${c.connections} connections, ${c.seconds} s per run)`);
  console.table({
    "trivial Worker": { "req/s": c.trivialWorker.requestsPerSecond, "p50 ms": c.trivialWorker.p50Ms, "p99 ms": c.trivialWorker.p99Ms, "non-2xx": c.trivialWorker.non2xx },
    "bindings floor (rate limit + queue send)": { "req/s": c.bindingsFloor.requestsPerSecond, "p50 ms": c.bindingsFloor.p50Ms, "p99 ms": c.bindingsFloor.p99Ms, "non-2xx": c.bindingsFloor.non2xx },
    "POST /v1/track": { "req/s": c.track.requestsPerSecond, "p50 ms": c.track.p50Ms, "p99 ms": c.track.p99Ms, "non-2xx": c.track.non2xx },
    [`POST /v1/track at ${c.trackModerate.rate} req/s`]: { "req/s": c.trackModerate.requestsPerSecond, "p50 ms": c.trackModerate.p50Ms, "p99 ms": c.trackModerate.p99Ms, "non-2xx": c.trackModerate.non2xx },
    "POST /v1/batch (100)": { "req/s": c.batch.requestsPerSecond, "p50 ms": c.batch.p50Ms, "p99 ms": c.batch.p99Ms, "non-2xx": c.batch.non2xx },
  });
  console.log(`track vs trivial Worker: ${(c.trackVsTrivial * 100).toFixed(1)} % (target >= 50 %); vs the bindings floor: ${(c.trackVsBindingsFloor * 100).toFixed(1)} %`);
  console.log(`batched intake: ${c.batch.eventsPerSecond.toLocaleString("en-US")} events/s accepted`);
  console.log(
    `end to end (accepted -> deduplicated -> archived in R2): ${c.endToEnd.archivedEvents.toLocaleString("en-US")} events archived (${c.endToEnd.acceptedEvents.toLocaleString("en-US")} acknowledged to the load generator; requests in flight at the end are accepted too) in ${c.endToEnd.seconds} s = ${c.endToEnd.eventsPerSecond.toLocaleString("en-US")} events/s`,
  );

  if (results.wranglerDev) {
    const w = results.wranglerDev;
    console.log(`POST /v1/track through wrangler dev's proxy: ${w.requestsPerSecond} req/s, p50 ${w.p50Ms} ms, p99 ${w.p99Ms} ms, non-2xx ${w.non2xx}`);
  }
}
