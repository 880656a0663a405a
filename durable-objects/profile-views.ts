import type { ClusterIdentifier, IdentityGraph } from "../workers/identity/graph";
import { EVENT_RETENTION_DAYS } from "../workers/profiles/event-record";
import { coreAttributes, traitMeta, traitValues } from "../workers/profiles/traits";
import type { AccountRow, ProfileRow, WriteSet } from "../workers/profiles/write-through";
import type { AudienceEngine } from "./audience-engine";
import type { OutboxEntry, ProfileStore } from "./profile-store";

const DAY_MS = 86_400_000;

/**
 * A profile as the object knows it now: what write-through sends to D1 and
 * what a strongly consistent read returns, so both paths show the same thing.
 * An absorbed id yields a row pointing at the profile it resolves to.
 */
export function profileRow(graph: IdentityGraph, store: ProfileStore, audiences: AudienceEngine, profileId: string, now: number): ProfileRow | null {
  return profileRows(graph, store, audiences, [profileId], now, new Set([profileId]))[0] ?? null;
}

/**
 * `profileRow` for many profiles, reading each kind of state (traits, latest
 * event, account links, audiences, consent) once for all of them rather than
 * once per profile. Identifiers and account links are read only for profiles
 * in `withMembership`, the ones whose membership may have changed.
 */
export function profileRows(
  graph: IdentityGraph,
  store: ProfileStore,
  audiences: AudienceEngine,
  profileIds: Iterable<string>,
  now: number,
  withMembership: Set<string>,
  sources?: Map<string, string | null>,
): ProfileRow[] {
  const known = [...profileIds].filter((id) => graph.clusters.has(id));
  if (known.length === 0) return [];
  const live = known.filter((id) => graph.resolve(id).id === id);
  const traitsOf = store.traitsOf(live);
  const lastOf = store.lastEventsOf(live);
  const linksOf = store.accounts.linksOf(live.filter((id) => withMembership.has(id)));
  const valuesOf = audiences.valuesOfMany(live);
  const consentOf = store.consent.ofMany(live);
  return known.map((profileId) => {
    const cluster = graph.clusters.get(profileId)!;
    const canonical = graph.resolve(profileId);
    if (canonical.id !== profileId) return absorbedRow(profileId, canonical.id, cluster.createdAt, now);
    const writes = traitsOf.get(profileId) ?? [];
    const traits = traitValues(writes);
    const held = [...cluster.identifiers.values()];
    const last = lastOf.get(profileId);
    const seen = held.flatMap((i) => [i.firstSeen, i.lastSeen]);
    const membership = withMembership.has(profileId);
    return {
      profileId,
      canonicalId: null,
      ...coreAttributes(traits, held),
      traits,
      traitMeta: traitMeta(writes),
      createdAt: cluster.createdAt,
      firstSeenAt: seen.length ? Math.min(...seen) : null,
      lastSeenAt: seen.length ? Math.max(...seen, last?.at ?? 0) : (last?.at ?? null),
      updatedAt: now,
      lastSourceId: last?.source_id ?? null,
      lastMessageId: last?.message_id ?? null,
      // Identifiers and links are only read (and written to D1) when they may have changed.
      identifiers: membership ? identifierRows(store, cluster.identifiers, sources) : null,
      links: membership ? (linksOf.get(profileId) ?? []) : null,
      ...(valuesOf.get(profileId) ?? { segments: [], computedTraits: {} }),
      consent: consentOf.get(profileId) ?? {},
    };
  });
}

/** The row of a profile merged into another: it names the survivor and holds nothing. */
function absorbedRow(profileId: string, canonicalId: string, createdAt: number, now: number): ProfileRow {
  return {
    profileId,
    canonicalId,
    userId: null,
    email: null,
    phone: null,
    firstName: null,
    lastName: null,
    traits: {},
    traitMeta: {},
    createdAt,
    firstSeenAt: null,
    lastSeenAt: null,
    updatedAt: now,
    lastSourceId: null,
    lastMessageId: null,
    identifiers: [],
    links: [],
    segments: [],
    computedTraits: {},
    consent: {},
  };
}

