/**
 * `npm run bench`: runs every benchmark and prints its figures beside the
 * baseline measured in the same run. Results are also written to
 * bench/results/latest.json. BENCH_SECONDS and BENCH_CONNECTIONS tune the load.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { benchCollection } from "./collection.mjs";

const results = {
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
  at: new Date().toISOString(),
  collection: await benchCollection(),
};

const c = results.collection;
console.log(`\nCollection (${c.connections} connections, ${c.seconds} s per run)`);
console.table({
  "trivial Worker": { "req/s": c.trivialWorker.requestsPerSecond, "p50 ms": c.trivialWorker.p50Ms, "p99 ms": c.trivialWorker.p99Ms, "non-2xx": c.trivialWorker.non2xx },
  "POST /v1/track": { "req/s": c.track.requestsPerSecond, "p50 ms": c.track.p50Ms, "p99 ms": c.track.p99Ms, "non-2xx": c.track.non2xx },
  "POST /v1/batch (100)": { "req/s": c.batch.requestsPerSecond, "p50 ms": c.batch.p50Ms, "p99 ms": c.batch.p99Ms, "non-2xx": c.batch.non2xx },
});
console.log(`track vs trivial Worker: ${(c.trackVsTrivial * 100).toFixed(1)} % (target >= 50 %)`);
console.log(`batched intake: ${c.batch.eventsPerSecond.toLocaleString("en-US")} events/s accepted`);
console.log(
  `end to end (accepted -> deduplicated -> archived in R2): ${c.endToEnd.archivedEvents.toLocaleString("en-US")} of ${c.endToEnd.acceptedEvents.toLocaleString("en-US")} events in ${c.endToEnd.seconds} s = ${c.endToEnd.eventsPerSecond.toLocaleString("en-US")} events/s`,
);

mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/latest.json", import.meta.url), JSON.stringify(results, null, 2));
