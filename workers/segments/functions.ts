import type { Interval } from "./definition";
import type { ValueSpec } from "./specs";
import { canonical, DAY, durationMs, HOUR, MINUTE } from "./time";
import { numericValue, type PersonEvent, resolvePath } from "./values";

/**
 * The rules of the aggregate functions, written once so the history scan and
 * the incremental state cannot differ on them:
 *
 * - sum and average add exactly, in millionths (each number rounded to 6
 *   decimals, summed as a BigInt), so the result cannot depend on the order
 *   events arrive in, which floating-point addition would;
 * - most_frequent counts each distinct value once per event and breaks ties
 *   by the smaller canonical JSON, so it never depends on arrival order;
 * - first / last order events by timestamp, then messageId;
 * - unique_list lists values by their latest occurrence, newest first, ties by
 *   canonical JSON, up to `limit`;
 * - empty: count, sum and unique_count are 0, unique_list is [], the rest null.
 */

const MICRO = 1_000_000;

/** What an event contributes to a value function: the values at the property, null and missing left out. */
export function foundValues(spec: ValueSpec, event: PersonEvent): unknown[] {
  return resolvePath(event.properties, spec.property).filter((value) => value !== null);
}

/** Numbers an event adds to sum / average / min / max; ones too large to count in millionths are left out. */
export const numbersOf = (found: unknown[]): number[] =>
  found.map(numericValue).filter((number): number is number => number !== null && Number.isFinite(number * MICRO));

export const micros = (number: number): bigint => BigInt(Math.round(number * MICRO));

export const sumValue = (total: bigint): number => Number(total) / MICRO;

export const averageValue = (total: bigint, count: number): number | null => (count === 0 ? null : Number(total) / MICRO / count);

/** The value first / last report for an event: the list for a `[]` path, else the one value. */
export const eventValue = (spec: ValueSpec, found: unknown[]): unknown => (spec.property.includes("[]") ? found : found[0]);

export const distinctKeys = (found: unknown[]): string[] => [...new Set(found.map(canonical))];

export function mostFrequentOf(counts: Record<string, number>): unknown {
  let best: string | null = null;
  for (const [key, count] of Object.entries(counts)) {
    if (count <= 0) continue;
    const bestCount = best === null ? 0 : counts[best]!;
    if (count > bestCount || (count === bestCount && key < best!)) best = key;
  }
  return best === null ? null : JSON.parse(best);
}

/** Values by latest occurrence, newest first, ties by key, cut to `limit`. */
export function uniqueListOf(latest: [key: string, t: number][], limit: number): unknown[] {
  return [...latest]
    .sort(([aKey, aT], [bKey, bT]) => bT - aT || (aKey < bKey ? -1 : aKey > bKey ? 1 : 0))
    .slice(0, limit)
    .map(([key]) => JSON.parse(key));
}

export function emptyValue(fn: ValueSpec["function"] | "count"): unknown {
  if (fn === "count" || fn === "sum" || fn === "unique_count") return 0;
  return fn === "unique_list" ? [] : null;
}

const UNIT_MS = { minutes: MINUTE, hours: HOUR, days: DAY } as const;

/**
 * A `since_last` interval for one event, in whole ms: the smallest positive
 * number at `property` in `unit`s, else `otherwise`, else none; times `times`.
 */
export function intervalMs(interval: Interval, event: PersonEvent): number | null {
  const times = interval.times ?? 1;
  if (interval.property === undefined) return Math.round(durationMs(interval) * times);
  const numbers = resolvePath(event.properties, interval.property)
    .map(numericValue)
    .filter((number): number is number => number !== null && number > 0);
  if (numbers.length > 0) return Math.round(Math.min(...numbers) * UNIT_MS[interval.unit!] * times);
  return interval.otherwise ? Math.round(durationMs(interval.otherwise) * times) : null;
}
