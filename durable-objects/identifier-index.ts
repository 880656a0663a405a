import { DurableObject } from "cloudflare:workers";
import type { BlockMembership } from "../workers/identity/blocks";
import { MAX_GRAPH_SHARDS } from "../workers/identity/sharding/graph-shards";
import { ensureColumn } from "./sql-table";

/**
 * The identifier index of a sharded identity graph: which graph shard holds
 * each identifier key (`type:value`). One object holds the keys whose hash
 * lands on it (see `indexShardOf`), so a key always has exactly one keeper,
 * and that keeper decides its placement atomically: whoever claims a key
 * first places it, and every later claim is told that same shard.
 */

export interface IndexPlacement {
  shard: number;
  /** The key is seen across people (a kiosk, a shared tablet): decided from the index, not merged on. */
  quarantined: boolean;
}

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

/** Throws an Error naming the entry unless `entries` is a list of `[block, profileId]` pairs, at most 10,000 unless `limit` says otherwise. */
export function assertBlockEntries(entries: unknown, limit: number | null = MAX_KEYS_PER_CALL): asserts entries is [string, string][] {
  if (!Array.isArray(entries)) throw new Error("entries must be an array of [block, profileId] pairs");
  if (limit !== null && entries.length > limit) throw new Error(`entries holds ${entries.length} pairs; at most ${limit} are accepted in one call`);
  entries.forEach((entry: unknown, i) => {
    if (!Array.isArray(entry) || entry.length !== 2) throw new Error(`entries[${i}] must be a [block, profileId] pair`);
    assertKey(entry[0], `entries[${i}][0]`);
    assertProfileId(entry[1], `entries[${i}][1]`);
  });
}

/** Throws an Error naming the entry unless `updates` is a list of `[block, profileId, member]` entries, at most 10,000 unless `limit` says otherwise. */
export function assertBlockUpdates(updates: unknown, limit: number | null = MAX_KEYS_PER_CALL): asserts updates is BlockMembership[] {
  if (!Array.isArray(updates)) throw new Error("updates must be an array of [block, profileId, member] entries");
  if (limit !== null && updates.length > limit) throw new Error(`updates holds ${updates.length} entries; at most ${limit} are accepted in one call`);
  updates.forEach((update: unknown, i) => {
    if (!Array.isArray(update) || update.length !== 3 || typeof update[2] !== "boolean") throw new Error(`updates[${i}] must be a [block, profileId, member] entry, member true or false`);
    assertKey(update[0], `updates[${i}][0]`);
    assertProfileId(update[1], `updates[${i}][1]`);
  });
}

export function assertBlockLimit(max: unknown): asserts max is number {
  if (typeof max !== "number" || !Number.isInteger(max) || max < 1 || max > 1_000) throw new Error("max must be an integer from 1 to 1,000");
}

