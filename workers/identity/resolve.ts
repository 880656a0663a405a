import { type BlockEntry, mergeBlocks } from "./blocks";
import { type Cluster, type Conflict, type ConflictReason, IdentityGraph, type MergeRecord, type ReviewItem } from "./graph";
import { mergeFeatures } from "./features";
import { checkGuards, type WindowedValues } from "./guards";
import { compareTypes, type IdentitySettings } from "./settings";
import { type Identifier, identifierKey } from "./types";

export interface ResolveInput {
  messageId: string;
  /** Event time in ms: limits with a window count identifiers seen within it. */
  at: number;
  identifiers: Identifier[];
  /**
   * Identifiers quarantined in another shard of the workspace, whose index
   * entry this graph does not hold: refused as its own quarantined ones are.
   */
  quarantinedElsewhere?: ReadonlySet<string>;
}

export interface ResolveResult {
  /** The cluster the event belongs to; null when every identifier was refused. */
  clusterId: string | null;
  created: boolean;
  merge?: MergeRecord;
  dropped: Conflict[];
  reviews: ReviewItem[];
  /** Device-level identifiers now routed to this cluster (a shared device's latest user). */
  handoffs: string[];
  /** Block entries the merge took out or handed to the survivor (blocks.ts): the match blocks other graph shards share follow them. */
  blocksChanged?: BlockEntry[];
}

/** What a merge tells its caller. */
export interface MergeOutcome {
  created: boolean;
  merge?: MergeRecord;
  blocksChanged?: BlockEntry[];
}

/** A device is not a person: these follow whoever used the device last instead of merging people. */
const DEVICE_TYPES = new Set(["anonymous_id", "device_id", "advertising_id"]);
/** Identifiers strong enough that joining two user ids through one deserves a person's look. */
const WEAK_TYPES = new Set([...DEVICE_TYPES, "phone"]);

/**
 * Applies one event to the graph. Identifiers are taken in priority order and
 * each is accepted only if, together with everything accepted so far, it breaks
 * no guard (per-type limits, two user ids, never-merge pairs, the cluster cap,
 * quarantine). A refused identifier is dropped from the event and recorded; the
 * ones that still fit keep their true links. The clusters the accepted
 * identifiers touch are merged into the oldest.
 */
export function applyEvent(graph: IdentityGraph, settings: IdentitySettings, input: ResolveInput): ResolveResult {
  const result: ResolveResult = { clusterId: null, created: false, dropped: [], reviews: [], handoffs: [] };
  const ordered = [...dedupe(input.identifiers)].sort((a, b) => compareTypes(settings, a.type, b.type) || identifierKey(a).localeCompare(identifierKey(b)));

  if (graph.tombstones.has(input.messageId)) return replayTombstoned(graph, input, ordered, result);

  const userId = ordered.find((i) => i.type === "user_id")?.value;
  const accepted: Identifier[] = [];
  const targets = new Map<string, Cluster>();
  const views = new Map<string, WindowedValues>();
  let capQueued = false;

  for (const identifier of ordered) {
    const key = identifierKey(identifier);
    if (userId !== undefined && identifier.type !== "user_id" && noteUserId(graph, settings, key, userId, input, result)) {
      drop(graph, result, input, key, "quarantined", targets);
      continue;
    }
    const entry = graph.index.get(key);
    if (entry?.quarantined || (!entry && input.quarantinedElsewhere?.has(key))) {
      drop(graph, result, input, key, "quarantined", targets);
      continue;
    }
    const cluster = graph.clusterOf(key);
    const tentative = new Map(targets);
    if (cluster) tentative.set(cluster.id, cluster);
    const violation = checkGuards(graph, settings, [...tentative.values()], [...accepted, identifier], input.at, views);
    if (!violation) {
      accepted.push(identifier);
      if (cluster) targets.set(cluster.id, cluster);
      continue;
    }
    drop(graph, result, input, key, violation, tentative);
    if (violation === "user-id-conflict" && !WEAK_TYPES.has(identifier.type) && !graph.rejectedBetween(key, [...tentative.keys()]) && !graph.findOpenReview("user-id-conflict", key, [...tentative.keys()])) {
      result.reviews.push(queueReview(graph, "user-id-conflict", [...tentative.keys()], [key], input, `${key} links profiles that hold different user ids`));
    } else if (violation === "cluster-cap" && !capQueued) {
      capQueued = true;
      result.reviews.push(queueReview(graph, "cluster-cap", [...tentative.keys()], [key], input, `joining would exceed the cap of ${settings.clusterCap} identifiers`));
    }
  }

  if (accepted.length === 0) return result;
  const target = mergeInto(graph, [...targets.values()], input, accepted, result);
  for (const identifier of accepted) addIdentifier(graph, target, identifier, input.at, userId);
  graph.events.addLink(target.id, { messageId: input.messageId, keys: accepted.map(identifierKey), at: input.at });
  graph.events.assign(input.messageId, target.id);
  result.clusterId = target.id;
  // A review names both sides: the clusters the refused identifier reached and the event's own.
  for (const review of result.reviews) if (review.kind !== "quarantine" && !review.clusters.includes(target.id)) review.clusters.push(target.id);

  // Logout without reset: a device seen with another user now routes anonymous events to this one.
  if (userId !== undefined) {
    for (const conflict of result.dropped) {
      const entry = graph.index.get(conflict.dropped);
      const type = conflict.dropped.slice(0, conflict.dropped.indexOf(":"));
      if (conflict.reason === "user-id-conflict" && DEVICE_TYPES.has(type) && entry && !entry.quarantined) {
        entry.clusterId = target.id;
        result.handoffs.push(conflict.dropped);
      }
    }
  }
  return result;
}

