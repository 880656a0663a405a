/**
 * Identity resolution benchmark: the synthetic population (population.mjs) clustered three ways and
 * scored against its ground truth (metrics.mjs):
 *
 * - the naive transitive closure over every identifier (naive-baseline.mjs);
 * - our resolver: workers/identity bundled with esbuild and run as the IdentityGraphShard Durable
 *   Object runs it, event by event in time order (resolver.mjs);
 * - the owner oracle, an approximate recall ceiling for identifier-based resolution (oracle.mjs).
 *
 * Then, for the resolver, which hazard each over-merge comes from (over-merges.mjs).
 *
 *   node bench/identity/run.mjs [people] [seed]     (defaults: BENCH_IDENTITY_PEOPLE or 10,000; seed 42)
 *   BENCH_IDENTITY_RATES='{"householdTablet":0}' node bench/identity/run.mjs …   (hazard rates changed, population.mjs RATES)
 *
 * `npm run bench` runs it too (bench/run.mjs) and saves the figures under `identity` in
 * bench/results/latest.json. Targets (DESIGN.md): pairwise precision >= 0.995, recall >= 0.97.
 */
import { fileURLToPath } from "node:url";
import { evaluate, metricsTable } from "./metrics.mjs";
import { naiveBaseline } from "./naive-baseline.mjs";
import { ownerOracle } from "./oracle.mjs";
import { overMergeBreakdown } from "./over-merges.mjs";
import { generatePopulation, RATES } from "./population.mjs";
import { loadResolver, runResolver } from "./resolver.mjs";

export const IDENTITY_TARGETS = Object.freeze({ precision: 0.995, recall: 0.97 });
export const DEFAULT_IDENTITY_PEOPLE = 10_000;

const round = (x, digits = 4) => +x.toFixed(digits);

/** Hazard rates to change, from BENCH_IDENTITY_RATES (a JSON object of RATES entries); a name RATES lacks is refused. */
export function ratesFromEnv(json = process.env.BENCH_IDENTITY_RATES) {
  if (!json) return {};
  const rates = JSON.parse(json);
  if (rates === null || typeof rates !== "object" || Array.isArray(rates)) throw new Error(`BENCH_IDENTITY_RATES must be a JSON object of rates, such as {"householdTablet":0}`);
  const unknown = Object.keys(rates).filter((name) => !(name in RATES));
  if (unknown.length) throw new Error(`BENCH_IDENTITY_RATES: unknown rate ${unknown.join(", ")}; the rates are ${Object.keys(RATES).join(", ")}`);
  const wrong = Object.entries(rates).filter(([name, value]) => typeof value !== typeof RATES[name] || Array.isArray(value) !== Array.isArray(RATES[name]));
  if (wrong.length) throw new Error(`BENCH_IDENTITY_RATES: ${wrong.map(([name]) => `${name} must be ${Array.isArray(RATES[name]) ? "an array of weights" : "a number"}`).join("; ")}`);
  return rates;
}

