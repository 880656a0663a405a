import type { AudienceChange } from "../workers/segments/activation";
import { ObjectMeta } from "./object-meta";
import { ensureColumn } from "./sql-table";

/**
 * `membership`: the profile's identifiers or account links changed, not only its row;
 * `audiences`: its segment memberships or computed trait values changed;
 * `erase`: the profile was erased, and its rows in D1 go;
 * `event`: an event to write, as objects stored before events carried their own write seq marked them.
 */
export type OutboxKind = "profile" | "membership" | "audiences" | "account" | "event" | "reassign" | "erase";
export type OutboxEntry = { kind: OutboxKind; id: string; seq: number };

/** The `meta` row holding the highest event write seq written to D1. */
const EVENTS_WRITTEN = "events_written";

/**
 * What still has to reach D1 and the activation queue, in the object's SQLite
 * and written in the same turn as the change itself, so nothing is lost.
 *
 * - Profiles, accounts, reassignments and erasures are outbox entries keyed by
 *   what they name: changing one twice before it is written is one write.
 * - Events are the bulk, one per event: instead of an entry each, an event row
 *   carries a write seq (`wseq`) and a watermark says how far writing got, so an
 *   event costs an index entry rather than an entry inserted and then deleted.
 * - Segment and computed-trait changes are emissions, kept in order.
 */
export class WriteOutbox {
  private seq: number;
  private eventSeq: number;
  private readonly markedThisTurn = new Set<string>();
  private readonly meta: ObjectMeta;

