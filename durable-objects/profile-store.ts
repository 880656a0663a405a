import { z } from "zod";
import type { QueuedEvent } from "../workers/intake/envelope";
import { consentStatementOf } from "../workers/profiles/consent";
import type { PersonEvent } from "../workers/segments/values";
import { type EventRecord, eventRecord } from "../workers/profiles/event-record";
import { accountTraitsOf, applyWrites, eventTime, groupIdOf, type TraitState, type TraitWrite, toWrites, userTraitsOf } from "../workers/profiles/traits";
import { AccountStore, LWW_UPSERT, traitRows, traitRowsByOwner } from "./account-store";
import { ConsentStore } from "./consent-store";
import { EventRowBuffer } from "./event-row-buffer";
import { type OutboxKind, WriteOutbox } from "./write-outbox";

export type { OutboxEntry, OutboxKind } from "./write-outbox";

const sourcePairs = z.array(z.tuple([z.string(), z.string().nullable()]));
const TRAITS = (where: string) => `SELECT profile_id AS owner, key, value, at, message_id, source_id FROM profile_traits WHERE ${where} ORDER BY profile_id, key`;

export type LastEvent = { message_id: string; source_id: string | null; at: number };

/** MessageIds per erase statement: 5,000 ids of ~40 characters is ~200 KB of JSON. */
const ERASE_CHUNK = 5_000;

type EventRow = {
  message_id: string;
  profile_id: string | null;
  at: number;
  type: string;
  name: string | null;
  source_id: string | null;
  traits: string | null;
  group_id: string | null;
  record: string | null;
  consent: string | null;
};

/**
 * Profile state beside the identity graph, in the same object's SQLite
 * storage: every event's trait writes, group link and consent statement (kept,
 * so that an unmerge can recompute each part exactly), the current traits per
 * profile, recent event payloads, and an outbox of what still has to reach D1;
 * accounts and consent state in stores of their own. Writes here happen in the
 * same synchronous turn as the graph change they follow, so the two commit together.
 */
