import { expect } from "vitest";
import { statesFor } from "../../workers/segments/aggregates";
import { type ComputedTraitDefinition, computedTraitSchema, type SegmentDefinition, segmentDefinitionSchema } from "../../workers/segments/definition";
import { computeTrait, computeTraitFromState, type Evaluation, evaluate, evaluateAggregates, type PersonFacts, type TraitValue } from "../../workers/segments/evaluate";
import { aggregateSpecs, computedTraitSpec, specKey } from "../../workers/segments/specs";
import { DAY, HOUR, MINUTE } from "../../workers/segments/time";
import type { PersonEvent } from "../../workers/segments/values";

export { DAY, HOUR, MINUTE };

/** "Now" in the scenarios: a round hour, so window edges land where the tests say. */
export const NOW = Date.UTC(2026, 2, 1, 12, 0, 0);

let sequence = 0;

export function track(event: string, timestamp: number, properties: Record<string, unknown> = {}): PersonEvent {
  return { messageId: `m-${String(++sequence).padStart(6, "0")}`, type: "track", event, timestamp, properties };
}

export function page(name: string, timestamp: number, properties: Record<string, unknown> = {}): PersonEvent {
  return { messageId: `m-${String(++sequence).padStart(6, "0")}`, type: "page", name, timestamp, properties };
}

/** Parses like the admin API will, so every scenario is also a valid definition. */
export const segment = (definition: unknown): SegmentDefinition => segmentDefinitionSchema.parse(definition);
export const trait = (definition: unknown): ComputedTraitDefinition => computedTraitSchema.parse(definition);

export interface Person extends PersonFacts {
  events: PersonEvent[];
}

export const person = (events: PersonEvent[], facts: Partial<PersonFacts> = {}): Person => ({
  traits: {},
  computedTraits: {},
  segments: [],
  statistics: {},
  ...facts,
  events,
});

/** Events in a scrambled but repeatable order: aggregates must not care. */
const scrambled = (events: PersonEvent[]) => [...events].reverse().sort((a, b) => (a.messageId.charCodeAt(a.messageId.length - 1) % 3) - (b.messageId.charCodeAt(b.messageId.length - 1) % 3));

/** Round-trips through JSON, as storage will. */
const stored = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/**
 * Evaluates from the full history and from aggregates built one event at a
 * time in another order and stored as JSON; they must agree exactly.
 */
export function check(definition: SegmentDefinition, who: Person, now: number): Evaluation {
  const fromHistory = evaluate(definition, who, now);
  const aggregates = stored(statesFor(aggregateSpecs(definition), scrambled(who.events)));
  expect(evaluateAggregates(definition, { ...who, aggregates }, now)).toEqual(fromHistory);
  return fromHistory;
}

/** Checks membership at `now`, then at `nextChangeAt` (which must flip it), and returns the later evaluation. */
export function flipsAt(definition: SegmentDefinition, who: Person, now: number, expected: { member: boolean; nextChangeAt: number | null }): Evaluation {
  expect(check(definition, who, now)).toEqual(expected);
  if (expected.nextChangeAt === null) return expected;
  expect(check(definition, who, expected.nextChangeAt - 1).member).toBe(expected.member);
  const after = check(definition, who, expected.nextChangeAt);
  expect(after.member).toBe(!expected.member);
  return after;
}

/** A computed trait from history and from its state; they must agree. */
export function value(definition: ComputedTraitDefinition, events: PersonEvent[], now: number): TraitValue {
  const fromHistory = computeTrait(definition, events, now);
  const spec = computedTraitSpec(definition);
  const state = stored(statesFor([[specKey(spec), spec]], scrambled(events))[specKey(spec)]);
  expect(computeTraitFromState(definition, state, now)).toEqual(fromHistory);
  return fromHistory;
}