  /** `profile_events` must exist: events carry their write seq in it. */
  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS outbox (kind TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (kind, id))");
    sql.exec("CREATE INDEX IF NOT EXISTS outbox_seq ON outbox (seq)");
    sql.exec("CREATE TABLE IF NOT EXISTS emissions (seq INTEGER PRIMARY KEY AUTOINCREMENT, change TEXT NOT NULL)");
    this.meta = new ObjectMeta(sql);
    // Rows stored before stay unmarked: their pending writes are `event` entries of the outbox.
    ensureColumn(sql, "profile_events", "wseq", "INTEGER");
    sql.exec("CREATE INDEX IF NOT EXISTS profile_events_wseq ON profile_events (wseq) WHERE wseq IS NOT NULL");
    this.seq = sql.exec<{ seq: number }>("SELECT coalesce(max(seq), 0) AS seq FROM outbox").one().seq;
    this.eventSeq = Math.max(this.eventsWrittenUpTo(), sql.exec<{ seq: number }>("SELECT coalesce(max(wseq), 0) AS seq FROM profile_events").one().seq);
  }

  /**
   * Marks something for write-through. Marking twice in one synchronous turn
   * is one write: the flusher only reads between turns, so the first mark's seq
   * is already newer than anything it holds.
   */
  mark(kind: OutboxKind, id: string) {
    const key = `${kind}\u0000${id}`;
    if (this.markedThisTurn.has(key)) return;
    if (this.markedThisTurn.size === 0) queueMicrotask(() => this.markedThisTurn.clear());
    this.markedThisTurn.add(key);
    this.sql.exec("INSERT INTO outbox (kind, id, seq) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET seq = excluded.seq", kind, id, ++this.seq);
  }

  /** The write seq of an event just recorded or changed: above every other, so it is written after them. */
  nextEventSeq(): number {
    return ++this.eventSeq;
  }

  pending(limit: number): OutboxEntry[] {
    return this.sql.exec<OutboxEntry>("SELECT kind, id, seq FROM outbox ORDER BY seq LIMIT ?", limit).toArray();
  }

  /**
   * Clears what was written, unless it changed again meanwhile. `pending` reads
   * the lowest seqs and a change always takes a seq above every other, so the
   * entries read are exactly those at or below the highest seq read, and one
   * changed again since has moved above it and stays.
   */
  written(entries: OutboxEntry[]) {
    if (!entries.length) return;
    this.sql.exec("DELETE FROM outbox WHERE seq <= ?", Math.max(...entries.map((e) => e.seq)));
  }

  /**
   * Events recorded or changed since the last write, oldest change first (at
   * most `limit`), as D1 write-through sends them: JSON arrays of rows built by
   * SQLite itself in chunks of about `chunkChars`, so no payload is copied
   * into the isolate, parsed or escaped there. Events without a profile or a
   * payload, or older than `oldest`, are passed over (and count as written).
   * `upTo` is the write seq to pass to `eventsWritten`; null when none was pending.
   */
  pendingEvents(limit: number, oldest: number, chunkChars: number): { chunks: string[]; upTo: number | null } {
    const written = this.eventsWrittenUpTo();
    const upTo = this.sql
      .exec<{ upTo: number | null }>("SELECT max(wseq) AS upTo FROM (SELECT wseq FROM profile_events WHERE wseq > ? ORDER BY wseq LIMIT ?)", written, limit)
      .one().upTo;
    if (upTo === null) return { chunks: [], upTo };
    const chunks = this.sql
      .exec<{ chunk: string }>(
        `SELECT json_group_array(json_object('messageId', message_id, 'profileId', profile_id, 'type', type, 'event', name, 'timestamp', at, 'sourceId', source_id, 'payload', record)) AS chunk
         FROM (SELECT *, sum(length(record) + 200) OVER (ORDER BY wseq ROWS UNBOUNDED PRECEDING) AS running
               FROM profile_events WHERE wseq > ? AND wseq <= ? AND profile_id IS NOT NULL AND record IS NOT NULL AND at >= ?)
         GROUP BY CAST(running / ? AS INTEGER) ORDER BY min(wseq)`,
        written,
        upTo,
        oldest,
        chunkChars,
      )
      .toArray()
      .map((row) => row.chunk);
    return { chunks, upTo };
  }

  /** The same reasoning as `written`: an event changed again meanwhile took a seq above `upTo` and stays pending. */
  eventsWritten(upTo: number | null) {
    if (upTo === null) return;
    this.meta.raise(EVENTS_WRITTEN, upTo);
  }

  private eventsWrittenUpTo(): number {
    return this.meta.get(EVENTS_WRITTEN) ?? 0;
  }

  /** Records a segment or computed-trait change for the activation queue; its seq makes its messageIds unique. */
  recordEmission(change: Omit<AudienceChange, "seq">) {
    this.sql.exec("INSERT INTO emissions (change) VALUES (?)", JSON.stringify(change));
    this.mark("audiences", change.profileId);
  }

  pendingEmissions(limit: number): AudienceChange[] {
    return this.sql
      .exec<{ seq: number; change: string }>("SELECT seq, change FROM emissions ORDER BY seq LIMIT ?", limit)
      .toArray()
      .map((row) => ({ ...(JSON.parse(row.change) as Omit<AudienceChange, "seq">), seq: row.seq }));
  }

  emitted(upToSeq: number) {
    this.sql.exec("DELETE FROM emissions WHERE seq <= ?", upToSeq);
  }

  /** An erasure: the erased events' pending entries (their rows, and so their write seqs, are gone already). */
  forgetEvents(messageIds: string) {
    this.sql.exec("DELETE FROM outbox WHERE kind = 'event' AND id IN (SELECT value FROM json_each(?))", messageIds);
  }

  /**
   * A person handed over to another graph shard: the pending entries of their
   * events, as objects stored before events carried their own write seq
   * marked them (their rows, which carry the rest, leave with them).
   */
  forgetEventsOf(profileIds: string) {
    this.sql.exec("DELETE FROM outbox WHERE kind = 'event' AND id IN (SELECT message_id FROM profile_events WHERE profile_id IN (SELECT value FROM json_each(?)))", profileIds);
  }

  /**
   * A person handed over from another graph shard: every event of theirs takes
   * a fresh write seq, in event order, above every other, so all of them are
   * written again from here. Returns how many.
   */
  rewriteEventsOf(profileIds: string[]): number {
    const ids = JSON.stringify(profileIds);
    const count = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM profile_events WHERE profile_id IN (SELECT value FROM json_each(?))", ids).one().n;
    if (count === 0) return 0;
    this.sql.exec(
      `UPDATE profile_events SET wseq = ? + r.n
       FROM (SELECT message_id, row_number() OVER (ORDER BY at, message_id) AS n FROM profile_events WHERE profile_id IN (SELECT value FROM json_each(?))) AS r
       WHERE profile_events.message_id = r.message_id`,
      this.eventSeq,
      ids,
    );
    this.eventSeq += count;
    return count;
  }

  /** An erasure: the erased profiles' pending writes and emissions (an `erase` entry replaces them). */
  forgetProfiles(profileIds: string) {
    this.sql.exec("DELETE FROM outbox WHERE kind IN ('profile', 'membership', 'audiences', 'reassign') AND id IN (SELECT value FROM json_each(?))", profileIds);
    this.sql.exec("DELETE FROM emissions WHERE change ->> '$.profileId' IN (SELECT value FROM json_each(?))", profileIds);
  }

  /** Whether anything waits to be written: existence checks, cheap on every event. */
  hasBacklog(): boolean {
    return (
      this.sql.exec<{ any: number }>(
        "SELECT EXISTS (SELECT 1 FROM outbox) OR EXISTS (SELECT 1 FROM emissions) OR EXISTS (SELECT 1 FROM profile_events WHERE wseq > ?) AS any",
        this.eventsWrittenUpTo(),
      ).one().any === 1
    );
  }

  backlog(): number {
    return this.sql.exec<{ n: number }>(
      "SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM emissions) + (SELECT count(*) FROM profile_events WHERE wseq > ?) AS n",
      this.eventsWrittenUpTo(),
    ).one().n;
  }
}
