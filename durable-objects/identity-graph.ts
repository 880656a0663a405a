import type { AnsweredEntry } from "../workers/identity/blocks";
import type { LeadVersion } from "./pending-match-leads";
import type { QueuedEvent } from "../workers/intake/envelope";
import { holdingMerge, holdingReview } from "../workers/identity/handover";
import { type IdentitySettings, identitySettingsSchema } from "../workers/identity/settings";
import { approveReview, rejectReview, splitIdentifiers, unmerge } from "../workers/identity/unmerge";
import { type FieldError, fieldErrors } from "../workers/lib/problem";
import { retentionSchema } from "../workers/privacy/settings";
import type { EventAssignment } from "./graph-changes";
import { IdentityGraphReads } from "./identity-graph-reads";
import { blockChangesWaiting, type CrossShardPairs, leadsMatched, matchAgain, matchFeatures, scoreAcross } from "./match-operations";
import { type ErasureCounts, erasePerson, type PrivacyPerson, personForPrivacy } from "./privacy-operations";
import { profileRow } from "./profile-views";

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
  /** Answer the blocks of each profile matched here (`matchBlocks`), for the router to match it with the other shards' people. */
  matchLeads?: boolean;
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
 * so this class and the classes it extends stay the object's surface.
 *
 * That surface is one class chain, a group of RPCs to a file, all of them
 * callable on the object's stub: identity-graph-base.ts (the stores, built in
 * the constructor) → identity-graph-handover-rpc.ts (routing state, index
 * placement, hand-over) → identity-graph-audience-rpc.ts (segments and computed
 * traits) → identity-graph-reads.ts (reviews, merges, profiles, accounts) →
 * this class: resolution, matching across shards, identity decisions, settings, privacy, write-through
 * and the alarm.
 */
export class IdentityGraphShard extends IdentityGraphReads {
  /**
   * Resolves events idempotently: an event already applied returns its current
   * profile and changes nothing. Profile state changes in the same turn, and its
   * write-through to D1 is scheduled at once.
   */
  resolveEvents(events: QueuedEvent[], options: ResolveOptions = {}): EventAssignment[] {
    if (options.shard !== undefined) this.graphs.useShard(options.shard);
    const assignments = this.changes.resolve(events, { sources: options.sources ?? {}, quarantined: options.quarantined, matchLeads: options.matchLeads === true });
    this.writer.schedule();
    return assignments;
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

  /**
   * Decisions naming a cluster another graph shard holds now are NOT_FOUND here: they are routed to
   * that shard. With `sharedBlocks` (over graph shards), the block entries a decision changes wait
   * for the identifier index to follow them (`blockChangesWaiting`).
   */
  unmerge(mergeId: string, at = Date.now(), sharedBlocks = false) {
    return this.decided(() => unmerge(holdingMerge(this.load(), mergeId), mergeId, at), mergeId, sharedBlocks);
  }

  approveReview(reviewId: string, at = Date.now(), sharedBlocks = false) {
    return this.decided(() => approveReview(holdingReview(this.load(), reviewId), reviewId, at), undefined, sharedBlocks);
  }

  rejectReview(reviewId: string) {
    return this.decided(() => rejectReview(holdingReview(this.load(), reviewId), reviewId));
  }

  /** Splits chosen identifiers (`type:value`) out of a profile into profiles of their own. */
  splitIdentifiers(profileId: string, keys: string[], sharedBlocks = false) {
    return this.decided(() => splitIdentifiers(this.load(), profileId, keys), undefined, sharedBlocks);
  }

  /** Match features of the profiles held here among `profileIds`, followed through merges (docs/identity-sharding.md, "Probabilistic matching over shards"). Reads only. */
  matchFeatures(profileIds: string[]) {
    return matchFeatures(this.graphs, profileIds);
  }

  /** Scores profiles held here against profiles other shards hold; reviews are queued here, and pairs to auto-merge are answered to be brought together first. */
  scoreAcross(pairs: CrossShardPairs) {
    return scoreAcross(this.graphs, pairs);
  }

  /** Matches a profile again here, once the people it should be scored with were handed over: an auto-merge is decided by the guards, in one graph. */
  matchAgain(profileId: string, at: number) {
    const result = matchAgain(this.graphs, this.changes, this.leads, profileId, at);
    this.writer.schedule();
    return result;
  }

  /** The router matched these leads across shards (their `matchBlocks`) and the index follows these block entries (`blockUpdates`): none is answered again. */
  leadsMatched(leads: LeadVersion[], settledBlocks: AnsweredEntry[] = []) {
    return leadsMatched(this.graphs, this.leads, leads, settledBlocks);
  }

  /** Block entries waiting for the identifier index to follow them (an erasure's, an unconfirmed update's); confirmed with `leadsMatched`. */
  blockChangesWaiting() {
    return blockChangesWaiting(this.graphs, this.leads);
  }

  private decided<T extends object>(run: () => T, unmerging?: string, sharedBlocks = false) {
    const result = this.changes.decide(run, unmerging, sharedBlocks === true);
    this.writer.schedule();
    return result;
  }

  getSettings(): IdentitySettings {
    return this.graphs.settings();
  }

  /** New settings apply to decisions from now on; existing clusters are not re-evaluated. */
  putSettings(input: unknown): { ok: true; settings: IdentitySettings } | { ok: false; errors: FieldError[] } {
    this.load();
    const parsed = identitySettingsSchema.safeParse(input);
    if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error.issues) };
    this.graphs.putSettings(parsed.data);
    return { ok: true, settings: this.graphs.settings() };
  }

  /**
   * Everything the object holds about the person an identifier (`type`, a raw
   * value normalised as the workspace stores it) or a `profile_id` names, for
   * an access request; null when no one holds it.
   */
  personForPrivacy(type: string, value: string): PrivacyPerson | null {
    return personForPrivacy(this.privacyParts(), type, value, Date.now());
  }

  /**
   * Erases the people these profiles belong to, from the object now and from D1 with the next
   * write-through (`flush`); with `sharedBlocks`, the block entries that leaves for the identifier
   * index to drop wait for it (`blockChangesWaiting`).
   */
  erasePerson(profileIds: string[], sharedBlocks = false): ErasureCounts {
    const counts = erasePerson(this.privacyParts(), profileIds, sharedBlocks === true);
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

  private privacyParts() {
    return { graphs: this.graphs, store: this.store, audiences: this.audiences, leads: this.leads };
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
}
