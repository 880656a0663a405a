import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { computedTraitSchema, MAX_CONDITIONS, segmentDefinitionSchema } from "../../workers/segments/definition";
import { aggregateSpecs, computedTraitSpec, referencedComputedTraits, referencedSegments, specKey } from "../../workers/segments/specs";

/** Each issue as "path: message", the way an admin would read it. */
function problems(schema: z.ZodType, input: unknown): string[] {
  const result = schema.safeParse(input);
  expect(result.success).toBe(false);
  return result.error!.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
}

const viewed = { kind: "event", event: "Product Viewed" };

describe("valid definitions", () => {
  it("accepts nested conditions of every kind", () => {
    const definition = {
      kind: "or",
      conditions: [
        { kind: "and", conditions: [{ ...viewed, window: { within: { days: 90 }, notWithin: { days: 60 } }, count: { op: "gte", value: 3 } }, { kind: "segment", segment: "seg_vip" }] },
        { kind: "not", condition: { kind: "trait", trait: "address.city", op: "in", values: ["Paris", "Lyon"] } },
        { kind: "computed_trait", trait: "orders_90d", op: "gte", value: 2 },
        { kind: "since_last", event: "Order Completed", lessThan: { hours: 12 } },
        { kind: "sequence", first: { event: "Product Added" }, window: { within: { days: 7 } }, notFollowedBy: [{ event: "Order Completed", within: { hours: 1, minutes: 30 } }] },
        { kind: "compare", left: { computedTrait: "ltv" }, op: "gte", right: { statistic: "median", of: { computedTrait: "ltv" } } },
        { kind: "trait", trait: "tags", op: "contains", value: "beta" },
      ],
    };
    expect(segmentDefinitionSchema.parse(definition)).toEqual(definition);
  });

  it("compiles identical event conditions to one shared aggregate, and a computed trait to the same spec when defined alike", () => {
    const definition = segmentDefinitionSchema.parse({
      kind: "and",
      conditions: [viewed, { kind: "not", condition: viewed }, { kind: "compare", left: { aggregate: { function: "count", event: "Product Viewed" } }, op: "gt", right: { value: 2 } }],
    });
    const specs = aggregateSpecs(definition);
    expect(specs.size).toBe(1);
    expect([...specs.keys()]).toEqual([specKey(computedTraitSpec(computedTraitSchema.parse({ function: "count", event: "Product Viewed" })))]);
  });

  it("lists the segments and computed traits a definition reads", () => {
    const definition = segmentDefinitionSchema.parse({
      kind: "and",
      conditions: [{ kind: "segment", segment: "a" }, { kind: "computed_trait", trait: "favourite.brand", op: "exists" }, { kind: "compare", left: { computedTrait: "ltv" }, op: "gt", right: { value: 1 } }],
    });
    expect([...referencedSegments(definition)]).toEqual(["a"]);
    expect([...referencedComputedTraits(definition)]).toEqual(["favourite", "ltv"]);
  });
});

