import { applyEventWithFeatures, type EventInput } from "../workers/identity/apply";
import { type BlockEntry, type BlockMembership, membershipOf } from "../workers/identity/blocks";
import { eventIdentifiers, keysOfFound } from "../workers/identity/extract";
import { featuresFromEvent, hasMatchableFeatures } from "../workers/identity/features";
import type { IdentityGraph, MergeRecord } from "../workers/identity/graph";
import { blockingKeys } from "../workers/identity/probabilistic";
import { identifierKey } from "../workers/identity/types";
import { IdentityRuleError } from "../workers/identity/unmerge";
import type { QueuedEvent } from "../workers/intake/envelope";
import type { AudienceEngine } from "./audience-engine";
import type { GraphStore } from "./graph-store";
import type { PendingMatchLeads } from "./pending-match-leads";
import { personEventOf, type ProfileStore } from "./profile-store";

export interface EventAssignment {
  messageId: string;
  profileId: string | null;
  mergeId?: string;
  dropped: { identifier: string; reason: string }[];
  /** Not applied: one of its identifier keys was handed over to graph shard `to` (see handover-operations.ts). */
  moved?: { key: string; to: number };
  /** Not applied because an earlier event of the call was `moved`: sent again, in order, after it. */
  deferred?: true;
  /** Keys this event's resolution quarantined (a `quarantine` review was queued for each). */
  quarantined?: string[];
  /** With `matchLeads`: the profile gained a blocking key and was matched here; these are its blocks, for matching across graph shards. */
  matchBlocks?: string[];
  /** The block clock's version of `matchBlocks` (see `BlockMembership`). */
  matchVersion?: number;
  /**
   * With `matchLeads`: block entries that changed here outside matching (a key
   * the profile no longer gives, a merge), each with whether it is in that
   * block now: the router brings the identifier index's match blocks in line.
   */
  blockUpdates?: BlockMembership[];
}

export interface ResolveChoices {
  /** messageId → the source it came from, kept with each trait write and event. */
  sources: Record<string, string>;
  /** Keys quarantined in another graph shard, refused here as if quarantined here. */
  quarantined?: string[];
  /** Answer `matchBlocks` for the router to match across graph shards. */
  matchLeads?: boolean;
}

/** The moved marks of keys handed over to another graph shard (handover-ledger.ts). */
export interface MovedMarks {
  anyMarked(): boolean;
  marksOf(keys: Iterable<string>): Map<string, { shard: number }>;
}

/** What an event carries, extracted once per call: its identifiers, an alias's previous user id, and their keys. */
interface Extracted {
  found: ReturnType<typeof eventIdentifiers>;
  keys: string[];
}

export type Decision<T> = ({ ok: true } & T) | { ok: false; code: "NOT_FOUND" | "CONFLICT"; detail: string };

/**
 * Graph changes and the profile state that follows them: events resolve and
 * their profile state is recorded in the same turn; a merge moves the
 * absorbed profiles' events, traits, consent and segment state to the
 * survivor; an unmerge or split sends each event to the part that now holds
 * it and recomputes each part. The object calls these; it schedules the write-through.
 */
export class GraphChanges {
  constructor(
    private readonly graphs: GraphStore,
    private readonly store: ProfileStore,
    private readonly audiences: AudienceEngine,
    private readonly marks: MovedMarks,
    private readonly leads: PendingMatchLeads,
  ) {}

  /**
   * Resolves events idempotently: an event already applied returns its current
   * profile and changes nothing. Profile state changes in the same turn. An
   * event carrying a key handed over to another shard is not applied (`moved`),
   * nor is any event after it in the call (`deferred`).
   */
  resolve(events: QueuedEvent[], choices: ResolveChoices): EventAssignment[] {
    return this.graphs.atomically(() => this.resolveAll(events, choices));
  }

  private resolveAll(events: QueuedEvent[], { sources, quarantined, matchLeads }: ResolveChoices): EventAssignment[] {
    const graph = this.graphs.graph();
    const settings = this.graphs.settings();
    const elsewhere = quarantined?.length ? new Set(quarantined) : undefined;
    // One lookup for the batch; an event repeated within it is found in `known` once applied.
    const known = graph.events.clustersOf(events.map((event) => event.messageId));
    // Extracted once per new event: the moved-marks check, the read-ahead and resolution all use them.
    const extracted = new Map<QueuedEvent, Extracted>();
    for (const event of events) {
      if (known.has(event.messageId)) continue;
      const found = eventIdentifiers(event, settings);
      extracted.set(event, { found, keys: keysOfFound(found) });
    }
    // Only an object that handed someone over has marks: the others never read them.
    const movedTo = this.marks.anyMarked() ? this.movedKeys(extracted, elsewhere) : undefined;
    // Every identifier the new events carry, read in a few statements rather than one lookup each.
    graph.index.prefetch([...extracted.values()].flatMap(({ keys }) => keys));
    // The new events' rows are written together as the loop ends.
    return this.store.recording(
      [...extracted.keys()].map((event) => event.messageId),
      () => this.applyAll(events, extracted, known, movedTo, { sources, quarantined: elsewhere, matchLeads }),
    );
  }