export class ProfileStore {
  readonly consent: ConsentStore;
  readonly accounts: AccountStore;
  readonly outbox: WriteOutbox;
  private readonly rows: EventRowBuffer;

  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS profile_events (message_id TEXT PRIMARY KEY, profile_id TEXT, at INTEGER NOT NULL, type TEXT NOT NULL, name TEXT,
      source_id TEXT, traits TEXT, group_id TEXT, record TEXT, consent TEXT)`);
    ConsentStore.addEventColumn(sql);
    this.consent = new ConsentStore(sql);
    this.accounts = new AccountStore(sql, (groupId) => this.markDirty("account", groupId));
    sql.exec("CREATE INDEX IF NOT EXISTS profile_events_profile ON profile_events (profile_id, at)");
    sql.exec("CREATE INDEX IF NOT EXISTS profile_events_groups ON profile_events (profile_id, group_id) WHERE group_id IS NOT NULL");
    sql.exec("CREATE TABLE IF NOT EXISTS profile_traits (profile_id TEXT, key TEXT, value TEXT, at INTEGER, message_id TEXT, source_id TEXT, PRIMARY KEY (profile_id, key))");
    sql.exec("CREATE TABLE IF NOT EXISTS identifier_sources (key TEXT PRIMARY KEY, source_id TEXT)");
    this.outbox = new WriteOutbox(sql);
    this.rows = new EventRowBuffer(sql);
  }

  /**
   * Runs a call that records events (`recordEvent`): their rows are written
   * together as it ends, or dropped if it throws (its transaction rolls back).
   * `messageIds` are the events it may record, looked up in one read.
   */
  recording<T>(messageIds: string[], run: () => T): T {
    try {
      this.rows.readAhead(messageIds);
      const result = run();
      this.rows.end();
      return result;
    } catch (error) {
      this.rows.discard();
      throw error;
    }
  }

  /**
   * Records an applied event. Idempotent: an event already recorded changes
   * nothing. `newIdentifierKeys` are the identifiers the graph had not seen before this event.
   */
  recordEvent(event: QueuedEvent, sourceId: string | null, profileId: string | null, newIdentifierKeys: string[]): EventRecord | null {
    if (this.rows.isRecorded(event.messageId)) return null;
    const at = eventTime(event);
    const record = eventRecord(event, sourceId);
    const userTraits = userTraitsOf(event);
    const groupId = groupIdOf(event);
    const statement = consentStatementOf(event);
    this.rows.addEvent([
      event.messageId,
      profileId,
      at,
      event.type,
      (event as { event?: string; name?: string }).event ?? (event as { name?: string }).name ?? null,
      sourceId,
      Object.keys(userTraits).length ? JSON.stringify(userTraits) : null,
      groupId ?? null,
      JSON.stringify(record),
      statement ? JSON.stringify(statement.categoryPreferences) : null,
      // Only an event with a profile is written to D1; a refused one needs no write.
      profileId ? this.outbox.nextEventSeq() : null,
    ]);
    for (const key of newIdentifierKeys) this.rows.addSource(key, sourceId);
    if (groupId) this.accounts.record(groupId, accountTraitsOf(event), at, event.messageId, sourceId);
    if (!profileId) return record;
    this.rows.addTraits(profileId, toWrites(userTraits, at, event.messageId, sourceId));
    if (statement) this.consent.apply(profileId, statement);
    this.markDirty("profile", profileId);
    if (newIdentifierKeys.length || groupId) this.markDirty("membership", profileId);
    return record;
  }

  /** A merge: the survivor takes the absorbed profiles' events, and their traits by the same last-write-wins rule. */
  merged(survivor: string, absorbed: string[]) {
    this.rows.flush();
    for (const id of absorbed) {
      this.sql.exec("UPDATE profile_events SET profile_id = ? WHERE profile_id = ?", survivor, id);
      this.sql.exec(`INSERT INTO profile_traits (profile_id, key, value, at, message_id, source_id) SELECT ?, key, value, at, message_id, source_id FROM profile_traits WHERE profile_id = ? ${LWW_UPSERT}`, survivor, id);
      this.sql.exec("DELETE FROM profile_traits WHERE profile_id = ?", id);
      this.markDirty("profile", id);
      this.markDirty("membership", id);
      this.markDirty("reassign", id);
    }
    this.consent.merged(survivor, absorbed);
    this.markDirty("profile", survivor);
    this.markDirty("membership", survivor);
  }

  /**
   * An unmerge or split moved events between profiles: each event of the named
   * profiles follows the graph (`ownerOf`), and each profile's traits are
   * recomputed from the events it now holds.
   */
  regrouped(profileIds: string[], ownerOf: (messageId: string) => string | null): Set<string> {
    this.rows.flush();
    const ids = [...new Set(profileIds)];
    const rows = this.sql.exec<{ message_id: string; profile_id: string }>(
      `SELECT message_id, profile_id FROM profile_events WHERE profile_id IN (SELECT value FROM json_each(?))`,
      JSON.stringify(ids),
    ).toArray();
    const touched = new Set(ids);
    for (const row of rows) {
      const owner = ownerOf(row.message_id);
      if (owner === row.profile_id) continue;
      this.sql.exec("UPDATE profile_events SET profile_id = ?, wseq = ? WHERE message_id = ?", owner, owner ? this.outbox.nextEventSeq() : null, row.message_id);
      if (owner) touched.add(owner);
    }
    for (const id of touched) {
      this.sql.exec("DELETE FROM profile_traits WHERE profile_id = ?", id);
      const state: TraitState = new Map();
      for (const event of this.sql.exec<Pick<EventRow, "message_id" | "at" | "source_id" | "traits">>("SELECT message_id, at, source_id, traits FROM profile_events WHERE profile_id = ? AND traits IS NOT NULL", id)) {
        applyWrites(state, toWrites(JSON.parse(event.traits!) as Record<string, unknown>, event.at, event.message_id, event.source_id));
      }
      this.rows.addTraits(id, [...state.values()]);
      this.rows.flush();
      this.consent.recompute(id);
      this.markDirty("profile", id);
      this.markDirty("membership", id);
    }
    return touched;
  }

  traits(profileId: string): TraitWrite[] {
    this.rows.flush();
    return traitRows(this.sql, TRAITS("profile_id = ?"), profileId);
  }

  /** `traits` of many profiles in one query; a profile with none is absent. */
  traitsOf(profileIds: string[]): Map<string, TraitWrite[]> {
    this.rows.flush();
    return traitRowsByOwner(this.sql, TRAITS("profile_id IN (SELECT value FROM json_each(?))"), profileIds);
  }

  /**
   * The source that first sent each identifier (`type:value`), in one query
   * however many, answered as one JSON array: one value crosses into the
   * isolate instead of a row object per identifier.
   */
  identifierSources(keys: string[]): Map<string, string | null> {
    this.rows.flush();
    if (!keys.length) return new Map();
    const { pairs } = this.sql
      .exec<{ pairs: string }>("SELECT json_group_array(json_array(s.key, s.source_id)) AS pairs FROM json_each(?) AS j JOIN identifier_sources AS s ON s.key = j.value", JSON.stringify(keys))
      .one();
    return new Map(sourcePairs.parse(JSON.parse(pairs)));
  }

  /** Each profile's latest event, for its metadata, in one query; a profile with none is absent. */
  lastEventsOf(profileIds: string[]): Map<string, LastEvent> {
    this.rows.flush();
    const rows = this.sql
      .exec<LastEvent & { profile_id: string }>(
        `SELECT j.value AS profile_id, e.message_id, e.source_id, e.at FROM json_each(?) AS j
         JOIN profile_events AS e ON e.message_id = (SELECT message_id FROM profile_events WHERE profile_id = j.value ORDER BY at DESC, message_id DESC LIMIT 1)`,
        JSON.stringify(profileIds),
      )
      .toArray();
    return new Map(rows.map(({ profile_id, ...last }) => [profile_id, last]));
  }

  /** Recent events, newest first by default, for strongly consistent reads. */
  events(profileId: string, options: { since?: number; until?: number; order: "asc" | "desc"; after?: { at: number; messageId: string }; limit: number }): EventRecord[] {
    this.rows.flush();
    const cmp = options.order === "desc" ? "<" : ">";
    const rows = this.sql.exec<{ record: string }>(
      `SELECT record FROM profile_events WHERE profile_id = ? AND record IS NOT NULL AND at >= ? AND at <= ?
       AND (? IS NULL OR at ${cmp} ? OR (at = ? AND message_id ${cmp} ?)) ORDER BY at ${options.order}, message_id ${options.order} LIMIT ?`,
      profileId,
      options.since ?? 0,
      options.until ?? Number.MAX_SAFE_INTEGER,
      options.after?.at ?? null,
      options.after?.at ?? null,
      options.after?.at ?? null,
      options.after?.messageId ?? null,
      options.limit,
    ).toArray();
    return rows.map((row) => JSON.parse(row.record) as EventRecord);
  }

  /** Every event held for these profiles, payload or not. */
  eventIdsOf(profileIds: string[]): string[] {
    this.rows.flush();
    return this.sql
      .exec<{ message_id: string }>("SELECT message_id FROM profile_events WHERE profile_id IN (SELECT value FROM json_each(?))", JSON.stringify(profileIds))
      .toArray()
      .map((r) => r.message_id);
  }

  /** Events by messageId, in one query however many. */
  eventRows(messageIds: string[]): EventRow[] {
    this.rows.flush();
    if (!messageIds.length) return [];
    return this.sql.exec<EventRow>("SELECT e.* FROM json_each(?) AS j JOIN profile_events AS e ON e.message_id = j.value", JSON.stringify(messageIds)).toArray();
  }

  /**
   * Past the retention period an event's payload goes; its row stays, because
   * its trait writes and group link are what an unmerge recomputes profiles from.
   */
  dropPayloadsBefore(cutoff: number): number {
    this.rows.flush();
    return this.sql.exec("UPDATE profile_events SET record = NULL WHERE at < ? AND record IS NOT NULL", cutoff).rowsWritten;
  }

  /**
   * Removes the erased profiles' rows: their events (and any other event the
   * graph gave them), traits, consent, the sources of identifiers only they
   * held, and their pending emissions. Their pending writes become `erase`
   * entries, so write-through deletes their D1 rows instead of writing them
   * again.
   */
  erase(profileIds: string[], messageIds: string[], identifierKeys: string[]) {
    this.rows.flush();
    const ids = JSON.stringify(profileIds);
    const events = [...new Set([...messageIds, ...this.eventIdsOf(profileIds)])];
    // In parts: a person's messageIds as one JSON string could pass SQLite's 2 MB value limit.
    for (let i = 0; i < events.length; i += ERASE_CHUNK) {
      const part = JSON.stringify(events.slice(i, i + ERASE_CHUNK));
      this.sql.exec("DELETE FROM profile_events WHERE message_id IN (SELECT value FROM json_each(?))", part);
      this.outbox.forgetEvents(part);
    }
    this.sql.exec("DELETE FROM profile_traits WHERE profile_id IN (SELECT value FROM json_each(?))", ids);
    this.consent.forget(profileIds);
    this.sql.exec("DELETE FROM identifier_sources WHERE key IN (SELECT value FROM json_each(?))", JSON.stringify(identifierKeys));
    this.outbox.forgetProfiles(ids);
    for (const id of profileIds) this.markDirty("erase", id);
  }

  /** Marks something for write-through (see WriteOutbox.mark). */
  markDirty(kind: OutboxKind, id: string) {
    this.outbox.mark(kind, id);
  }

  /** Records a segment or computed-trait change for the activation queue. */
  recordEmission(change: Parameters<WriteOutbox["recordEmission"]>[0]) {
    this.outbox.recordEmission(change);
  }

  /** A person's events as segment evaluation reads them, oldest first (those still holding their payload). */
  personEvents(profileId: string): PersonEvent[] {
    this.rows.flush();
    return this.sql
      .exec<{ record: string }>("SELECT record FROM profile_events WHERE profile_id = ? AND record IS NOT NULL ORDER BY at, message_id", profileId)
      .toArray()
      .map((row) => personEventOf(JSON.parse(row.record) as EventRecord));
  }
}

/** The event as segment evaluation reads it. */
export function personEventOf(record: EventRecord): PersonEvent {
  return {
    messageId: record.message_id,
    type: record.type,
    event: record.event,
    name: record.name,
    timestamp: Date.parse(record.timestamp),
    properties: record.properties ?? record.traits ?? {},
  };
}
