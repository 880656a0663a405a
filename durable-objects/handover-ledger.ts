import { ensureColumn } from "./sql-table";

/**
 * A graph shard's record of people handed over to or from it: the keys it
 * handed over (moved marks), its moves and their stored parts on the way
 * out, and the parts it accepted and the moves it finished on the way in, so
 * that every step can be repeated without changing anything. What is no
 * longer needed is pruned as the shard hands over, completes or finishes
 * moves (`prune`).
 */

/** One person handed over from one graph shard to another, as `handOver` answers it. */
export interface Move {
  moveId: string;
  from: number;
  to: number;
  /** Every identifier key whose index entry routed to the person, and `profile_id:` of each of their clusters, sorted: what the identifier index repoints. */
  keys: string[];
  /** How many stored parts the package has (`handOverPart` 0 to parts − 1); -1 when the target answers a move still arriving (ask the source). */
  parts: number;
  /** The stored parts were dropped (`completeHandOver`): the move is over. */
  completed: boolean;
}

/** What a part accepted here said of its move: the finish reads it back. */
export interface Receipt {
  part: number;
  from: number;
  last: boolean;
  /** The D1 write version of the shard the person came from. */
  version: number;
  /** The person's clusters, live first. */
  profiles: string[];
  rows: number;
}

const DAY_MS = 86_400_000;

/**
 * Days a completed move's marks (and its row) are kept at the source, and a
 * finished move's receipts at the target. A router sends an event for a key
 * only where the index placed the key when it looked, and a consumer
 * invocation lasts at most 15 minutes: a move completes (step 5) after the
 * index is repointed (step 3), so a day after completion no router can still
 * hold a view placing the move's keys on the source, and no consumer still
 * drives the move (a repeated part or finish comes only from a driver).
 */
export const MOVED_MARK_DAYS = 1;

/** Keys per query of their marks: at most 1,024 characters each (an identifier key's limit), well under 2 MB of UTF-8 together. */
const MARKS_CHUNK = 1_000;

