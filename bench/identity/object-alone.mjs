/**
 * The identity object on its own: the synthetic population's events, normalised as intake
 * normalises them, handed to one workspace's `IdentityGraphShard` by RPC in batches of
 * the batch size, one call at a time, as the events consumer hands them over. Everything else
 * the local pipeline runs on the same thread (intake, deduplication, the archive, queues) is
 * left out, so this is the serial part of a workspace: on Cloudflare intake and the
 * consumers run on many machines at once, while every event of a workspace passes through
 * this one object.
 *
 *   node bench/identity/object-alone.mjs [people] [seed] [batch size]   (defaults: 10,000; 42; 10,000)
 *
 * The default batch is what the events consumer hands the object under load: locally, consumer
 * batches of 100 queue messages carried 10,000 to 12,500 events each during the end-to-end run.
 *
 * - "resolved": every batch's `resolveEvents` returned (profiles, traits, events and segment
 *   state committed in the object's storage).
 * - "written through": the object's D1 backlog is empty. Locally D1 runs in the same process,
 *   so its work is counted too; on Cloudflare it runs elsewhere.
 * - Baseline in the same run: the same batches sent again, to the same object. Every event is
 *   then already applied, so the object only looks them up and answers: the floor of an RPC
 *   carrying these batches into this runtime.
 */
import { fileURLToPath } from "node:url";
import { importTypeScript } from "../lib/bundle.mjs";
import { startLocalServer } from "../../scripts/local-server.mjs";
import { generatePopulation } from "./population.mjs";

const POLL_MS = 100;
const SOURCE_ID = "src_bench";

/** Intake's own normalisation (workers/tracking/normalize.ts), so events reach the object in the shape the queue carries. */
async function normalizer() {
  const { normalizeMessage } = await importTypeScript(`export { normalizeMessage } from "./workers/tracking/normalize.ts";`, "normalize");
  return (raw, receivedAt) => {
    const result = normalizeMessage(raw, { receivedAt });
    if (!result.ok) throw new Error(`population event refused by intake: ${JSON.stringify(result.errors)}`);
    return result.event;
  };
}

async function timed(run) {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1000;
}

export async function benchIdentityObjectAlone({ people = 10_000, seed = 42, batchSize = 10_000 } = {}) {
  const { events: raw } = generatePopulation({ people, seed });
  const normalize = await normalizer();
  const receivedAt = new Date();
  const events = raw.map((event) => normalize(event, receivedAt));
  const batches = [];
  for (let i = 0; i < events.length; i += batchSize) {
    const batch = events.slice(i, i + batchSize);
    batches.push({ events: batch, sources: Object.fromEntries(batch.map((e) => [e.messageId, SOURCE_ID])) });
  }

  const inspectorPort = process.env.BENCH_INSPECTOR_PORT ? Number(process.env.BENCH_INSPECTOR_PORT) : undefined;
  const server = await startLocalServer({ rateLimit: 1_000_000_000, logLevel: "error", inspectorPort });
  try {
    const namespace = await server.mf.getDurableObjectNamespace("IDENTITY");
    const stub = namespace.get(namespace.idFromName(`bench-object-${Date.now().toString(36)}`));
    let resolvedSeconds = 0;
    const writtenSeconds = await timed(async () => {
      resolvedSeconds = await timed(async () => {
        for (const batch of batches) await stub.resolveEvents(batch.events, { sources: batch.sources });
      });
      while ((await stub.writeBacklog()) > 0) await new Promise((r) => setTimeout(r, POLL_MS));
    });
    const applied = await stub.appliedEvents();
    const floorSeconds = await timed(async () => {
      for (const batch of batches) await stub.resolveEvents(batch.events, { sources: batch.sources });
    });
    const perSecond = (s) => Math.round(events.length / s);
    return {
      people,
      seed,
      events: events.length,
      batches: batches.length,
      batchSize,
      appliedEvents: applied,
      resolvedSeconds: +resolvedSeconds.toFixed(2),
      writtenSeconds: +writtenSeconds.toFixed(2),
      floorSeconds: +floorSeconds.toFixed(2),
      resolvedEventsPerSecond: perSecond(resolvedSeconds),
      writtenEventsPerSecond: perSecond(writtenSeconds),
      floorEventsPerSecond: perSecond(floorSeconds),
    };
  } finally {
    await server.dispose();
  }
}

export function printIdentityObjectAlone(r) {
  const fmt = (n) => Math.round(n).toLocaleString("en-US");
  console.log(`\nIdentity object alone: ${fmt(r.people)} people, ${fmt(r.events)} events in ${fmt(r.batches)} RPCs of <= ${r.batchSize}, one at a time (${fmt(r.appliedEvents)} applied)`);
  console.log(`  resolved (every resolveEvents returned): ${r.resolvedSeconds} s = ${fmt(r.resolvedEventsPerSecond)} events/s`);
  console.log(`  written through to D1 (backlog empty):   ${r.writtenSeconds} s = ${fmt(r.writtenEventsPerSecond)} events/s`);
  console.log(`  baseline, the same batches again (all already applied): ${r.floorSeconds} s = ${fmt(r.floorEventsPerSecond)} events/s`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const people = process.argv[2] ? Number(process.argv[2]) : undefined;
  const seed = process.argv[3] ? Number(process.argv[3]) : undefined;
  const batchSize = process.argv[4] ? Number(process.argv[4]) : undefined;
  printIdentityObjectAlone(await benchIdentityObjectAlone({ ...(people ? { people } : {}), ...(seed !== undefined ? { seed } : {}), ...(batchSize ? { batchSize } : {}) }));
}
