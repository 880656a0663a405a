import { DurableObject } from "cloudflare:workers";
import type { AnsweredEntry, BlockMembership } from "../workers/identity/blocks";
import { assertBlockEntries, assertBlockLimit, assertBlockUpdates, assertKeys, assertProfileIds, assertShard, parts } from "./identifier-index-input";
import { MatchBlockTable } from "./match-block-table";
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

interface PlacementRow extends Record<string, SqlStorageValue> {
  key: string;
  shard: number;
  quarantined: number;
}

export class IdentifierIndexShard extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly blocks: MatchBlockTable;

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
    this.blocks = new MatchBlockTable(this.sql);
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
   * the profiles that joined it, wherever they are. Each `[block, profileId,
   * version]` joins unless a newer word on that entry says it left; answers
   * every block named with its members, or null for a block of more than
   * `max` (a common name is no lead, as within one graph). Joining again
   * changes nothing.
   */
  joinBlocks(entries: AnsweredEntry[], max: number): Record<string, string[] | null> {
    assertBlockEntries(entries);
    assertBlockLimit(max);
    return this.ctx.storage.transactionSync(() => {
      this.blocks.join(entries, Date.now());
      const out: Record<string, string[] | null> = {};
      for (const [block, members] of this.blocks.members([...new Set(entries.map(([block]) => block))], max + 1)) out[block] = members.length > max ? null : members;
      return out;
    });
  }

  /**
   * Brings match blocks in line with what graph shards answered
   * (`blockUpdates`: a key a profile no longer gives, a merge handing blocks to
   * the survivor): a member entry joins its block, any other leaves it, each
   * only if newer than the word held. Each says what the shard holds rather
   * than what to change, so applying the same updates again, or older ones
   * after them, changes nothing. Answers how many words were taken.
   */
  updateBlocks(updates: BlockMembership[]): number {
    assertBlockUpdates(updates);
    return this.ctx.storage.transactionSync(() => this.blocks.apply(updates, Date.now()));
  }

  /**
   * Takes profiles out of every block here (an erasure), and keeps them out:
   * a later join or update naming one of them changes nothing. Answers how
   * many entries went.
   */
  forgetProfiles(profileIds: string[]): number {
    assertProfileIds(profileIds);
    return this.ctx.storage.transactionSync(() => this.blocks.forget(profileIds));
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
