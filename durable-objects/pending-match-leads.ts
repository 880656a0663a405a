/**
 * Profiles a graph shard answered as leads for matching across graph shards
 * (`matchBlocks`) whose matching the router has not confirmed
 * (`leadsMatched`). Each is written in the transaction of the resolution that
 * made it a lead, so a lead outlives a consumer that stops before matching:
 * its batch is delivered again with every event already applied, and the
 * shard answers the same profiles' blocks again. A matching that failed is
 * retried the same way, with the profile's next event.
 *
 * The table holds only leads still waiting, normally none between batches, so
 * it is read whole.
 */
export class PendingMatchLeads {
  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS match_leads (profile_id TEXT PRIMARY KEY) WITHOUT ROWID");
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
   * is no longer held here (handed over or erased).
   */
  matched(profileIds: string[], live: (profileId: string) => string | null): number {
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
    return gone.length;
  }

  /** Erased profiles: nothing that names them stays. */
  forget(profileIds: string[]) {
    this.sql.exec("DELETE FROM match_leads WHERE profile_id IN (SELECT value FROM json_each(?))", JSON.stringify(profileIds));
  }
}
