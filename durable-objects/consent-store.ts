import { applyStatement, type ConsentStatement, categoryPreferencesSchema, consentFrom, mergeConsent, type ProfileConsent } from "../workers/profiles/consent";
import { groupBy, mapValues } from "../workers/lib/group-by";
import { ensureColumn } from "./sql-table";

type ConsentRow = { category: string; consented: number; at: number; message_id: string; conflict: number };

const CONSENT = (where: string) => `SELECT profile_id, category, consented, at, message_id, conflict FROM profile_consent WHERE ${where} ORDER BY profile_id, category`;

function consentOf(rows: ConsentRow[]): ProfileConsent {
  return Object.fromEntries(rows.map((r) => [r.category, { consented: r.consented === 1, at: r.at, messageId: r.message_id, ...(r.conflict === 1 ? { conflict: true as const } : {}) }]));
}

/**
 * Profiles' consent state in the identity object's SQLite: the current state per
 * profile and category (`profile_consent`), and each consent statement kept
 * on its event's row (`profile_events.consent`), which follows the event through
 * merges and unmerges and outlives the event payload, so that an unmerge can
 * recompute each part from its own statements. The rules are in workers/profiles/consent.ts.
 */
export class ConsentStore {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS profile_consent (profile_id TEXT NOT NULL, category TEXT NOT NULL, consented INTEGER NOT NULL, at INTEGER NOT NULL,
      message_id TEXT NOT NULL, conflict INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (profile_id, category))`);
  }

  /** Objects created before consent was kept lack the column; adding it once is enough. */
  static addEventColumn(sql: SqlStorage) {
    ensureColumn(sql, "profile_events", "consent", "TEXT");
  }

  of(profileId: string): ProfileConsent {
    return consentOf(this.sql.exec<ConsentRow>(CONSENT("profile_id = ?"), profileId).toArray());
  }

  /** `of` for many profiles in one query; a profile with no consent recorded is absent. */
  ofMany(profileIds: string[]): Map<string, ProfileConsent> {
    const rows = this.sql.exec<ConsentRow & { profile_id: string }>(CONSENT("profile_id IN (SELECT value FROM json_each(?))"), JSON.stringify(profileIds)).toArray();
    return mapValues(groupBy(rows, (row) => row.profile_id), consentOf);
  }

  /** A new statement for a profile; returns whether its consent changed. */
  apply(profileId: string, statement: ConsentStatement): boolean {
    const before = this.of(profileId);
    const after = applyStatement(before, statement);
    return this.write(profileId, before, after);
  }

  /** A merge: the survivor's consent joins each absorbed profile's, and theirs goes. */
  merged(survivor: string, absorbed: string[]) {
    const before = this.of(survivor);
    let after = before;
    for (const id of absorbed) {
      after = mergeConsent(after, this.of(id));
      this.sql.exec("DELETE FROM profile_consent WHERE profile_id = ?", id);
    }
    this.write(survivor, before, after);
  }

  /** After an unmerge or split: the profile's consent from the statements it now holds. */
  recompute(profileId: string): boolean {
    return this.write(profileId, this.of(profileId), consentFrom(this.statements(profileId)));
  }

  /** The profile's consent statements, oldest first. */
  statements(profileId: string): ConsentStatement[] {
    return this.sql
      .exec<{ message_id: string; at: number; consent: string }>("SELECT message_id, at, consent FROM profile_events WHERE profile_id = ? AND consent IS NOT NULL ORDER BY at, message_id", profileId)
      .toArray()
      .map((r) => ({ messageId: r.message_id, at: r.at, categoryPreferences: categoryPreferencesSchema.parse(JSON.parse(r.consent)) }));
  }

  forget(profileIds: string[]) {
    this.sql.exec("DELETE FROM profile_consent WHERE profile_id IN (SELECT value FROM json_each(?))", JSON.stringify(profileIds));
  }

  private write(profileId: string, before: ProfileConsent, after: ProfileConsent): boolean {
    if (sameConsent(before, after)) return false;
    this.sql.exec("DELETE FROM profile_consent WHERE profile_id = ?", profileId);
    for (const [category, entry] of Object.entries(after)) {
      this.sql.exec(
        "INSERT INTO profile_consent (profile_id, category, consented, at, message_id, conflict) VALUES (?, ?, ?, ?, ?, ?)",
        profileId,
        category,
        entry.consented ? 1 : 0,
        entry.at,
        entry.messageId,
        entry.conflict ? 1 : 0,
      );
    }
    return true;
  }
}

const sorted = (consent: ProfileConsent) => JSON.stringify(Object.entries(consent).sort(([a], [b]) => (a < b ? -1 : 1)));
const sameConsent = (a: ProfileConsent, b: ProfileConsent) => sorted(a) === sorted(b);
