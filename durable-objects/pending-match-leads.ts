import type { BlockEntry } from "../workers/identity/blocks";
import { groupBy, mapValues } from "../workers/lib/group-by";

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
 * The tables hold only what is still waiting, normally nothing between
 * batches, so they are read whole.
 */
export class PendingMatchLeads {
  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS match_leads (profile_id TEXT PRIMARY KEY) WITHOUT ROWID");
    sql.exec("CREATE TABLE IF NOT EXISTS match_block_changes (block TEXT NOT NULL, profile_id TEXT NOT NULL, PRIMARY KEY (block, profile_id)) WITHOUT ROWID");
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

  add(profileId: string) {
    this.sql.exec("INSERT INTO match_leads (profile_id) VALUES (?) ON CONFLICT DO NOTHING", profileId);
  }

  /**
   * The router matched these profiles (live ids): their leads go, with any
   * stored under an id since merged into one of them, and any whose profile
   * is no longer held here (handed over or erased). The index follows these
   * block entries now: they go, with any whose profile is no longer held here.
   */
  matched(profileIds: string[], live: (profileId: string) => string | null, settled: BlockEntry[] = []): number {
    const done = new Set(profileIds);
    const gone = this.sql
      .exec<{ profile_id: string }>("SELECT profile_id FROM match_leads")
      .toArray()
      .map((row) => row.profile_id)
      .filter((id) => {
        const now = live(id);
        return now === null || done.has(now);
      });
    if (gone.length) this.sql.exec("DELETE FROM match_leads WHERE profile_id IN (SELECT value FROM json_each(?))", JSON.stringify(gone));
    const ended = [...settled, ...this.blockChanges().filter(([, id]) => live(id) === null)];
    if (ended.length) this.sql.exec("DELETE FROM match_block_changes WHERE (block, profile_id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))", JSON.stringify(ended));
    return gone.length;
  }

  /** Block entries that changed outside matching, for the index to follow (`EventAssignment.blockUpdates`). */
  addBlockChanges(entries: BlockEntry[]) {
    if (entries.length === 0) return;
    this.sql.exec("INSERT INTO match_block_changes (block, profile_id) SELECT value ->> 0, value ->> 1 FROM json_each(?) WHERE true ON CONFLICT DO NOTHING", JSON.stringify(entries));
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
  waitingFor(profileIds: string[]): { leads: string[]; blockChanges: BlockEntry[] } {
    const ids = JSON.stringify(profileIds);
    return {
      leads: this.sql
        .exec<{ profile_id: string }>("SELECT profile_id FROM match_leads WHERE profile_id IN (SELECT value FROM json_each(?)) ORDER BY profile_id", ids)
        .toArray()
        .map((row) => row.profile_id),
      blockChanges: this.sql
        .exec<{ block: string; profile_id: string }>("SELECT block, profile_id FROM match_block_changes WHERE profile_id IN (SELECT value FROM json_each(?)) ORDER BY profile_id, block", ids)
        .toArray()
        .map((row): BlockEntry => [row.block, row.profile_id]),
    };
  }

  /** Leads and block entries a hand-over brought along (`waitingFor` at the shard it came from). */
  takeOver(leads: string[], blockChanges: BlockEntry[]) {
    if (leads.length) this.sql.exec("INSERT INTO match_leads (profile_id) SELECT value FROM json_each(?) WHERE true ON CONFLICT DO NOTHING", JSON.stringify(leads));
    this.addBlockChanges(blockChanges);
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
