import { z } from "zod";
import { DAY, durationMs } from "./time";

/**
 * The segment language: JSON rules, validated here, evaluated by evaluate.ts.
 *
 * A segment definition is one condition; a computed trait definition is one
 * aggregate. Conditions, by `kind`:
 *
 * - `and` / `or` (`conditions: [...]`), `not` (`condition`);
 * - `trait` / `computed_trait`: `{ trait: "address.city", op: "equals", value: "Paris" }`
 *   on the profile's traits or on the computed-trait values the caller passes;
 * - `event`: performed a matching event `count` times (default: at least once)
 *   in a `window` (absent: ever). "Not performed" is `count: { op: "equals", value: 0 }`;
 * - `since_last`: the latest matching event was `atLeast` / `lessThan` some
 *   interval ago, the interval a constant or read from that event (a repurchase cycle);
 * - `sequence`: a `first` event `followedBy` others within T (all of them), and/or
 *   `notFollowedBy` others within T (abandonment: true once T has passed without them);
 * - `compare`: two operands (a trait, a computed trait, an inline aggregate over
 *   the person's events, a workspace statistic the caller supplies, a constant)
 *   compared as numbers, values or sets (`subset_of`, `disjoint`, …);
 * - `segment`: membership of another segment, by id.
 *
 * Paths are dot-separated names; `name[]` looks inside an array, and a test on
 * it holds when any element passes (`products[].category`). `not_equals`,
 * `not_exists` and `not_in` are the negations of their positive forms, so they
 * also hold when the value is missing.
 *
 * Time: event windows round each event's time up to the hour (day-only
 * windows) or the minute (others), see time.ts; a sequence step's `within`,
 * `since_last` intervals and trait dates are exact to the millisecond.
 *
 * @example "Viewed 3+ shoes in the last 7 days and added nothing to the cart"
 * { "kind": "and", "conditions": [
 *   { "kind": "event", "event": "Product Viewed", "where": [{ "property": "category", "op": "equals", "value": "shoes" }],
 *     "window": { "within": { "days": 7 } }, "count": { "op": "gte", "value": 3 } },
 *   { "kind": "event", "event": "Product Added", "window": { "within": { "days": 7 } }, "count": { "op": "equals", "value": 0 } } ] }
 *
 * @example A computed trait: revenue over the last 30 days
 * { "function": "sum", "event": "Order Completed", "property": "revenue", "window": { "within": { "days": 30 } } }
 */

export const MAX_CONDITIONS = 200;
export const DEFAULT_UNIQUE_LIST_LIMIT = 100;

const PATH = /^[^.[\]]+(\[\])?(\.[^.[\]]+(\[\])?)*$/;

export const pathSchema = z
  .string()
  .max(300)
  .regex(PATH, { message: 'must be dot-separated names, each optionally followed by [] to look inside an array, like "products[].category"' })
  .describe("A property path: `product.category`, or `products[].category` to test every element of an array.");

const scalarSchema = z.union([z.string().max(1000), z.number(), z.boolean(), z.null()]);

/** ISO 8601 strings (from `YYYY-MM-DD` on) or epoch milliseconds; the same reading values.ts applies to data. */
export const ISO_DATE = /^\d{4}-\d{2}-\d{2}/;
const dateSchema = z
  .union([z.number(), z.string().refine((text) => ISO_DATE.test(text) && Number.isFinite(Date.parse(text)), { message: "must be an ISO 8601 date" })])
  .describe("An ISO 8601 date or epoch milliseconds.");

const amount = z.number().int().min(1).max(1_000_000);

export const durationSchema = z
  .strictObject({ minutes: amount.optional(), hours: amount.optional(), days: amount.optional() })
  .refine((d) => d.minutes !== undefined || d.hours !== undefined || d.days !== undefined, { message: "needs minutes, hours or days" })
  .refine((d) => durationMs(d) <= 3650 * DAY, { message: "must be at most 3650 days", when: (payload) => payload.issues.length === 0 })
  .describe("A length of time; the parts add up: { hours: 1, minutes: 30 }.");

