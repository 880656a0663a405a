import { averageValue, distinctKeys, emptyValue, eventValue, foundValues, intervalMs, micros, mostFrequentOf, numbersOf, sumValue, uniqueListOf } from "./functions";
import { applySequence, emptySequence, pruneSequence, type SequenceState, sequenceStateTimeline } from "./sequence-state";
import type { AggregateSpec, CountSpec, SinceLastSpec, ValueSpec } from "./specs";
import { ageRange, bucketOf, constant, granularity, type Timeline, timelineOf } from "./time";
import { before, matchesEvent, type PersonEvent } from "./values";

/**
 * Per-person aggregate state, updated one event at a time and queried at any
 * `now`, without the event history. Plain JSON, to be stored as-is.
 *
 * - count, sum, average, min, max, most_frequent and first keep one partial per
 *   granularity step (minute or hour, see time.ts), keyed by step index, or one
 *   partial for `ever`. Every event in a step shares its rounded time, so a step
 *   is wholly in a window or wholly out: no precision is lost at the edges.
 * - last keeps the latest event; unique_* keep each value's latest timestamp.
 *   With no lower age bound, the latest is in the window exactly when any is.
 * - since_last keeps the latest matching event and its interval.
 * - sequences keep timestamps and join keys (sequence-state.ts).
 *
 * Every update is commutative, so arrival order does not matter; apply each
 * messageId once. `pruneState(…, now)` drops what cannot count at `now` or
 * later, so after it the state answers exactly for any later `now`. Bucket
 * count is bounded by window / granularity: 2,160 hours for 90 days.
 */

interface Occurrence {
  t: number;
  id: string;
  value: unknown;
}

type Partial =
  | number // count, min, max
  | { n: number; micros: string } // sum, average
  | Record<string, number> // most_frequent
  | Occurrence; // first

export type AggregateState =
  | { kind: "buckets"; buckets: Record<string, Partial> }
  | { kind: "last"; last: Occurrence | null }
  | { kind: "unique"; latest: Record<string, number> }
  | { kind: "since_last"; latest: { t: number; id: string; interval: number | null } | null }
  | SequenceState;

type BucketSpec = CountSpec | (ValueSpec & { function: "sum" | "average" | "min" | "max" | "most_frequent" | "first" });

export function emptyState(spec: AggregateSpec): AggregateState {
  switch (spec.function) {
    case "sequence":
      return emptySequence(spec);
    case "since_last":
      return { kind: "since_last", latest: null };
    case "last":
      return { kind: "last", last: null };
    case "unique_list":
    case "unique_count":
      return { kind: "unique", latest: {} };
    default:
      return { kind: "buckets", buckets: {} };
  }
}

const bucketKey = (spec: BucketSpec, t: number) => (spec.window === "ever" ? "ever" : String(bucketOf(t, granularity(spec.window))));

/** Combines a partial into another of the same function; the first argument may be replaced, so use the result. */
function merge(fn: BucketSpec["function"], into: Partial | undefined, add: Partial): Partial {
  if (into === undefined) return typeof add === "object" ? structuredClone(add) : add;
  switch (fn) {
    case "count":
      return (into as number) + (add as number);
    case "min":
      return Math.min(into as number, add as number);
    case "max":
      return Math.max(into as number, add as number);
    case "sum":
    case "average": {
      const a = into as { n: number; micros: string };
      const b = add as { n: number; micros: string };
      return { n: a.n + b.n, micros: String(BigInt(a.micros) + BigInt(b.micros)) };
    }
    case "most_frequent": {
      const counts = into as Record<string, number>;
      for (const [key, count] of Object.entries(add as Record<string, number>)) counts[key] = (counts[key] ?? 0) + count;
      return counts;
    }
    case "first":
      return before(add as Occurrence, into as Occurrence) ? add : into;
  }
}

