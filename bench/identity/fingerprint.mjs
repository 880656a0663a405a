/**
 * A fingerprint of the resolver's decisions on the synthetic population: a hash of every event's
 * cluster and of every review (kind, clusters, identifiers), from `runResolver` (resolver.mjs) in
 * time order. Two commits that print the same fingerprint decided the same clustering and queued
 * the same reviews, which is what a change meant only to be faster must show.
 *
 *   node bench/identity/fingerprint.mjs [people] [seed]   (defaults: 10,000; 42)
 */
import { createHash } from "node:crypto";
import { generatePopulation } from "./population.mjs";
import { loadResolver, runResolver } from "./resolver.mjs";

const people = Number(process.argv[2] ?? 10_000);
const seed = Number(process.argv[3] ?? 42);
const { events } = generatePopulation({ people, seed });
const run = runResolver(await loadResolver(), events);
const hash = createHash("sha256");
for (const e of events) hash.update(`${e.messageId}=${run.predicted.get(e.messageId) ?? "-"};`);
const reviews = [...run.graph.reviews.values()].map((r) => `${r.kind}:${r.clusters.join(",")}:${r.identifiers.join(",")}`).sort();
hash.update(reviews.join("|"));
console.log(`decisions of the ${run.mode} resolver on ${people.toLocaleString("en-US")} people (seed ${seed}): ${hash.digest("hex").slice(0, 16)} (${events.length.toLocaleString("en-US")} events, ${reviews.length} reviews, ${Math.round(run.eventsPerSecond).toLocaleString("en-US")} events/s)`);
