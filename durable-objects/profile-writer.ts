import type { IdentityGraph } from "../workers/identity/graph";
import { categoryPreferences } from "../workers/profiles/consent";
import { EVENT_RETENTION_DAYS } from "../workers/profiles/event-record";
import { WRITE_CHUNK_CHARS, writeStatements } from "../workers/profiles/write-through";
import { type ActivationEnvelope, activationEnvelope } from "../workers/segments/activation";
import type { AudienceEngine } from "./audience-engine";
import { ObjectMeta } from "./object-meta";
import type { ProfileStore } from "./profile-store";
import { buildWriteSet, oldestWritten } from "./profile-views";

/** Outbox entries (and as many events) per D1 batch, and batches per alarm run before it yields and reschedules. */
const FLUSH_ENTRIES = 1_000;
const FLUSH_ROUNDS = 25;
const DAY_MS = 86_400_000;
/** Activation messages per `sendBatch` (the queue takes at most 100). */
const SEND_BATCH = 100;

/** The ids activations address a person by (their latest user id and anonymous id), and the consent they carry. */
export function recipientOf(graph: IdentityGraph, store: ProfileStore, profileId: string) {
  const cluster = graph.clusters.has(profileId) ? graph.resolve(profileId) : undefined;
  const latest = (type: string) =>
    [...(cluster?.identifiers.values() ?? [])].filter((i) => i.type === type).sort((a, b) => b.lastSeen - a.lastSeen)[0]?.value ?? null;
  return { userId: latest("user_id"), anonymousId: latest("anonymous_id"), categoryPreferences: cluster ? categoryPreferences(store.consent.of(cluster.id)) : {} };
}

/**
 * Write-through from the identity object to D1. Changes wait in the object's
 * outbox (written in the same turn as the change itself) and an alarm set for
 * "now" sends them in `batch()`es. A failed batch throws, the runtime retries
 * the alarm with backoff, and the outbox still holds the work; every write is
 * an idempotent upsert of current state, so a retry never sends a stale copy.
 */
export interface WriterDeps {
  ctx: DurableObjectState;
  db: D1Database;
  activations: Queue<ActivationEnvelope>;
  store: ProfileStore;
  audiences: AudienceEngine;
  graph: () => IdentityGraph;
}

export class ProfileWriter {
  private flushing: Promise<unknown> = Promise.resolve();
  /** When the alarm is set for, as far as this instance knows. */
  private scheduledAt: number | null = null;
  private readonly ctx: DurableObjectState;
  private readonly store: ProfileStore;
  private readonly meta: ObjectMeta;

  constructor(private readonly deps: WriterDeps) {
    this.ctx = deps.ctx;
    this.store = deps.store;
    this.meta = new ObjectMeta(this.ctx.storage.sql);
  }

  /** One alarm serves both: now when there is something to write, else the next instant a segment could flip. */
  schedule() {
    const target = this.store.outbox.hasBacklog() ? Date.now() : this.deps.audiences.nextWakeup();
    if (target === null || (this.scheduledAt !== null && this.scheduledAt <= target)) return;
    this.scheduledAt = target;
    void this.ctx.storage.setAlarm(target);
  }

  async alarm() {
    this.scheduledAt = null;
    this.deps.audiences.wake(Date.now());
    await this.serialized(() => this.writeThrough(FLUSH_ROUNDS));
    this.pruneDaily();
    this.schedule();
  }

  /** At most once a day, on the first alarm after the day turned: event payloads past retention go. */
  private pruneDaily() {
    const now = Date.now();
    if (now - (this.meta.get("pruned_at") ?? 0) < DAY_MS) return;
    const days = this.retentionDays();
    if (days !== null) this.store.dropPayloadsBefore(now - days * DAY_MS);
    this.meta.set("pruned_at", now);
  }

  /** Days of event payloads the object keeps (the workspace's `objectEvents` retention); null keeps them all. */
  retentionDays(): number | null {
    const stored = this.meta.get("event_retention_days");
    // 0 stands for "keep": meta values are integers, and no retention is 0 days long.
    return stored === null ? EVENT_RETENTION_DAYS : stored === 0 ? null : stored;
  }

  setRetentionDays(days: number | null) {
    this.meta.set("event_retention_days", days ?? 0);
  }

  /** Everything pending, now; the bookmark of the last write (or of the primary, when nothing was pending). */
  flush(): Promise<string | null> {
    return this.serialized(async () => (await this.writeThrough(Number.POSITIVE_INFINITY)) ?? (await this.currentBookmark()));
  }

  /** One write-through at a time: each reads current state, so a later one never sends an older copy. */
  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.flushing.then(task);
    this.flushing = run.catch(() => undefined);
    return run;
  }

  private async writeThrough(rounds: number): Promise<string | null> {
    let bookmark: string | null = null;
    for (let round = 0; round < rounds; round++) {
      const entries = this.store.outbox.pending(FLUSH_ENTRIES);
      const now = Date.now();
      const events = this.store.outbox.pendingEvents(FLUSH_ENTRIES, oldestWritten(now), WRITE_CHUNK_CHARS);
      if (!entries.length && events.upTo === null) break;
      const set = buildWriteSet(this.deps.graph(), this.store, this.deps.audiences, entries, events.chunks, now);
      const session = this.deps.db.withSession("first-primary");
      const statements = writeStatements(session, this.workspaceId(), this.meta.increment("version"), set);
      if (statements.length) await session.batch(statements);
      bookmark = session.getBookmark() ?? bookmark;
      this.store.outbox.written(entries);
      this.store.outbox.eventsWritten(events.upTo);
    }
    await this.sendActivations();
    return bookmark;
  }

  /**
   * Segment and computed-trait changes go to the activation queue after the
   * profile rows that show them. A failed send leaves them recorded and the
   * alarm retries; destinations dedupe on the messageIds, which never change.
   */
  private async sendActivations() {
    const graph = this.deps.graph();
    for (;;) {
      const changes = this.store.outbox.pendingEmissions(SEND_BATCH);
      if (!changes.length) return;
      const envelopes = changes.map((change) => activationEnvelope(this.workspaceId(), change, recipientOf(graph, this.store, change.profileId)));
      await this.deps.activations.sendBatch(envelopes.map((body) => ({ body, contentType: "json" as const })));
      this.store.outbox.emitted(changes.at(-1)!.seq);
    }
  }

  private async currentBookmark(): Promise<string | null> {
    const session = this.deps.db.withSession("first-primary");
    await session.prepare("SELECT 1").first();
    return session.getBookmark();
  }

  private workspaceId(): string {
    return workspaceOf(this.ctx.id.name);
  }
}

/**
 * The workspace an identity object serves, from the name it is reached by:
 * the workspace id for its first graph shard, `{workspaceId}#{n}` for shard n
 * (workspace ids never hold a `#`). Every shard writes D1 rows and activations
 * under the workspace id.
 */
export function workspaceOf(name: string | undefined): string {
  if (!name) throw new Error("the identity object must be reached by its workspace id (getByName)");
  const hash = name.indexOf("#");
  return hash < 0 ? name : name.slice(0, hash);
}

/** The graph shard an identity object is, from the same name: 0 for the workspace id, n for `{workspaceId}#{n}`. */
export function shardOf(name: string | undefined): number {
  const hash = name?.indexOf("#") ?? -1;
  if (hash < 0) return 0;
  const shard = Number(name!.slice(hash + 1));
  if (!Number.isInteger(shard) || shard < 1) throw new Error(`identity object name ${name} does not end in a graph shard number`);
  return shard;
}