  private applyAll(
    events: QueuedEvent[],
    extracted: Map<QueuedEvent, Extracted>,
    known: Map<string, string>,
    movedTo: Map<QueuedEvent, { key: string; to: number }> | undefined,
    { sources, quarantined: elsewhere, matchLeads }: { sources: Record<string, string>; quarantined: Set<string> | undefined; matchLeads: boolean | undefined },
  ): EventAssignment[] {
    const graph = this.graphs.graph();
    const settings = this.graphs.settings();
    const out: EventAssignment[] = [];
    // Leads answered before whose matching was never confirmed: answered again (a batch delivered again, a matching that failed).
    const waiting = matchLeads ? this.leads.waiting((id) => graph.liveIdOf(id)) : undefined;
    const blocksAgain = (profileId: string) => (waiting?.has(profileId) ? blocksOf(graph, profileId) : undefined);
    // Block changes answered before whose index update was never confirmed: answered again, once, with their profile's next event.
    const unsettled = matchLeads ? this.leads.waitingBlocks((id) => graph.liveIdOf(id)) : undefined;
    // One version for every word on blocks this call says, taken only if it says one.
    let version: number | undefined;
    const stamp = () => (version ??= this.leads.stamp());
    const blockUpdates = (profileId: string, changed: BlockEntry[] = []) => {
      const entries = [...(unsettled?.get(profileId) ?? []), ...changed];
      unsettled?.delete(profileId);
      return entries.length ? { blockUpdates: membershipOf(graph, entries, stamp()) } : {};
    };
    const lead = (blocks: string[] | undefined) => (blocks ? { matchBlocks: blocks, matchVersion: stamp() } : {});
    let stopped = false;
    for (const event of events) {
      if (stopped) {
        out.push({ messageId: event.messageId, profileId: null, dropped: [], deferred: true });
        continue;
      }
      const applied = known.get(event.messageId);
      if (applied !== undefined) {
        const profileId = graph.resolve(applied).id;
        const again = blocksAgain(profileId);
        out.push({ messageId: event.messageId, profileId, dropped: [], ...lead(again), ...blockUpdates(profileId) });
        continue;
      }
      const moved = movedTo?.get(event);
      if (moved) {
        out.push({ messageId: event.messageId, profileId: null, dropped: [], moved });
        stopped = true;
        continue;
      }
      const { found } = extracted.get(event)!;
      const previous = found.previous;
      const identifiers = previous && graph.index.has(identifierKey(previous)) ? [...found.identifiers, previous] : found.identifiers;
      const input: EventInput = {
        messageId: event.messageId,
        at: Date.parse(event.timestamp) || Date.parse(event.receivedAt),
        identifiers,
        features: featuresFromEvent(event, identifiers),
        ...(elsewhere ? { quarantinedElsewhere: elsewhere } : {}),
      };
      const fresh = identifiers.map(identifierKey).filter((key) => !graph.index.has(key));
      const result = this.withMerges(() => applyEventWithFeatures(graph, settings, input));
      // The event's cluster, followed through any merge its own suggestions made: no need to read it back from storage.
      const profileId = result.clusterId ? graph.resolve(result.clusterId).id : null;
      if (result.clusterId) known.set(event.messageId, result.clusterId);
      const recorded = this.store.recordEvent(event, sources[event.messageId] ?? null, profileId, fresh);
      if (recorded && profileId) this.audiences.onEvent(profileId, personEventOf(recorded), Date.now());
      const quarantinedNow = result.reviews.filter((r) => r.kind === "quarantine").flatMap((r) => r.identifiers);
      let matchBlocks: string[] | undefined;
      let updates = {};
      if (matchLeads && profileId) {
        if (result.matchedOn) this.leads.add(profileId, stamp());
        if (result.blocksChanged) this.leads.addBlockChanges(result.blocksChanged, stamp());
        matchBlocks = result.matchedOn ?? blocksAgain(profileId);
        updates = blockUpdates(profileId, result.blocksChanged);
      }
      out.push({
        messageId: event.messageId,
        profileId,
        ...(result.merge ? { mergeId: result.merge.id } : {}),
        dropped: result.dropped.map((d) => ({ identifier: d.dropped, reason: d.reason })),
        ...(quarantinedNow.length ? { quarantined: quarantinedNow } : {}),
        ...lead(matchBlocks),
        ...updates,
      });
    }
    return out;
  }

