import type { AnsweredEntry, BlockMembership } from "../workers/identity/blocks";
import { parts } from "./identifier-index-input";
import { ensureColumn } from "./sql-table";

/**
 * How long an index object remembers that a profile left a block. Two words
 * on one entry race only between a graph shard's answer and the router's
 * update of the index, seconds apart; a batch retried later is answered
 * afresh, at a new version. A day is far past that.
 */
export const LEFT_KEPT_MS = 86_400_000;
/** Remembered leaves dropped per call, so one call's work stays bounded. */
const PRUNED_PER_CALL = 500;

/** The condition on a `[block, profileId, …]` JSON entry that its profile was never erased here. */
const NOT_ERASED = "value ->> 1 NOT IN (SELECT profile_id FROM erased_profiles)";

/**
 * One index object's match blocks (identifier-index.ts): for each entry, the
 * latest word graph shards gave on it, member or not, with its version. A
 * word older than the one held changes nothing, so two consumers bringing
 * words on one entry in either order leave the newer. An entry whose profile
 * left stays, not a member, for `LEFT_KEPT_MS`, so a join that was sent
 * before the leave but lands after it is refused. Erased profiles are kept
 * by id for good (ids are never issued again): nothing brings them back.
 */
export class MatchBlockTable {
  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS match_blocks (block TEXT NOT NULL, profile_id TEXT NOT NULL, PRIMARY KEY (block, profile_id)) WITHOUT ROWID");
    // Entries written before words had versions are members at version 0: any versioned word overrides them.
    ensureColumn(sql, "match_blocks", "member", "INTEGER NOT NULL DEFAULT 1");
    ensureColumn(sql, "match_blocks", "version", "INTEGER NOT NULL DEFAULT 0");
    ensureColumn(sql, "match_blocks", "changed_at", "INTEGER NOT NULL DEFAULT 0");
    sql.exec("CREATE INDEX IF NOT EXISTS match_blocks_profile ON match_blocks (profile_id)");
    sql.exec("CREATE INDEX IF NOT EXISTS match_blocks_left ON match_blocks (changed_at) WHERE member = 0");
    sql.exec("CREATE TABLE IF NOT EXISTS erased_profiles (profile_id TEXT PRIMARY KEY) WITHOUT ROWID");
  }

  /** Takes each word newer than the one held; answers how many were taken. */
  apply(words: BlockMembership[], now: number): number {
    let taken = 0;
    for (const part of parts(words)) {
      taken += this.sql
        .exec(
          `INSERT INTO match_blocks (block, profile_id, member, version, changed_at)
           SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, ? FROM json_each(?) WHERE ${NOT_ERASED}
           ON CONFLICT DO UPDATE SET member = excluded.member, version = excluded.version, changed_at = excluded.changed_at
           WHERE excluded.version > match_blocks.version
           RETURNING block`,
          now,
          part,
        )
        .toArray().length;
    }
    this.prune(now);
    return taken;
  }

  /** Joins: each `[block, profileId, version]` as a member, unless a newer word says otherwise. */
  join(entries: AnsweredEntry[], now: number) {
    this.apply(
      entries.map(([block, profileId, version]): BlockMembership => [block, profileId, true, version]),
      now,
    );
  }

  /** The members of each block named, up to `limit` each. */
  members(blocks: string[], limit: number): Map<string, string[]> {
    const out = new Map<string, string[]>();
    const rows = this.sql.exec<{ block: string; profile_id: string }>(
      `SELECT block, profile_id FROM (SELECT block, profile_id, row_number() OVER (PARTITION BY block ORDER BY profile_id) AS n FROM match_blocks
         WHERE block IN (SELECT DISTINCT value FROM json_each(?)) AND member = 1) WHERE n <= ?`,
      JSON.stringify(blocks),
      limit,
    );
    for (const row of rows) {
      let members = out.get(row.block);
      if (!members) out.set(row.block, (members = []));
      members.push(row.profile_id);
    }
    return out;
  }

  /** Takes erased profiles out of every block, for good; answers how many entries they were members of. */
  forget(profileIds: string[]): number {
    const json = JSON.stringify(profileIds);
    this.sql.exec("INSERT OR IGNORE INTO erased_profiles (profile_id) SELECT value FROM json_each(?)", json);
    return this.sql.exec<{ member: number }>("DELETE FROM match_blocks WHERE profile_id IN (SELECT value FROM json_each(?)) RETURNING member", json).toArray().filter((row) => row.member === 1).length;
  }

  private prune(now: number) {
    this.sql.exec(
      `DELETE FROM match_blocks WHERE (block, profile_id) IN
         (SELECT block, profile_id FROM match_blocks WHERE member = 0 AND changed_at < ? ORDER BY changed_at LIMIT ?)`,
      now - LEFT_KEPT_MS,
      PRUNED_PER_CALL,
    );
  }
}