export const windowSchema = z
  .strictObject({ within: durationSchema, notWithin: durationSchema.optional() })
  .refine((w) => !w.notWithin || durationMs(w.notWithin) < durationMs(w.within), {
    path: ["notWithin"],
    message: "must be shorter than within",
    when: (payload) => payload.issues.length === 0,
  })
  .describe("Events whose age is below `within` and, with `notWithin`, at least `notWithin`: { within: 90 days, notWithin: 60 days } is 60–90 days ago. Absent: ever.");

/** Windows for computed traits and sequences: the last N units, or ever (absent). */
export const recentWindowSchema = z.strictObject({ within: durationSchema }).describe("The last N units. Absent: ever.");

/**
 * Operators that only read the value, so they are allowed on event properties.
 * `extra` adds the fields of the context (`property`, or `kind` and `trait`).
 */
function valueOperators<E extends z.core.$ZodLooseShape>(extra: E) {
  return [
    z.strictObject({ ...extra, op: z.enum(["equals", "not_equals"]), value: scalarSchema }),
    z.strictObject({ ...extra, op: z.enum(["gt", "gte", "lt", "lte"]), value: z.number() }).describe("Numbers, and strings that are numbers."),
    z.strictObject({ ...extra, op: z.literal("contains"), value: z.union([z.string().min(1), z.number(), z.boolean()]) }).describe("A substring of a string, or an element of an array."),
    z.strictObject({ ...extra, op: z.literal("starts_with"), value: z.string().min(1) }),
    z.strictObject({ ...extra, op: z.enum(["exists", "not_exists"]) }).describe("Present and not null."),
    z.strictObject({ ...extra, op: z.enum(["in", "not_in"]), values: z.array(scalarSchema).min(1).max(1000) }),
    z.strictObject({ ...extra, op: z.enum(["before", "after"]), value: dateSchema }),
  ] as const;
}

/** Operators whose answer changes as time passes: traits only, since an event's match must not depend on `now`. */
function relativeDateOperators<E extends z.core.$ZodLooseShape>(extra: E) {
  return [z.strictObject({ ...extra, op: z.enum(["within_last", "older_than"]), duration: durationSchema }).describe("A date less than / at least `duration` ago.")] as const;
}

export const propertyFilterSchema = z
  .discriminatedUnion("op", [...valueOperators({ property: pathSchema.describe("A path inside the event's `properties`.") })])
  .describe("A test on an event property.");

const EVENT_TYPES = ["track", "page", "screen", "identify", "group", "alias"] as const;
const eventName = z.string().min(1).max(200);

/** What selects events, shared by event conditions, sequences and aggregates. */
const eventFilterShape = {
  event: z
    .union([eventName, z.array(eventName).min(1).max(50)], { error: "must be an event name or a list of them" })
    .optional()
    .describe("The event name (a track's `event`, a page's or screen's `name`), or any of a list. Absent: any."),
  type: z.array(z.enum(EVENT_TYPES)).min(1).optional().describe("Event types to accept. Absent: any."),
  where: z.array(propertyFilterSchema).max(50).optional().describe("Property tests that must all pass."),
};

export const eventFilterSchema = z.strictObject(eventFilterShape);

export const traitConditionSchema = z.discriminatedUnion("op", [
  ...valueOperators({ kind: z.literal("trait"), trait: pathSchema }),
  ...relativeDateOperators({ kind: z.literal("trait"), trait: pathSchema }),
]);

export const computedTraitConditionSchema = z.discriminatedUnion("op", [
  ...valueOperators({ kind: z.literal("computed_trait"), trait: pathSchema }),
  ...relativeDateOperators({ kind: z.literal("computed_trait"), trait: pathSchema }),
]);

export const countSchema = z
  .strictObject({ op: z.enum(["equals", "not_equals", "gt", "gte", "lt", "lte"]), value: z.number().int().min(0).max(1_000_000) })
  .describe("How many matching events. Absent: at least one.");

export const eventConditionSchema = z.strictObject({
  kind: z.literal("event"),
  ...eventFilterShape,
  window: windowSchema.optional(),
  count: countSchema.optional(),
});

