import { groupBy, mapValues } from "../workers/lib/group-by";
import { type TraitWrite, toWrites } from "../workers/profiles/traits";

export type AccountLink = { groupId: string; at: number; sourceId: string | null };

/** Last write wins per trait, in SQL: the later event timestamp, ties to the larger messageId (workers/profiles/traits.ts). */
export const LWW_UPSERT = `ON CONFLICT DO UPDATE SET value = excluded.value, at = excluded.at, message_id = excluded.message_id, source_id = excluded.source_id
  WHERE excluded.at > at OR (excluded.at = at AND excluded.message_id > message_id)`;

/** The incoming call is the account's latest: later, ties to the larger messageId, as traits are decided and as D1 merges copies (workers/profiles/write-through.ts). */
const LATER = "(excluded.updated_at, coalesce(excluded.last_message_id, '')) >= (updated_at, coalesce(last_message_id, ''))";

/** An account's row meeting another copy of it (a later call, or a person handed over with theirs): the earliest creation, the latest call. */
export const ACCOUNT_UPSERT = `ON CONFLICT DO UPDATE SET created_at = min(created_at, excluded.created_at), updated_at = max(updated_at, excluded.updated_at),
  last_source_id = iif(${LATER}, excluded.last_source_id, last_source_id), last_message_id = iif(${LATER}, excluded.last_message_id, last_message_id)`;

type TraitRow = { key: string; value: string; at: number; message_id: string; source_id: string | null };

const traitWrite = (row: TraitRow): TraitWrite => ({ key: row.key, value: row.value, at: row.at, messageId: row.message_id, sourceId: row.source_id });

export function traitRows(sql: SqlStorage, query: string, owner: string): TraitWrite[] {
  return sql.exec<TraitRow>(query, owner).toArray().map(traitWrite);
}

/** `traitRows` of many owners in one query, which binds their ids as one JSON array and selects each row's `owner`. */
export function traitRowsByOwner(sql: SqlStorage, query: string, owners: string[]): Map<string, TraitWrite[]> {
  const rows = sql.exec<TraitRow & { owner: string }>(query, JSON.stringify(owners)).toArray();
  return mapValues(groupBy(rows, (row) => row.owner), (group) => group.map(traitWrite));
}

type LinkRow = { group_id: string; at: number; source_id: string | null };
const accountLink = (row: LinkRow) => ({ groupId: row.group_id, at: row.at, sourceId: row.source_id });
/** A profile's account links: `group_id` of its events, with the earliest and that event's source (SQLite's bare columns beside `min`). */
const LINKS = (where: string) =>
  `SELECT profile_id, group_id, min(at) AS at, source_id FROM profile_events WHERE ${where} AND group_id IS NOT NULL GROUP BY profile_id, group_id ORDER BY profile_id, group_id`;

/**
 * Accounts (`group` calls) in the identity object: each account's traits by
 * the same last-write-wins rule as a person's, and the links between people
 * and accounts, read from the events that made them (so they follow events
 * through merges and unmerges). Accounts are not people: erasing a person
 * removes their links (their events) but leaves the account.
 */
export class AccountStore {
  constructor(
    private readonly sql: SqlStorage,
    private readonly changed: (groupId: string) => void,
  ) {
    sql.exec("CREATE TABLE IF NOT EXISTS account_traits (group_id TEXT, key TEXT, value TEXT, at INTEGER, message_id TEXT, source_id TEXT, PRIMARY KEY (group_id, key))");
    sql.exec("CREATE TABLE IF NOT EXISTS accounts (group_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_source_id TEXT, last_message_id TEXT)");
  }

  record(groupId: string, traits: Record<string, unknown>, at: number, messageId: string, sourceId: string | null) {
    this.sql.exec(
      `INSERT INTO accounts (group_id, created_at, updated_at, last_source_id, last_message_id) VALUES (?, ?, ?, ?, ?)
       ${ACCOUNT_UPSERT}`,
      groupId,
      at,
      at,
      sourceId,
      messageId,
    );
    for (const write of toWrites(traits, at, messageId, sourceId)) {
      this.sql.exec(`INSERT INTO account_traits (group_id, key, value, at, message_id, source_id) VALUES (?, ?, ?, ?, ?, ?) ${LWW_UPSERT}`, groupId, write.key, write.value, write.at, write.messageId, write.sourceId);
    }
    this.changed(groupId);
  }

  traits(groupId: string): TraitWrite[] {
    return traitRows(this.sql, "SELECT key, value, at, message_id, source_id FROM account_traits WHERE group_id = ? ORDER BY key", groupId);
  }

  account(groupId: string) {
    return this.sql.exec<{ created_at: number; updated_at: number; last_source_id: string | null; last_message_id: string | null }>("SELECT * FROM accounts WHERE group_id = ?", groupId).toArray()[0] ?? null;
  }

  /** Accounts a profile joined through `group` calls, with when it first did and through which source. */
  links(profileId: string): AccountLink[] {
    return this.sql.exec<LinkRow>(LINKS("profile_id = ?"), profileId).toArray().map(accountLink);
  }

  /** `links` of many profiles in one query; a profile with none is absent. */
  linksOf(profileIds: string[]): Map<string, AccountLink[]> {
    const rows = this.sql.exec<LinkRow & { profile_id: string }>(LINKS("profile_id IN (SELECT value FROM json_each(?))"), JSON.stringify(profileIds)).toArray();
    return mapValues(groupBy(rows, (row) => row.profile_id), (group) => group.map(accountLink));
  }

  /** Profiles that joined an account, with when they first did. */
  members(groupId: string): { profileId: string; at: number; sourceId: string | null }[] {
    return this.sql
      .exec<{ profile_id: string; at: number; source_id: string | null }>(
        "SELECT profile_id, min(at) AS at, source_id FROM profile_events WHERE group_id = ? AND profile_id IS NOT NULL GROUP BY profile_id ORDER BY at, profile_id",
        groupId,
      )
      .toArray()
      .map((row) => ({ profileId: row.profile_id, at: row.at, sourceId: row.source_id }));
  }
}
