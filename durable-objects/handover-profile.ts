import { ACCOUNT_UPSERT, LWW_UPSERT } from "./account-store";
import type { AudienceEngine } from "./audience-engine";
import type { PartWriter, ProfileRows, SectionName, SectionRow } from "./handover-package";
import type { ProfileStore } from "./profile-store";

/**
 * A person's rows of the profile store on a hand-over to another graph shard:
 * read into the package, removed from the shard that hands them over, and
 * written into the one that takes them. Accounts are group-level, shared with
 * the people of that shard: their rows are copied and stay.
 */

/** Rows read at a time, so memory holds one page and one part however many events a person has. */
const PAGE = 1_000;
/** Characters of JSON per statement parameter when writing rows: well under SQLite's 2 MB per value. */
const WRITE_CHARS = 500_000;

const list = (items: Iterable<string>) => JSON.stringify([...items]);

/**
 * Adds the person's profile rows to the package: their events (payloads
 * included), traits, consent state, the sources of `sourceKeys`, the accounts
 * they are linked to, their segment state, and the segment changes not yet sent.
 */
export function exportProfileRows(sql: SqlStorage, profileIds: string[], sourceKeys: string[], writer: PartWriter) {
  const ids = list(profileIds);
  for (const profileId of profileIds) {
    let after: { at: number; messageId: string } | null = null;
    for (;;) {
      const page: SectionRow<"events">[] = sql
        .exec<SectionRow<"events">>(
          `SELECT message_id, profile_id, at, type, name, source_id, traits, group_id, record, consent FROM profile_events
           WHERE profile_id = ? AND (? IS NULL OR at > ? OR (at = ? AND message_id > ?)) ORDER BY at, message_id LIMIT ?`,
          profileId,
          after?.at ?? null,
          after?.at ?? null,
          after?.at ?? null,
          after?.messageId ?? null,
          PAGE,
        )
        .toArray();
      for (const row of page) writer.add("events", { ...row });
      if (page.length < PAGE) break;
      after = { at: page.at(-1)!.at, messageId: page.at(-1)!.message_id };
    }
  }
  const rowsOf = <K extends SectionName>(section: K, query: string, ...bindings: unknown[]) => {
    for (const row of sql.exec<Record<string, SqlStorageValue>>(query, ...bindings).toArray()) writer.add(section, { ...row } as SectionRow<K>);
  };
  rowsOf("traits", "SELECT profile_id, key, value, at, message_id, source_id FROM profile_traits WHERE profile_id IN (SELECT value FROM json_each(?)) ORDER BY profile_id, key", ids);
  rowsOf("consent", "SELECT profile_id, category, consented, at, message_id, conflict FROM profile_consent WHERE profile_id IN (SELECT value FROM json_each(?)) ORDER BY profile_id, category", ids);
  for (const row of sql.exec<{ key: string; source_id: string | null }>("SELECT key, source_id FROM identifier_sources WHERE key IN (SELECT value FROM json_each(?)) ORDER BY key", list(sourceKeys))) {
    writer.add("sources", [row.key, row.source_id]);
  }
  const groups = "(SELECT DISTINCT group_id FROM profile_events WHERE profile_id IN (SELECT value FROM json_each(?)) AND group_id IS NOT NULL)";
  rowsOf("accounts", `SELECT group_id, created_at, updated_at, last_source_id, last_message_id FROM accounts WHERE group_id IN ${groups} ORDER BY group_id`, ids);
  rowsOf("accountTraits", `SELECT group_id, key, value, at, message_id, source_id FROM account_traits WHERE group_id IN ${groups} ORDER BY group_id, key`, ids);
  rowsOf("personState", "SELECT profile_id, spec, state FROM person_state WHERE profile_id IN (SELECT value FROM json_each(?)) ORDER BY profile_id, spec", ids);
  rowsOf("audienceValues", "SELECT profile_id, audience_id, value, since FROM audience_values WHERE profile_id IN (SELECT value FROM json_each(?)) ORDER BY profile_id, audience_id", ids);
  rowsOf("wakeups", "SELECT profile_id, at FROM wakeups WHERE profile_id IN (SELECT value FROM json_each(?)) ORDER BY profile_id", ids);
  for (const row of sql.exec<{ change: string }>("SELECT change FROM emissions WHERE change ->> '$.profileId' IN (SELECT value FROM json_each(?)) ORDER BY seq", ids)) {
    writer.add("emissions", row.change);
  }
}

/**
 * Removes the person's profile state from the shard that hands them over. No
 * `erase` entry is written, since D1 keeps their rows: their pending writes
 * and emissions go instead (the target writes and sends them again), so a
 * stale write from here can never land after the target's.
 */