/**
 * An interval: a constant (`{ days: 30 }`), or read from the event as a
 * number of `unit`s (`{ property: "products[].replenish_days", unit: "days",
 * otherwise: { days: 30 } }`); either scaled by `times` (0.8 is "80 % of").
 * With several numbers at the path, the smallest positive one is used.
 */
export const intervalSchema = z
  .strictObject({
    minutes: amount.optional(),
    hours: amount.optional(),
    days: amount.optional(),
    property: pathSchema.optional(),
    unit: z.enum(["minutes", "hours", "days"]).optional(),
    otherwise: durationSchema.optional().describe("Used when the event has no positive number at `property`."),
    times: z.number().gt(0).max(100).optional(),
  })
  .superRefine((interval, ctx) => {
    const constant = (["minutes", "hours", "days"] as const).filter((key) => interval[key] !== undefined);
    if (interval.property !== undefined) {
      for (const key of constant) ctx.addIssue({ code: "custom", path: [key], message: "cannot be combined with property; use otherwise for a fallback" });
      if (interval.unit === undefined) ctx.addIssue({ code: "custom", path: ["unit"], message: "is required with property" });
    } else {
      if (interval.unit !== undefined) ctx.addIssue({ code: "custom", path: ["unit"], message: "only applies with property" });
      if (interval.otherwise !== undefined) ctx.addIssue({ code: "custom", path: ["otherwise"], message: "only applies with property" });
      if (constant.length === 0) ctx.addIssue({ code: "custom", message: "needs minutes, hours or days, or a property" });
    }
  });

export const sinceLastConditionSchema = z
  .strictObject({ kind: z.literal("since_last"), ...eventFilterShape, atLeast: intervalSchema.optional(), lessThan: intervalSchema.optional() })
  .refine((c) => (c.atLeast === undefined) !== (c.lessThan === undefined), { message: "needs exactly one of atLeast and lessThan" })
  .describe("Time since the latest matching event; false when there is none.");

export const sequenceStepSchema = z.strictObject({
  ...eventFilterShape,
  within: durationSchema.describe("How long after the first event this one may happen, exactly to the millisecond."),
  join: z
    .strictObject({ first: pathSchema, step: pathSchema })
    .optional()
    .describe("Only events whose property at `step` shares a value with the first event's property at `first`."),
});

export const sequenceConditionSchema = z
  .strictObject({
    kind: z.literal("sequence"),
    first: eventFilterSchema,
    window: recentWindowSchema.optional().describe("Applies to the first event's time. Absent: ever."),
    followedBy: z.array(sequenceStepSchema).max(10).optional(),
    notFollowedBy: z.array(sequenceStepSchema).max(10).optional(),
  })
  .refine((c) => (c.followedBy?.length ?? 0) + (c.notFollowedBy?.length ?? 0) > 0, { path: ["followedBy"], message: "a sequence needs followedBy or notFollowedBy steps" });

const aggregateShape = { ...eventFilterShape, window: recentWindowSchema.optional() };

export const computedTraitSchema = z
  .discriminatedUnion("function", [
    z.strictObject({ function: z.literal("count"), ...aggregateShape }),
    z.strictObject({ function: z.enum(["sum", "average", "min", "max"]), property: pathSchema, ...aggregateShape }).describe("Over the numbers at `property`."),
    z.strictObject({ function: z.enum(["most_frequent", "first", "last", "unique_count"]), property: pathSchema, ...aggregateShape }),
    z.strictObject({ function: z.literal("unique_list"), property: pathSchema, limit: z.number().int().min(1).max(1000).optional(), ...aggregateShape }).describe("Most recent first."),
  ])
  .describe("A computed trait: one function over the person's matching events in a window.");

const OPERAND_SOURCES = ["trait", "computedTrait", "aggregate", "statistic", "value"] as const;

/**
 * One side of a comparison: exactly one of `trait`, `computedTrait`,
 * `aggregate`, `statistic` (with `of`) or `value`. A single object rather than
 * a union, so a mistake deep inside an aggregate is reported at its own path.
 */