export async function benchIdentity({ people = Number(process.env.BENCH_IDENTITY_PEOPLE ?? DEFAULT_IDENTITY_PEOPLE), seed = Number(process.env.BENCH_IDENTITY_SEED ?? 42), rates = ratesFromEnv() } = {}) {
  const started = performance.now();
  let t0 = performance.now();
  const pop = generatePopulation({ people, seed, rates });
  const generationMs = performance.now() - t0;
  const { events, truth } = pop;

  t0 = performance.now();
  const naive = naiveBaseline(events);
  const naiveMs = performance.now() - t0;

  const oracle = ownerOracle(events, truth);

  const resolver = await loadResolver();
  const run = runResolver(resolver, events);
  // The deterministic step alone, for its speed: the same clustering when probabilistic auto-merge is off.
  const deterministic = run.mode === "deterministic" ? run : runResolver(resolver, events, { mode: "deterministic" });

  const scored = {
    naive: evaluate(truth, naive),
    resolver: evaluate(truth, run.predicted),
    oracle: evaluate(truth, oracle.predicted),
  };
  const breakdown = overMergeBreakdown(pop, run.predicted, run.graph, { unattributable: oracle.unattributable });
  const suggestions = probabilisticQueue(run, truth);
  const blocks = resolver.blockingKeys ? blockCensus(run.graph, resolver.blockingKeys) : null;

  const method = (m, eventsPerSecond) => ({
    pairwise: { precision: round(m.pairwise.precision), recall: round(m.pairwise.recall), f1: round(m.pairwise.f1), correctPairs: m.pairwise.correctPairs, predictedPairs: m.pairwise.predictedPairs, truePairs: m.pairwise.truePairs },
    bcubed: { precision: round(m.bcubed.precision), recall: round(m.bcubed.recall), f1: round(m.bcubed.f1) },
    clusters: m.clusters,
    unassignedEvents: m.unassigned,
    overMergedClusters: m.overMergedClusters,
    largestCluster: m.largestCluster,
    fragmentsPerPerson: round(m.fragmentsPerPerson, 3),
    fragmentedPeople: m.fragmentedPeople,
    eventsPerSecond: eventsPerSecond === null ? null : Math.round(eventsPerSecond),
  });
  const r = scored.resolver;
  return {
    people,
    seed,
    rates,
    events: events.length,
    generationMs: Math.round(generationMs),
    hazards: pop.stats,
    unattributableEvents: oracle.unattributable.size,
    resolverMode: run.mode,
    naive: method(scored.naive, events.length / (naiveMs / 1000)),
    resolver: {
      ...method(r, run.eventsPerSecond),
      deterministicEventsPerSecond: Math.round(deterministic.eventsPerSecond),
      merges: run.merges,
      handoffs: run.handoffs,
      droppedIdentifiers: run.dropped,
      reviews: run.reviews,
      probabilisticSuggestions: suggestions,
      blocks,
    },
    oracle: method(scored.oracle, null),
    resolverVsOracle: {
      pairwiseRecall: round(r.pairwise.recall / scored.oracle.pairwise.recall),
      bcubedRecall: round(r.bcubed.recall / scored.oracle.bcubed.recall),
    },
    targets: {
      ...IDENTITY_TARGETS,
      precisionMet: r.pairwise.precision >= IDENTITY_TARGETS.precision,
      recallMet: r.pairwise.recall >= IDENTITY_TARGETS.recall,
      oracleRecallMeetsTarget: scored.oracle.pairwise.recall >= IDENTITY_TARGETS.recall,
    },
    overMerges: { byHazard: breakdown.table, topBridges: breakdown.topBridges, wrongPairs: breakdown.wrongPairs },
    seconds: round((performance.now() - started) / 1000, 1),
  };
}

/**
 * Probabilistic suggestions queued for review, checked against ground truth: a suggestion is right
 * when the two clusters it names (followed to where they are now) are mostly the same true person.
 */
function probabilisticQueue(run, truth) {
  const main = new Map(); // cluster id -> Map(person -> events)
  for (const [messageId, clusterId] of run.predicted) {
    let row = main.get(clusterId);
    if (!row) main.set(clusterId, (row = new Map()));
    const who = truth.get(messageId);
    row.set(who, (row.get(who) ?? 0) + 1);
  }
  const dominant = (clusterId) => {
    let best = null, most = 0;
    for (const [who, n] of main.get(clusterId) ?? []) if (n > most) { best = who; most = n; }
    return best;
  };
  let total = 0, samePerson = 0, differentPeople = 0, sinceMerged = 0;
  for (const review of run.graph.reviews.values()) {
    if (review.kind !== "probabilistic") continue;
    total++;
    const [a, b] = review.clusters.map((id) => run.graph.resolve(id).id);
    if (a === b) sinceMerged++;
    else if (dominant(a) !== null && dominant(a) === dominant(b)) samePerson++;
    else differentPeople++;
  }
  return { queued: total, samePerson, differentPeople, sinceMergedDeterministically: sinceMerged };
}

/**
 * The graph's block index for probabilistic matching: its entries, and those that should not be
 * there: naming a cluster merged away, or a key the cluster's current match features do not give.
 */
function blockCensus(graph, blockingKeys) {
  let entries = 0, forwarded = 0, stale = 0;
  for (const [id, cluster] of graph.clusters) {
    const keys = graph.blocks.keysOf(id);
    entries += keys.length;
    if (cluster.forwardedTo) { forwarded += keys.length; continue; }
    const features = graph.features.get(id);
    const current = new Set(features ? blockingKeys(features) : []);
    stale += keys.filter((key) => !current.has(key)).length;
  }
  return { entries, forwarded, stale };
}

const fmt = (n) => Math.round(n).toLocaleString("en-US");
const pct = (x) => `${(100 * x).toFixed(2)} %`;

