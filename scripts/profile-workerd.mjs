/**
 * CPU profile of the local CDP while a benchmark drives it: connects to workerd's V8 inspector
 * (Chrome DevTools protocol), samples the Worker's isolate (the Worker, its Durable Objects and
 * queue consumers share it) for a while, writes the profile and prints where the time went.
 *
 *   BENCH_INSPECTOR_PORT=9230 node bench/identity/end-to-end.mjs 10000 &
 *   node scripts/profile-workerd.mjs [port=9230] [seconds=40] [delay=30] [out=profile.cpuprofile]
 *
 * `delay` skips the start-up and warm-up; the profile opens in Chrome DevTools or speedscope.
 */
import { writeFileSync } from "node:fs";

const [port = 9230, seconds = 40, delay = 30] = process.argv.slice(2, 5).map(Number);
const out = process.argv[5] ?? "profile.cpuprofile";
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function workerTarget() {
  for (let attempt = 0; attempt < 240; attempt++) {
    try {
      const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
      // The user Worker's isolate: Miniflare's own services (entry, caches, R2 and the like) run in others.
      const worker = targets.find((t) => /worker core:user:/.test(t.title ?? ""));
      if (worker) return worker;
    } catch {
      // Not listening yet.
    }
    await sleep(500);
  }
  throw new Error(`no Worker isolate on the inspector at 127.0.0.1:${port}`);
}

function session(url) {
  const ws = new WebSocket(url);
  let id = 0;
  const pending = new Map();
  ws.onmessage = (message) => {
    const data = JSON.parse(message.data);
    pending.get(data.id)?.(data);
    pending.delete(data.id);
  };
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      pending.set(++id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return new Promise((resolve) => (ws.onopen = () => resolve({ send, close: () => ws.close() })));
}

/** Share of samples whose stack holds each frame at the given depth below the root, as "a > b > c". */
function summary(profile, depth = 3, top = 20) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const total = profile.timeDeltas.reduce((a, b) => a + b, 0);
  const shares = new Map();
  profile.samples.forEach((id, i) => {
    const chain = [];
    for (let at = id; at; at = parent.get(at)) chain.unshift(byId.get(at).callFrame.functionName || "(anonymous)");
    const key = chain.slice(1, 1 + depth).join(" > ");
    shares.set(key, (shares.get(key) ?? 0) + profile.timeDeltas[i]);
  });
  return [...shares].sort((a, b) => b[1] - a[1]).slice(0, top).map(([key, t]) => `${((t / total) * 100).toFixed(1).padStart(5)} %  ${key}`);
}

/** Share of samples whose stack holds each function anywhere (inclusive time), largest first. */
function inclusive(profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const total = profile.timeDeltas.reduce((a, b) => a + b, 0);
  const shares = new Map();
  profile.samples.forEach((id, i) => {
    const seen = new Set();
    for (let at = id; at; at = parent.get(at)) seen.add(byId.get(at).callFrame.functionName || "(anonymous)");
    for (const name of seen) shares.set(name, (shares.get(name) ?? 0) + profile.timeDeltas[i]);
  });
  shares.delete("(root)");
  shares.delete("(anonymous)");
  return [...shares].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, t]) => `${((t / total) * 100).toFixed(1).padStart(5)} %  ${name}`);
}

const target = await workerTarget();
await sleep(delay * 1000);
const { send, close } = await session(target.webSocketDebuggerUrl);
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 200 });
await send("Profiler.start");
await sleep(seconds * 1000);
const { result } = await send("Profiler.stop");
close();
writeFileSync(out, JSON.stringify(result.profile));
console.log(`${seconds} s of ${target.title} written to ${out}; time by call path:`);
for (const line of summary(result.profile)) console.log(line);
console.log("inclusive time by function:");
for (const line of inclusive(result.profile)) console.log(line);