export function removeProfileRows(store: ProfileStore, audiences: AudienceEngine, sql: SqlStorage, profileIds: string[], sourceKeys: string[]) {
  const ids = list(profileIds);
  store.outbox.forgetEventsOf(ids);
  store.outbox.forgetProfiles(ids);
  sql.exec("DELETE FROM profile_events WHERE profile_id IN (SELECT value FROM json_each(?))", ids);
  sql.exec("DELETE FROM profile_traits WHERE profile_id IN (SELECT value FROM json_each(?))", ids);
  store.consent.forget(profileIds);
  sql.exec("DELETE FROM identifier_sources WHERE key IN (SELECT value FROM json_each(?))", list(sourceKeys));
  for (const id of profileIds) audiences.forget(id);
}

/** `INSERT … SELECT` over rows sent as JSON, a chunk per statement. */
function insertRows<T>(sql: SqlStorage, rows: T[] | undefined, statement: string) {
  if (!rows?.length) return 0;
  let chunk: string[] = [];
  let size = 0;
  const send = () => {
    if (chunk.length) sql.exec(statement, `[${chunk.join(",")}]`);
    chunk = [];
    size = 0;
  };
  for (const row of rows) {
    const json = JSON.stringify(row);
    if (size + json.length > WRITE_CHARS) send();
    chunk.push(json);
    size += json.length + 1;
  }
  send();
  return rows.length;
}

const columns = (names: string[]) => names.map((name) => `j.value ->> '$.${name}'`).join(", ");

/**
 * Writes a part's profile rows at the shard taking the person over. Events
 * come without a write seq: finishing the hand-over gives them fresh ones.
 * Accounts merge with the copy this shard already holds by the rules
 * `AccountStore` keeps them by. Returns how many rows.
 */
export function importProfileRows(sql: SqlStorage, rows: ProfileRows): number {
  const eventColumns = ["message_id", "profile_id", "at", "type", "name", "source_id", "traits", "group_id", "record", "consent"];
  let written = insertRows(
    sql,
    rows.events,
    `INSERT OR REPLACE INTO profile_events (${eventColumns.join(", ")}, wseq) SELECT ${columns(eventColumns)}, NULL FROM json_each(?) AS j`,
  );
  written += insertRows(
    sql,
    rows.traits,
    `INSERT INTO profile_traits (profile_id, key, value, at, message_id, source_id) SELECT ${columns(["profile_id", "key", "value", "at", "message_id", "source_id"])} FROM json_each(?) AS j WHERE true ${LWW_UPSERT}`,
  );
  written += insertRows(
    sql,
    rows.consent,
    `INSERT OR REPLACE INTO profile_consent (profile_id, category, consented, at, message_id, conflict) SELECT ${columns(["profile_id", "category", "consented", "at", "message_id", "conflict"])} FROM json_each(?) AS j`,
  );
  written += insertRows(sql, rows.sources, "INSERT INTO identifier_sources (key, source_id) SELECT j.value ->> 0, j.value ->> 1 FROM json_each(?) AS j WHERE true ON CONFLICT DO NOTHING");
  written += insertRows(
    sql,
    rows.accounts,
    `INSERT INTO accounts (group_id, created_at, updated_at, last_source_id, last_message_id) SELECT ${columns(["group_id", "created_at", "updated_at", "last_source_id", "last_message_id"])} FROM json_each(?) AS j WHERE true
     ${ACCOUNT_UPSERT}`,
  );
  written += insertRows(
    sql,
    rows.accountTraits,
    `INSERT INTO account_traits (group_id, key, value, at, message_id, source_id) SELECT ${columns(["group_id", "key", "value", "at", "message_id", "source_id"])} FROM json_each(?) AS j WHERE true ${LWW_UPSERT}`,
  );
  written += insertRows(sql, rows.personState, `INSERT OR REPLACE INTO person_state (profile_id, spec, state) SELECT ${columns(["profile_id", "spec", "state"])} FROM json_each(?) AS j`);
  written += insertRows(
    sql,
    rows.audienceValues,
    `INSERT OR REPLACE INTO audience_values (profile_id, audience_id, value, since) SELECT ${columns(["profile_id", "audience_id", "value", "since"])} FROM json_each(?) AS j`,
  );
  written += insertRows(sql, rows.wakeups, `INSERT OR REPLACE INTO wakeups (profile_id, at) SELECT ${columns(["profile_id", "at"])} FROM json_each(?) AS j`);
  written += insertRows(sql, rows.emissions, "INSERT INTO emissions (change) SELECT j.value FROM json_each(?) AS j");
  return written;
}

/** The accounts the person's events link them to: their rows, merged here with this shard's, are written through again. */
export function accountsOf(sql: SqlStorage, profileIds: string[]): string[] {
  return sql
    .exec<{ group_id: string }>("SELECT DISTINCT group_id FROM profile_events WHERE profile_id IN (SELECT value FROM json_each(?)) AND group_id IS NOT NULL ORDER BY group_id", list(profileIds))
    .toArray()
    .map((r) => r.group_id);
}
