import { type EventFilter, ISO_DATE, type Predicate } from "./definition";
import { canonical, durationMs } from "./time";

/**
 * How the language reads data: paths, numbers, dates, operators and event
 * filters. Pure and shared by both evaluators, so history and aggregates can
 * only disagree about time and bookkeeping, which the tests compare.
 */

/** An event as evaluation sees it; `timestamp` in epoch ms. Each messageId is applied once. */
export interface PersonEvent {
  messageId: string;
  type: string;
  event?: string | undefined;
  name?: string | undefined;
  timestamp: number;
  properties: Record<string, unknown>;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Every value a path reaches, `undefined` left out. A name without `[]` does
 * not look inside arrays: `products.category` finds nothing in a list of products.
 */
export function resolvePath(root: unknown, path: string): unknown[] {
  let current: unknown[] = [root];
  for (const segment of path.split(".")) {
    const spread = segment.endsWith("[]");
    const key = spread ? segment.slice(0, -2) : segment;
    const next: unknown[] = [];
    for (const value of current) {
      if (!isRecord(value) || value[key] === undefined) continue;
      const inner = value[key];
      if (!spread) next.push(inner);
      else if (Array.isArray(inner)) next.push(...inner.filter((element) => element !== undefined));
    }
    current = next;
  }
  return current;
}

/**
 * The value a path names, for comparisons and results: with `[]`, the list of
 * what it reaches (empty when nothing); without, the value or null.
 */
export function valueAtPath(root: unknown, path: string): unknown {
  const found = resolvePath(root, path);
  return path.includes("[]") ? found : (found[0] ?? null);
}

const NUMERIC = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

/** Numbers, and strings written as numbers (sources often send "29.99"); anything else is not a number. */
export function numericValue(value: unknown): number | null {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "string" && NUMERIC.test(value)) return Number(value);
  return null;
}

/** Epoch ms, or ISO 8601 text from `YYYY-MM-DD` on; so "123" is a number, never the year 123. */
export function dateValue(value: unknown): number | null {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "string" && ISO_DATE.test(value)) {
    const at = Date.parse(value);
    return Number.isFinite(at) ? at : null;
  }
  return null;
}

const present = (value: unknown) => value !== undefined && value !== null;

/** Whether one found value passes an operator; negated operators are handled by the caller. */
function passes(predicate: Predicate, value: unknown, now: number): boolean {
  switch (predicate.op) {
    case "equals":
    case "not_equals":
      return value === predicate.value;
    case "gt":
    case "gte":
    case "lt":
    case "lte": {
      const number = numericValue(value);
      return number !== null && compareNumbers(predicate.op, number, predicate.value);
    }
    case "contains":
      if (typeof value === "string") return typeof predicate.value === "string" && value.includes(predicate.value);
      return Array.isArray(value) && value.some((element) => element === predicate.value);
    case "starts_with":
      return typeof value === "string" && value.startsWith(predicate.value);
    case "exists":
    case "not_exists":
      return present(value);
    case "in":
    case "not_in":
      return predicate.values.some((candidate) => candidate === value);
    case "before":
    case "after": {
      const date = dateValue(value);
      const bound = dateValue(predicate.value)!;
      return date !== null && (predicate.op === "before" ? date < bound : date > bound);
    }
    case "within_last":
    case "older_than": {
      const date = dateValue(value);
      if (date === null) return false;
      const age = now - date;
      return predicate.op === "within_last" ? age < durationMs(predicate.duration) : age >= durationMs(predicate.duration);
    }
  }
}

export function compareNumbers(op: "gt" | "gte" | "lt" | "lte" | "equals" | "not_equals", a: number, b: number): boolean {
  switch (op) {
    case "gt":
      return a > b;
    case "gte":
      return a >= b;
    case "lt":
      return a < b;
    case "lte":
      return a <= b;
    case "equals":
      return a === b;
    case "not_equals":
      return a !== b;
  }
}

const NEGATED = new Set(["not_equals", "not_exists", "not_in"]);

/** A predicate over every value a path found: any passing is enough; a negated operator holds when none passes. */
export function matchesPredicate(predicate: Predicate, found: unknown[], now: number): boolean {
  const any = found.some((value) => passes(predicate, value, now));
  return NEGATED.has(predicate.op) ? !any : any;
}

/** Instants after which a time-relative predicate may answer differently: each date plus its duration. */
export function predicateChangeInstants(predicate: Predicate, found: unknown[]): number[] {
  if (predicate.op !== "within_last" && predicate.op !== "older_than") return [];
  return found.map(dateValue).flatMap((date) => (date === null ? [] : [date + durationMs(predicate.duration)]));
}

export const eventNameOf = (event: Pick<PersonEvent, "event" | "name">): string | null => event.event ?? event.name ?? null;

export function matchesEvent(filter: EventFilter, event: PersonEvent): boolean {
  if (filter.type && !filter.type.includes(event.type as never)) return false;
  if (filter.event !== undefined) {
    const name = eventNameOf(event);
    if (name === null || !(typeof filter.event === "string" ? filter.event === name : filter.event.includes(name))) return false;
  }
  // Property filters cannot use relative dates (the schema refuses them), so `now` does not matter here.
  return (filter.where ?? []).every((where) => matchesPredicate(where, resolvePath(event.properties, where.property), 0));
}

/** Distinct canonical keys of the values found at a path, for sets, joins and most-frequent counts. */
export const keysAt = (root: unknown, path: string): string[] => [...new Set(resolvePath(root, path).filter(present).map(canonical))];

/** Set operations on operands: a list is its elements, a missing value is empty, anything else is one element. */
export function asSet(value: unknown): Set<string> {
  if (Array.isArray(value)) return new Set(value.filter(present).map(canonical));
  return present(value) ? new Set([canonical(value)]) : new Set();
}

/** Event order wherever "first" and "last" matter: timestamp, then messageId, as in profiles/traits.ts. */
export const before = (a: { t: number; id: string }, b: { t: number; id: string }): boolean => a.t < b.t || (a.t === b.t && a.id < b.id);
