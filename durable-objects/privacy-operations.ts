import { z } from "zod";
import { eraseClusters, type Footprint, footprint, forgetNamed } from "../workers/identity/erase";
import { normalizeIdentifier } from "../workers/identity/extract";
import { featuresFromEvent } from "../workers/identity/features";
import type { IdentityGraph, MergeRecord, ReviewItem } from "../workers/identity/graph";
import type { ProfileFeatures } from "../workers/identity/probabilistic";
import { type Identifier, identifierKey } from "../workers/identity/types";
import type { ConsentEntry } from "../workers/profiles/consent";
import type { EventRecord } from "../workers/profiles/event-record";
import type { IdentifierRow, ProfileRow } from "../workers/profiles/write-through";
import type { AudienceEngine } from "./audience-engine";
import type { GraphStore } from "./graph-store";
import type { PendingMatchLeads } from "./pending-match-leads";
import type { ProfileStore } from "./profile-store";
import { profileRow } from "./profile-views";

/**
 * The identity object's side of privacy requests: finding everything it holds
 * about a person (an access request), and erasing it (a deletion). Kept apart
 * from the object so it stays a thin adapter.
 */

/**
 * Parsed JSON. Not `unknown`, which the object's RPC stub turns into `never`,
 * and not a recursive type, which the stub's type mapping cannot resolve.
 */
export type JsonValue = string | number | boolean | null | object;
type JsonObject = Record<string, JsonValue>;

export type PrivacyProfile = Omit<ProfileRow, "traits" | "traitMeta" | "computedTraits" | "identifiers" | "links"> & {
  traits: JsonObject;
  traitMeta: JsonObject;
  computedTraits: JsonObject;
  identifiers: IdentifierRow[];
  links: { groupId: string; sourceId: string | null; at: number }[];
};

export type PrivacyEvent = Omit<EventRecord, "properties" | "traits" | "context"> & { properties?: JsonObject; traits?: JsonObject; context: JsonObject };

/** Everything the identity object holds about one person, as plain JSON. */
export interface PrivacyPerson {
  profileId: string;
  /** The live id and every id absorbed into it (or restored from it) that still resolves to it. */
  profileIds: string[];
  /**
   * The identifiers that are the person's alone: what a deletion suppresses and
   * erases, and names them by at destinations.
   */
  identifiers: Identifier[];
  /**
   * Identifiers they held or sent that another person holds now (a device
   * handed over at a logout, a value dropped from their events because someone
   * else owns it): shown in an access export, never suppressed or erased.
   */
  sharedIdentifiers: Identifier[];
  /** The live cluster's user id, the one destinations know them by. */
  userId: string | null;
  /** Every event the object holds for them. */
  messageIds: string[];
  groupIds: string[];
  profile: PrivacyProfile;
  /** Every event payload the object still holds for them, oldest first. */
  events: PrivacyEvent[];
  merges: MergeRecord[];
  reviews: ReviewItem[];
  consent: Record<string, ConsentEntry>;
  consentHistory: { messageId: string; at: number; categoryPreferences: Record<string, boolean> }[];
}

export interface ErasureCounts {
  profiles: number;
  identifiers: number;
  events: number;
}

export interface PrivacyParts {
  graphs: GraphStore;
  store: ProfileStore;
  audiences: AudienceEngine;
  leads: PendingMatchLeads;
}

/** Links made by approvals and probabilistic merges are named like events but are none. */
const isEvent = (messageId: string) => !messageId.startsWith("review:") && !messageId.startsWith("match:");

/** The live profile a privacy request names: `profile_id` directly, any other type normalised as stored. */
function findLive(graph: IdentityGraph, graphs: GraphStore, rawType: string, value: string): string | null {
  const type = rawType.trim().toLowerCase();
  if (type === "profile_id") return graph.liveIdOf(value);
  const normalized = normalizeIdentifier(type, value, graphs.settings());
  // A quarantined identifier is shared by many people: it finds no one (clusterOf skips it).
  return normalized.ok ? (graph.clusterOf(identifierKey(normalized.identifier))?.id ?? null) : null;
}

/** The events a person has in the graph and in the store. */
function eventIds(graph: IdentityGraph, store: ProfileStore, found: Footprint): string[] {
  const fromGraph = found.messageIds.filter((id) => graph.events.clusterOf(id) !== undefined && isEvent(id));
  return [...new Set([...fromGraph, ...store.eventIdsOf(found.clusterIds)])].sort();
}

