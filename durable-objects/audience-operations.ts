import type { IdentityGraph } from "../workers/identity/graph";
import { traitValues } from "../workers/profiles/traits";
import type { Audience } from "../workers/segments/catalog";
import type { ComputedTraitDefinition, Condition } from "../workers/segments/definition";
import { computeTrait, evaluate } from "../workers/segments/evaluate";
import type { AudienceEngine } from "./audience-engine";
import type { ProfileStore } from "./profile-store";

/**
 * The identity object's audience operations that go beyond one event: the
 * backfill of a new or edited definition, a preview before saving, and paged
 * members. Kept apart from the object so it stays a thin adapter.
 */
export interface AudienceParts {
  graph: IdentityGraph;
  store: ProfileStore;
  engine: AudienceEngine;
}

/** Live profile ids in id order after `after`: the backfill's and the preview's walk. */
function liveIdsAfter(graph: IdentityGraph, after: string | null, limit: number): string[] {
  return graph
    .liveClusters()
    .map((c) => c.id)
    .filter((id) => after === null || id > after)
    .sort()
    .slice(0, limit);
}

/**
 * One chunk of a backfill: each profile's states are rebuilt from its events
 * and evaluated, so afterwards membership is what evaluation from scratch gives.
 * Idempotent: a redelivered chunk rebuilds the same profiles to the same result.
 */
export function backfillChunk({ graph, store, engine }: AudienceParts, after: string | null, limit: number, now: number) {
  const ids = liveIdsAfter(graph, after, limit);
  let changed = 0;
  for (const id of ids) if (engine.rebuild(id, store.personEvents(id), now)) changed++;
  return { processed: ids.length, changed, next: ids.length === limit ? ids.at(-1)! : null, total: graph.liveClusters().length };
}

/** How many live profiles a definition would hold now, and a sample of them, without saving anything. */
export function preview({ graph, store, engine }: AudienceParts, audience: Audience, sampleSize: number, now: number) {
  const ids = liveIdsAfter(graph, null, Number.POSITIVE_INFINITY);
  let size = 0;
  const sample: { profileId: string; value: unknown }[] = [];
  for (const id of ids) {
    const events = store.personEvents(id);
    const { segments, computedTraits } = engine.valuesOf(id);
    let value: unknown;
    if (audience.kind === "segment") {
      const facts = { traits: traitValues(store.traits(id)), computedTraits, segments: segments.map((s) => s.id), statistics: engine.statisticsNow(), events };
      value = evaluate(audience.definition as Condition, facts, now).member ? true : null;
    } else value = computeTrait(audience.definition as ComputedTraitDefinition, events, now).value ?? null;
    if (value === null || value === undefined) continue;
    size++;
    if (sample.length < sampleSize) sample.push({ profileId: id, value });
  }
  return { size, total: ids.length, sample };
}
