import { DurableObject } from "cloudflare:workers";
import type { QueuedEvent } from "../workers/intake/envelope";
import type { IdentityGraph } from "../workers/identity/graph";
import { clustersOfMerge } from "../workers/identity/graph-collections";
import { holdingMerge, holdingReview } from "../workers/identity/handover";
import { type IdentitySettings, identitySettingsSchema } from "../workers/identity/settings";
import { approveReview, rejectReview, splitIdentifiers, unmerge } from "../workers/identity/unmerge";
import { type FieldError, fieldErrors } from "../workers/lib/problem";
import { retentionSchema } from "../workers/privacy/settings";
import { traitValues } from "../workers/profiles/traits";
import type { ActivationEnvelope } from "../workers/segments/activation";
import type { Audience } from "../workers/segments/catalog";
import { AudienceEngine } from "./audience-engine";
import { type AudienceSyncPage, applyStatistics, backfillChunk, previewDefinition, putDefinition, syncPage } from "./audience-operations";
import { type EventAssignment, GraphChanges } from "./graph-changes";
import { GraphStore } from "./graph-store";
import { IndexBackfill, type PlacementPage } from "./index-backfill";
import { HandoverLedger, type Move } from "./handover-ledger";
import { acceptPart, finishHandOver, type HandoverParts, handOver } from "./handover-operations";
import { ObjectMeta } from "./object-meta";
import { type ErasureCounts, erasePerson, type PrivacyPerson, personForPrivacy } from "./privacy-operations";
import { ProfileStore } from "./profile-store";
import { accountMembers, accountRow, graphView, profileRow } from "./profile-views";
import { ProfileWriter, shardOf, workspaceOf } from "./profile-writer";

export type { AudienceSyncPage } from "./audience-operations";
export type { EventAssignment } from "./graph-changes";
export type { Move } from "./handover-ledger";
export type { ErasureCounts, PrivacyPerson } from "./privacy-operations";

export interface ResolveOptions {
  /** messageId → the source it came from, kept with each trait write and event. */
  sources?: Record<string, string>;
  /** This object's graph shard number; kept the first time one above 0 is given, and its ids carry it from then on (`prof_s2_…`). */
  shard?: number;
  /** Keys quarantined in another graph shard: refused here as quarantined when this graph has no entry for them. */
  quarantined?: string[];
}

/**
 * A workspace's identity graph, or one graph shard of it (shard 0 is reached
 * by the workspace id, shard n by `{workspaceId}#{n}`). Each object is the
 * single writer of the identity decisions of the people it holds, so
 * resolution is serial: every merge, guard and unmerge sees one consistent
 * graph. State is the pure `IdentityGraph` over tables in the object's SQLite
 * storage (graph-store.ts); people move between shards by hand-over
 * (handover-operations.ts). See docs/identity.md. The RPC bodies live beside it
 * (graph-changes, audience-operations, privacy-operations, handover-operations),
 * so this class stays the object's surface.
 */
