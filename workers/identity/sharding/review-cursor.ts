import { z } from "zod";
import { ApiError } from "../../lib/problem";
import { MAX_GRAPH_SHARDS } from "./graph-shards";

/**
 * The review queue's `next` cursor.
 *
 * With one graph shard it is what it always was: the queue position of the
 * last review shown, in decimal. With several, each shard numbers its own
 * queue, so the cursor holds a position per shard, as base64url JSON
 * (`{"0":12,"2":7}`: shard 0 goes on after its position 12, shard 2 after 7,
 * shard 1 from its start). Positions stay with their review while reviews
 * are added, decided or erased, so paging by them neither skips nor repeats.
 */

const MESSAGE = "must be the `next` value of a previous page";

/** The same problem document a `next` the query schema refuses gets: a 400 naming `next`. */
const malformed = () => new ApiError("VALIDATION_FAILED", "request failed validation", { errors: [{ path: "next", message: MESSAGE }] });

/** The characters both forms are made of: the query schema refuses anything else before a shard is asked. */
export const CURSOR_PATTERN = /^[A-Za-z0-9_-]+$/;
export const CURSOR_MESSAGE = MESSAGE;

const position = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const shardKey = z
  .string()
  .regex(/^(0|[1-9]\d*)$/)
  .refine((key) => Number(key) < MAX_GRAPH_SHARDS);
const positionsSchema = z.record(shardKey, position);

/** One shard's cursor: a decimal position (0 when none was given), read exactly as before there were shards. */
export function decodePosition(raw: string | undefined): number {
  if (raw === undefined) return 0;
  if (!/^\d+$/.test(raw)) throw malformed();
  return Number(raw);
}

/** Several shards' cursor: each shard's position, a shard left out at 0. */
export function decodePositions(raw: string | undefined): Map<number, number> {
  if (raw === undefined) return new Map();
  let value: unknown;
  try {
    const base64 = raw.replaceAll("-", "+").replaceAll("_", "/");
    // A cursor this endpoint made is ASCII JSON; anything else fails to parse or to validate.
    value = JSON.parse(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "=")));
  } catch {
    throw malformed();
  }
  const parsed = positionsSchema.safeParse(value);
  if (!parsed.success) throw malformed();
  return new Map(Object.entries(parsed.data).map(([shard, at]) => [Number(shard), at]));
}

/** Encodes each shard's position; shards still at 0 are left out, so the cursor stays short. */
export function encodePositions(positions: Map<number, number>): string {
  const entries = [...positions].filter(([, at]) => at > 0).sort((a, b) => a[0] - b[0]);
  const text = JSON.stringify(Object.fromEntries(entries.map(([shard, at]) => [String(shard), at])));
  // JSON of digits, quotes, braces, colons and commas is ASCII, so btoa takes it as it is.
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}
