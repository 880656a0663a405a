import { type AggregateState, emptyState, stateTimeline } from "./aggregates";
import type { CompareCondition, ComputedTraitDefinition, Condition, Operand } from "./definition";
import { historyTimeline } from "./history";
import { type AggregateSpec, computedTraitSpec, eventConditionSpec, type StatisticOperand, sequenceSpec, sinceLastSpec, specKey, statisticKey } from "./specs";
import { canonical, combineTimelines, constant, mapTimeline, sampledTimeline, type Timeline } from "./time";
import { asSet, compareNumbers, matchesPredicate, numericValue, type PersonEvent, predicateChangeInstants, resolvePath, valueAtPath } from "./values";

/**
 * Evaluating a segment for one person. Every condition becomes a timeline
 * (its value now and each later instant it changes with no new event), and
 * `and` / `or` / `not` / `compare` combine timelines pointwise; so
 * `nextChangeAt` is the exact instant the membership flips, not a guess to
 * re-check. Event-derived parts come either from the full history (`evaluate`)
 * or from aggregate states (`evaluateAggregates`); the answers are identical.
 *
 * Traits, computed-trait values, segment memberships and statistics are taken
 * as given and constant: when one changes, the caller evaluates again.
 */

export interface PersonFacts {
  traits: Record<string, unknown>;
  /** Values of the workspace's computed traits, by key, as the caller last computed them. */
  computedTraits: Record<string, unknown>;
  /** Ids of the segments the person is in now. */
  segments: ReadonlySet<string> | readonly string[];
  /** Workspace statistics by `statisticKey`, e.g. `average(traits.lifetime_value)`. A missing one makes its comparison false. */
  statistics: Record<string, number>;
}

export interface Evaluation {
  member: boolean;
  /** The earliest instant after `now` at which `member` flips if nothing else happens; null if never. */
  nextChangeAt: number | null;
}

type AggregateSource = (spec: AggregateSpec) => Timeline<unknown>;

interface Context {
  facts: PersonFacts;
  now: number;
  aggregate: AggregateSource;
}

const present = (value: unknown) => value !== undefined && value !== null;

export function compareValues(op: CompareCondition["op"], left: unknown, right: unknown): boolean {
  switch (op) {
    case "equals":
    case "not_equals": {
      const a = numericValue(left);
      const b = numericValue(right);
      // Numbers compare as numbers (so "3" equals 3, as `gt` would read them); anything else as canonical JSON.
      const equal = present(left) && present(right) && (a !== null && b !== null ? a === b : canonical(left) === canonical(right));
      return op === "equals" ? equal : !equal;
    }
    case "gt":
    case "gte":
    case "lt":
    case "lte": {
      const a = numericValue(left);
      const b = numericValue(right);
      return a !== null && b !== null && compareNumbers(op, a, b);
    }
    case "subset_of":
    case "superset_of": {
      const [small, large] = op === "subset_of" ? [asSet(left), asSet(right)] : [asSet(right), asSet(left)];
      return [...small].every((key) => large.has(key));
    }
    case "intersects":
    case "disjoint": {
      const other = asSet(right);
      const any = [...asSet(left)].some((key) => other.has(key));
      return op === "intersects" ? any : !any;
    }
  }
}

function operandTimeline(operand: Operand, context: Context): Timeline<unknown> {
  const { facts } = context;
  if (operand.trait !== undefined) return constant(valueAtPath(facts.traits, operand.trait));
  if (operand.computedTrait !== undefined) return constant(valueAtPath(facts.computedTraits, operand.computedTrait));
  if (operand.aggregate !== undefined) return context.aggregate(computedTraitSpec(operand.aggregate));
  if (operand.statistic !== undefined) return constant(facts.statistics[statisticKey(operand as StatisticOperand)] ?? null);
  return constant(operand.value ?? null);
}

