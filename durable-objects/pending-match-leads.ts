import type { AnsweredEntry, BlockEntry } from "../workers/identity/blocks";
import { groupBy, mapValues } from "../workers/lib/group-by";
import { ObjectMeta } from "./object-meta";
import { ensureColumn } from "./sql-table";

/** The `meta` key of the shard's block clock: the version of its words on block entries. */
const BLOCK_CLOCK = "blockClock";

/** A lead as answered: `[profileId, version]`. */
export type LeadVersion = [profileId: string, version: number];

/**
 * Profiles a graph shard answered as leads for matching across graph shards
 * (`matchBlocks`) whose matching the router has not confirmed
 * (`leadsMatched`). Each is written in the transaction of the resolution that
 * made it a lead, so a lead outlives a consumer that stops before matching:
 * its batch is delivered again with every event already applied, and the
 * shard answers the same profiles' blocks again. A matching that failed is
 * retried the same way, with the profile's next event.
 *
 * Block entries that changed outside matching (a key a profile no longer
 * gives, a merge handing blocks to the survivor) wait the same way, until the
 * router confirms the identifier index follows them (`blockUpdates`).
 *
 * Every word on a block entry carries a version from the shard's block
 * clock (`stamp`), since two consumers can bring two words on one entry to
 * the index in either order: the index keeps the higher. A waiting lead or
 * entry keeps the version of its latest answer or change, and a confirmation
 * clears it only if it names that version or a later one, so a lead made
 * again or an entry changed after the answer that was confirmed still waits.
 *
 * The tables hold only what is still waiting, normally nothing between
 * batches, so they are read whole.
 */
