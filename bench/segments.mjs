/**
 * Segments and computed traits benchmark.
 *
 *   1. Evaluation cost per event (bench/segments/evaluation.mjs), one thread, no server: 100
 *      segments and 50 computed traits (bench/segments/workload.mjs), BENCH_SEGMENTS_PEOPLE (40)
 *      people with 200 events of history over 90 days, BENCH_SEGMENTS_EVENTS (15) measured events
 *      each. Incremental through the identity object's own `AudienceEngine` over SQLite, beside the
 *      naive baseline in the same run (everything evaluated from the full history on each event,
 *      on the first BENCH_SEGMENTS_NAIVE_EVENTS of the measured events, default all), and their
 *      answers compared definition by definition. BENCH_SEGMENTS_SEED (42) seeds the people.
 *   2. End to end (bench/segments/end-to-end.mjs): a segment created through the admin API, then
 *      `track` → membership visible through the Profile API, beside the same track's own visibility.
 *      BENCH_SEGMENTS_E2E=0 skips it; BENCH_SEGMENTS_E2E_* tune it (see that file).
 *
 *   node bench/segments.mjs      (or BENCH_ONLY=segments npm run bench)
 */
import { fileURLToPath } from "node:url";
import { loadSegments } from "./segments/engine.mjs";
import { benchSegmentsEndToEnd } from "./segments/end-to-end.mjs";
import { benchEvaluation } from "./segments/evaluation.mjs";

const PEOPLE = Number(process.env.BENCH_SEGMENTS_PEOPLE ?? 40);
const EVENTS = Number(process.env.BENCH_SEGMENTS_EVENTS ?? 15);
const NAIVE_EVENTS = process.env.BENCH_SEGMENTS_NAIVE_EVENTS === undefined ? undefined : Number(process.env.BENCH_SEGMENTS_NAIVE_EVENTS);
const SEED = Number(process.env.BENCH_SEGMENTS_SEED ?? 42);

export async function benchSegments() {
  const evaluation = await benchEvaluation({ people: PEOPLE, newEvents: EVENTS, naiveEvents: NAIVE_EVENTS, seed: SEED });
  const endToEnd = process.env.BENCH_SEGMENTS_E2E === "0" ? { status: "skipped", reason: "BENCH_SEGMENTS_E2E=0" } : await benchSegmentsEndToEnd(await loadSegments());
  return { evaluation, endToEnd };
}

export function printSegments({ evaluation: e, endToEnd: x }) {
  const w = e.workload;
  console.log(
    `\nSegments: evaluation per event, one thread (${w.segments} segments + ${w.computedTraits} computed traits = ${w.aggregateSpecs} distinct aggregate specs; ` +
      `${w.people} people x ${w.historyEventsPerPerson} history events over 90 days, ${w.eventNames} event names; ${w.measuredEvents} measured events, ${w.specsTouchedPerEvent} specs touched per event on average)`,
  );
  const row = (r) => ({ events: r.events, "mean µs": r.meanUs, "p50 µs": r.p50Us, "p95 µs": r.p95Us, "p99 µs": r.p99Us, "max µs": r.maxUs, "events/s": r.eventsPerSecond });
  console.table({
    "incremental, history replay: onEvent while states fill from empty": row(e.historyReplay),
    "incremental: AudienceEngine.onEvent, SQLite + JSON, states as live traffic leaves them": row(e.incremental),
    "incremental: same, states rebuilt (pruned) from history": row(e.incrementalRebuilt),
    "incremental: states in memory, no SQL / JSON (evaluation alone)": row(e.incrementalInMemory),
    "naive baseline: evaluate / computeTrait over the full history (in memory)": row(e.naive),
    "naive baseline + reading the history from SQLite (JSON)": row(e.naiveWithRead),
  });
  const s = e.speedup;
  console.log(
    `incremental (engine, live states) vs naive: ${s.engineVsNaiveEvaluation}x faster than the baseline's evaluation alone, ${s.engineVsNaiveWithRead}x with its history read; evaluation alone on both sides: ${s.evaluationOnly}x (means)`,
  );
  console.log(
    `stored states per person: live ${e.stored.live.rowsPerPerson} rows, ${e.stored.live.bytesPerPerson.toLocaleString("en-US")} bytes of JSON; ` +
      `rebuilt ${e.stored.rebuilt.rowsPerPerson} rows, ${e.stored.rebuilt.bytesPerPerson.toLocaleString("en-US")} bytes`,
  );
  const a = e.agreement;
  for (const [name, list] of Object.entries(a.disagreeing)) {
    if (!list.length) console.log(`agreement (${name} states): all ${a.definitions} definitions agree with the baseline on ${a.comparedEvents} events`);
    else for (const d of list) console.log(`agreement (${name} states): ${d.id} "${d.name}" disagrees on ${d.events} of ${a.comparedEvents} events (e.g. ${d.example.messageId}: naive ${d.example.naive}, incremental ${d.example.incremental}); definition ${JSON.stringify(d.definition)}`);
  }

  console.log(`\nSegments end to end: track 200 -> membership visible through GET …/segments`);
  if (x.status !== "measured") {
    console.log(`${x.status.toUpperCase()}: ${x.reason}`);
    if (x.catalog) console.log(`catalog: ${x.catalog.created} created, ${x.catalog.failed} failed${x.catalog.firstError ? ` (first: ${x.catalog.firstError})` : ""}`);
    return;
  }
  if (x.catalog) console.log(`catalog: ${x.catalog.created} of 150 definitions created through the admin API in ${x.catalog.seconds} s${x.catalog.failed ? `, ${x.catalog.failed} failed (first: ${x.catalog.firstError})` : ""}`);
  console.log(`${x.membership.samples + x.membership.timedOut} samples at ${x.rate}/s, polled every ${x.pollMs} ms (${x.pollsPerSecond} polls/s); warm-up membership visible after ${x.warmupMs} ms`);
  const d = (r) => ({ "p50 ms": r.p50Ms, "p95 ms": r.p95Ms, "p99 ms": r.p99Ms, "min ms": r.minMs, "max ms": r.maxMs, "timed out": r.timedOut ?? null });
  console.table({
    "accepted -> membership visible (/segments)": d(x.membership),
    "baseline: accepted -> the track visible (/events)": d(x.eventVisible),
    "membership minus event, per sample": d(x.membershipMinusEvent),
    "POST /v1/track itself": d(x.accept),
  });
  console.log(`membership p99: ${x.membership.p99Ms} ms (target <= ${x.targetP99Ms} ms: ${x.targetMet ? "met" : "NOT met"})`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) printSegments(await benchSegments());