function conditionTimeline(condition: Condition, context: Context): Timeline<boolean> {
  switch (condition.kind) {
    case "and":
      return combineTimelines(condition.conditions.map((inner) => conditionTimeline(inner, context)), (values) => values.every(Boolean));
    case "or":
      return combineTimelines(condition.conditions.map((inner) => conditionTimeline(inner, context)), (values) => values.some(Boolean));
    case "not":
      return mapTimeline(conditionTimeline(condition.condition, context), (value) => !value);
    case "trait":
    case "computed_trait": {
      const found = resolvePath(condition.kind === "trait" ? context.facts.traits : context.facts.computedTraits, condition.trait);
      return sampledTimeline(context.now, predicateChangeInstants(condition, found), (at) => matchesPredicate(condition, found, at));
    }
    case "event": {
      const count = condition.count ?? { op: "gte", value: 1 };
      return mapTimeline(context.aggregate(eventConditionSpec(condition)), (n) => compareNumbers(count.op, n as number, count.value));
    }
    case "since_last":
      return context.aggregate(sinceLastSpec(condition)) as Timeline<boolean>;
    case "sequence":
      return context.aggregate(sequenceSpec(condition)) as Timeline<boolean>;
    case "compare": {
      const operands = [operandTimeline(condition.left, context), operandTimeline(condition.right, context)];
      return combineTimelines(operands, ([left, right]) => compareValues(condition.op, left, right));
    }
    case "segment": {
      const segments = context.facts.segments;
      return constant("has" in segments ? segments.has(condition.segment) : segments.includes(condition.segment));
    }
  }
}

const evaluation = (timeline: Timeline<boolean>): Evaluation => ({ member: timeline.value, nextChangeAt: timeline.changes[0]?.at ?? null });

/** One spec's timeline per evaluation, however many conditions ask for it. */
function cached(source: AggregateSource): AggregateSource {
  const seen = new Map<string, Timeline<unknown>>();
  return (spec) => {
    const key = specKey(spec);
    if (!seen.has(key)) seen.set(key, source(spec));
    return seen.get(key)!;
  };
}

/** Evaluates a segment from the person's full event history: the reference, quadratic in the events near window edges. */
export function evaluate(definition: Condition, person: PersonFacts & { events: readonly PersonEvent[] }, now: number): Evaluation {
  const events = [...person.events];
  return evaluation(conditionTimeline(definition, { facts: person, now, aggregate: cached((spec) => historyTimeline(spec, events, now)) }));
}

/**
 * Evaluates a segment from aggregate states keyed by `specKey` (see
 * `aggregateSpecs`); a missing state means no matching event yet.
 */
export function evaluateAggregates(definition: Condition, person: PersonFacts & { aggregates: Readonly<Record<string, AggregateState>> }, now: number): Evaluation {
  const source = (spec: AggregateSpec) => stateTimeline(spec, person.aggregates[specKey(spec)] ?? emptyState(spec), now);
  return evaluation(conditionTimeline(definition, { facts: person, now, aggregate: cached(source) }));
}

export interface TraitValue {
  value: unknown;
  /** The earliest instant after `now` at which `value` changes if nothing else happens; null if never. */
  nextChangeAt: number | null;
}

const traitValue = (timeline: Timeline<unknown>): TraitValue => ({ value: timeline.value, nextChangeAt: timeline.changes[0]?.at ?? null });

export const computeTrait = (definition: ComputedTraitDefinition, events: readonly PersonEvent[], now: number): TraitValue =>
  traitValue(historyTimeline(computedTraitSpec(definition), [...events], now));

/** A computed trait from its aggregate state (keyed by `specKey(computedTraitSpec(definition))`). */
export const computeTraitFromState = (definition: ComputedTraitDefinition, state: AggregateState | undefined, now: number): TraitValue => {
  const spec = computedTraitSpec(definition);
  return traitValue(stateTimeline(spec, state ?? emptyState(spec), now));
};