/** An event's own partial, or null when it adds nothing (no value at the property). */
function partialOf(spec: BucketSpec, event: PersonEvent): Partial | null {
  if (spec.function === "count") return 1;
  const found = foundValues(spec, event);
  const numbers = numbersOf(found);
  switch (spec.function) {
    case "sum":
    case "average":
      return numbers.length === 0 ? null : { n: numbers.length, micros: String(numbers.reduce((total, number) => total + micros(number), 0n)) };
    case "min":
    case "max":
      return numbers.length === 0 ? null : spec.function === "min" ? Math.min(...numbers) : Math.max(...numbers);
    case "most_frequent":
      return found.length === 0 ? null : Object.fromEntries(distinctKeys(found).map((key) => [key, 1]));
    case "first":
      return found.length === 0 ? null : { t: event.timestamp, id: event.messageId, value: eventValue(spec, found) };
  }
}

function finish(spec: BucketSpec, partial: Partial | undefined): unknown {
  if (partial === undefined) return emptyValue(spec.function);
  switch (spec.function) {
    case "count":
    case "min":
    case "max":
      return partial;
    case "sum":
      return sumValue(BigInt((partial as { micros: string }).micros));
    case "average":
      return averageValue(BigInt((partial as { micros: string }).micros), (partial as { n: number }).n);
    case "most_frequent":
      return mostFrequentOf(partial as Record<string, number>);
    case "first":
      return (partial as Occurrence).value;
  }
}

/** Adds one event to a state. Mutates and returns it. */
export function applyEvent(spec: AggregateSpec, state: AggregateState, event: PersonEvent): AggregateState {
  if (state.kind === "sequence") return applySequence(spec as Extract<AggregateSpec, { function: "sequence" }>, state, event);
  if (!matchesEvent((spec as Exclude<AggregateSpec, { function: "sequence" }>).filter, event)) return state;
  const t = event.timestamp;
  if (state.kind === "since_last") {
    const candidate = { t, id: event.messageId, interval: intervalMs((spec as SinceLastSpec).interval, event) };
    if (!state.latest || before(state.latest, candidate)) state.latest = candidate;
    return state;
  }
  if (state.kind === "last") {
    const found = foundValues(spec as ValueSpec, event);
    const candidate = { t, id: event.messageId, value: eventValue(spec as ValueSpec, found) };
    if (found.length > 0 && (!state.last || before(state.last, candidate))) state.last = candidate;
    return state;
  }
  if (state.kind === "unique") {
    for (const key of distinctKeys(foundValues(spec as ValueSpec, event))) state.latest[key] = Math.max(state.latest[key] ?? -Infinity, t);
    return state;
  }
  const partial = partialOf(spec as BucketSpec, event);
  if (partial === null) return state;
  const key = bucketKey(spec as BucketSpec, t);
  state.buckets[key] = merge((spec as BucketSpec).function, state.buckets[key], partial);
  return state;
}

/** When something timed at `t` leaves the spec's window for good. */
function leavesAt(spec: AggregateSpec, t: number): number {
  if (!("window" in spec) || spec.window === "ever") return Infinity;
  const step = granularity(spec.window);
  return bucketOf(t, step) * step + ageRange(spec.window).to;
}

/** Drops buckets, values and occurrences that cannot count at `now` or later. Mutates and returns the state. */
export function pruneState(spec: AggregateSpec, state: AggregateState, now: number): AggregateState {
  if (state.kind === "sequence") return pruneSequence(spec as Extract<AggregateSpec, { function: "sequence" }>, state, now);
  if (state.kind === "unique") {
    for (const [key, t] of Object.entries(state.latest)) if (leavesAt(spec, t) <= now) delete state.latest[key];
  }
  if (state.kind === "buckets" && spec.function !== "since_last" && "window" in spec && spec.window !== "ever") {
    const step = granularity(spec.window);
    for (const key of Object.keys(state.buckets)) if (leavesAt(spec, Number(key) * step) <= now) delete state.buckets[key];
  }
  return state;
}

/** A count over a window with a lower age bound too: each bucket enters at τ + from and leaves at τ + to. */
function countTimeline(spec: CountSpec, state: Extract<AggregateState, { kind: "buckets" }>, now: number): Timeline<number> {
  if (spec.window === "ever") return constant((state.buckets.ever as number | undefined) ?? 0);
  const step = granularity(spec.window);
  const { from, to } = ageRange(spec.window);
  const deltas = new Map<number, number>();
  let count = 0;
  for (const [key, partial] of Object.entries(state.buckets)) {
    const tau = Number(key) * step;
    if (tau + from <= now && now < tau + to) count += partial as number;
    if (tau + from > now) deltas.set(tau + from, (deltas.get(tau + from) ?? 0) + (partial as number));
    if (tau + to > now) deltas.set(tau + to, (deltas.get(tau + to) ?? 0) - (partial as number));
  }
  let running = count;
  const steps = [...deltas].sort(([a], [b]) => a - b).map(([at, delta]) => ({ at, value: (running += delta) }));
  return timelineOf(now, count, steps);
}

