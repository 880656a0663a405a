/**
 * Time in the segment language: durations, windows and timelines.
 *
 * A window is a range of *ages*. An event's age is `now − τ`, where τ is its
 * timestamp rounded UP to the window's granularity (a whole hour when every
 * duration in the window is whole days, a whole minute otherwise). Rounding is
 * what lets aggregates keep one partial per hour or minute and still give the
 * same answer as a scan of the full history: both use this rule, so an event
 * stays in "within 7 days" until 7 days after the end of its hour, never less.
 *
 * - `within D`: age < D. Nothing bounds it from below, so an event stamped a
 *   little in the future counts at once, like everywhere else in the product.
 * - `within D, notWithin A`: A ≤ age < D, "between A and D ago".
 *
 * So an event enters a window at τ + A and leaves it at τ + D, exactly.
 */

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export interface Duration {
  minutes?: number | undefined;
  hours?: number | undefined;
  days?: number | undefined;
}

export type Window = "ever" | { within: Duration; notWithin?: Duration | undefined };

export const durationMs = (d: Duration): number => (d.minutes ?? 0) * MINUTE + (d.hours ?? 0) * HOUR + (d.days ?? 0) * DAY;

const wholeDays = (d: Duration | undefined) => d === undefined || (!d.minutes && !d.hours);

/** The rounding step of a window; 1 for `ever`, which never looks at time. */
export function granularity(window: Window): number {
  if (window === "ever") return 1;
  return wholeDays(window.within) && wholeDays(window.notWithin) ? HOUR : MINUTE;
}

/** The age range [from, to) a window accepts, in ms. */
export function ageRange(window: Window): { from: number; to: number } {
  if (window === "ever") return { from: -Infinity, to: Infinity };
  return { from: window.notWithin ? durationMs(window.notWithin) : -Infinity, to: durationMs(window.within) };
}

/** The index of the granularity step an instant rounds up to; τ is `bucketOf(t) × step`. */
export const bucketOf = (t: number, step: number): number => Math.ceil(t / step) + 0;

export const windowTime = (t: number, step: number): number => bucketOf(t, step) * step;

/**
 * A value now and every later instant at which it changes, earliest first.
 * Each change holds from its instant on (a window edge at T means "from T").
 * Normalised: instants strictly increase, are after `now`, and each change
 * differs from the value before it, so `changes[0]` is the next real change.
 */
export interface Timeline<T> {
  value: T;
  changes: { at: number; value: T }[];
}

/**
 * Equality of segment values: JSON with sorted keys, so `{a,b}` and `{b,a}`
 * match and `-0` equals `0`. Timelines are compared with it, and so are sets.
 */
export function canonical(value: unknown): string {
  if (value === undefined) return "null";
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, inner]) => inner !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, inner]) => `${JSON.stringify(key)}:${canonical(inner)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export const sameValue = (a: unknown, b: unknown): boolean => a === b || canonical(a) === canonical(b);

export const constant = <T>(value: T): Timeline<T> => ({ value, changes: [] });

/**
 * A timeline from a value and steps that may share instants, lie in the past
 * or change nothing. A step at or before `now` is already part of `value`,
 * so the caller passes the value at `now` and only uses later steps for change.
 */
export function timelineOf<T>(now: number, value: T, steps: Iterable<{ at: number; value: T }>): Timeline<T> {
  const sorted = [...steps].filter((step) => step.at > now && Number.isFinite(step.at)).sort((a, b) => a.at - b.at);
  const changes: { at: number; value: T }[] = [];
  let current = value;
  for (let i = 0; i < sorted.length; i++) {
    const step = sorted[i]!;
    if (sorted[i + 1]?.at === step.at) continue; // the last step at an instant says what holds from it
    if (sameValue(step.value, current)) continue;
    changes.push(step);
    current = step.value;
  }
  return { value, changes };
}

/** Samples `valueAt` at `now` and at each candidate instant: the reference way to build a timeline. */
export function sampledTimeline<T>(now: number, candidates: Iterable<number>, valueAt: (at: number) => T): Timeline<T> {
  const instants = [...new Set(candidates)].filter((at) => at > now && Number.isFinite(at));
  return timelineOf(now, valueAt(now), instants.map((at) => ({ at, value: valueAt(at) })));
}

export function mapTimeline<A, B>(timeline: Timeline<A>, f: (value: A) => B): Timeline<B> {
  return timelineOf(-Infinity, f(timeline.value), timeline.changes.map((change) => ({ at: change.at, value: f(change.value) })));
}

/** Pointwise combination: the result can only change where one of the inputs does. */
export function combineTimelines<A, B>(timelines: Timeline<A>[], f: (values: A[]) => B): Timeline<B> {
  const current = timelines.map((timeline) => timeline.value);
  const instants = [...new Set(timelines.flatMap((timeline) => timeline.changes.map((change) => change.at)))].sort((a, b) => a - b);
  const cursors = timelines.map(() => 0);
  const steps = instants.map((at) => {
    timelines.forEach((timeline, i) => {
      while (timeline.changes[cursors[i]!]?.at === at) current[i] = timeline.changes[cursors[i]!++]!.value;
    });
    return { at, value: f([...current]) };
  });
  return timelineOf(-Infinity, f(timelines.map((timeline) => timeline.value)), steps);
}

/**
 * A union of half-open intervals [start, end) as a boolean timeline at `now`:
 * how sequences turn "this occurrence qualifies from here to there" into membership.
 */
export function intervalsTimeline(now: number, intervals: { start: number; end: number }[]): Timeline<boolean> {
  const sorted = intervals.filter((interval) => interval.end > now && interval.start < interval.end).sort((a, b) => a.start - b.start);
  const merged: { start: number; end: number }[] = [];
  for (const interval of sorted) {
    const last = merged[merged.length - 1];
    if (last && interval.start <= last.end) last.end = Math.max(last.end, interval.end);
    else merged.push({ ...interval });
  }
  const steps = merged.flatMap((interval) => [
    { at: interval.start, value: true },
    { at: interval.end, value: false },
  ]);
  return timelineOf(now, merged.some((interval) => interval.start <= now && now < interval.end), steps);
}
