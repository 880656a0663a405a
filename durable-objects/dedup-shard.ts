import { DurableObject } from "cloudflare:workers";

/** How long a messageId is remembered. The contract promises at least 24 hours. */
export const DEDUP_RETENTION_MS = 48 * 60 * 60 * 1000;
const SWEEP_INTERVAL_MS = 60 * 60 * 1000;

export interface ClaimRequest {
  messageId: string;
  /** The queue message that carries this event: redeliveries keep the same one. */
  claimant: string;
  /** Names the archive object this consumer batch will write. */
  batchKey: string;
}

export type ClaimStatus =
  /** First sighting: this claimant owns the message. */
  | "new"
  /** A redelivery of the owning queue message: process again, idempotently. */
  | "mine"
  /** Another queue message (a client retry) already owns it: drop. */
  | "duplicate";

export interface ClaimResult {
  messageId: string;
  status: ClaimStatus;
  /** The batch key recorded at first claim, and whether that archive write was confirmed. */
  batchKey: string;
  archived: boolean;
}

/**
 * Remembers which messageIds a workspace has accepted, sharded by a hash of the
 * messageId (see `dedupShardName`). Each claim records the queue message that
 * owns the event, which separates a queue redelivery (process again, since the
 * previous attempt may not have finished) from a client retry (drop).
 */
export class DedupShard extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** Whether a sweep is known to be scheduled, so claims do not read the alarm every time. */
  private sweepScheduled = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS seen (
      message_id TEXT PRIMARY KEY,
      claimant TEXT NOT NULL,
      batch_key TEXT NOT NULL,
      archived INTEGER NOT NULL DEFAULT 0,
      seen_at INTEGER NOT NULL
    ) WITHOUT ROWID`);
    this.sql.exec("CREATE INDEX IF NOT EXISTS seen_at ON seen (seen_at)");
  }

  async claim(requests: ClaimRequest[], now = Date.now()): Promise<ClaimResult[]> {
    const results = this.ctx.storage.transactionSync(() =>
      requests.map((request): ClaimResult => {
        const row = this.sql
          .exec<{ claimant: string; batch_key: string; archived: number }>("SELECT claimant, batch_key, archived FROM seen WHERE message_id = ?", request.messageId)
          .toArray()[0];
        if (!row) {
          this.sql.exec("INSERT INTO seen (message_id, claimant, batch_key, seen_at) VALUES (?, ?, ?, ?)", request.messageId, request.claimant, request.batchKey, now);
          return { messageId: request.messageId, status: "new", batchKey: request.batchKey, archived: false };
        }
        const status: ClaimStatus = row.claimant === request.claimant ? "mine" : "duplicate";
        return { messageId: request.messageId, status, batchKey: row.batch_key, archived: row.archived === 1 };
      }),
    );
    if (!this.sweepScheduled) {
      if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(now + SWEEP_INTERVAL_MS);
      this.sweepScheduled = true;
    }
    return results;
  }

  /** Records that these messages are inside the archive object named by `batchKey`. */
  markArchived(messageIds: string[], batchKey: string): void {
    this.ctx.storage.transactionSync(() => {
      for (const id of messageIds) this.sql.exec("UPDATE seen SET archived = 1, batch_key = ? WHERE message_id = ?", batchKey, id);
    });
  }

  /** Forgets messageIds past retention, then sleeps until the next sweep (or until the next claim). */
  override async alarm(): Promise<void> {
    const cutoff = Date.now() - DEDUP_RETENTION_MS;
    this.sql.exec("DELETE FROM seen WHERE seen_at < ?", cutoff);
    const remaining = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM seen").one().n;
    this.sweepScheduled = remaining > 0;
    if (remaining > 0) await this.ctx.storage.setAlarm(Date.now() + SWEEP_INTERVAL_MS);
  }

  size(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM seen").one().n;
  }
}

/** 16 shards per workspace; see docs/limits.md for the sizing behind the number. */
export const DEDUP_SHARDS = 16;

export function dedupShardName(workspaceId: string, messageId: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < messageId.length; i++) {
    hash ^= messageId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return `${workspaceId}:${(hash >>> 0) % DEDUP_SHARDS}`;
}