export function personForPrivacy({ graphs, store, audiences }: PrivacyParts, type: string, value: string, now: number): PrivacyPerson | null {
  const graph = graphs.graph();
  const liveId = findLive(graph, graphs, type, value);
  if (!liveId) return null;
  const found = footprint(graph, [liveId]);
  const row = profileRow(graph, store, audiences, liveId, now)!;
  const events = found.clusterIds.flatMap((id) => store.events(id, { order: "asc", limit: Number.MAX_SAFE_INTEGER }));
  events.sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp) || (a.message_id < b.message_id ? -1 : 1));
  return {
    profileId: liveId,
    profileIds: found.clusterIds,
    identifiers: found.ownKeys.map(parseKey),
    sharedIdentifiers: found.identifierKeys.filter((key) => !found.ownKeys.includes(key)).map(parseKey),
    userId: [...(graph.clusters.get(liveId)?.identifiers.values() ?? [])].find((i) => i.type === "user_id")?.value ?? null,
    messageIds: eventIds(graph, store, found),
    groupIds: [...new Set(found.clusterIds.flatMap((id) => store.accounts.links(id).map((l) => l.groupId)))].sort(),
    // Stored values are parsed JSON: the casts only restate that for the RPC types.
    profile: { ...row, identifiers: row.identifiers ?? [], links: row.links ?? [] } as PrivacyProfile,
    events: events as PrivacyEvent[],
    merges: found.merges,
    reviews: found.reviews,
    consent: store.consent.of(liveId),
    consentHistory: store.consent.statements(liveId),
  };
}

const parseKey = (key: string): Identifier => {
  const colon = key.indexOf(":");
  return { type: key.slice(0, colon), value: key.slice(colon + 1) };
};

/**
 * Erases the people `profileIds` belong to from the object, in one
 * transaction: profile state, audience state and pending writes first, then
 * the graph, whose rows are deleted: nothing that named them stays in the
 * object's storage. Their D1 rows go with the next write-through.
 * Idempotent: a person already erased counts zero. With `sharedBlocks` (the
 * workspace has graph shards sharing match blocks in the identifier index),
 * the block entries other profiles left, because their features named the
 * erased email or phone, wait for the index to drop them too.
 */
export function erasePerson({ graphs, store, audiences, leads }: PrivacyParts, profileIds: string[], sharedBlocks = false): ErasureCounts {
  const graph = graphs.graph();
  const found = footprint(graph, profileIds);
  if (found.clusterIds.length === 0) {
    // Held on another graph shard: only what names them here goes.
    graphs.atomically(() => forgetNamed(graph, profileIds));
    return { profiles: 0, identifiers: 0, events: 0 };
  }
  const events = eventIds(graph, store, found);
  const theirs = ownMatchValues(store, events);
  graphs.atomically(() => {
    store.erase(found.clusterIds, events, found.ownKeys);
    leads.forget(found.clusterIds);
    for (const id of found.clusterIds) audiences.forget(id);
    const { blocksLeft } = eraseClusters(graph, found.clusterIds, theirs);
    // Kept until the identifier index drops them too (`blockChangesWaiting`): a retried erasure would find nothing left to scrub.
    if (sharedBlocks && blocksLeft.length) leads.addBlockChanges(blocksLeft, leads.stamp());
    forgetNamed(graph, profileIds);
  });
  return { profiles: found.clusterIds.length, identifiers: found.ownKeys.length, events: events.length };
}

/** An event's stored payload, as far as match features read it. */
const payloadForMatching = z.object({ type: z.string(), context: z.record(z.string(), z.unknown()), traits: z.unknown().optional() });

/**
 * What the person's own events said for matching (names, addresses, IPs,
 * user agents), read before they are erased: copies of these in other
 * profiles' match features go with them. An event whose payload is gone
 * (past retention) or unreadable says nothing.
 */
function ownMatchValues(store: ProfileStore, messageIds: string[]): Partial<ProfileFeatures>[] {
  return store.eventRows(messageIds).flatMap((row) => {
    if (!row.record) return [];
    let payload;
    try {
      payload = payloadForMatching.safeParse(JSON.parse(row.record));
    } catch {
      return [];
    }
    return payload.success ? [featuresFromEvent(payload.data, [])] : [];
  });
}
