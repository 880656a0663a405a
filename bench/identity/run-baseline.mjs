/**
 * `node bench/identity/run-baseline.mjs [people] [seed]` (defaults 10,000 and 42): generates the
 * synthetic population, clusters it with the naive transitive closure and prints its figures.
 *
 * Beside the baseline it prints an "owner oracle": the same closure, except that an event links
 * through an identifier only when ground truth says the event's person is that identifier's
 * dominant owner (the person with most events carrying it): a shared tablet's anonymousId links its
 * main user's events, not the other members'. It never over-merges (precision 1 by construction),
 * so its recall approximates the ceiling of deterministic resolution with perfect guards on this
 * population; events with no identifier their person owns (other members' anonymous visits on a
 * shared tablet or kiosk) are counted as "unattributable" and left as singletons.
 * Targets (DESIGN.md): pairwise precision >= 0.995 and recall >= 0.97 for the real resolver.
 */
import { evaluate, metricsTable } from "./metrics.mjs";
import { naiveBaseline } from "./naive-baseline.mjs";
import { ownerOracle } from "./oracle.mjs";
import { generatePopulation } from "./population.mjs";

const people = Number(process.argv[2] ?? 10_000);
const seed = Number(process.argv[3] ?? 42);
const ms = (t0) => performance.now() - t0;

let t0 = performance.now();
const pop = generatePopulation({ people, seed });
const generationMs = ms(t0);
const { events, truth } = pop;

t0 = performance.now();
const naive = naiveBaseline(events);
const naiveMs = ms(t0);

// Oracle: an event links through an identifier only if its true person is that identifier's
// dominant owner (the person with the most events carrying it). See oracle.mjs.
const { predicted: oracle, unattributable: unattributableEvents, identifiers, sharedKeys } = ownerOracle(events, truth);
const unattributable = unattributableEvents.size;

t0 = performance.now();
const results = { "naive baseline": evaluate(truth, naive), "owner oracle (ceiling)": evaluate(truth, oracle) };
const metricsMs = ms(t0);

const fmt = (n) => Math.round(n).toLocaleString("en-US");
console.log(`Identity benchmark population: ${fmt(people)} people (seed ${seed}), ${fmt(events.length)} events, generated in ${fmt(generationMs)} ms`);
console.log(`hazard counts: ${Object.entries(pop.stats).map(([k, v]) => `${k} ${fmt(v)}`).join(", ")}`);
console.log(`identifiers: ${fmt(identifiers)} distinct, ${fmt(sharedKeys)} shared by more than one person; ${fmt(unattributable)} events (${((100 * unattributable) / events.length).toFixed(2)} %) carry no identifier their person dominates`);
console.table(metricsTable(results));
console.log(`naive baseline: ${fmt(events.length)} events in ${fmt(naiveMs)} ms = ${fmt(events.length / (naiveMs / 1000))} events/s (single thread, in memory); metrics for both in ${fmt(metricsMs)} ms`);
console.log("targets for the resolver: pairwise precision >= 0.995, recall >= 0.97");
