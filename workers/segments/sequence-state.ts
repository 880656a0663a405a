import type { SequenceSpec, StepSpec } from "./specs";
import { ageRange, granularity, intervalsTimeline, type Timeline, windowTime } from "./time";
import { keysAt, matchesEvent, type PersonEvent } from "./values";

/**
 * Incremental state of a sequence, exact to the millisecond and whatever
 * order events arrive in. It keeps, as timestamps and join keys only:
 *
 * - occurrences of the first event not yet ruled out, each with which
 *   `followedBy` steps it has met (a `notFollowedBy` match removes it for good);
 * - step events, because a first event may still arrive late and need them;
 * - without `notFollowedBy` steps, only the newest fully met occurrence matters
 *   (it leaves the window last), so it is kept as `done` and everything at or
 *   before it is dropped.
 *
 * `pruneSequence` drops what has left the window. With no window (ever) and
 * `notFollowedBy` steps, occurrences accumulate: give abandonment a window.
 */

interface Occurrence {
  t: number;
  /** Join keys of the first event, per step (followedBy then notFollowedBy); null when that step has no join. */
  keys: (string[] | null)[];
  /** Per followedBy step: has a matching event come? */
  met: boolean[];
}

interface StepEvent {
  t: number;
  keys: string[] | null;
}

export interface SequenceState {
  kind: "sequence";
  occurrences: Occurrence[];
  /** Per step, followedBy then notFollowedBy. */
  steps: StepEvent[][];
  done: number | null;
}

const stepsOf = (spec: SequenceSpec): StepSpec[] => [...spec.followedBy, ...spec.notFollowedBy];

export const emptySequence = (spec: SequenceSpec): SequenceState => ({ kind: "sequence", occurrences: [], steps: stepsOf(spec).map(() => []), done: null });

function pairs(step: StepSpec, first: { t: number; keys: string[] | null }, later: StepEvent): boolean {
  if (!(first.t < later.t && later.t <= first.t + step.within)) return false;
  if (!step.join) return true;
  return later.keys!.some((key) => first.keys!.includes(key));
}

/** When an occurrence at `t` leaves the window: its rounded time plus the window (Infinity for ever). */
const leavesAt = (spec: SequenceSpec, t: number) => windowTime(t, granularity(spec.window)) + ageRange(spec.window).to;

export function applySequence(spec: SequenceSpec, state: SequenceState, event: PersonEvent): SequenceState {
  const steps = stepsOf(spec);
  const followed = spec.followedBy.length;
  const t = event.timestamp;
  steps.forEach((step, i) => {
    if (!matchesEvent(step.filter, event)) return;
    const later: StepEvent = { t, keys: step.join ? keysAt(event.properties, step.join.step) : null };
    const matched = (occurrence: Occurrence) => pairs(step, { t: occurrence.t, keys: occurrence.keys[i]! }, later);
    if (i < followed) for (const occurrence of state.occurrences) occurrence.met[i] ||= matched(occurrence);
    else state.occurrences = state.occurrences.filter((occurrence) => !matched(occurrence));
    state.steps[i]!.push(later);
  });
  if (matchesEvent(spec.first, event)) {
    const keys = steps.map((step) => (step.join ? keysAt(event.properties, step.join.first) : null));
    const seen = (i: number) => state.steps[i]!.some((later) => pairs(steps[i]!, { t, keys: keys[i]! }, later));
    const ruledOut = spec.notFollowedBy.some((_, j) => seen(followed + j));
    if (!ruledOut) state.occurrences.push({ t, keys, met: spec.followedBy.map((_, i) => seen(i)) });
  }
  return compact(spec, state);
}

function compact(spec: SequenceSpec, state: SequenceState): SequenceState {
  if (spec.notFollowedBy.length > 0) return state;
  for (const occurrence of state.occurrences) if (occurrence.met.every(Boolean)) state.done = Math.max(state.done ?? -Infinity, occurrence.t);
  const done = state.done;
  if (done === null) return state;
  // A step event at or before `done` can only complete an occurrence older than `done`, which changes nothing.
  state.occurrences = state.occurrences.filter((occurrence) => occurrence.t > done);
  state.steps = state.steps.map((events) => events.filter((later) => later.t > done));
  return state;
}

/** Drops what can no longer matter at `now` or later: occurrences out of the window, and step events only they could use. */
export function pruneSequence(spec: SequenceSpec, state: SequenceState, now: number): SequenceState {
  if (spec.window === "ever") return state;
  const alive = (t: number) => leavesAt(spec, t) > now;
  state.occurrences = state.occurrences.filter((occurrence) => alive(occurrence.t));
  // A step event pairs only with earlier first events, which leave the window no later than it would.
  state.steps = state.steps.map((events) => events.filter((later) => alive(later.t)));
  if (state.done !== null && !alive(state.done)) state.done = null;
  return state;
}

/** Each qualifying occurrence holds from when every `notFollowedBy` wait has passed until it leaves the window. */
export function sequenceStateTimeline(spec: SequenceSpec, state: SequenceState, now: number): Timeline<boolean> {
  const wait = Math.max(-Infinity, ...spec.notFollowedBy.map((step) => step.within));
  const intervals = state.occurrences.filter((occurrence) => occurrence.met.every(Boolean)).map((occurrence) => ({ start: occurrence.t + wait, end: leavesAt(spec, occurrence.t) }));
  if (state.done !== null) intervals.push({ start: -Infinity, end: leavesAt(spec, state.done) });
  return intervalsTimeline(now, intervals);
}
