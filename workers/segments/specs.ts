import type { ComputedTraitDefinition, Condition, EventCondition, EventFilter, Interval, Operand, SequenceCondition, SequenceStep, SinceLastCondition } from "./definition";
import { DEFAULT_UNIQUE_LIST_LIMIT } from "./definition";
import { canonical, durationMs, type Window } from "./time";

/**
 * What a definition asks of a person's events, as aggregate specs: a filter,
 * a function and a window. Every event condition, `since_last`, sequence and
 * inline aggregate compiles to one; a computed trait is one. Specs are keyed
 * by their canonical JSON, so two segments asking the same thing share one
 * per-person state, and so does a computed trait defined the same way.
 */

export type ValueFunction = "sum" | "average" | "min" | "max" | "most_frequent" | "first" | "last" | "unique_list" | "unique_count";

export interface StepSpec {
  filter: EventFilter;
  /** ms, exact: no window rounding applies to how long after the first event a step may come. */
  within: number;
  join: { first: string; step: string } | null;
}

export type AggregateSpec =
  | { function: "count"; filter: EventFilter; window: Window }
  | { function: ValueFunction; filter: EventFilter; property: string; window: Window; limit: number | null }
  | { function: "since_last"; filter: EventFilter; test: "atLeast" | "lessThan"; interval: Interval }
  | { function: "sequence"; first: EventFilter; window: Window; followedBy: StepSpec[]; notFollowedBy: StepSpec[] };

export type ValueSpec = Extract<AggregateSpec, { property: string }>;
export type CountSpec = Extract<AggregateSpec, { function: "count" }>;
export type SinceLastSpec = Extract<AggregateSpec, { function: "since_last" }>;
export type SequenceSpec = Extract<AggregateSpec, { function: "sequence" }>;

/**
 * Definitions are evaluated on every event, and deriving a spec and its
 * canonical key was most of that cost; both are pure functions of objects that
 * never change once parsed, so each is computed once per object.
 */
function memoized<C extends object, S>(build: (input: C) => S): (input: C) => S {
  const cache = new WeakMap<C, S>();
  return (input) => {
    let value = cache.get(input);
    if (value === undefined) cache.set(input, (value = build(input)));
    return value;
  };
}

export const specKey: (spec: AggregateSpec) => string = memoized((spec) => canonical(spec));

function filterOf(source: EventFilter): EventFilter {
  const filter: EventFilter = {};
  if (source.event !== undefined) filter.event = source.event;
  if (source.type !== undefined) filter.type = source.type;
  if (source.where !== undefined && source.where.length > 0) filter.where = source.where;
  return filter;
}

const windowOf = (window: Exclude<Window, "ever"> | undefined): Window => window ?? "ever";

export const computedTraitSpec: (definition: ComputedTraitDefinition) => AggregateSpec = memoized(buildComputedTraitSpec);

function buildComputedTraitSpec(definition: ComputedTraitDefinition): AggregateSpec {
  const filter = filterOf(definition);
  const window = windowOf(definition.window);
  if (definition.function === "count") return { function: "count", filter, window };
  const limit = definition.function === "unique_list" ? (definition.limit ?? DEFAULT_UNIQUE_LIST_LIMIT) : null;
  return { function: definition.function, filter, property: definition.property, window, limit };
}

export const eventConditionSpec = memoized((condition: EventCondition): CountSpec => ({ function: "count", filter: filterOf(condition), window: windowOf(condition.window) }));

export const sinceLastSpec = memoized(
  (condition: SinceLastCondition): SinceLastSpec =>
    condition.atLeast
      ? { function: "since_last", filter: filterOf(condition), test: "atLeast", interval: condition.atLeast }
      : { function: "since_last", filter: filterOf(condition), test: "lessThan", interval: condition.lessThan! },
);

const stepSpec = (step: SequenceStep): StepSpec => ({ filter: filterOf(step), within: durationMs(step.within), join: step.join ?? null });

export const sequenceSpec = memoized(
  (condition: SequenceCondition): SequenceSpec => ({
    function: "sequence",
    first: filterOf(condition.first),
    window: windowOf(condition.window),
    followedBy: (condition.followedBy ?? []).map(stepSpec),
    notFollowedBy: (condition.notFollowedBy ?? []).map(stepSpec),
  }),
);

function* walk(condition: Condition): Generator<Condition> {
  yield condition;
  if (condition.kind === "and" || condition.kind === "or") for (const inner of condition.conditions) yield* walk(inner);
  if (condition.kind === "not") yield* walk(condition.condition);
}

const operandsOf = (condition: Condition): Operand[] => (condition.kind === "compare" ? [condition.left, condition.right] : []);

/** The aggregates a segment needs, by key: what a Durable Object keeps per person and updates per event. */
export function aggregateSpecs(condition: Condition): Map<string, AggregateSpec> {
  const specs = new Map<string, AggregateSpec>();
  const add = (spec: AggregateSpec) => specs.set(specKey(spec), spec);
  for (const node of walk(condition)) {
    if (node.kind === "event") add(eventConditionSpec(node));
    else if (node.kind === "since_last") add(sinceLastSpec(node));
    else if (node.kind === "sequence") add(sequenceSpec(node));
    for (const operand of operandsOf(node)) if (operand.aggregate !== undefined) add(computedTraitSpec(operand.aggregate));
  }
  return specs;
}

export type StatisticOperand = Operand & { statistic: NonNullable<Operand["statistic"]> };

/** The key the caller supplies a statistic under: `average(traits.lifetime_value)`, `median(computed.orders_90d)`. */
export const statisticKey = (operand: StatisticOperand): string =>
  `${operand.statistic}(${operand.of?.trait !== undefined ? `traits.${operand.of.trait}` : `computed.${operand.of?.computedTrait}`})`;

/** The workspace statistics a segment compares against, so the caller knows what to compute. */
export function requiredStatistics(condition: Condition): Map<string, StatisticOperand> {
  const out = new Map<string, StatisticOperand>();
  for (const node of walk(condition)) for (const operand of operandsOf(node)) if (operand.statistic !== undefined) out.set(statisticKey(operand as StatisticOperand), operand as StatisticOperand);
  return out;
}

/** Segments this one depends on, so the caller can order evaluation and refuse cycles. */
export const referencedSegments = (condition: Condition): Set<string> =>
  new Set([...walk(condition)].flatMap((node) => (node.kind === "segment" ? [node.segment] : [])));

/**
 * Computed traits read from the caller's values. Their own changes over time
 * are not in a segment's `nextChangeAt`: re-evaluate when `computeTrait` says they change.
 */
export const referencedComputedTraits = (condition: Condition): Set<string> =>
  new Set(
    [...walk(condition)].flatMap((node) => [
      ...(node.kind === "computed_trait" ? [node.trait.split(/[.[]/)[0]!] : []),
      ...operandsOf(node).flatMap((operand) => (operand.computedTrait !== undefined ? [operand.computedTrait.split(/[.[]/)[0]!] : [])),
    ]),
  );
