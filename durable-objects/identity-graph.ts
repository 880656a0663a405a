import { DurableObject } from "cloudflare:workers";
import type { QueuedEvent } from "../workers/intake/envelope";
import { extractIdentifiers, previousUserId } from "../workers/identity/extract";
import type { IdentityGraph } from "../workers/identity/graph";
import { applyEventWithFeatures, type EventInput } from "../workers/identity/apply";
import { featuresFromEvent } from "../workers/identity/features";
import { type IdentitySettings, identitySettingsSchema } from "../workers/identity/settings";
import { identifierKey } from "../workers/identity/types";
import { approveReview, IdentityRuleError, rejectReview, splitIdentifiers, unmerge } from "../workers/identity/unmerge";
import { type FieldError, fieldErrors } from "../workers/lib/problem";
import { traitValues } from "../workers/profiles/traits";
import { type ActivationEnvelope, activationEnvelope } from "../workers/segments/activation";
import { type Audience, audienceSchema } from "../workers/segments/catalog";
import { canonical } from "../workers/segments/time";
import { AudienceEngine } from "./audience-engine";
import { backfillChunk, preview } from "./audience-operations";
import { GraphLog, type Operation } from "./graph-log";
import { personEventOf, ProfileStore } from "./profile-store";
import { accountRow, profileRow } from "./profile-views";
import { identityOf, ProfileWriter } from "./profile-writer";

export interface EventAssignment {
  messageId: string;
  profileId: string | null;
  mergeId?: string;
  dropped: { identifier: string; reason: string }[];
}

/** A page of an audience's members as activation envelopes (`audienceSyncPage`). */
export interface AudienceSyncPage {
  envelopes: ActivationEnvelope[];
  /** The last member's profile id when there may be more; null on the last page. */
  next: string | null;
  /** The audience's members now. */
  total: number;
  /** The earliest `since` of the page's members. */
  oldest: number | null;
}

export interface ResolveOptions {
  /** messageId → the source it came from, kept with each trait write and event. */
  sources?: Record<string, string>;
}


/**
 * A workspace's identity graph. One object per workspace is the single writer
 * of identity decisions, so resolution is serial and needs no cross-object
 * saga: every merge, guard and unmerge sees one consistent graph. State is the
 * pure `IdentityGraph`, kept in memory, made durable as an operation log plus
 * periodic snapshots in the object's SQLite storage. See docs/identity.md for
 * the capacity this gives and the plan to shard past it.
 */
