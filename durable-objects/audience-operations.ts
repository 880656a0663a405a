import type { IdentityGraph } from "../workers/identity/graph";
import { traitValues } from "../workers/profiles/traits";
import { type ActivationEnvelope, activationEnvelope } from "../workers/segments/activation";
import { type FieldError, fieldErrors } from "../workers/lib/problem";
import { type Audience, audienceSchema } from "../workers/segments/catalog";
import type { ComputedTraitDefinition, Condition } from "../workers/segments/definition";
import { computeTrait, evaluate } from "../workers/segments/evaluate";
import { canonical } from "../workers/segments/time";
import type { AudienceEngine } from "./audience-engine";
import type { ProfileStore } from "./profile-store";
import { recipientOf } from "./profile-writer";

/** A page of an audience's members as activation envelopes (`audienceSyncPage`). */
export interface AudienceSyncPage {
  envelopes: ActivationEnvelope[];
  /** The last member's profile id when there may be more; null on the last page. */
  next: string | null;
  /** The audience's members now. */
  total: number;
  /** The earliest `since` of the page's members. */
  oldest: number | null;
}

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
  return graph.clusters.liveIds(after, limit);
}

/**
 * One chunk of a backfill: each profile's states are rebuilt from its events
 * and evaluated, so afterwards membership is what evaluation from scratch gives.
 * Idempotent: a redelivered chunk rebuilds the same profiles to the same result.
 * With `through`, the chunk stops at that profile id (included): a walk over
 * several graph shards fixes each chunk's range across all of them.
 */
export function backfillChunk({ graph, store, engine }: AudienceParts, after: string | null, limit: number, now: number, through?: string) {
  const listed = liveIdsAfter(graph, after, limit);
  const ids = through === undefined ? listed : listed.filter((id) => id <= through);
  let changed = 0;
  for (const id of ids) if (engine.rebuild(id, store.personEvents(id), now)) changed++;
  return { processed: ids.length, changed, next: ids.length === limit ? ids.at(-1)! : null, total: graph.clusters.liveCount() };
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

/**
 * An audience's current members after `after` (profile id order), as the
 * activation envelopes their entry would have produced, for a destination's
 * initial sync: `seq` 0 and the member's `since` as the time, so each
 * member's messageIds are the same on every run. Null when the audience is unknown here.
 */
export function syncPage({ graph, store, engine }: AudienceParts, workspaceId: string, audienceId: string, after: string | null, limit: number): AudienceSyncPage | null {
  const audience = engine.audiences().find((a) => a.id === audienceId);
  if (!audience) return null;
  const members = engine.members(audienceId, after, limit);
  const envelopes = members.map((member) =>
    activationEnvelope(
      workspaceId,
      { audience, profileId: member.profileId, at: member.since, seq: 0, ...(audience.kind === "segment" ? { entered: true } : { value: member.value }) },
      recipientOf(graph, store, member.profileId),
    ),
  );
  return {
    envelopes,
    next: members.length === limit ? members.at(-1)!.profileId : null,
    total: engine.memberCount(audienceId),
    oldest: members.length ? Math.min(...members.map((m) => m.since)) : null,
  };
}

/** New workspace statistics: every profile is evaluated again against them; returns how many changed. */
export function applyStatistics({ graph, engine }: AudienceParts, statistics: Record<string, number>, now: number): number {
  // The cron sends them every run: unchanged figures change no one's membership.
  if (canonical(engine.statisticsNow()) === canonical(statistics)) return 0;
  engine.putStatistics(statistics);
  return liveIdsAfter(graph, null, Number.POSITIVE_INFINITY).filter((id) => engine.reevaluate(id, now)).length;
}

/** Adds or replaces a segment or computed trait; a backfill brings existing profiles up to date. */
export function putDefinition({ graph, engine }: AudienceParts, input: unknown): { ok: true; audience: Audience; profiles: number } | { ok: false; errors: FieldError[] } {
  const parsed = audienceSchema.safeParse(input);
  if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error.issues) };
  engine.put(parsed.data);
  return { ok: true, audience: parsed.data, profiles: graph.clusters.liveCount() };
}

export function previewDefinition(parts: AudienceParts, input: unknown, sampleSize: number, now: number) {
  const parsed = audienceSchema.safeParse(input);
  if (!parsed.success) return { ok: false as const, errors: fieldErrors(parsed.error.issues) };
  return { ok: true as const, ...preview(parts, parsed.data, sampleSize, now) };
}
