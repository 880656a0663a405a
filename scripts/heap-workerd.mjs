/**
 * The local Worker isolate's heap while a benchmark drives it: connects to workerd's V8 inspector
 * and, every few seconds, collects garbage and reads the heap in use, until the runtime goes away.
 * The Worker, its Durable Objects and its queue consumers share that isolate, as objects of one
 * class may share one on Cloudflare, where an isolate has 128 MB.
 *
 *   BENCH_INSPECTOR_PORT=9230 node bench/identity/end-to-end.mjs 30000 &
 *   node_modules/.bin/node scripts/heap-workerd.mjs [port=9230] [every seconds=5]
 *
 * Collecting garbage pauses the isolate briefly: throughput measured in the same run is not comparable.
 */
import { connectToWorker, sleep } from "./workerd-inspector.mjs";

const [port = 9230, every = 5] = process.argv.slice(2, 4).map(Number);
const mb = (bytes) => (bytes / 1_048_576).toFixed(1);
const { title, send, closed, isOpen } = await connectToWorker(port);

const started = Date.now();
let peak = 0;
let last = 0;
for (;;) {
  if ((await send("HeapProfiler.collectGarbage")) === null) break;
  const usage = await send("Runtime.getHeapUsage");
  if (!usage?.result) break;
  last = usage.result.usedSize;
  peak = Math.max(peak, last);
  console.log(`${Math.round((Date.now() - started) / 1000)} s  ${mb(last)} MB in use after GC (peak ${mb(peak)} MB)`);
  await Promise.race([sleep(every * 1000), closed]);
  if (!isOpen()) break;
}
console.log(`peak ${mb(peak)} MB, last ${mb(last)} MB in use after GC, ${title}`);
process.exit(0);