export class PendingMatchLeads {
  private readonly meta: ObjectMeta;

  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS match_leads (profile_id TEXT PRIMARY KEY) WITHOUT ROWID");
    sql.exec("CREATE TABLE IF NOT EXISTS match_block_changes (block TEXT NOT NULL, profile_id TEXT NOT NULL, PRIMARY KEY (block, profile_id)) WITHOUT ROWID");
    ensureColumn(sql, "match_leads", "version", "INTEGER NOT NULL DEFAULT 0");
    ensureColumn(sql, "match_block_changes", "version", "INTEGER NOT NULL DEFAULT 0");
    this.meta = new ObjectMeta(sql);
  }

  /** A new version of the block clock, for the words a call says now. */
  stamp(): number {
    return this.meta.increment(BLOCK_CLOCK);
  }

  /** The clock's current version: what a hand-over carries, so the shard taking a person speaks of them above it. */
  clock(): number {
    return this.meta.get(BLOCK_CLOCK) ?? 0;
  }

  /** Moves the clock forward to at least `version` (a hand-over's). */
  raiseClock(version: number) {
    this.meta.raise(BLOCK_CLOCK, version);
  }

  /** The profiles waiting, as their live ids here (`live` follows merges; null for a profile no longer held here). */
  waiting(live: (profileId: string) => string | null): Set<string> {
    const out = new Set<string>();
    for (const { profile_id } of this.sql.exec<{ profile_id: string }>("SELECT profile_id FROM match_leads")) {
      const id = live(profile_id);
      if (id !== null) out.add(id);
    }
    return out;
  }

  /** A lead answered at `version`. */
  add(profileId: string, version: number) {
    this.addLeads([[profileId, version]]);
  }

  private addLeads(leads: LeadVersion[]) {
    if (leads.length === 0) return;
    this.sql.exec(
      "INSERT INTO match_leads (profile_id, version) SELECT value ->> 0, value ->> 1 FROM json_each(?) WHERE true ON CONFLICT DO UPDATE SET version = max(version, excluded.version)",
      JSON.stringify(leads),
    );
  }

  /**
   * The router matched these profiles (live ids), each as answered at a
   * version: their leads go, with any stored under an id since merged into
   * one of them, unless made a lead again after that answer; and any whose
   * profile is no longer held here (handed over or erased). The index follows
   * these block entries now: they go, with any whose profile is no longer
   * held here.
   */
  matched(confirmed: Map<string, number>, live: (profileId: string) => string | null, settled: AnsweredEntry[] = []): number {
    const gone = this.sql
      .exec<{ profile_id: string; version: number }>("SELECT profile_id, version FROM match_leads")
      .toArray()
      .filter((row) => {
        const now = live(row.profile_id);
        return now === null || row.version <= (confirmed.get(now) ?? -1);
      })
      .map((row) => row.profile_id);
    if (gone.length) this.sql.exec("DELETE FROM match_leads WHERE profile_id IN (SELECT value FROM json_each(?))", JSON.stringify(gone));
    if (settled.length) {
      this.sql.exec(
        `DELETE FROM match_block_changes WHERE EXISTS (SELECT 1 FROM json_each(?)
           WHERE value ->> 0 = match_block_changes.block AND value ->> 1 = match_block_changes.profile_id AND match_block_changes.version <= value ->> 2)`,
        JSON.stringify(settled),
      );
    }
    const orphans = this.blockChanges().filter(([, id]) => live(id) === null);
    if (orphans.length) this.sql.exec("DELETE FROM match_block_changes WHERE (block, profile_id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))", JSON.stringify(orphans));
    return gone.length;
  }

  /** Block entries that changed outside matching at `version`, for the index to follow (`EventAssignment.blockUpdates`). */
  addBlockChanges(entries: BlockEntry[], version: number) {
    this.addVersioned(entries.map(([block, profileId]): AnsweredEntry => [block, profileId, version]));
  }

  private addVersioned(entries: AnsweredEntry[]) {
    if (entries.length === 0) return;
    this.sql.exec(
      "INSERT INTO match_block_changes (block, profile_id, version) SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE true ON CONFLICT DO UPDATE SET version = max(version, excluded.version)",
      JSON.stringify(entries),
    );
  }

  /** The block entries waiting, by the live id here of their profile (one merged away counts as its survivor); those of a profile no longer held here are left out. */
  waitingBlocks(live: (profileId: string) => string | null): Map<string, BlockEntry[]> {
    const held = this.blockChanges().flatMap((entry) => {
      const id = live(entry[1]);
      return id === null ? [] : [{ id, entry }];
    });
    return mapValues(groupBy(held, ({ id }) => id), (group) => group.map(({ entry }) => entry));
  }

  /**
   * What waits for these profiles (ids as stored, live or merged away), for
   * a hand-over to take along: the shard that takes the person answers them
   * with the person's next event, as this one would have.
   */
  waitingFor(profileIds: string[]): { leads: LeadVersion[]; blockChanges: AnsweredEntry[] } {
    const ids = JSON.stringify(profileIds);
    return {
      leads: this.sql
        .exec<{ profile_id: string; version: number }>("SELECT profile_id, version FROM match_leads WHERE profile_id IN (SELECT value FROM json_each(?)) ORDER BY profile_id", ids)
        .toArray()
        .map((row): LeadVersion => [row.profile_id, row.version]),
      blockChanges: this.sql
        .exec<{ block: string; profile_id: string; version: number }>(
          "SELECT block, profile_id, version FROM match_block_changes WHERE profile_id IN (SELECT value FROM json_each(?)) ORDER BY profile_id, block",
          ids,
        )
        .toArray()
        .map((row): AnsweredEntry => [row.block, row.profile_id, row.version]),
    };
  }

  /** Leads and block entries a hand-over brought along (`waitingFor` at the shard it came from), and its clock. */
  takeOver(leads: LeadVersion[], blockChanges: AnsweredEntry[], clock: number) {
    this.raiseClock(clock);
    this.addLeads(leads);
    this.addVersioned(blockChanges);
  }

  /** Erased profiles, or profiles handed over: nothing that names them stays. */
  forget(profileIds: string[]) {
    const ids = JSON.stringify(profileIds);
    this.sql.exec("DELETE FROM match_leads WHERE profile_id IN (SELECT value FROM json_each(?))", ids);
    this.sql.exec("DELETE FROM match_block_changes WHERE profile_id IN (SELECT value FROM json_each(?))", ids);
  }

  private blockChanges(): BlockEntry[] {
    return this.sql
      .exec<{ block: string; profile_id: string }>("SELECT block, profile_id FROM match_block_changes")
      .toArray()
      .map((row): BlockEntry => [row.block, row.profile_id]);
  }
}