function dedupe(identifiers: Identifier[]): Identifier[] {
  const seen = new Map<string, Identifier>();
  for (const identifier of identifiers) seen.set(identifierKey(identifier), identifier);
  return [...seen.values()];
}

/** Records the user id seen with an identifier; returns true when that quarantines it. */
function noteUserId(graph: IdentityGraph, settings: IdentitySettings, key: string, userId: string, input: ResolveInput, result: ResolveResult): boolean {
  const entry = graph.index.get(key);
  if (!entry || entry.quarantined || entry.shared) return false;
  if (!entry.userIds.includes(userId)) entry.userIds.push(userId);
  if (entry.userIds.length <= settings.bridgeQuarantineThreshold) return false;
  entry.quarantined = true;
  result.reviews.push(queueReview(graph, "quarantine", [graph.resolve(entry.clusterId).id], [key], input, `${key} was seen with ${entry.userIds.length} user ids`));
  return true;
}

function drop(graph: IdentityGraph, result: ResolveResult, input: ResolveInput, key: string, reason: ConflictReason, clusters: Map<string, Cluster>) {
  const conflict: Conflict = { messageId: input.messageId, dropped: key, reason, clusters: [...clusters.keys()], at: input.at };
  graph.conflicts.add(conflict);
  result.dropped.push(conflict);
}

function queueReview(graph: IdentityGraph, kind: ReviewItem["kind"], clusters: string[], identifiers: string[], input: ResolveInput, detail: string): ReviewItem {
  const item: ReviewItem = { id: graph.nextId("rev"), kind, clusters, identifiers, messageId: input.messageId, detail, status: "open", at: input.at };
  graph.addReview(item);
  return item;
}

function addIdentifier(graph: IdentityGraph, cluster: Cluster, identifier: Identifier, at: number, userId: string | undefined) {
  const key = identifierKey(identifier);
  const existing = cluster.identifiers.get(key);
  if (existing) {
    existing.firstSeen = Math.min(existing.firstSeen, at);
    existing.lastSeen = Math.max(existing.lastSeen, at);
  } else cluster.identifiers.set(key, { ...identifier, firstSeen: at, lastSeen: at });
  const entry = graph.index.get(key);
  if (entry) entry.clusterId = cluster.id;
  else graph.index.set(key, { clusterId: cluster.id, userIds: userId !== undefined && identifier.type !== "user_id" ? [userId] : [], quarantined: false });
}

/** The older cluster survives; the others forward to it and hand over their identifiers and links. */
export function mergeInto(graph: IdentityGraph, clusters: Cluster[], input: ResolveInput, accepted: Identifier[], result: MergeOutcome, rule: MergeRecord["rule"] = "shared-identifier"): Cluster {
  if (clusters.length === 0) {
    const cluster: Cluster = { id: graph.nextId("prof"), createdAt: input.at, seq: graph.nextSeq(), identifiers: new Map() };
    graph.clusters.set(cluster.id, cluster);
    result.created = true;
    return cluster;
  }
  const [survivor, ...absorbed] = [...clusters].sort((a, b) => a.createdAt - b.createdAt || a.seq - b.seq);
  if (absorbed.length === 0) return survivor!;
  const owners = new Map(clusters.flatMap((c) => [...c.identifiers.keys()].map((k) => [k, c.id] as const)));
  // Only a cluster with match features is in any block: a merge of the others (most, anonymous ones) moves no block.
  const matchable: string[] = [];
  for (const cluster of absorbed) {
    for (const [key, identifier] of cluster.identifiers) {
      const mine = survivor!.identifiers.get(key);
      survivor!.identifiers.set(key, mine ? { ...mine, firstSeen: Math.min(mine.firstSeen, identifier.firstSeen), lastSeen: Math.max(mine.lastSeen, identifier.lastSeen) } : identifier);
      const entry = graph.index.get(key);
      if (entry && graph.resolve(entry.clusterId).id === cluster.id) entry.clusterId = survivor!.id;
    }
    graph.events.moveLinks(cluster.id, survivor!.id);
    const absorbedFeatures = graph.features.get(cluster.id);
    if (absorbedFeatures) {
      graph.features.set(survivor!.id, mergeFeatures(graph.features.get(survivor!.id), absorbedFeatures));
      graph.features.delete(cluster.id);
      matchable.push(cluster.id);
    }
    cluster.identifiers = new Map();
    cluster.forwardedTo = survivor!.id;
  }
  const blocksChanged = matchable.length > 0 ? mergeBlocks(graph, survivor!.id, matchable) : [];
  if (blocksChanged.length > 0) result.blocksChanged = [...(result.blocksChanged ?? []), ...blocksChanged];
  const merge: MergeRecord = {
    id: graph.nextId("mrg"),
    survivor: survivor!.id,
    absorbed: absorbed.map((c) => c.id),
    messageId: input.messageId,
    evidence: accepted.map((i) => ({ key: identifierKey(i), clusterId: owners.get(identifierKey(i)) ?? "event" })),
    rule,
    at: input.at,
  };
  graph.merges.set(merge.id, merge);
  graph.onMerge?.(merge);
  result.merge = merge;
  return survivor!;
}

/** A retracted event replays without linking anything: it joins the cluster of its strongest identifier. */
function replayTombstoned(graph: IdentityGraph, input: ResolveInput, ordered: Identifier[], result: ResolveResult): ResolveResult {
  for (const identifier of ordered) {
    const cluster = graph.clusterOf(identifierKey(identifier));
    if (cluster) {
      graph.events.assign(input.messageId, cluster.id);
      result.clusterId = cluster.id;
      return result;
    }
  }
  return result;
}
