import { type ComputedTraitDefinition, computedTraitSchema, type SegmentDefinition, segmentDefinitionSchema } from "../../workers/segments/definition";
import { DAY, HOUR, MINUTE } from "../../workers/segments/time";
import type { PersonEvent } from "../../workers/segments/values";

/**
 * Random histories and definitions for the property test: small vocabularies,
 * so that filters match, joins meet and windows overlap often, and timestamps
 * that land on hour and minute edges as often as between them.
 */

export type Random = () => number;

/** mulberry32: small, seeded, good enough to explore. */
export function seeded(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const int = (random: Random, low: number, high: number) => low + Math.floor(random() * (high - low + 1));
const maybe = (random: Random, p = 0.5) => random() < p;

const NAMES = ["Product Viewed", "Product Added", "Order Completed", "Email Opened"] as const;
const CATEGORIES = ["shoes", "socks", "hats"] as const;

/** Dense histories crowd a few names into two days, so sequences pair up and timestamps tie. */
function randomTime(random: Random, now: number, times: number[], dense: boolean): number {
  if (times.length > 0 && maybe(random, dense ? 0.3 : 0.1)) return pick(random, times); // a tie
  const offset = maybe(random, 0.08) ? -int(random, 0, 3 * HOUR) : int(random, 0, dense ? 2 * DAY : 30 * DAY);
  const raw = now - offset;
  const roll = random();
  return roll < 0.4 ? Math.round(raw / HOUR) * HOUR : roll < 0.7 ? Math.round(raw / MINUTE) * MINUTE : raw;
}

export function randomEvents(random: Random, now: number, count: number, dense = false): PersonEvent[] {
  const times: number[] = [];
  const names = dense ? NAMES.slice(0, 3) : NAMES;
  return Array.from({ length: count }, () => {
    const timestamp = randomTime(random, now, times, dense);
    times.push(timestamp);
    const properties: Record<string, unknown> = {};
    if (maybe(random, 0.8)) properties.category = pick(random, [...CATEGORIES, null]);
    if (maybe(random, 0.7)) properties.price = pick(random, [0.1, 0.2, 1, 2.5, "3", 10, -4, "n/a"]);
    if (maybe(random, 0.5)) properties.products = Array.from({ length: int(random, 0, 3) }, () => ({ id: pick(random, ["X", "Y", "Z"]), category: pick(random, CATEGORIES), price: int(random, 1, 9) }));
    if (maybe(random, 0.4)) properties.related = [pick(random, CATEGORIES), pick(random, CATEGORIES)];
    if (maybe(random, 0.4)) properties.cycle_days = pick(random, [1, 2, "3", 0, -1]);
    const name = pick(random, names);
    const asPage = maybe(random, 0.15);
    return { messageId: `r-${Math.floor(random() * 1e9).toString(36)}-${times.length}`, type: asPage ? "page" : "track", ...(asPage ? { name } : { event: name }), timestamp, properties };
  });
}

function duration(random: Random, maxDays: number) {
  const roll = random();
  if (roll < 0.45) return { days: int(random, 1, maxDays) };
  if (roll < 0.7) return { hours: int(random, 1, 24 * Math.min(maxDays, 3)) };
  if (roll < 0.85) return { minutes: int(random, 1, 600) };
  return { days: int(random, 1, maxDays), hours: int(random, 1, 23) };
}

const ms = (d: { days?: number; hours?: number; minutes?: number }) => (d.days ?? 0) * DAY + (d.hours ?? 0) * HOUR + (d.minutes ?? 0) * MINUTE;

function filter(random: Random) {
  const out: Record<string, unknown> = {};
  if (maybe(random, 0.85)) out.event = maybe(random, 0.8) ? pick(random, NAMES) : [pick(random, NAMES), pick(random, NAMES)];
  if (maybe(random, 0.15)) out.type = [pick(random, ["track", "page"])];
  const where = [
    () => ({ property: "category", op: pick(random, ["equals", "not_equals"]), value: pick(random, CATEGORIES) }),
    () => ({ property: "category", op: pick(random, ["in", "not_in"]), values: [pick(random, CATEGORIES), pick(random, CATEGORIES)] }),
    () => ({ property: "price", op: pick(random, ["gt", "lte"]), value: pick(random, [0, 1, 2.5]) }),
    () => ({ property: "products[].id", op: "equals", value: pick(random, ["X", "Y"]) }),
    () => ({ property: "related", op: "contains", value: pick(random, CATEGORIES) }),
    () => ({ property: "price", op: pick(random, ["exists", "not_exists"]) }),
  ];
  if (maybe(random, 0.5)) out.where = [pick(random, where)()];
  return out;
}

function window(random: Random, between: boolean) {
  if (maybe(random, 0.25)) return {};
  const within = duration(random, 20);
  if (between && maybe(random, 0.35)) {
    const notWithin = duration(random, 20);
    if (ms(notWithin) < ms(within)) return { window: { within, notWithin } };
  }
  return { window: { within } };
}

export function randomComputedTrait(random: Random): ComputedTraitDefinition {
  const fn = pick(random, ["count", "sum", "average", "min", "max", "most_frequent", "first", "last", "unique_list", "unique_count"] as const);
  const property = fn === "count" ? {} : { property: pick(random, ["price", "category", "products[].price", "products[].category", "related[]"]) };
  const limit = fn === "unique_list" && maybe(random) ? { limit: int(random, 1, 3) } : {};
  return computedTraitSchema.parse({ function: fn, ...property, ...limit, ...filter(random), ...window(random, false) });
}

function step(random: Random) {
  const join = maybe(random, 0.3) ? { join: { first: pick(random, ["related[]", "category"]), step: "category" } } : {};
  return { ...filter(random), within: duration(random, 3), ...join };
}

const COUNT_OPS = ["equals", "not_equals", "gt", "gte", "lt", "lte"] as const;

function leaf(random: Random, roll = random()): unknown {
  if (roll < 0.35) return { kind: "event", ...filter(random), ...window(random, true), ...(maybe(random, 0.7) ? { count: { op: pick(random, COUNT_OPS), value: int(random, 0, 4) } } : {}) };
  if (roll < 0.5) {
    const interval = maybe(random) ? duration(random, 20) : { property: "cycle_days", unit: "days", ...(maybe(random) ? { otherwise: duration(random, 5) } : {}), ...(maybe(random) ? { times: 0.8 } : {}) };
    return { kind: "since_last", ...filter(random), [maybe(random) ? "atLeast" : "lessThan"]: interval };
  }
  if (roll < 0.7) {
    const followedBy = Array.from({ length: int(random, 0, 2) }, () => step(random));
    const notFollowedBy = Array.from({ length: followedBy.length === 0 ? int(random, 1, 2) : int(random, 0, 1) }, () => step(random));
    return { kind: "sequence", first: filter(random), ...window(random, false), followedBy, notFollowedBy };
  }
  if (roll < 0.88) {
    const right = maybe(random) ? { aggregate: randomComputedTrait(random) } : { value: maybe(random) ? int(random, 0, 12) : [pick(random, CATEGORIES)] };
    const op = pick(random, ["equals", "not_equals", "gt", "gte", "lt", "lte", "subset_of", "superset_of", "intersects", "disjoint"] as const);
    return { kind: "compare", left: { aggregate: randomComputedTrait(random) }, op, right };
  }
  return { kind: "trait", trait: "signed_up_at", op: pick(random, ["within_last", "older_than"]), duration: duration(random, 20) };
}

function condition(random: Random, depth: number): unknown {
  if (depth === 0 || maybe(random, 0.4)) return leaf(random);
  const roll = random();
  if (roll < 0.2) return { kind: "not", condition: condition(random, depth - 1) };
  return { kind: roll < 0.6 ? "and" : "or", conditions: Array.from({ length: int(random, 1, 3) }, () => condition(random, depth - 1)) };
}

export const randomSegment = (random: Random): SegmentDefinition => segmentDefinitionSchema.parse(condition(random, 3));

/** A lone sequence or since_last condition, the parts with the most bookkeeping. */
export const randomTimedLeaf = (random: Random): SegmentDefinition => segmentDefinitionSchema.parse(leaf(random, maybe(random) ? 0.4 : 0.6));