export class HandoverLedger {
  /** Whether any key is marked moved; null when unknown. Events are checked against the marks only when some exist. */
  private marked: boolean | null = null;

  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS moved_keys (key TEXT PRIMARY KEY, shard INTEGER NOT NULL, move_id TEXT NOT NULL) WITHOUT ROWID");
    sql.exec("CREATE INDEX IF NOT EXISTS moved_keys_move ON moved_keys (move_id)");
    sql.exec(
      "CREATE TABLE IF NOT EXISTS handover_moves (move_id TEXT PRIMARY KEY, from_shard INTEGER NOT NULL, to_shard INTEGER NOT NULL, parts INTEGER NOT NULL, completed INTEGER NOT NULL, completed_at INTEGER)",
    );
    // When the move was completed (ms); null while it is not. Objects stored before it existed get the column here, and `prune` stamps their completed moves.
    ensureColumn(sql, "handover_moves", "completed_at", "INTEGER");
    sql.exec("CREATE INDEX IF NOT EXISTS handover_moves_completed_at ON handover_moves (completed_at)");
    sql.exec("CREATE TABLE IF NOT EXISTS handovers (move_id TEXT NOT NULL, part INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (move_id, part))");
    sql.exec(`CREATE TABLE IF NOT EXISTS handover_received (move_id TEXT NOT NULL, part INTEGER NOT NULL, from_shard INTEGER NOT NULL, last INTEGER NOT NULL,
      version INTEGER NOT NULL, profiles TEXT NOT NULL, rows INTEGER NOT NULL, PRIMARY KEY (move_id, part))`);
    sql.exec("CREATE TABLE IF NOT EXISTS handover_finished (move_id TEXT PRIMARY KEY, profiles INTEGER NOT NULL, events INTEGER NOT NULL, finished_at INTEGER)");
    // When the move was finished here (ms); rows stored before the column existed are stamped by `prune`.
    ensureColumn(sql, "handover_finished", "finished_at", "INTEGER");
    sql.exec("CREATE INDEX IF NOT EXISTS handover_finished_at ON handover_finished (finished_at)");
    sql.exec("CREATE TABLE IF NOT EXISTS handover_arriving (key TEXT PRIMARY KEY, move_id TEXT NOT NULL, from_shard INTEGER NOT NULL) WITHOUT ROWID");
    sql.exec("CREATE INDEX IF NOT EXISTS handover_arriving_move ON handover_arriving (move_id)");
  }

  /** The keys of a move whose first part was accepted here and which is not finished yet. */
  arrive(moveId: string, from: number, keys: string[]) {
    this.sql.exec("INSERT OR REPLACE INTO handover_arriving (key, move_id, from_shard) SELECT value, ?, ? FROM json_each(?)", moveId, from, JSON.stringify(keys));
  }

  /** Which of these keys are arriving, with their move. */
  arriving(keys: string[]): Map<string, { moveId: string; from: number }> {
    const out = new Map<string, { moveId: string; from: number }>();
    for (const row of this.rowsOf<{ key: string; move_id: string; from_shard: number }>("SELECT key, move_id, from_shard FROM handover_arriving", keys)) out.set(row.key, { moveId: row.move_id, from: row.from_shard });
    return out;
  }

  arrivingKeys(moveId: string): string[] {
    return this.sql.exec<{ key: string }>("SELECT key FROM handover_arriving WHERE move_id = ? ORDER BY key", moveId).toArray().map((r) => r.key);
  }

  /** The move is finished here: its keys have arrived. */
  arrived(moveId: string) {
    this.sql.exec("DELETE FROM handover_arriving WHERE move_id = ?", moveId);
  }

  /** Whether any key is marked moved: one query the first time, then known until marks change. */
  anyMarked(): boolean {
    this.marked ??= this.sql.exec<{ any: number }>("SELECT EXISTS (SELECT 1 FROM moved_keys) AS any").one().any === 1;
    return this.marked;
  }

  /** The moved marks of these keys: key → the shard it went to and its move, in one query per 1,000 keys. */
  marksOf(keys: Iterable<string>): Map<string, { shard: number; moveId: string }> {
    const marks = new Map<string, { shard: number; moveId: string }>();
    for (const r of this.rowsOf<{ key: string; shard: number; move_id: string }>("SELECT key, shard, move_id FROM moved_keys", keys)) marks.set(r.key, { shard: r.shard, moveId: r.move_id });
    return marks;
  }

  /**
   * The rows of `select` (a table keyed by `key`) for these keys, in chunks
   * that keep each JSON parameter far below SQLite's 2 MB per value, however
   * large the call.
   */
  private rowsOf<R extends Record<string, SqlStorageValue>>(select: string, keys: Iterable<string>): R[] {
    const unique = [...new Set(keys)];
    const rows: R[] = [];
    for (let i = 0; i < unique.length; i += MARKS_CHUNK) rows.push(...this.sql.exec<R>(`${select} WHERE key IN (SELECT value FROM json_each(?))`, JSON.stringify(unique.slice(i, i + MARKS_CHUNK))).toArray());
    return rows;
  }

  /** Starts a move: its keys are marked moved to `to`; its parts are stored with `storePart`. */
  record(move: Move) {
    this.sql.exec("INSERT INTO handover_moves (move_id, from_shard, to_shard, parts, completed) VALUES (?, ?, ?, ?, 0)", move.moveId, move.from, move.to, move.parts);
    this.sql.exec("INSERT OR REPLACE INTO moved_keys (key, shard, move_id) SELECT value, ?, ? FROM json_each(?)", move.to, move.moveId, JSON.stringify(move.keys));
    this.marked = null;
  }

  storePart(moveId: string, part: number, body: string) {
    this.sql.exec("INSERT INTO handovers (move_id, part, body) VALUES (?, ?, ?)", moveId, part, body);
  }

  /** A move made here, with the keys still marked for it. */
  move(moveId: string): Move | null {
    const row = this.sql.exec<{ from_shard: number; to_shard: number; parts: number; completed: number }>("SELECT * FROM handover_moves WHERE move_id = ?", moveId).toArray()[0];
    if (!row) return null;
    const keys = this.sql.exec<{ key: string }>("SELECT key FROM moved_keys WHERE move_id = ? ORDER BY key", moveId).toArray().map((r) => r.key);
    return { moveId, from: row.from_shard, to: row.to_shard, keys, parts: row.parts, completed: row.completed === 1 };
  }

  part(moveId: string, part: number): string {
    const row = this.sql.exec<{ body: string }>("SELECT body FROM handovers WHERE move_id = ? AND part = ?", moveId, part).toArray()[0];
    if (row) return row.body;
    const move = this.move(moveId);
    if (!move) throw new Error(`hand-over ${moveId} is unknown here`);
    if (move.completed) throw new Error(`hand-over ${moveId} is completed: its parts were dropped`);
    throw new Error(`hand-over ${moveId} has no part ${part}: its parts are 0 to ${move.parts - 1}`);
  }

  /**
   * The index was repointed: the stored parts go, the marks stay (late events
   * carrying the keys are still answered) for `MOVED_MARK_DAYS` from now. A
   * repeated call keeps the first completion's time.
   */
  complete(moveId: string, now = Date.now()) {
    this.prune(now);
    this.sql.exec("DELETE FROM handovers WHERE move_id = ?", moveId);
    this.sql.exec("UPDATE handover_moves SET completed = 1, completed_at = coalesce(completed_at, ?) WHERE move_id = ?", now, moveId);
  }

  /**
   * Forgets what no one can ask about any more (see `MOVED_MARK_DAYS`): at the
   * source, the marks and row of each move completed longer ago; at the
   * target, the receipts of each move finished longer ago. A move not
   * completed keeps everything, however old: any consumer may still finish
   * it. The target keeps the finish itself (one short row per move), so that
   * however late a move is driven again (a source that never completed it,
   * met again), its parts are not taken for new ones. Marks go by move, never
   * by key, so a key that came back and left again keeps the mark of its
   * newest move. Rows stored before the times existed are stamped now, and go
   * a limit later. Indexed throughout: nothing is scanned.
   */
  prune(now = Date.now()) {
    const before = now - MOVED_MARK_DAYS * DAY_MS;
    const sql = this.sql;
    // completed_at IS NULL is also every move not completed (few: those in flight), read through the index.
    sql.exec("UPDATE handover_moves SET completed_at = ? WHERE completed_at IS NULL AND completed = 1", now);
    sql.exec("UPDATE handover_finished SET finished_at = ? WHERE finished_at IS NULL", now);
    const unmarked = sql.exec("DELETE FROM moved_keys WHERE move_id IN (SELECT move_id FROM handover_moves WHERE completed_at < ?)", before).rowsWritten;
    sql.exec("DELETE FROM handover_moves WHERE completed_at < ?", before);
    sql.exec("DELETE FROM handover_received WHERE move_id IN (SELECT move_id FROM handover_finished WHERE finished_at < ?)", before);
    if (unmarked > 0) this.marked = null;
  }

  /** The person is back, or taken over by this shard: their keys are no longer marked moved. */
  clearMarks(keys: string[]) {
    this.sql.exec("DELETE FROM moved_keys WHERE key IN (SELECT value FROM json_each(?))", JSON.stringify(keys));
    this.marked = null;
  }

  /** Forgets what it knew of the marks: after a rolled-back transaction. */
  forget() {
    this.marked = null;
  }

  received(moveId: string, part: number): Receipt | null {
    return this.receipts(moveId).find((r) => r.part === part) ?? null;
  }

  receive(moveId: string, receipt: Receipt) {
    this.sql.exec(
      "INSERT INTO handover_received (move_id, part, from_shard, last, version, profiles, rows) VALUES (?, ?, ?, ?, ?, ?, ?)",
      moveId,
      receipt.part,
      receipt.from,
      receipt.last ? 1 : 0,
      receipt.version,
      JSON.stringify(receipt.profiles),
      receipt.rows,
    );
  }

  receipts(moveId: string): Receipt[] {
    return this.sql
      .exec<{ part: number; from_shard: number; last: number; version: number; profiles: string; rows: number }>("SELECT * FROM handover_received WHERE move_id = ? ORDER BY part", moveId)
      .toArray()
      .map((r) => ({ part: r.part, from: r.from_shard, last: r.last === 1, version: r.version, profiles: JSON.parse(r.profiles) as string[], rows: r.rows }));
  }

  finished(moveId: string): { profiles: number; events: number } | null {
    return this.sql.exec<{ profiles: number; events: number }>("SELECT profiles, events FROM handover_finished WHERE move_id = ?", moveId).toArray()[0] ?? null;
  }

  /**
   * The move is finished here; its receipts stop naming the person's
   * profiles, which leave no trace here if they move on. The receipts are
   * kept `MOVED_MARK_DAYS`; the finish for good, so that a part or a finish
   * asked again at any time changes nothing.
   */
  finish(moveId: string, counts: { profiles: number; events: number }, now = Date.now()) {
    this.prune(now);
    this.sql.exec("INSERT INTO handover_finished (move_id, profiles, events, finished_at) VALUES (?, ?, ?, ?)", moveId, counts.profiles, counts.events, now);
    this.sql.exec("UPDATE handover_received SET profiles = '[]' WHERE move_id = ?", moveId);
  }
}