export class IdentityGraphShard extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly graphs: GraphStore;
  private readonly store: ProfileStore;
  private readonly writer: ProfileWriter;
  private readonly audiences: AudienceEngine;
  private readonly changes: GraphChanges;
  private readonly ledger: HandoverLedger;
  private readonly backfill: IndexBackfill;
  private readonly handovers: HandoverParts;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // Known from the name before any call: a shard must tag the ids it issues (moves included) from its very first one.
    this.graphs = new GraphStore(ctx.storage, shardOf(ctx.id.name));
    this.store = new ProfileStore(this.sql);
    this.audiences = new AudienceEngine(this.sql, (id) => traitValues(this.store.traits(id)), (change) => this.store.recordEmission(change));
    this.ledger = new HandoverLedger(this.sql);
    this.backfill = new IndexBackfill(this.sql);
    this.changes = new GraphChanges(this.graphs, this.store, this.audiences, this.ledger);
    this.handovers = { sql: this.sql, graphs: this.graphs, store: this.store, audiences: this.audiences, ledger: this.ledger, meta: new ObjectMeta(this.sql) };
    this.writer = new ProfileWriter({ ctx, db: env.DB, activations: env.ACTIVATION_QUEUE as Queue<ActivationEnvelope>, store: this.store, audiences: this.audiences, graph: () => this.load() });
  }

  /**
   * Resolves events idempotently: an event already applied returns its current
   * profile and changes nothing. Profile state changes in the same turn, and its
   * write-through to D1 is scheduled at once.
   */
  resolveEvents(events: QueuedEvent[], options: ResolveOptions = {}): EventAssignment[] {
    if (options.shard !== undefined) this.graphs.useShard(options.shard);
    const assignments = this.changes.resolve(events, { sources: options.sources ?? {}, quarantined: options.quarantined });
    this.writer.schedule();
    return assignments;
  }

  /** Decisions naming a cluster another graph shard holds now are NOT_FOUND here: they are routed to that shard. */
  unmerge(mergeId: string, at = Date.now()) {
    return this.decided(() => unmerge(holdingMerge(this.load(), mergeId), mergeId, at), mergeId);
  }

  approveReview(reviewId: string, at = Date.now()) {
    return this.decided(() => approveReview(holdingReview(this.load(), reviewId), reviewId, at));
  }

  rejectReview(reviewId: string) {
    return this.decided(() => rejectReview(holdingReview(this.load(), reviewId), reviewId));
  }

  /** Splits chosen identifiers (`type:value`) out of a profile into profiles of their own. */
  splitIdentifiers(profileId: string, keys: string[]) {
    return this.decided(() => splitIdentifiers(this.load(), profileId, keys));
  }

  private decided<T extends object>(run: () => T, unmerging?: string) {
    const result = this.changes.decide(run, unmerging);
    this.writer.schedule();
    return result;
  }

  getSettings(): IdentitySettings {
    return this.graphs.settings();
  }

  /** What the router needs of shard 0 before routing a batch: the settings identifiers are extracted with, and whether the identifier index holds all of this object's keys yet. */
  routingState(): { settings: IdentitySettings; indexFilled: boolean } {
    return { settings: this.graphs.settings(), indexFilled: this.backfill.done() };
  }

  /** The next page of keys to place in the identifier index (docs/identity-sharding.md, "Setting the number of shards"). Reads only. */
  placementPage(limit: number): PlacementPage {
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new Error("limit must be an integer from 1 to 10,000");
    this.graphs.graph();
    return this.backfill.page(limit);
  }

  /** The page before `next` is placed in the index: the position moves on. */
  placementsPlaced(next: string) {
    this.backfill.placed(next);
  }

  /** New settings apply to decisions from now on; existing clusters are not re-evaluated. */
  putSettings(input: unknown): { ok: true; settings: IdentitySettings } | { ok: false; errors: FieldError[] } {
    this.load();
    const parsed = identitySettingsSchema.safeParse(input);
    if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error.issues) };
    this.graphs.putSettings(parsed.data);
    return { ok: true, settings: this.graphs.settings() };
  }

  /** A page of the review queue (of one status, or all) after the queue position `after` (0: the first page); reads that page only. */
  reviews(status: "open" | "approved" | "rejected" | undefined, after: number, limit: number) {
    return this.load().reviews.page(status, after, limit);
  }

  merge(mergeId: string) {
    return this.load().merges.get(mergeId) ?? null;
  }

  /**
   * A page of the review queue for the listing over graph shards: each review
   * with its queue position, and whether this shard lists it. A review naming
   * people on two shards is copied in both; only the shard holding the first
   * profile it names lists it (that profile's person carries a copy wherever
   * they go), so the merged listing shows it once. Reads that page only.
   */
  reviewQueue(status: "open" | "approved" | "rejected" | undefined, after: number, limit: number) {
    const graph = this.load();
    const rows = graph.reviews.positioned(status, after, limit + 1);
    const listed = (clusters: string[]) => clusters[0] === undefined || graph.clusters.has(clusters[0]);
    return { reviews: rows.slice(0, limit).map(({ review, position }) => ({ review, position, listed: listed(review.clusters) })), more: rows.length > limit };
  }

  /** This shard's copy of a review, with the profiles it names that this shard holds: it is decided where all of them are. */
  reviewCopy(reviewId: string) {
    const graph = this.load();
    const review = graph.reviews.get(reviewId);
    return review ? { review, held: review.clusters.filter((id) => graph.clusters.has(id)) } : null;
  }

  /** This shard's copy of a merge, with the profiles it names that this shard holds: it is unmerged where all of them are. */
  mergeCopy(mergeId: string) {
    const graph = this.load();
    const merge = graph.merges.get(mergeId);
    return merge ? { merge, held: clustersOfMerge(merge).filter((id) => graph.clusters.has(id)) } : null;
  }

  /** The live profile holding an identifier (`type:value`), following merges. */
  lookup(key: string) {
    const cluster = this.load().clusterOf(key);
    return cluster ? graphView(this.load(), this.store, cluster.id) : null;
  }

  /** Live profiles in creation order (ids count up), after `after`, with their identifiers: the admin listing. */
  listProfiles(after: string | null = null, limit = 100) {
    const graph = this.load();
    const ids = graph.clusters.liveIds(after, limit + 1);
    return {
      total: graph.clusters.liveCount(),
      profiles: ids.slice(0, limit).map((id) => ({ profileId: id, identifiers: [...graph.clusters.get(id)!.identifiers.values()] })),
      next: ids.length > limit ? ids[limit - 1]! : null,
    };
  }

  /** How many events the graph has applied: callers wait on it to see their writes. */
  appliedEvents(): number {
    return this.load().events.count();
  }

  profile(profileId: string) {
    const graph = this.load();
    return graph.clusters.has(profileId) ? graphView(graph, this.store, profileId) : null;
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

  /**
   * `resolveNow`'s second half, for an event the router already resolved on
   * this shard (synchronous tracking over several graph shards): writes
   * through, then answers the live profile `profileId` resolves to and the D1
   * bookmark after the write. Null when this shard holds no such profile
   * (it moved to another shard meanwhile).
   */
  async flushedProfile(profileId: string) {
    const bookmark = await this.writer.flush();
    const graph = this.load();
    return { bookmark, profile: graph.clusters.has(profileId) ? profileRow(graph, this.store, this.audiences, graph.resolve(profileId).id, Date.now()) : null };
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
    return accountMembers(this.load(), this.store, groupId);
  }

  /** Adds or replaces a segment or computed trait; a backfill (`backfillAudiences`) brings existing profiles up to date. */
  putAudience(input: unknown): { ok: true; audience: Audience; profiles: number } | { ok: false; errors: FieldError[] } {
    return putDefinition(this.audienceParts(), input);
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

  /**
   * A backfill chunk that stops at `through` (included): at most `limit` live
   * profiles in (`after`, `through`]; `next` is set while more of them may be
   * left. A backfill over several graph shards cuts each chunk at one profile
   * id for all of them (workers/identity/sharding/audience-backfill.ts).
   */
  backfillAudiencesThrough(after: string | null, through: string, limit: number) {
    const result = backfillChunk(this.audienceParts(), after, limit, Date.now(), through);
    this.writer.schedule();
    return result;
  }

  previewAudience(input: unknown, sampleSize: number) {
    return previewDefinition(this.audienceParts(), input, sampleSize, Date.now());
  }

  audienceMembers(audienceId: string, after: string | null, limit: number) {
    return this.audiences.members(audienceId, after, limit);
  }

  /** An audience's members as the activation envelopes of their entry, for a destination's initial sync (see `syncPage`). */
  audienceSyncPage(audienceId: string, after: string | null, limit: number): AudienceSyncPage | null {
    return syncPage(this.audienceParts(), workspaceOf(this.ctx.id.name), audienceId, after, limit);
  }

  /** New workspace statistics: every profile is evaluated again against them. */
  putStatistics(statistics: Record<string, number>) {
    const changed = applyStatistics(this.audienceParts(), statistics, Date.now());
    this.writer.schedule();
    return changed;
  }

  /**
   * Everything the object holds about the person an identifier (`type`, a raw
   * value normalised as the workspace stores it) or a `profile_id` names, for
   * an access request; null when no one holds it.
   */
  personForPrivacy(type: string, value: string): PrivacyPerson | null {
    return personForPrivacy(this.privacyParts(), type, value, Date.now());
  }

  /** Erases the people these profiles belong to, from the object now and from D1 with the next write-through (`flush`). */
  erasePerson(profileIds: string[]): ErasureCounts {
    const counts = erasePerson(this.privacyParts(), profileIds);
    this.writer.schedule();
    return counts;
  }

  /** Drops the payloads of events timestamped before `cutoff` (ms since the epoch), as the daily prune does; returns how many. */
  pruneEvents(cutoff: number): number {
    return this.store.dropPayloadsBefore(cutoff);
  }

  /** How many days of event payloads the daily prune keeps from now on (null: all of them). */
  setEventRetentionDays(days: number | null): { ok: true; days: number | null } | { ok: false; errors: FieldError[] } {
    const parsed = retentionSchema.shape.objectEvents.safeParse(days);
    if (parsed.success) this.writer.setRetentionDays(parsed.data);
    return parsed.success ? { ok: true, days: parsed.data } : { ok: false, errors: fieldErrors(parsed.error.issues) };
  }

  /** Hands the people holding `keys` over to graph shard `to` (step 1, here; docs/identity.md, "Handing a person over to another shard"). */
  handOver(keys: string[], to: number): { moves: Move[] } {
    return handOver(this.handovers, keys, to);
  }

  /** The stored JSON of one part of a move made here. */
  handOverPart(moveId: string, part: number): string {
    return this.ledger.part(moveId, part);
  }

  /** A move made here: whether it is completed (its parts dropped) and how many parts it has; null for a move this object never made. Reads only. */
  handOverStatus(moveId: string): { completed: boolean; parts: number } | null {
    const move = this.ledger.move(moveId);
    return move ? { completed: move.completed, parts: move.parts } : null;
  }

  /** Writes one part of a person handed over from shard `from` (step 2, at the target); accepting it again changes nothing. */
  acceptHandOverPart(moveId: string, from: number, part: number, body: string): { rows: number } {
    return acceptPart(this.handovers, moveId, from, part, body);
  }

  /** Makes the person live here once every part is in, and writes them through to D1 (step 3); idempotent. */
  finishHandOver(moveId: string, from: number, keys: string[]): { profiles: number; events: number } {
    const counts = finishHandOver(this.handovers, moveId, from, keys);
    this.writer.schedule();
    return counts;
  }

  /** Drops a move's stored parts once the identifier index points at the target (step 4, here); the moved marks stay. */
  completeHandOver(moveId: string): void {
    this.ledger.complete(moveId);
  }

  private privacyParts() {
    return { graphs: this.graphs, store: this.store, audiences: this.audiences };
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
    return this.store.outbox.backlog();
  }

  override async alarm() {
    await this.writer.alarm();
  }

  private load(): IdentityGraph {
    return this.graphs.graph();
  }
}