/** The keys (or entries) as JSON arrays for `json_each`, each under `PART_CHARS`: almost always one. */
function parts(keys: unknown[]): string[] {
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

/** The condition on a `[block, profileId, …]` JSON entry that its profile was never erased here. */
const NOT_ERASED = "value ->> 1 NOT IN (SELECT profile_id FROM erased_profiles)";

interface PlacementRow extends Record<string, SqlStorageValue> {
  key: string;
  shard: number;
  quarantined: number;
}

export class IdentifierIndexShard extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS placements (
      key TEXT PRIMARY KEY,
      shard INTEGER NOT NULL,
      quarantined INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID`);
    // The hand-over that last placed a key, so a repeated repoint recognises its own work.
    ensureColumn(this.sql, "placements", "move_id", "TEXT");
    this.sql.exec("CREATE TABLE IF NOT EXISTS match_blocks (block TEXT NOT NULL, profile_id TEXT NOT NULL, PRIMARY KEY (block, profile_id)) WITHOUT ROWID");
    this.sql.exec("CREATE INDEX IF NOT EXISTS match_blocks_profile ON match_blocks (profile_id)");
    // Erased profiles, by id alone (ids are never issued again): a join or an update a router sent
    // before the erasure but that lands after it must not bring the person back into a block.
    this.sql.exec("CREATE TABLE IF NOT EXISTS erased_profiles (profile_id TEXT PRIMARY KEY) WITHOUT ROWID");
  }

  /** Where each key lives; keys never claimed are left out of the answer. */
  locate(keys: string[]): Record<string, IndexPlacement> {
    assertKeys(keys);
    return this.ctx.storage.transactionSync(() => this.placements(keys));
  }

  /** Claims every unclaimed key for `shard`; answers every key's placement after the call (what was already claimed keeps its shard). */
  claim(keys: string[], shard: number): Record<string, IndexPlacement> {
    assertKeys(keys);
    assertShard(shard);
    return this.ctx.storage.transactionSync(() => {
      for (const part of parts(keys)) this.sql.exec("INSERT OR IGNORE INTO placements (key, shard) SELECT value, ? FROM json_each(?)", shard, part);
      return this.placements(keys);
    });
  }

  /**
   * Compare-and-set: keys placed on `from` (or not placed at all) are placed
   * on `to`, keeping their quarantine mark. Answers the keys left on another
   * shard, with their placement: someone moved them first. With a `moveId`,
   * the placement remembers the move, and a key already on `to` counts as
   * placed by this call only if that same move put it there: so a hand-over
   * repeated after a crash finds its own keys done, while one that finds a key
   * on `to` put there by someone else is told so and leaves it be.
   */
  repoint(keys: string[], from: number, to: number, moveId?: string): Record<string, IndexPlacement> {
    assertKeys(keys);
    assertShard(from, "from");
    assertShard(to, "to");
    if (moveId !== undefined && (typeof moveId !== "string" || moveId.length === 0 || moveId.length > 64)) throw new Error("moveId must be a non-empty string of at most 64 characters");
    const move = moveId ?? null;
    return this.ctx.storage.transactionSync(() => {
      for (const part of parts(keys)) {
        this.sql.exec("UPDATE placements SET shard = ?, move_id = ? WHERE shard = ? AND key IN (SELECT value FROM json_each(?))", to, move, from, part);
        this.sql.exec("INSERT OR IGNORE INTO placements (key, shard, move_id) SELECT value, ?, ? FROM json_each(?)", to, move, part);
      }
      if (move === null) return this.placements(keys, to);
      const out: Record<string, IndexPlacement> = {};
      for (const part of parts(keys)) {
        const rows = this.sql.exec<PlacementRow>(
          "SELECT key, shard, quarantined FROM placements WHERE key IN (SELECT value FROM json_each(?)) AND NOT (shard = ? AND move_id IS ?)",
          part,
          to,
          move,
        );
        for (const row of rows) out[row.key] = { shard: row.shard, quarantined: row.quarantined === 1 };
      }
      return out;
    });
  }

  /** Marks keys quarantined, or clears the mark (a person approved the identifier as shared). Keys not placed are placed nowhere: ignored. Answers how many changed. */
  setQuarantined(keys: string[], quarantined: boolean): number {
    assertKeys(keys);
    if (typeof quarantined !== "boolean") throw new Error("quarantined must be a boolean");
    const mark = quarantined ? 1 : 0;
    return this.ctx.storage.transactionSync(() =>
      parts(keys).reduce(
        (changed, part) => changed + this.sql.exec("UPDATE placements SET quarantined = ? WHERE quarantined != ? AND key IN (SELECT value FROM json_each(?)) RETURNING key", mark, mark, part).toArray().length,
        0,
      ),
    );
  }

  /** Forgets keys placed on `from` (an erasure); a key another shard holds stays. Answers how many were forgotten. */
  release(keys: string[], from: number): number {
    assertKeys(keys);
    assertShard(from, "from");
    return this.ctx.storage.transactionSync(() =>
      parts(keys).reduce(
        (released, part) => released + this.sql.exec("DELETE FROM placements WHERE shard = ? AND key IN (SELECT value FROM json_each(?)) RETURNING key", from, part).toArray().length,
        0,
      ),
    );
  }

  /**
   * Match blocks, for probabilistic matching across graph shards: a block (a
   * blocking key of a profile's match features, such as `ln:D500:j`) lists
   * the profiles that joined it, wherever they are. Each `[block, profileId]`
   * joins; answers every block named with its members, or null for a block of
   * more than `max` (a common name is no lead, as within one graph). Joining
   * again changes nothing.
   */
  joinBlocks(entries: [string, string][], max: number): Record<string, string[] | null> {
    assertBlockEntries(entries);
    assertBlockLimit(max);
    return this.ctx.storage.transactionSync(() => {
      const json = JSON.stringify(entries);
      this.sql.exec(`INSERT OR IGNORE INTO match_blocks (block, profile_id) SELECT value ->> 0, value ->> 1 FROM json_each(?) WHERE ${NOT_ERASED}`, json);
      const rows = this.sql.exec<{ block: string; profile_id: string }>(
        `SELECT block, profile_id FROM (SELECT block, profile_id, row_number() OVER (PARTITION BY block ORDER BY profile_id) AS n FROM match_blocks
           WHERE block IN (SELECT DISTINCT value ->> 0 FROM json_each(?))) WHERE n <= ?`,
        json,
        max + 1,
      );
      const out: Record<string, string[] | null> = {};
      for (const row of rows) (out[row.block] ??= []).push(row.profile_id);
      for (const [block, members] of Object.entries(out)) if (members && members.length > max) out[block] = null;
      return out;
    });
  }

  /**
   * Brings match blocks in line with what graph shards answered
   * (`blockUpdates`: a key a profile no longer gives, a merge handing blocks to
   * the survivor): a member entry joins its block, any other leaves it. Each
   * says what the shard holds rather than what to change, so applying the same
   * updates again changes nothing. Answers how many entries changed.
   */
  updateBlocks(updates: BlockMembership[]): number {
    assertBlockUpdates(updates);
    return this.ctx.storage.transactionSync(() => {
      let changed = 0;
      for (const part of parts(updates)) {
        changed += this.sql
          .exec(`INSERT OR IGNORE INTO match_blocks (block, profile_id) SELECT value ->> 0, value ->> 1 FROM json_each(?) WHERE value ->> 2 AND ${NOT_ERASED} RETURNING block`, part)
          .toArray().length;
        changed += this.sql
          .exec("DELETE FROM match_blocks WHERE (block, profile_id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?) WHERE NOT value ->> 2) RETURNING block", part)
          .toArray().length;
      }
      return changed;
    });
  }

  /**
   * Takes profiles out of every block here (an erasure), and keeps them out:
   * a later join or update naming one of them changes nothing. Answers how
   * many entries went.
   */
  forgetProfiles(profileIds: string[]): number {
    assertProfileIds(profileIds);
    const json = JSON.stringify(profileIds);
    return this.ctx.storage.transactionSync(() => {
      this.sql.exec("INSERT OR IGNORE INTO erased_profiles (profile_id) SELECT value FROM json_each(?)", json);
      return this.sql.exec("DELETE FROM match_blocks WHERE profile_id IN (SELECT value FROM json_each(?)) RETURNING block", json).toArray().length;
    });
  }

  /** The placement of each key that has one, leaving out those on `except`. */
  private placements(keys: string[], except = -1): Record<string, IndexPlacement> {
    const out: Record<string, IndexPlacement> = {};
    for (const part of parts(keys)) {
      const rows = this.sql.exec<PlacementRow>("SELECT key, shard, quarantined FROM placements WHERE key IN (SELECT value FROM json_each(?)) AND shard != ?", part, except);
      for (const row of rows) out[row.key] = { shard: row.shard, quarantined: row.quarantined === 1 };
    }
    return out;
  }
}
