import { averageValue, distinctKeys, emptyValue, eventValue, foundValues, intervalMs, micros, mostFrequentOf, numbersOf, sumValue, uniqueListOf } from "./functions";
import type { AggregateSpec, SequenceSpec, SinceLastSpec, StepSpec, ValueSpec } from "./specs";
import { ageRange, granularity, intervalsTimeline, sampledTimeline, type Timeline, type Window, windowTime } from "./time";
import { before, keysAt, matchesEvent, type PersonEvent } from "./values";

/**
 * Aggregates computed from the full event history: the reference. It scans
 * every matching event at `now` and again at each instant an event crosses a
 * window edge, which is quadratic but plainly right; aggregates.ts must agree
 * with it exactly, and the tests hold it to that with random histories.
 */

/** When an event is inside a window: from τ + from until τ + to, τ its rounded time (see time.ts). */
function presence(window: Window, t: number): { enter: number; leave: number } {
  const { from, to } = ageRange(window);
  const tau = windowTime(t, granularity(window));
  return { enter: tau + from, leave: tau + to };
}

const inWindow = (window: Window, t: number, at: number): boolean => {
  const { enter, leave } = presence(window, t);
  return enter <= at && at < leave;
};

const edgesOf = (window: Window, events: PersonEvent[]): number[] =>
  events.flatMap((event) => {
    const { enter, leave } = presence(window, event.timestamp);
    return [enter, leave];
  });

const order = (events: PersonEvent[]) => [...events].sort((a, b) => (before({ t: a.timestamp, id: a.messageId }, { t: b.timestamp, id: b.messageId }) ? -1 : 1));

/** A value function over the events in its window at one instant, computed directly. */
function summarize(spec: ValueSpec, events: PersonEvent[]): unknown {
  const withValues = order(events)
    .map((event) => ({ event, found: foundValues(spec, event) }))
    .filter(({ found }) => found.length > 0);
  const numbers = withValues.flatMap(({ found }) => numbersOf(found));
  switch (spec.function) {
    case "sum":
      return sumValue(numbers.reduce((total, number) => total + micros(number), 0n));
    case "average":
      return averageValue(numbers.reduce((total, number) => total + micros(number), 0n), numbers.length);
    case "min":
    case "max":
      return numbers.length === 0 ? null : spec.function === "min" ? Math.min(...numbers) : Math.max(...numbers);
    case "most_frequent": {
      const counts: Record<string, number> = {};
      for (const { found } of withValues) for (const key of distinctKeys(found)) counts[key] = (counts[key] ?? 0) + 1;
      return mostFrequentOf(counts);
    }
    case "first":
    case "last": {
      const chosen = spec.function === "first" ? withValues[0] : withValues[withValues.length - 1];
      return chosen ? eventValue(spec, chosen.found) : null;
    }
    case "unique_list":
    case "unique_count": {
      const latest = new Map<string, number>();
      for (const { event, found } of withValues) for (const key of distinctKeys(found)) latest.set(key, Math.max(latest.get(key) ?? -Infinity, event.timestamp));
      return spec.function === "unique_count" ? latest.size : uniqueListOf([...latest], spec.limit ?? Infinity);
    }
  }
}

function sinceLastTimeline(spec: SinceLastSpec, matching: PersonEvent[], now: number): Timeline<boolean> {
  const latest = order(matching).at(-1);
  const interval = latest ? intervalMs(spec.interval, latest) : null;
  if (!latest || interval === null) return { value: false, changes: [] };
  const due = latest.timestamp + interval;
  return sampledTimeline(now, [due], (at) => (spec.test === "atLeast" ? at >= due : at < due));
}

/** Whether `later` is a step event for the occurrence `first`: strictly after, within the step's time, sharing a join value. */
function follows(step: StepSpec, first: PersonEvent, later: PersonEvent): boolean {
  if (!(first.timestamp < later.timestamp && later.timestamp <= first.timestamp + step.within)) return false;
  if (!matchesEvent(step.filter, later)) return false;
  if (!step.join) return true;
  const wanted = new Set(keysAt(first.properties, step.join.first));
  return keysAt(later.properties, step.join.step).some((key) => wanted.has(key));
}

function sequenceTimeline(spec: SequenceSpec, events: PersonEvent[], now: number): Timeline<boolean> {
  const wait = Math.max(-Infinity, ...spec.notFollowedBy.map((step) => step.within));
  const intervals = events
    .filter((first) => matchesEvent(spec.first, first))
    .filter((first) => spec.followedBy.every((step) => events.some((later) => follows(step, first, later))))
    .filter((first) => !spec.notFollowedBy.some((step) => events.some((later) => follows(step, first, later))))
    .map((first) => ({ start: first.timestamp + wait, end: presence(spec.window, first.timestamp).leave }));
  return intervalsTimeline(now, intervals);
}

/** The timeline of one aggregate, from the full history of a person's events. */
export function historyTimeline(spec: AggregateSpec, events: PersonEvent[], now: number): Timeline<unknown> {
  if (spec.function === "sequence") return sequenceTimeline(spec, events, now);
  const matching = events.filter((event) => matchesEvent(spec.filter, event));
  if (spec.function === "since_last") return sinceLastTimeline(spec, matching, now);
  const window = spec.window;
  if (spec.function === "count") {
    return sampledTimeline(now, edgesOf(window, matching), (at) => matching.filter((event) => inWindow(window, event.timestamp, at)).length);
  }
  const valueAt = (at: number) => {
    const inside = matching.filter((event) => inWindow(window, event.timestamp, at));
    return inside.length === 0 ? emptyValue(spec.function) : summarize(spec, inside);
  };
  return sampledTimeline(now, edgesOf(window, matching), valueAt);
}