export const operandSchema = z
  .strictObject({
    trait: pathSchema.optional(),
    computedTrait: pathSchema.optional(),
    aggregate: computedTraitSchema.optional().describe("Computed from this person's events, kept up to date as time passes."),
    statistic: z.enum(["average", "median", "min", "max", "sum"]).optional().describe("A workspace statistic of `of`, which the caller supplies."),
    of: z
      .strictObject({ trait: pathSchema.optional(), computedTrait: pathSchema.optional() })
      .refine((of) => (of.trait === undefined) !== (of.computedTrait === undefined), { message: "needs exactly one of trait and computedTrait" })
      .optional(),
    value: z.union([scalarSchema, z.array(scalarSchema).max(1000)]).optional().describe("A constant, or a list of them for set comparisons."),
  })
  .superRefine((operand, ctx) => {
    const sources = OPERAND_SOURCES.filter((key) => operand[key] !== undefined);
    if (sources.length !== 1) ctx.addIssue({ code: "custom", message: `needs exactly one of ${OPERAND_SOURCES.join(", ")}` });
    if (operand.statistic !== undefined && operand.of === undefined) ctx.addIssue({ code: "custom", path: ["of"], message: "is required with statistic" });
    if (operand.statistic === undefined && operand.of !== undefined) ctx.addIssue({ code: "custom", path: ["of"], message: "only applies with statistic" });
  });

export const compareConditionSchema = z.strictObject({
  kind: z.literal("compare"),
  left: operandSchema,
  op: z.enum(["equals", "not_equals", "gt", "gte", "lt", "lte", "subset_of", "superset_of", "intersects", "disjoint"]),
  right: operandSchema,
});

export const segmentConditionSchema = z.strictObject({ kind: z.literal("segment"), segment: z.string().min(1).max(200) });

export type PropertyFilter = z.infer<typeof propertyFilterSchema>;
export type EventFilter = z.infer<typeof eventFilterSchema>;
export type TraitCondition = z.infer<typeof traitConditionSchema>;
export type ComputedTraitCondition = z.infer<typeof computedTraitConditionSchema>;
export type EventCondition = z.infer<typeof eventConditionSchema>;
export type Interval = z.infer<typeof intervalSchema>;
export type SinceLastCondition = z.infer<typeof sinceLastConditionSchema>;
export type SequenceStep = z.infer<typeof sequenceStepSchema>;
export type SequenceCondition = z.infer<typeof sequenceConditionSchema>;
export type ComputedTraitDefinition = z.infer<typeof computedTraitSchema>;
export type Operand = z.infer<typeof operandSchema>;
export type CompareCondition = z.infer<typeof compareConditionSchema>;
export type SegmentCondition = z.infer<typeof segmentConditionSchema>;
export type Predicate = TraitCondition | ComputedTraitCondition | PropertyFilter;

export type Condition =
  | { kind: "and"; conditions: Condition[] }
  | { kind: "or"; conditions: Condition[] }
  | { kind: "not"; condition: Condition }
  | TraitCondition
  | ComputedTraitCondition
  | EventCondition
  | SinceLastCondition
  | SequenceCondition
  | CompareCondition
  | SegmentCondition;

export const conditionSchema: z.ZodType<Condition> = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("and"), get conditions() { return z.array(conditionSchema).min(1).max(50); } }).describe("All must hold."),
  z.strictObject({ kind: z.literal("or"), get conditions() { return z.array(conditionSchema).min(1).max(50); } }).describe("At least one must hold."),
  z.strictObject({ kind: z.literal("not"), get condition() { return conditionSchema; } }),
  traitConditionSchema,
  computedTraitConditionSchema,
  eventConditionSchema,
  sinceLastConditionSchema,
  sequenceConditionSchema,
  compareConditionSchema,
  segmentConditionSchema,
]);

function countConditions(condition: Condition): number {
  if (condition.kind === "and" || condition.kind === "or") return 1 + condition.conditions.reduce((sum, inner) => sum + countConditions(inner), 0);
  if (condition.kind === "not") return 1 + countConditions(condition.condition);
  return 1;
}

/** A segment definition: one condition, of at most MAX_CONDITIONS nodes, so evaluation stays cheap. */
export const segmentDefinitionSchema = conditionSchema.refine((condition) => countConditions(condition) <= MAX_CONDITIONS, {
  message: `must have at most ${MAX_CONDITIONS} conditions`,
});

export type SegmentDefinition = Condition;