/**
 * A value function over "within D": the buckets in the window leave oldest
 * first, so the value after each departure is a suffix of them, oldest to
 * newest, combined once from the newest end.
 */
function bucketTimeline(spec: BucketSpec, state: Extract<AggregateState, { kind: "buckets" }>, now: number): Timeline<unknown> {
  if (spec.window === "ever") return constant(finish(spec, state.buckets.ever));
  const step = granularity(spec.window);
  const to = ageRange(spec.window).to;
  const inside = Object.entries(state.buckets)
    .map(([key, partial]) => ({ leaves: Number(key) * step + to, partial }))
    .filter((bucket) => bucket.leaves > now)
    .sort((a, b) => a.leaves - b.leaves);
  const suffix: unknown[] = new Array(inside.length + 1);
  suffix[inside.length] = emptyValue(spec.function);
  let combined: Partial | undefined;
  for (let i = inside.length - 1; i >= 0; i--) {
    combined = merge(spec.function, combined, inside[i]!.partial);
    suffix[i] = finish(spec, combined);
  }
  return timelineOf(now, suffix[0], inside.map((bucket, i) => ({ at: bucket.leaves, value: suffix[i + 1] })));
}

function uniqueTimeline(spec: ValueSpec, state: Extract<AggregateState, { kind: "unique" }>, now: number): Timeline<unknown> {
  const entries = Object.entries(state.latest).filter(([, t]) => leavesAt(spec, t) > now);
  const valueOf = (remaining: [string, number][]) => (spec.function === "unique_count" ? remaining.length : uniqueListOf(remaining, spec.limit ?? Infinity));
  // Oldest last, so each departure drops entries from the end.
  const newestFirst = [...entries].sort(([, a], [, b]) => b - a);
  const steps = newestFirst.map(([, t], i) => ({ at: leavesAt(spec, t), value: () => valueOf(newestFirst.slice(0, i)) }));
  // Entries sharing a departure instant leave together, so what remains is what the newest of them leaves: computed once per instant.
  const kept = steps.filter((entry, i) => steps[i - 1]?.at !== entry.at).map((entry) => ({ at: entry.at, value: entry.value() }));
  return timelineOf(now, valueOf(newestFirst), kept);
}

/** The value of an aggregate now and when it changes next, from its state alone. */
export function stateTimeline(spec: AggregateSpec, state: AggregateState, now: number): Timeline<unknown> {
  switch (state.kind) {
    case "sequence":
      return sequenceStateTimeline(spec as Extract<AggregateSpec, { function: "sequence" }>, state, now);
    case "since_last": {
      const { test } = spec as SinceLastSpec;
      if (!state.latest || state.latest.interval === null) return constant(false);
      const due = state.latest.t + state.latest.interval;
      return timelineOf(now, test === "atLeast" ? now >= due : now < due, [{ at: due, value: test === "atLeast" }]);
    }
    case "last": {
      const leaves = state.last ? leavesAt(spec, state.last.t) : -Infinity;
      return timelineOf(now, leaves > now ? state.last!.value : null, [{ at: leaves, value: null }]);
    }
    case "unique":
      return uniqueTimeline(spec as ValueSpec, state, now);
    case "buckets":
      return spec.function === "count" ? countTimeline(spec, state, now) : bucketTimeline(spec as BucketSpec, state, now);
  }
}

/** States for a set of specs, built by applying events one at a time: how a store fills them, and how tests do. */
export function statesFor(specs: Iterable<[string, AggregateSpec]>, events: Iterable<PersonEvent>): Record<string, AggregateState> {
  const list = [...specs];
  const states: Record<string, AggregateState> = Object.fromEntries(list.map(([key, spec]) => [key, emptyState(spec)]));
  for (const event of events) for (const [key, spec] of list) states[key] = applyEvent(spec, states[key]!, event);
  return states;
}
