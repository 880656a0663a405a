/**
 * CPU profile of the local CDP while a benchmark drives it: connects to workerd's V8 inspector
 * (Chrome DevTools protocol), samples the Worker's isolate (the Worker, its Durable Objects and
 * queue consumers share it) for a while, writes the profile and prints where the time went.
 *
 *   BENCH_INSPECTOR_PORT=9230 node bench/identity/end-to-end.mjs 10000 &
 *   node_modules/.bin/node scripts/profile-workerd.mjs [port=9230] [seconds=40] [delay=30] [out=profile.cpuprofile]
 *
 * `delay` skips the start-up and warm-up; the profile opens in Chrome DevTools or speedscope.
 */
import { writeFileSync } from "node:fs";
import { connectToWorker, sleep } from "./workerd-inspector.mjs";

const [port = 9230, seconds = 40, delay = 30] = process.argv.slice(2, 5).map(Number);
const out = process.argv[5] ?? "profile.cpuprofile";
/** Each sample's call stack (root first, by function name) with the time it stands for. */
function* stacks(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  for (const [i, id] of profile.samples.entries()) {
    const chain = [];
    for (let at = id; at; at = parent.get(at)) chain.unshift(byId.get(at).callFrame.functionName || "(anonymous)");
    yield { chain, time: profile.timeDeltas[i] };
  }
}

/** The largest shares of the profile's time, as printed lines. */
function largest(profile, shares, top) {
  const total = profile.timeDeltas.reduce((a, b) => a + b, 0);
  return [...shares].sort((a, b) => b[1] - a[1]).slice(0, top).map(([key, t]) => `${((t / total) * 100).toFixed(1).padStart(5)} %  ${key}`);
}

/** Time by call path: the frames at the given depth below the root, as "a > b > c". */
function byPath(profile, depth = 3, top = 20) {
  const shares = new Map();
  for (const { chain, time } of stacks(profile)) {
    const key = chain.slice(1, 1 + depth).join(" > ");
    shares.set(key, (shares.get(key) ?? 0) + time);
  }
  return largest(profile, shares, top);
}

/** Inclusive time by function: samples whose stack holds it anywhere. */
function byFunction(profile, top = 25) {
  const shares = new Map();
  for (const { chain, time } of stacks(profile)) for (const name of new Set(chain)) shares.set(name, (shares.get(name) ?? 0) + time);
  shares.delete("(root)");
  shares.delete("(anonymous)");
  return largest(profile, shares, top);
}

const { title, send, close } = await connectToWorker(port);
await sleep(delay * 1000);
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 200 });
await send("Profiler.start");
await sleep(seconds * 1000);
const { result } = await send("Profiler.stop");
close();
writeFileSync(out, JSON.stringify(result.profile));
console.log(`${seconds} s of ${title} written to ${out}; time by call path:`);
for (const line of byPath(result.profile)) console.log(line);
console.log("inclusive time by function:");
for (const line of byFunction(result.profile)) console.log(line);
