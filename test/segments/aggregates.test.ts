import { describe, expect, it } from "vitest";
import { type AggregateState, applyEvent, emptyState, pruneState, statesFor } from "../../workers/segments/aggregates";
import type { ComputedTraitDefinition, SegmentDefinition } from "../../workers/segments/definition";
import { computeTrait, computeTraitFromState, evaluate, evaluateAggregates, type PersonFacts } from "../../workers/segments/evaluate";
import { type AggregateSpec, aggregateSpecs, computedTraitSpec, specKey } from "../../workers/segments/specs";
import type { PersonEvent } from "../../workers/segments/values";
import { DAY, HOUR, MINUTE, NOW, segment, track, trait } from "./helpers";
import { randomComputedTrait, randomEvents, randomSegment, randomTimedLeaf, type Random, seeded } from "./random-definitions";

const TRIALS = 200;

function shuffle<T>(random: Random, items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** One person's aggregates as a store would keep them: applied one event at a time, pruned as time passes, stored as JSON. */
class Store {
  states: Record<string, AggregateState>;
  constructor(private specs: Map<string, AggregateSpec>) {
    this.states = statesFor(specs, []);
  }
  apply(events: PersonEvent[]) {
    for (const event of events) for (const [key, spec] of this.specs) this.states[key] = applyEvent(spec, this.states[key]!, event);
  }
  prune(now: number) {
    for (const [key, spec] of this.specs) this.states[key] = pruneState(spec, this.states[key]!, now);
    this.states = JSON.parse(JSON.stringify(this.states)) as Record<string, AggregateState>;
  }
}

function compareAt(segments: SegmentDefinition[], traits: ComputedTraitDefinition[], facts: PersonFacts, events: PersonEvent[], store: Store, now: number): number[] {
  const changes: number[] = [];
  for (const definition of segments) {
    const fromHistory = evaluate(definition, { ...facts, events }, now);
    expect(evaluateAggregates(definition, { ...facts, aggregates: store.states }, now), JSON.stringify({ definition, now })).toEqual(fromHistory);
    if (fromHistory.nextChangeAt !== null) {
      // The announced instant is the flip itself: not a moment earlier.
      expect(fromHistory.nextChangeAt).toBeGreaterThan(now);
      expect(evaluate(definition, { ...facts, events }, fromHistory.nextChangeAt - 1).member).toBe(fromHistory.member);
      expect(evaluate(definition, { ...facts, events }, fromHistory.nextChangeAt).member).toBe(!fromHistory.member);
      changes.push(fromHistory.nextChangeAt);
    }
  }
  for (const definition of traits) {
    const fromHistory = computeTrait(definition, events, now);
    expect(computeTraitFromState(definition, store.states[specKey(computedTraitSpec(definition))], now), JSON.stringify({ definition, now })).toEqual(fromHistory);
    if (fromHistory.nextChangeAt !== null) changes.push(fromHistory.nextChangeAt);
  }
  return changes;
}

describe("aggregates agree exactly with the full history", () => {
  it(`for ${TRIALS} random histories and definitions, arriving in any order, pruned, stored and late`, () => {
    for (let trial = 0; trial < TRIALS; trial++) {
      const random = seeded(trial + 1);
      const dense = trial % 2 === 1;
      const segments = [...Array.from({ length: 3 }, () => randomSegment(random)), randomTimedLeaf(random), randomTimedLeaf(random)];
      const traits = Array.from({ length: 3 }, () => randomComputedTrait(random));
      const specs = new Map(segments.flatMap((definition) => [...aggregateSpecs(definition)]));
      for (const definition of traits) specs.set(specKey(computedTraitSpec(definition)), computedTraitSpec(definition));
      const facts: PersonFacts = { traits: { signed_up_at: new Date(NOW - Math.floor(random() * 20 * DAY)).toISOString() }, computedTraits: {}, segments: [], statistics: {} };
      const events = randomEvents(random, NOW, Math.floor(random() * 40), dense);
      // Some events arrive only after the state has been pruned, with timestamps from any time.
      const late = new Set(events.filter(() => random() < 0.25));
      const store = new Store(specs);
      store.apply(shuffle(random, events.filter((event) => !late.has(event))));
      let seen = events.filter((event) => !late.has(event));
      let now = NOW - Math.floor(random() * 3 * DAY);
      for (let step = 0; step < 12; step++) {
        store.prune(now);
        if (step === 6) {
          store.apply(shuffle(random, [...late]));
          seen = events;
        }
        const changes = compareAt(segments, traits, facts, seen, store, now);
        // Walk to the announced changes, just before them, and to random instants.
        const roll = random();
        const next = changes.length > 0 && roll < 0.6 ? Math.min(...changes) - (roll < 0.1 ? 1 : 0) : now + Math.floor(random() * (roll < 0.8 ? 6 * HOUR : 5 * DAY));
        now = Math.max(now, next);
      }
    }
  });
});

describe("aggregate state", () => {
  const lastWeek = segment({ kind: "event", event: "Product Viewed", window: { within: { days: 7 } }, count: { op: "gte", value: 3 } });
  const [[key, spec]] = [...aggregateSpecs(lastWeek)] as [[string, AggregateSpec]];

  it("keeps one partial per hour, however many events share it; an event on the hour belongs to that hour", () => {
    const views = Array.from({ length: 500 }, (_, i) => track("Product Viewed", NOW - 3 * DAY + (i % 50) * MINUTE));
    const state = statesFor([[key, spec]], views)[key]!;
    expect(state).toEqual({ kind: "buckets", buckets: { [String((NOW - 3 * DAY) / HOUR)]: 10, [String((NOW - 3 * DAY) / HOUR + 1)]: 490 } });
  });

  it("forgets what has left the window, and still answers for any later instant", () => {
    const events = [track("Product Viewed", NOW - 8 * DAY), track("Product Viewed", NOW - 2 * DAY), track("Product Viewed", NOW - DAY), track("Product Viewed", NOW - HOUR)];
    const state = pruneState(spec, statesFor([[key, spec]], events)[key]!, NOW);
    expect(Object.keys((state as { buckets: object }).buckets)).toHaveLength(3);
    for (const at of [NOW, NOW + 5 * DAY - 1, NOW + 5 * DAY, NOW + 9 * DAY]) expect(evaluateAggregates(lastWeek, { traits: {}, computedTraits: {}, segments: [], statistics: {}, aggregates: { [key]: state } }, at)).toEqual(evaluate(lastWeek, { traits: {}, computedTraits: {}, segments: [], statistics: {}, events }, at));
  });

  it("keeps only the newest completed occurrence of a sequence without notFollowedBy", () => {
    const funnel = segment({ kind: "sequence", first: { event: "Product Added" }, followedBy: [{ event: "Order Completed", within: { hours: 1 } }] });
    const [[funnelKey, funnelSpec]] = [...aggregateSpecs(funnel)] as [[string, AggregateSpec]];
    const events = [0, 1, 2].flatMap((day) => [track("Product Added", NOW - day * DAY), track("Order Completed", NOW - day * DAY + MINUTE)]);
    // The last order stays: a cart add arriving late, between NOW and it, would complete a newer occurrence.
    expect(statesFor([[funnelKey, funnelSpec]], events)[funnelKey]).toEqual({ kind: "sequence", occurrences: [], steps: [[{ t: NOW + MINUTE, keys: null }]], done: NOW });
  });

  it("breaks timestamp ties by the larger messageId, whatever order the events arrive in", () => {
    const due = segment({ kind: "since_last", event: "Order Completed", atLeast: { property: "cycle_days", unit: "days" } });
    const lastCycle = trait({ function: "last", event: "Order Completed", property: "cycle_days" });
    const firstCycle = trait({ function: "first", event: "Order Completed", property: "cycle_days" });
    const a = { ...track("Order Completed", NOW - 5 * DAY, { cycle_days: 3 }), messageId: "m-a" };
    const b = { ...track("Order Completed", NOW - 5 * DAY, { cycle_days: 10 }), messageId: "m-b" };
    const facts = { traits: {}, computedTraits: {}, segments: [], statistics: {} };
    for (const events of [[a, b], [b, a]]) {
      const specs = new Map([...aggregateSpecs(due), [specKey(computedTraitSpec(lastCycle)), computedTraitSpec(lastCycle)], [specKey(computedTraitSpec(firstCycle)), computedTraitSpec(firstCycle)]]);
      const states = statesFor(specs, events);
      expect(evaluateAggregates(due, { ...facts, aggregates: states }, NOW)).toEqual({ member: false, nextChangeAt: NOW + 5 * DAY });
      expect(evaluate(due, { ...facts, events }, NOW)).toEqual({ member: false, nextChangeAt: NOW + 5 * DAY });
      expect(computeTraitFromState(lastCycle, states[specKey(computedTraitSpec(lastCycle))], NOW).value).toBe(10);
      expect(computeTraitFromState(firstCycle, states[specKey(computedTraitSpec(firstCycle))], NOW).value).toBe(3);
    }
  });

  it("starts empty, and an unknown person is in no event-based segment", () => {
    expect(emptyState(computedTraitSpec(trait({ function: "unique_list", property: "category" })))).toEqual({ kind: "unique", latest: {} });
    expect(evaluateAggregates(lastWeek, { traits: {}, computedTraits: {}, segments: [], statistics: {}, aggregates: {} }, NOW)).toEqual({ member: false, nextChangeAt: null });
  });
});