  /**
   * The events carrying a key marked moved, with the first such key (as
   * extracted, an alias's previous user id included) and its shard: one query
   * for the call. A key quarantined elsewhere links no one wherever it is, so
   * it keeps no event from being applied here.
   */
  private movedKeys(extracted: Map<QueuedEvent, Extracted>, quarantined: Set<string> | undefined): Map<QueuedEvent, { key: string; to: number }> {
    const linking = (keys: string[]) => (quarantined ? keys.filter((key) => !quarantined.has(key)) : keys);
    const marks = this.marks.marksOf([...extracted.values()].flatMap(({ keys }) => linking(keys)));
    const out = new Map<QueuedEvent, { key: string; to: number }>();
    if (marks.size === 0) return out;
    for (const [event, { keys }] of extracted) {
      const key = linking(keys).find((k) => marks.has(k));
      if (key !== undefined) out.set(event, { key, to: marks.get(key)!.shard });
    }
    return out;
  }

  /** Runs a graph change and moves profile state along with every merge it made. */
  withMerges<T>(run: () => T): T {
    const graph = this.graphs.graph();
    const made: MergeRecord[] = [];
    graph.onMerge = (merge) => made.push(merge);
    let result: T;
    try {
      result = run();
    } finally {
      graph.onMerge = undefined;
    }
    for (const merge of made) {
      this.store.merged(merge.survivor, merge.absorbed);
      for (const id of merge.absorbed) this.audiences.forget(id);
      this.rebuildAudiences(graph.resolve(merge.survivor).id);
    }
    return result;
  }

  /**
   * A person's decision: refused ones come back as a result, not a thrown error,
   * so the caller can answer with a problem document. Rules check before they change anything.
   * `unmerging`: the merge an unmerge retracts, whose absorbed profiles are recomputed too.
   */
  /**
   * With `sharedBlocks` (graph shards share match blocks in the identifier
   * index), the block entries the decision changed wait for the index to
   * follow them (`blockChangesWaiting`); either way they are not part of the answer.
   */
  decide<T extends object>(run: () => T, unmerging?: string, sharedBlocks = false): Decision<Omit<T, "blocksChanged">> {
    try {
      return this.graphs.atomically(() => {
        const { blocksChanged, ...decided } = this.decideNow(run, unmerging) as Decision<T> & { blocksChanged?: BlockEntry[] };
        if (sharedBlocks && blocksChanged?.length) this.leads.addBlockChanges(blocksChanged, this.leads.stamp());
        return decided as Decision<Omit<T, "blocksChanged">>;
      });
    } catch (error) {
      if (!(error instanceof IdentityRuleError)) throw error;
      return { ok: false, code: error.code, detail: error.message };
    }
  }

  private decideNow<T extends object>(run: () => T, unmerging: string | undefined): Decision<T> {
    const result = this.withMerges(run);
    // Unmerges and splits move events between profiles: each follows the graph, and traits and consent are recomputed.
    if ("restored" in result && "kept" in result) {
      const graph = this.graphs.graph();
      const retracted = unmerging ? (graph.merges.get(unmerging)?.absorbed ?? []) : [];
      const restored = result.restored as string[];
      const touched = this.store.regrouped([result.kept as string, ...restored, ...retracted], (messageId) => graph.clusterOfEvent(messageId)?.id ?? null);
      for (const id of touched) if (graph.resolve(id).id === id) this.rebuildAudiences(id);
      for (const id of retracted) {
        this.store.markDirty("profile", id);
        this.store.markDirty("membership", id);
        if (graph.resolve(id).id !== id) this.audiences.forget(id);
      }
    }
    return { ok: true, ...result };
  }

  /** Segment state follows the person's events: rebuilt whenever a merge or unmerge changes which events are theirs. */
  private rebuildAudiences(profileId: string) {
    if (this.audiences.audiences().length) this.audiences.rebuild(profileId, this.store.personEvents(profileId), Date.now());
  }
}

/** A profile's blocking keys, when it has features worth matching. */
function blocksOf(graph: IdentityGraph, profileId: string): string[] | undefined {
  const features = graph.features.get(profileId);
  return features && hasMatchableFeatures(features) ? blockingKeys(features) : undefined;
}
