import type { AnsweredEntry, BlockMembership } from "../workers/identity/blocks";
import { MAX_GRAPH_SHARDS } from "../workers/identity/sharding/graph-shards";

/**
 * What the identifier index's objects accept, checked before anything is
 * written (and by the Worker-side client before any object is called): each
 * failure is an Error naming the field and the limit.
 */

/** Longest identifier key accepted; a key longer than this is no identifier of a person. */
export const MAX_KEY_LENGTH = 1_024;
/** Keys per call to one object: bounds the work of one transaction and the size of one RPC. */
export const MAX_KEYS_PER_CALL = 10_000;

/**
 * Characters of JSON per statement parameter. Durable Object SQLite refuses a
 * string over 2 MB; 500,000 UTF-16 code units are at most 1.5 MB of UTF-8, so
 * 10,000 keys of the longest length still fit, spread over several statements.
 */
const PART_CHARS = 500_000;

const typeOf = (key: string) => {
  const type = key.slice(0, key.indexOf(":"));
  return type.length > 64 ? `${type.slice(0, 64)}…` : type;
};

/** Throws an Error naming the field and the limit unless `keys` is a list of at most 10,000 identifier keys. */
export function assertKeys(keys: unknown, field = "keys", limit: number | null = MAX_KEYS_PER_CALL): asserts keys is string[] {
  if (!Array.isArray(keys)) throw new Error(`${field} must be an array of identifier keys`);
  if (limit !== null && keys.length > limit) throw new Error(`${field} holds ${keys.length} keys; at most ${limit} are accepted in one call`);
  keys.forEach((key: unknown, i) => assertKey(key, `${field}[${i}]`));
}

export function assertKey(key: unknown, field = "key"): asserts key is string {
  if (typeof key !== "string") throw new Error(`${field} must be a string`);
  if (key.indexOf(":") < 1) throw new Error(`${field} must be an identifier key of the form type:value`);
  if (key.length > MAX_KEY_LENGTH) throw new Error(`${field} (type ${typeOf(key)}) is ${key.length} characters long; an identifier key is at most ${MAX_KEY_LENGTH}`);
}

/** Throws an Error naming the field unless `shard` is a graph shard number (an integer below `MAX_GRAPH_SHARDS`). */
export function assertShard(shard: unknown, field = "shard"): asserts shard is number {
  if (typeof shard !== "number" || !Number.isInteger(shard) || shard < 0 || shard >= MAX_GRAPH_SHARDS) {
    throw new Error(`${field} must be an integer from 0 to ${MAX_GRAPH_SHARDS - 1} (fewer than ${MAX_GRAPH_SHARDS} graph shards), not ${String(shard)}`);
  }
}

/** Longest profile id accepted in a match block. */
const MAX_PROFILE_ID_LENGTH = 128;

function assertProfileId(id: unknown, field: string): asserts id is string {
  if (typeof id !== "string" || id.length === 0 || id.length > MAX_PROFILE_ID_LENGTH) throw new Error(`${field} must be a profile id of 1 to ${MAX_PROFILE_ID_LENGTH} characters`);
}

export function assertProfileIds(ids: unknown, field = "profileIds"): asserts ids is string[] {
  if (!Array.isArray(ids)) throw new Error(`${field} must be an array of profile ids`);
  if (ids.length > MAX_KEYS_PER_CALL) throw new Error(`${field} holds ${ids.length} profile ids; at most ${MAX_KEYS_PER_CALL} are accepted in one call`);
  ids.forEach((id: unknown, i) => assertProfileId(id, `${field}[${i}]`));
}

const isVersion = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** Throws an Error naming the entry unless `entries` is a list of `[block, profileId, version]` entries, at most 10,000 unless `limit` says otherwise. */
export function assertBlockEntries(entries: unknown, limit: number | null = MAX_KEYS_PER_CALL): asserts entries is AnsweredEntry[] {
  if (!Array.isArray(entries)) throw new Error("entries must be an array of [block, profileId, version] entries");
  if (limit !== null && entries.length > limit) throw new Error(`entries holds ${entries.length} entries; at most ${limit} are accepted in one call`);
  entries.forEach((entry: unknown, i) => {
    if (!Array.isArray(entry) || entry.length !== 3 || !isVersion(entry[2])) throw new Error(`entries[${i}] must be a [block, profileId, version] entry, version an integer from 0`);
    assertKey(entry[0], `entries[${i}][0]`);
    assertProfileId(entry[1], `entries[${i}][1]`);
  });
}

/** Throws an Error naming the entry unless `updates` is a list of `[block, profileId, member, version]` entries, at most 10,000 unless `limit` says otherwise. */
export function assertBlockUpdates(updates: unknown, limit: number | null = MAX_KEYS_PER_CALL): asserts updates is BlockMembership[] {
  if (!Array.isArray(updates)) throw new Error("updates must be an array of [block, profileId, member, version] entries");
  if (limit !== null && updates.length > limit) throw new Error(`updates holds ${updates.length} entries; at most ${limit} are accepted in one call`);
  updates.forEach((update: unknown, i) => {
    if (!Array.isArray(update) || update.length !== 4 || typeof update[2] !== "boolean" || !isVersion(update[3])) {
      throw new Error(`updates[${i}] must be a [block, profileId, member, version] entry, member true or false, version an integer from 0`);
    }
    assertKey(update[0], `updates[${i}][0]`);
    assertProfileId(update[1], `updates[${i}][1]`);
  });
}

export function assertBlockLimit(max: unknown): asserts max is number {
  if (typeof max !== "number" || !Number.isInteger(max) || max < 1 || max > 1_000) throw new Error("max must be an integer from 1 to 1,000");
}

/** The keys (or entries) as JSON arrays for `json_each`, each under `PART_CHARS`: almost always one. */
export function parts(keys: unknown[]): string[] {
  const out: string[] = [];
  let part: unknown[] = [];
  let chars = 2;
  for (const key of keys) {
    const size = JSON.stringify(key).length + 1;
    if (part.length > 0 && chars + size > PART_CHARS) {
      out.push(JSON.stringify(part));
      part = [];
      chars = 2;
    }
    part.push(key);
    chars += size;
  }
  if (part.length > 0) out.push(JSON.stringify(part));
  return out;
}
