/**
 * The real identity resolver (workers/identity), bundled with esbuild and run in Node over a
 * population's events exactly as the IdentityGraphShard Durable Object runs it
 * (durable-objects/graph-changes.ts, behind `resolveEvents`), one event at a time, in the given order:
 *
 * - an event already applied (the graph has assigned its messageId) is skipped;
 * - `extractIdentifiers(event, settings)`;
 * - an alias's `previousUserId(event, settings)` is added when the graph already indexes it;
 * - `at` = `Date.parse(event.timestamp) || Date.parse(event.receivedAt)`;
 * - `applyEvent(graph, settings, { messageId, at, identifiers })`, or, when the DO goes through
 *   `applyEventWithFeatures` (workers/identity/apply.ts: the same deterministic step, then the
 *   profile's match features and probabilistic suggestions), that, with
 *   `features: featuresFromEvent(event, identifiers)`. Which one is read from the DO's source at load
 *   time, so the benchmark follows the DO; `resolver.mode` says which ("deterministic" or "with features").
 *
 * Where the DO keeps the graph (tables in its SQLite, bench/identity/capacity.mjs measures them) is persistence, not resolution, and is
 * left out. The predicted clustering is read from the final graph: `graph.clusterOfEvent(messageId)`
 * (following merges), so an event sits in the cluster it ended up in, not the one it first joined.
 * An event whose identifiers were all refused has no cluster and is left out of the map
 * ("unassigned": `evaluate` scores it as a cluster of its own).
 *
 *   const resolver = await loadResolver();
 *   const { predicted, graph, eventsPerSecond } = runResolver(resolver, events);
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { importTypeScript } from "../lib/bundle.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const ENTRY = `
export { extractIdentifiers, previousUserId } from "./workers/identity/extract.ts";
export { applyEvent } from "./workers/identity/resolve.ts";
export { IdentityGraph } from "./workers/identity/graph.ts";
export { DEFAULT_IDENTITY_SETTINGS, identitySettingsSchema } from "./workers/identity/settings.ts";
export { identifierKey } from "./workers/identity/types.ts";
`;
const FEATURES_ENTRY = `
export { applyEventWithFeatures } from "./workers/identity/apply.ts";
export { featuresFromEvent } from "./workers/identity/features.ts";
export { blockingKeys } from "./workers/identity/probabilistic.ts";
`;

let loaded;

/**
 * Bundles the resolver modules (and libphonenumber-js, zod) into one ES module in a temp
 * directory, imports it and removes the directory. Once per process.
 */
export function loadResolver() {
  loaded ??= (async () => {
    // The object's event resolution lives in graph-changes.ts; identity-graph.ts is read too, in case it moves back.
    const sources = await Promise.all(["durable-objects/graph-changes.ts", "durable-objects/identity-graph.ts"].map((file) => readFile(path.join(ROOT, file), "utf8")));
    const withFeatures = sources.some((source) => /\bapplyEventWithFeatures\(/.test(source));
    const module = await importTypeScript(withFeatures ? ENTRY + FEATURES_ENTRY : ENTRY, "resolver");
    return { ...module, mode: withFeatures ? "with features" : "deterministic" };
  })();
  return loaded;
}

/**
 * Runs `events` through a fresh graph (or `graph`) in order, the way the DO does (`mode`
 * "deterministic" forces plain `applyEvent` even where the DO also computes features). Returns
 * - `predicted`: Map<messageId, clusterId> over the events that have a cluster at the end;
 * - `graph`, `settings`: the final state, for inspection;
 * - `ms`, `eventsPerSecond`: the resolution loop alone (extraction, previousId lookup, applyEvent),
 *   not the bundling and not the final read-out;
 * - `batch`: `{ size, commit }`, to end an operation every `size` events as the object does per queue batch;
 * - `dropped`: identifiers the guards dropped, by reason; `reviews` queued, by kind; `merges`, `handoffs`.
 */
export function runResolver(resolver, events, { settings = resolver.DEFAULT_IDENTITY_SETTINGS, graph = new resolver.IdentityGraph(), mode = resolver.mode, batch = null } = {}) {
  const { extractIdentifiers, previousUserId, applyEvent, identifierKey, applyEventWithFeatures, featuresFromEvent } = resolver;
  if (mode === "with features" && !applyEventWithFeatures) throw new Error("this resolver has no applyEventWithFeatures");
  const withFeatures = mode === "with features";
  const dropped = {};
  let handoffs = 0;
  const t0 = performance.now();
  let inBatch = 0;
  for (const event of events) {
    // What the object does as each queue batch's operation commits (write back and forget what it read).
    if (batch && ++inBatch > batch.size) {
      batch.commit();
      inBatch = 1;
    }
    if (graph.events.clusterOf(event.messageId) !== undefined) continue;
    const { identifiers } = extractIdentifiers(event, settings);
    const previous = previousUserId(event, settings);
    if (previous && graph.index.has(identifierKey(previous))) identifiers.push(previous);
    const at = Date.parse(event.timestamp) || Date.parse(event.receivedAt);
    const result = withFeatures
      ? applyEventWithFeatures(graph, settings, { messageId: event.messageId, at, identifiers, features: featuresFromEvent(event, identifiers) })
      : applyEvent(graph, settings, { messageId: event.messageId, at, identifiers });
    for (const d of result.dropped) dropped[d.reason] = (dropped[d.reason] ?? 0) + 1;
    handoffs += result.handoffs.length;
  }
  batch?.commit();
  const ms = performance.now() - t0;

  const predicted = new Map();
  for (const event of events) {
    const cluster = graph.clusterOfEvent(event.messageId);
    if (cluster) predicted.set(event.messageId, cluster.id);
  }
  const reviews = {};
  for (const review of graph.reviews.values()) reviews[review.kind] = (reviews[review.kind] ?? 0) + 1;
  return {
    mode,
    predicted,
    graph,
    settings,
    ms,
    eventsPerSecond: events.length / (ms / 1000),
    dropped,
    reviews,
    merges: graph.merges.size,
    handoffs,
    liveClusters: graph.liveClusters().length,
  };
}
