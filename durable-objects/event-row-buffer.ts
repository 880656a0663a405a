import { chunk } from "../workers/lib/chunks";
import type { TraitWrite } from "../workers/profiles/traits";
import { LWW_UPSERT } from "./account-store";
import { execRows } from "./sql-rows";

/** The columns of a `profile_events` row, in the order `EventRow` values are given. */
export const EVENT_COLUMNS = ["message_id", "profile_id", "at", "type", "name", "source_id", "traits", "group_id", "record", "consent", "wseq"] as const;
export type EventRowValues = [string, string | null, number, string, string | null, string | null, string | null, string | null, string, string | null, number | null];

/** messageIds per read-ahead query: one JSON parameter of a few hundred KB. */
const READ_AHEAD_CHUNK = 5_000;

/**
 * The rows that record one resolve call's events (`profile_events`, their
 * trait writes, the sources of new identifiers), held and written in
 * statements of many rows: otherwise each event costs an insert and an upsert
 * of its own, and each call into SQLite has a fixed cost.
 *
 * Held rows are written before anything reads or changes those tables
 * (`flush`, which the profile store calls first in every such method) and
 * when the call ends (`end`), inside the call's transaction. A call that throws
 * `discard`s them with the transaction.
 */
export class EventRowBuffer {
  private events: EventRowValues[] = [];
  private traits: unknown[][] = [];
  private sources: unknown[][] = [];
  /** messageIds stored or held, as far as the read-ahead and this call's rows tell. */
  private readonly recorded = new Set<string>();
  /** messageIds the read-ahead looked up: for any other, `isRecorded` asks storage. */
  private readonly checked = new Set<string>();

  constructor(private readonly sql: SqlStorage) {}

  /** Looks up which of these events are recorded, in a few queries, so that `isRecorded` reads nothing for them. */
  readAhead(messageIds: string[]) {
    const fresh = messageIds.filter((id) => !this.checked.has(id));
    for (const part of chunk(fresh, READ_AHEAD_CHUNK)) {
      const rows = this.sql.exec<{ message_id: string }>("SELECT message_id FROM profile_events WHERE message_id IN (SELECT value FROM json_each(?))", JSON.stringify(part));
      for (const row of rows) this.recorded.add(row.message_id);
      for (const id of part) this.checked.add(id);
    }
  }

  isRecorded(messageId: string): boolean {
    if (this.recorded.has(messageId)) return true;
    if (this.checked.has(messageId)) return false;
    return this.sql.exec("SELECT 1 FROM profile_events WHERE message_id = ?", messageId).toArray().length > 0;
  }

  addEvent(row: EventRowValues) {
    this.events.push(row);
    this.recorded.add(row[0]);
  }

  addTraits(profileId: string, writes: TraitWrite[]) {
    for (const w of writes) this.traits.push([profileId, w.key, w.value, w.at, w.messageId, w.sourceId]);
  }

  /** The first source an identifier was seen from: a later one for the same key changes nothing. */
  addSource(key: string, sourceId: string | null) {
    this.sources.push([key, sourceId]);
  }

  /** Writes what is held, in the order it was added. */
  flush() {
    if (this.events.length) {
      execRows(this.sql, this.events, EVENT_COLUMNS.length, (rows) => `INSERT INTO profile_events (${EVENT_COLUMNS.join(", ")}) VALUES ${rows} ON CONFLICT DO NOTHING`);
      this.events = [];
    }
    if (this.sources.length) {
      execRows(this.sql, this.sources, 2, (rows) => `INSERT INTO identifier_sources (key, source_id) VALUES ${rows} ON CONFLICT DO NOTHING`);
      this.sources = [];
    }
    if (this.traits.length) {
      // Last write wins per trait whatever the order, so many writes to one trait in a statement settle as they would one by one.
      execRows(this.sql, this.traits, 6, (rows) => `INSERT INTO profile_traits (profile_id, key, value, at, message_id, source_id) VALUES ${rows} ${LWW_UPSERT}`);
      this.traits = [];
    }
  }

  /** Ends a call: writes what is held and forgets what the call looked up, which later calls may change. */
  end() {
    this.flush();
    this.recorded.clear();
    this.checked.clear();
  }

  /** Drops everything held: the call failed and its transaction rolls back. */
  discard() {
    this.events = [];
    this.traits = [];
    this.sources = [];
    this.recorded.clear();
    this.checked.clear();
  }
}