function identifierRows(store: ProfileStore, held: Map<string, ClusterIdentifier>, sources?: Map<string, string | null>) {
  const sourceOf = sources ?? store.identifierSources([...held.keys()]);
  return [...held].map(([key, i]) => ({ type: i.type, value: i.value, sourceId: sourceOf.get(key) ?? null, firstSeen: i.firstSeen, lastSeen: i.lastSeen }));
}

export function accountRow(store: ProfileStore, groupId: string): AccountRow | null {
  const account = store.accounts.account(groupId);
  if (!account) return null;
  const writes = store.accounts.traits(groupId);
  return {
    groupId,
    traits: traitValues(writes),
    traitMeta: traitMeta(writes),
    createdAt: account.created_at,
    updatedAt: account.updated_at,
    lastSourceId: account.last_source_id,
    lastMessageId: account.last_message_id,
  };
}

/** Profiles linked to an account, oldest link first, with their user id. */
export function accountMembers(graph: IdentityGraph, store: ProfileStore, groupId: string) {
  return store.accounts.members(groupId).map((member) => ({
    profileId: member.profileId,
    userId: [...graph.resolve(member.profileId).identifiers.values()].find((i) => i.type === "user_id")?.value ?? null,
    linkedAt: member.at,
    sourceId: member.sourceId,
  }));
}

/** Events older than this (ms since the epoch) are not written to D1: the Profile API keeps EVENT_RETENTION_DAYS of them. */
export const oldestWritten = (now: number) => now - EVENT_RETENTION_DAYS * DAY_MS;

/** What the outbox entries stand for, read from current state: a retried write sends the latest, never a stale copy. */
export function buildWriteSet(graph: IdentityGraph, store: ProfileStore, audiences: AudienceEngine, entries: OutboxEntry[], eventChunks: string[], now: number): WriteSet {
  const set: WriteSet = { profiles: [], accounts: [], events: [], eventChunks, reassign: [], erase: [] };
  const oldest = oldestWritten(now);
  const membership = new Set(entries.filter((e) => e.kind === "membership").map((e) => e.id));
  const profiles = new Set(entries.filter((e) => e.kind === "profile" || e.kind === "membership" || e.kind === "audiences").map((e) => e.id));
  // The sources of every identifier written, in one query rather than one per identifier.
  const keys = [...membership].flatMap((id) => (graph.clusters.has(id) ? [...graph.resolve(id).identifiers.keys()] : []));
  const sources = store.identifierSources(keys);
  set.profiles.push(...profileRows(graph, store, audiences, profiles, now, membership, sources));
  const eventIds: string[] = [];
  for (const entry of entries) {
    if (entry.kind === "account") {
      const row = accountRow(store, entry.id);
      if (row) set.accounts.push(row);
    } else if (entry.kind === "reassign") {
      if (graph.clusters.has(entry.id)) set.reassign.push({ from: entry.id, to: graph.resolve(entry.id).id });
    } else if (entry.kind === "event") eventIds.push(entry.id);
    else if (entry.kind === "erase") set.erase.push(entry.id);
  }
  // Events marked the way objects stored before marked them are read by id; the rest come as chunks.
  for (const row of store.eventRows(eventIds)) {
    if (!row.profile_id || !row.record || row.at < oldest) continue;
    set.events.push({ messageId: row.message_id, profileId: row.profile_id, type: row.type, event: row.name, timestamp: row.at, sourceId: row.source_id, payload: row.record });
  }
  return set;
}

/** A profile's identity graph for the admin API: identifiers, links, merges and conflicts, and its consent. */
export function graphView(graph: IdentityGraph, store: ProfileStore, profileId: string) {
  const cluster = graph.resolve(profileId);
  const merges = graph.merges.involving(cluster.id);
  return {
    profileId: cluster.id,
    requestedId: profileId,
    identifiers: [...cluster.identifiers.values()],
    links: graph.events.links(cluster.id),
    merges,
    conflicts: graph.conflicts.all().filter((c) => c.clusters.includes(cluster.id)),
    consent: store.consent.of(cluster.id),
  };
}