export function printIdentity(b) {
  const changed = Object.keys(b.rates).length ? `, rates changed: ${JSON.stringify(b.rates)}` : "";
  console.log(`\nIdentity resolution: ${fmt(b.people)} people (seed ${b.seed}${changed}), ${fmt(b.events)} events, generated in ${fmt(b.generationMs)} ms`);
  console.log(`hazards: ${Object.entries(b.hazards).map(([k, v]) => `${k} ${fmt(v)}`).join(", ")}`);
  console.log(`${fmt(b.unattributableEvents)} events (${pct(b.unattributableEvents / b.events)}) carry no identifier their person dominates: the oracle leaves them as singletons`);
  const col = (m) => ({
    "pairwise precision": m.pairwise.precision.toFixed(4),
    "pairwise recall": m.pairwise.recall.toFixed(4),
    "pairwise F1": m.pairwise.f1.toFixed(4),
    "B-cubed precision": m.bcubed.precision.toFixed(4),
    "B-cubed recall": m.bcubed.recall.toFixed(4),
    "B-cubed F1": m.bcubed.f1.toFixed(4),
    "predicted clusters": fmt(m.clusters),
    "unassigned events": fmt(m.unassignedEvents),
    "over-merged clusters": fmt(m.overMergedClusters),
    "largest cluster (people)": fmt(m.largestCluster.people),
    "largest cluster (events)": fmt(m.largestCluster.events),
    "fragments per person": m.fragmentsPerPerson.toFixed(3),
    "people split in >1 cluster": fmt(m.fragmentedPeople),
    "events/s": m.eventsPerSecond === null ? "n/a" : fmt(m.eventsPerSecond),
  });
  const rows = {};
  const columns = { "naive closure": col(b.naive), [`resolver (${b.resolverMode})`]: col(b.resolver), "owner oracle (ceiling)": col(b.oracle) };
  for (const [name, c] of Object.entries(columns)) for (const [label, v] of Object.entries(c)) (rows[label] ??= {})[name] = v;
  console.table(rows);
  const r = b.resolver;
  console.log(`resolver recall relative to the oracle ceiling: pairwise ${pct(b.resolverVsOracle.pairwiseRecall)}, B-cubed ${pct(b.resolverVsOracle.bcubedRecall)}`);
  console.log(`resolver speed (single thread, in memory, extraction included): ${fmt(r.eventsPerSecond)} events/s as the Durable Object runs it${b.resolverMode === "deterministic" ? "" : `; ${fmt(r.deterministicEventsPerSecond)} events/s for the deterministic step alone`}`);
  console.log(`resolver decisions: ${fmt(r.merges)} merges, ${fmt(r.handoffs)} device handoffs, dropped identifiers ${JSON.stringify(r.droppedIdentifiers)}, reviews queued ${JSON.stringify(r.reviews)}`);
  const s = r.probabilisticSuggestions;
  if (s.queued) console.log(`probabilistic suggestions queued: ${fmt(s.queued)} (${fmt(s.samePerson)} join two clusters of one true person, ${fmt(s.differentPeople)} two different people, ${fmt(s.sinceMergedDeterministically)} since merged by identifiers)`);
  if (r.blocks) console.log(`match block entries: ${fmt(r.blocks.entries)} (${fmt(r.blocks.forwarded)} naming a profile merged away, ${fmt(r.blocks.stale)} for a key the profile no longer gives)`);
  const t = b.targets;
  console.log(`targets: pairwise precision >= ${t.precision}: ${t.precisionMet ? "met" : "NOT met"}; pairwise recall >= ${t.recall}: ${t.recallMet ? "met" : "NOT met"} (the oracle ceiling ${t.oracleRecallMeetsTarget ? "reaches" : "does not reach"} it)`);
  if (Object.keys(b.overMerges.byHazard).length) {
    console.log(`\nresolver over-merges by hazard (the identifier that brought a minority person's events into another person's cluster; ${fmt(b.overMerges.wrongPairs)} wrong pairs in all)`);
    console.table(b.overMerges.byHazard);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const people = process.argv[2] ? Number(process.argv[2]) : undefined;
  const seed = process.argv[3] ? Number(process.argv[3]) : undefined;
  const b = await benchIdentity({ ...(people ? { people } : {}), ...(seed !== undefined ? { seed } : {}) });
  printIdentity(b);
  console.log(`(${b.seconds} s)`);
}
