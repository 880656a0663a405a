/**
 * `wrangler dev` (what `npm start` runs) puts its own proxy in front of workerd.
 * This measures single-event tracking through it, for comparison with the
 * bundle served by workerd directly (bench/collection.mjs). Opt in with
 * BENCH_WRANGLER_DEV=1: it starts `npm start` on a spare port.
 */
import autocannon from "autocannon";
import { spawn } from "node:child_process";
import { NODE_BIN, ROOT } from "../scripts/local-server.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const PORT = 8797;

export async function benchWranglerDev(trackBody) {
  const child = spawn(NODE_BIN, ["scripts/start.mjs"], { cwd: ROOT, env: { ...process.env, PORT: String(PORT) }, stdio: "ignore", detached: true });
  const url = `http://127.0.0.1:${PORT}`;
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const up = await fetch(`${url}/openapi.json`).then((r) => r.ok, () => false);
      if (up) break;
      if (Date.now() > deadline) throw new Error("wrangler dev did not come up within 120 s");
      await new Promise((r) => setTimeout(r, 500));
    }
    const result = await new Promise((resolve, reject) =>
      autocannon(
        {
          url: `${url}/v1/track`,
          method: "POST",
          body: trackBody,
          headers: { "content-type": "application/json", authorization: `Basic ${Buffer.from("dev-write-key:").toString("base64")}` },
          connections: CONNECTIONS,
          duration: SECONDS,
        },
        (error, r) => (error ? reject(error) : resolve(r)),
      ),
    );
    return { requestsPerSecond: Math.round(result.requests.average), p50Ms: result.latency.p50, p99Ms: result.latency.p99, non2xx: result.non2xx };
  } finally {
    process.kill(-child.pid, "SIGTERM");
  }
}