export class IdentityGraphShard extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly log: GraphLog;
  private readonly store: ProfileStore;
  private readonly writer: ProfileWriter;
  private readonly audiences: AudienceEngine;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.log = new GraphLog(ctx.storage);
    this.store = new ProfileStore(this.sql);
    this.audiences = new AudienceEngine(this.sql, (id) => traitValues(this.store.traits(id)), (change) => this.store.recordEmission(change));
    this.writer = new ProfileWriter({ ctx, db: env.DB, activations: env.ACTIVATION_QUEUE as Queue<ActivationEnvelope>, store: this.store, audiences: this.audiences, graph: () => this.load() });
  }

  /**
   * Resolves events idempotently: an event already applied returns its current
   * profile and changes nothing. Profile state changes in the same turn, and its
   * write-through to D1 is scheduled at once.
   */
  resolveEvents(events: QueuedEvent[], options: ResolveOptions = {}): EventAssignment[] {
    const graph = this.load();
    const inputs: EventInput[] = [];
    const out: EventAssignment[] = [];
    for (const event of events) {
      if (graph.eventCluster.has(event.messageId)) {
        out.push({ messageId: event.messageId, profileId: graph.clusterOfEvent(event.messageId)?.id ?? null, dropped: [] });
        continue;
      }
      const { identifiers } = extractIdentifiers(event, this.settings);
      const previous = previousUserId(event, this.settings);
      if (previous && graph.index.has(identifierKey(previous))) identifiers.push(previous);
      const input: EventInput = { messageId: event.messageId, at: Date.parse(event.timestamp) || Date.parse(event.receivedAt), identifiers, features: featuresFromEvent(event, identifiers) };
      inputs.push(input);
      const fresh = identifiers.map(identifierKey).filter((key) => !graph.index.has(key));
      const result = this.withMerges(() => applyEventWithFeatures(graph, this.settings, input));
      const profileId = graph.clusterOfEvent(event.messageId)?.id ?? null;
      const recorded = this.store.recordEvent(event, options.sources?.[event.messageId] ?? null, profileId, fresh);
      if (recorded && profileId) this.audiences.onEvent(profileId, personEventOf(recorded), Date.now());
      out.push({
        messageId: event.messageId,
        profileId,
        ...(result.merge ? { mergeId: result.merge.id } : {}),
        dropped: result.dropped.map((d) => ({ identifier: d.dropped, reason: d.reason })),
      });
    }
    if (inputs.length) this.record({ kind: "events", inputs });
    this.writer.schedule();
    return out;
  }

  unmerge(mergeId: string, at = Date.now()) {
    return this.decide(() => unmerge(this.load(), mergeId, at), { kind: "unmerge", mergeId, at });
  }

  approveReview(reviewId: string, at = Date.now()) {
    return this.decide(() => approveReview(this.load(), reviewId, at), { kind: "approve", reviewId, at });
  }

  rejectReview(reviewId: string) {
    return this.decide(() => rejectReview(this.load(), reviewId), { kind: "reject", reviewId });
  }

  /** Splits chosen identifiers (`type:value`) out of a profile into profiles of their own. */
  splitIdentifiers(profileId: string, keys: string[]) {
    return this.decide(() => splitIdentifiers(this.load(), profileId, keys), { kind: "split", profileId, keys });
  }

  /** Runs a graph change and moves profile state along with every merge it made. */
  private withMerges<T>(run: () => T): T {
    const graph = this.load();
    const before = graph.merges.size;
    const result = run();
    for (const merge of [...graph.merges.values()].slice(before)) {
      this.store.merged(merge.survivor, merge.absorbed);
      for (const id of merge.absorbed) this.audiences.forget(id);
      this.rebuildAudiences(graph.resolve(merge.survivor).id);
    }
    return result;
  }

  /** Segment state follows the person's events: rebuilt whenever a merge or unmerge changes which events are theirs. */
  private rebuildAudiences(profileId: string) {
    if (this.audiences.audiences().length) this.audiences.rebuild(profileId, this.store.personEvents(profileId), Date.now());
  }

  /**
   * A person's decision: refused ones come back as a result, not a thrown error,
   * so the caller can answer with a problem document. Rules check before they change anything.
   */
  private decide<T extends object>(run: () => T, op: Operation): ({ ok: true } & T) | { ok: false; code: "NOT_FOUND" | "CONFLICT"; detail: string } {
    try {
      const result = this.withMerges(run);
      // Unmerges and splits move events between profiles: each follows the graph, and traits are recomputed.
      if ("restored" in result && "kept" in result) {
        const graph = this.load();
        const retracted = op.kind === "unmerge" ? (graph.merges.get(op.mergeId)?.absorbed ?? []) : [];
        const restored = result.restored as string[];
        const touched = this.store.regrouped([result.kept as string, ...restored, ...retracted], (messageId) => graph.clusterOfEvent(messageId)?.id ?? null);
        for (const id of touched) if (graph.resolve(id).id === id) this.rebuildAudiences(id);
        for (const id of retracted) {
          this.store.markDirty("profile", id);
          this.store.markDirty("membership", id);
          if (graph.resolve(id).id !== id) this.audiences.forget(id);
        }
      }
      this.record(op);
      this.writer.schedule();
      return { ok: true, ...result };
    } catch (error) {
      if (!(error instanceof IdentityRuleError)) throw error;
      return { ok: false, code: error.code, detail: error.message };
    }
  }

  getSettings(): IdentitySettings {
    this.load();
    return this.settings;
  }

  /** New settings apply to decisions from now on; existing clusters are not re-evaluated. */
  putSettings(input: unknown): { ok: true; settings: IdentitySettings } | { ok: false; errors: FieldError[] } {
    this.load();
    const parsed = identitySettingsSchema.safeParse(input);
    if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error.issues) };
    this.record({ kind: "settings", settings: parsed.data });
    return { ok: true, settings: this.settings };
  }

  reviews(status?: "open" | "approved" | "rejected") {
    return [...this.load().reviews.values()].filter((r) => !status || r.status === status);
  }

  merge(mergeId: string) {
    return this.load().merges.get(mergeId) ?? null;
  }

  /** The live profile holding an identifier (`type:value`), following merges. */
  lookup(key: string) {
    const cluster = this.load().clusterOf(key);
    return cluster ? this.profileView(cluster.id) : null;
  }

  /** Live profiles in creation order, for listings and exports. */
  listProfiles(offset = 0, limit = 100) {
    const live = this.load().liveClusters();
    return {
      total: live.length,
      profiles: live.slice(offset, offset + limit).map((c) => ({ profileId: c.id, identifiers: [...c.identifiers.keys()] })),
    };
  }

  /** How many events the graph has applied: callers wait on it to see their writes. */
  appliedEvents(): number {
    return this.load().eventCluster.size;
  }

  profile(profileId: string) {
    const graph = this.load();
    return graph.clusters.has(profileId) ? this.profileView(profileId) : null;
  }

  private profileView(profileId: string) {
    const graph = this.load();
    const cluster = graph.resolve(profileId);
    const merges = [...graph.merges.values()].filter((m) => m.survivor === cluster.id || m.absorbed.includes(cluster.id) || m.retracted?.restored.includes(cluster.id));
    return {
      profileId: cluster.id,
      requestedId: profileId,
      identifiers: [...cluster.identifiers.values()],
      links: cluster.links,
      merges,
      conflicts: graph.conflicts.filter((c) => c.clusters.includes(cluster.id)),
    };
  }

  /**
   * Resolves and writes through at once, for a tracking call that asked for
   * synchronous processing: returns the event's live profile and the D1
   * bookmark after the write, so a Profile API read that sends it sees the write.
   */
  async resolveNow(events: QueuedEvent[], options: ResolveOptions = {}) {
    const assignments = this.resolveEvents(events, options);
    const bookmark = await this.writer.flush();
    const graph = this.load();
    const id = assignments.find((a) => a.profileId)?.profileId;
    return { assignments, bookmark, profile: id ? profileRow(graph, this.store, this.audiences, graph.resolve(id).id, Date.now()) : null };
  }

  /** The live profile holding `type:value` (or `profile_id:{id}`), read here: the strongly consistent read. */
  profileByKey(key: string) {
    const graph = this.load();
    const id = key.startsWith("profile_id:") ? key.slice("profile_id:".length) : undefined;
    const cluster = id !== undefined ? (graph.clusters.has(id) ? graph.resolve(id) : undefined) : graph.clusterOf(key);
    return cluster ? profileRow(graph, this.store, this.audiences, cluster.id, Date.now()) : null;
  }

  profileEvents(profileId: string, options: Parameters<ProfileStore["events"]>[1]) {
    return this.store.events(profileId, options);
  }

  account(groupId: string) {
    return accountRow(this.store, groupId);
  }

  accountMembers(groupId: string) {
    const graph = this.load();
    return this.store.accountMembers(groupId).map((member) => ({
      profileId: member.profileId,
      userId: [...graph.resolve(member.profileId).identifiers.values()].find((i) => i.type === "user_id")?.value ?? null,
      linkedAt: member.at,
      sourceId: member.sourceId,
    }));
  }

  /** Adds or replaces a segment or computed trait; a backfill (`backfillAudiences`) brings existing profiles up to date. */
  putAudience(input: unknown): { ok: true; audience: Audience; profiles: number } | { ok: false; errors: FieldError[] } {
    this.load();
    const parsed = audienceSchema.safeParse(input);
    if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error.issues) };
    this.audiences.put(parsed.data);
    return { ok: true, audience: parsed.data, profiles: this.load().liveClusters().length };
  }

  removeAudience(audienceId: string): boolean {
    const existed = this.audiences.audiences().some((a) => a.id === audienceId);
    for (const profileId of this.audiences.remove(audienceId)) this.store.markDirty("audiences", profileId);
    this.writer.schedule();
    return existed;
  }

  listAudiences(): Audience[] {
    return this.audiences.audiences();
  }

  backfillAudiences(after: string | null, limit: number) {
    const result = backfillChunk(this.audienceParts(), after, limit, Date.now());
    this.writer.schedule();
    return result;
  }

  previewAudience(input: unknown, sampleSize: number) {
    const parsed = audienceSchema.safeParse(input);
    if (!parsed.success) return { ok: false as const, errors: fieldErrors(parsed.error.issues) };
    return { ok: true as const, ...preview(this.audienceParts(), parsed.data, sampleSize, Date.now()) };
  }

  audienceMembers(audienceId: string, after: string | null, limit: number) {
    return this.audiences.members(audienceId, after, limit);
  }

  /**
   * An audience's current members after `after` (profile id order), as the
   * activation envelopes their entry would have produced, for a destination's
   * initial sync: `seq` 0 and the member's `since` as the time, so each
   * member's messageIds are the same on every run. Null when the audience is unknown here.
   */
  audienceSyncPage(audienceId: string, after: string | null, limit: number): AudienceSyncPage | null {
    const audience = this.audiences.audiences().find((a) => a.id === audienceId);
    if (!audience) return null;
    const workspaceId = this.ctx.id.name;
    if (!workspaceId) throw new Error("the identity object must be reached by its workspace id (getByName)");
    const graph = this.load();
    const members = this.audiences.members(audienceId, after, limit);
    const envelopes = members.map((member) =>
      activationEnvelope(
        workspaceId,
        { audience, profileId: member.profileId, at: member.since, seq: 0, ...(audience.kind === "segment" ? { entered: true } : { value: member.value }) },
        identityOf(graph, member.profileId),
      ),
    );
    return {
      envelopes,
      next: members.length === limit ? members.at(-1)!.profileId : null,
      total: this.audiences.memberCount(audienceId),
      oldest: members.length ? Math.min(...members.map((m) => m.since)) : null,
    };
  }

  /** New workspace statistics: every profile is evaluated again against them. */
  putStatistics(statistics: Record<string, number>) {
    // The cron sends them every run: unchanged figures change no one's membership.
    if (canonical(this.audiences.statisticsNow()) === canonical(statistics)) return 0;
    this.audiences.putStatistics(statistics);
    const now = Date.now();
    const changed = this.load().liveClusters().filter((c) => this.audiences.reevaluate(c.id, now)).length;
    this.writer.schedule();
    return changed;
  }

  private audienceParts() {
    return { graph: this.load(), store: this.store, engine: this.audiences };
  }

  /** Writes every pending profile change through to D1; returns the bookmark of the last write. */
  flush(): Promise<string | null> {
    return this.writer.flush();
  }

  /** Profile changes not yet in D1. */
  writeBacklog(): number {
    return this.store.backlog();
  }

  override async alarm() {
    await this.writer.alarm();
  }

  private load(): IdentityGraph {
    return this.log.graph();
  }

  private get settings(): IdentitySettings {
    return this.log.settings();
  }

  private record(op: Operation) {
    this.log.record(op);
  }
}