describe("invalid definitions name the exact place and reason", () => {
  it("points inside nested conditions", () => {
    expect(problems(segmentDefinitionSchema, { kind: "and", conditions: [viewed, { kind: "or", conditions: [{ kind: "trait", trait: "a..b", op: "exists" }] }] })).toEqual([
      'conditions.1.conditions.0.trait: must be dot-separated names, each optionally followed by [] to look inside an array, like "products[].category"',
    ]);
    expect(problems(segmentDefinitionSchema, { kind: "nand", conditions: [] })[0]).toMatch(/^kind: Invalid discriminator value/);
    expect(problems(segmentDefinitionSchema, { kind: "and", conditions: [] })).toEqual(["conditions: Too small: expected array to have >=1 items"]);
  });

  it("checks operators and their values", () => {
    expect(problems(segmentDefinitionSchema, { kind: "trait", trait: "plan", op: "like", value: "x" })[0]).toMatch(/^op: Invalid discriminator value/);
    expect(problems(segmentDefinitionSchema, { kind: "trait", trait: "age", op: "gt", value: "18" })).toEqual(["value: Invalid input: expected number, received string"]);
    expect(problems(segmentDefinitionSchema, { kind: "trait", trait: "seen", op: "before", value: "last tuesday" })).toEqual(["value: must be an ISO 8601 date"]);
    expect(problems(segmentDefinitionSchema, { kind: "trait", trait: "plan", op: "in", values: [] })).toEqual(["values: Too small: expected array to have >=1 items"]);
    expect(problems(segmentDefinitionSchema, { kind: "trait", trait: "plan", op: "exists", value: 1 })).toEqual([': Unrecognized key: "value"']);
  });

  it("refuses relative dates on event properties, whose match must not change with time", () => {
    const where = [{ property: "shipped_at", op: "within_last", duration: { days: 1 } }];
    expect(problems(segmentDefinitionSchema, { ...viewed, where })[0]).toMatch(/^where\.0\.op: Invalid discriminator value/);
  });

  it("checks windows and counts", () => {
    expect(problems(segmentDefinitionSchema, { ...viewed, window: { within: { days: 0 } } })).toEqual(["window.within.days: Too small: expected number to be >=1"]);
    expect(problems(segmentDefinitionSchema, { ...viewed, window: { within: {} } })).toEqual(["window.within: needs minutes, hours or days"]);
    expect(problems(segmentDefinitionSchema, { ...viewed, window: { within: { days: 60 }, notWithin: { days: 90 } } })).toEqual(["window.notWithin: must be shorter than within"]);
    expect(problems(segmentDefinitionSchema, { ...viewed, window: { within: { days: 4000 } } })).toEqual(["window.within: must be at most 3650 days"]);
    expect(problems(segmentDefinitionSchema, { ...viewed, count: { op: "gte", value: -1 } })).toEqual(["count.value: Too small: expected number to be >=0"]);
    expect(problems(segmentDefinitionSchema, { ...viewed, event: "" })).toEqual(["event: Too small: expected string to have >=1 characters"]);
    expect(problems(segmentDefinitionSchema, { ...viewed, event: 7 })).toEqual(["event: must be an event name or a list of them"]);
  });

  it("checks since_last intervals", () => {
    expect(problems(segmentDefinitionSchema, { kind: "since_last", event: "Order Completed" })).toEqual([": needs exactly one of atLeast and lessThan"]);
    expect(problems(segmentDefinitionSchema, { kind: "since_last", atLeast: { property: "cycle_days" } })).toEqual(["atLeast.unit: is required with property"]);
    expect(problems(segmentDefinitionSchema, { kind: "since_last", atLeast: { property: "cycle_days", unit: "days", days: 30 } })).toEqual([
      "atLeast.days: cannot be combined with property; use otherwise for a fallback",
    ]);
    expect(problems(segmentDefinitionSchema, { kind: "since_last", atLeast: { days: 30, otherwise: { days: 1 } } })).toEqual(["atLeast.otherwise: only applies with property"]);
    expect(problems(segmentDefinitionSchema, { kind: "since_last", atLeast: { days: 30, times: 0 } })).toEqual(["atLeast.times: Too small: expected number to be >0"]);
  });

  it("checks sequences", () => {
    expect(problems(segmentDefinitionSchema, { kind: "sequence", first: { event: "A" } })).toEqual(["followedBy: a sequence needs followedBy or notFollowedBy steps"]);
    expect(problems(segmentDefinitionSchema, { kind: "sequence", first: { event: "A" }, followedBy: [{ event: "B" }] })).toEqual(["followedBy.0.within: Invalid input: expected object, received undefined"]);
    expect(problems(segmentDefinitionSchema, { kind: "sequence", first: { event: "A" }, window: { within: { days: 7 }, notWithin: { days: 1 } }, followedBy: [{ event: "B", within: { hours: 1 } }] })).toEqual([
      'window: Unrecognized key: "notWithin"',
    ]);
  });

  it("checks comparisons and their operands, down inside an inline aggregate", () => {
    expect(problems(segmentDefinitionSchema, { kind: "compare", left: { trait: "ltv" }, op: "gt", right: { average: "ltv" } })).toEqual([
      'right: Unrecognized key: "average"',
      "right: needs exactly one of trait, computedTrait, aggregate, statistic, value",
    ]);
    expect(problems(segmentDefinitionSchema, { kind: "compare", left: { trait: "ltv", value: 3 }, op: "gt", right: { value: 1 } })).toEqual([
      "left: needs exactly one of trait, computedTrait, aggregate, statistic, value",
    ]);
    expect(problems(segmentDefinitionSchema, { kind: "compare", left: { trait: "ltv" }, op: "above", right: { value: 1 } })[0]).toMatch(/^op: Invalid option/);
    expect(problems(segmentDefinitionSchema, { kind: "compare", left: { aggregate: { function: "sum", event: "Order Completed" } }, op: "gt", right: { value: 1 } })).toEqual([
      "left.aggregate.property: Invalid input: expected string, received undefined",
    ]);
    expect(problems(segmentDefinitionSchema, { kind: "compare", left: { trait: "ltv" }, op: "gt", right: { statistic: "average" } })).toEqual(["right.of: is required with statistic"]);
    expect(problems(segmentDefinitionSchema, { kind: "compare", left: { trait: "ltv" }, op: "gt", right: { statistic: "average", of: {} } })).toEqual([
      "right.of: needs exactly one of trait and computedTrait",
    ]);
  });

  it("limits the size of a definition", () => {
    const wide = { kind: "or", conditions: Array.from({ length: 50 }, () => ({ kind: "and", conditions: Array.from({ length: 4 }, () => viewed) })) };
    expect(problems(segmentDefinitionSchema, wide)).toEqual([`: must have at most ${MAX_CONDITIONS} conditions`]);
  });
});

describe("invalid computed traits", () => {
  it("names the missing or misplaced field", () => {
    expect(problems(computedTraitSchema, { function: "sum", event: "Order Completed" })).toEqual(["property: Invalid input: expected string, received undefined"]);
    expect(problems(computedTraitSchema, { function: "median", property: "x" })[0]).toMatch(/^function: Invalid discriminator value/);
    expect(problems(computedTraitSchema, { function: "unique_list", property: "x", limit: 0 })).toEqual(["limit: Too small: expected number to be >=1"]);
    expect(problems(computedTraitSchema, { function: "count", window: { within: { days: 90 }, notWithin: { days: 30 } } })).toEqual(['window: Unrecognized key: "notWithin"']);
    expect(problems(computedTraitSchema, { function: "count", limit: 5 })).toEqual([': Unrecognized key: "limit"']);
  });
});
