import { chunkBySize } from "../lib/chunks";
import type { ProfileConsent } from "./consent";

/**
 * The D1 side of write-through: plain rows in, prepared statements out, to be
 * run as one `batch()` (one transaction, so no row is ever half-written). Lists
 * travel as one JSON parameter read with `json_each`, which keeps every
 * statement far below D1's 100 bound parameters whatever a profile holds.
 */

export interface IdentifierRow {
  type: string;
  value: string;
  sourceId: string | null;
  firstSeen: number;
  lastSeen: number;
}

export interface ProfileRow {
  profileId: string;
  /** Set when the profile was absorbed by a merge: the profile it now resolves to. */
  canonicalId: string | null;
  userId: string | null;
  email: string | null;
  phone: string | null;
  firstName: string | null;
  lastName: string | null;
  traits: Record<string, unknown>;
  traitMeta: Record<string, unknown>;
  createdAt: number;
  firstSeenAt: number | null;
  lastSeenAt: number | null;
  updatedAt: number;
  lastSourceId: string | null;
  lastMessageId: string | null;
  /** `null`: unchanged since the last write, so not rewritten (they change far less often than the row). */
  identifiers: IdentifierRow[] | null;
  links: { groupId: string; sourceId: string | null; at: number }[] | null;
  /** Segment memberships and computed trait values, as evaluated now. */
  segments: { id: string; key: string; name: string; enteredAt: string }[];
  computedTraits: Record<string, unknown>;
  /**
   * Consent per category (workers/profiles/consent.ts). Always set by the
   * identity object; optional because readers of D1 that predate it build
   * rows without it, and a missing one is written as `{}`.
   */
  consent?: ProfileConsent;
}

export interface AccountRow {
  groupId: string;
  traits: Record<string, unknown>;
  traitMeta: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
  lastSourceId: string | null;
  lastMessageId: string | null;
}

export interface EventRow {
  messageId: string;
  profileId: string;
  type: string;
  event: string | null;
  timestamp: number;
  sourceId: string | null;
  payload: string;
}

export interface WriteSet {
  profiles: ProfileRow[];
  accounts: AccountRow[];
  events: EventRow[];
  /** Events already in D1 under an absorbed profile move to the profile it resolves to. */
  reassign: { from: string; to: string }[];
  /** Erased profiles: every D1 row of theirs goes (`eraseStatements`). */
  erase: string[];
}

/** Events travel in chunks of about this many characters of JSON per statement. */
const EVENT_CHUNK_CHARS = 256_000;

type Db = Pick<D1Database, "prepare">;

export function writeStatements(db: Db, workspaceId: string, version: number, set: WriteSet): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
  for (const chunk of chunkBySize(set.events, (event) => event.payload.length + 200, EVENT_CHUNK_CHARS)) {
    statements.push(
      db
        .prepare(
          `INSERT INTO profile_events (workspace_id, message_id, profile_id, type, event, timestamp, source_id, payload)
           SELECT ?1, j.value ->> '$.messageId', j.value ->> '$.profileId', j.value ->> '$.type', j.value ->> '$.event', j.value ->> '$.timestamp', j.value ->> '$.sourceId', j.value ->> '$.payload'
           FROM json_each(?2) AS j WHERE true
           ON CONFLICT (workspace_id, message_id) DO UPDATE SET profile_id = excluded.profile_id`,
        )
        .bind(workspaceId, JSON.stringify(chunk)),
    );
  }
  for (const { from, to } of set.reassign) {
    statements.push(db.prepare("UPDATE profile_events SET profile_id = ?3 WHERE workspace_id = ?1 AND profile_id = ?2").bind(workspaceId, from, to));
  }
  for (const profile of set.profiles) statements.push(...profileStatements(db, workspaceId, version, profile));
  for (const account of set.accounts) {
    statements.push(
      db
        .prepare(
          `INSERT INTO accounts (workspace_id, group_id, traits, trait_meta, created_at, updated_at, last_source_id, last_message_id, version)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
           ON CONFLICT (workspace_id, group_id) DO UPDATE SET traits = excluded.traits, trait_meta = excluded.trait_meta, created_at = excluded.created_at,
             updated_at = excluded.updated_at, last_source_id = excluded.last_source_id, last_message_id = excluded.last_message_id, version = excluded.version
           WHERE excluded.version > accounts.version`,
        )
        .bind(workspaceId, account.groupId, JSON.stringify(account.traits), JSON.stringify(account.traitMeta), account.createdAt, account.updatedAt, account.lastSourceId, account.lastMessageId, version),
    );
  }
  // Last, so that nothing earlier in the batch can leave a row of an erased profile behind.
  if (set.erase.length) statements.push(...eraseStatements(db, workspaceId, set.erase));
  return statements;
}

/**
 * Deletes erased profiles from D1: their rows and the rows of profiles they
 * absorbed (whose `canonical_id` points at them), their identifiers, events
 * and account links. Accounts stay: they are not the person.
 */
export function eraseStatements(db: Db, workspaceId: string, profileIds: string[]): D1PreparedStatement[] {
  const ids = JSON.stringify(profileIds);
  const absorbed = "SELECT profile_id FROM profiles WHERE workspace_id = ?1 AND canonical_id IN (SELECT value FROM json_each(?2))";
  const everyId = `(SELECT value FROM json_each(?2) UNION ${absorbed})`;
  return [
    ...["profile_identifiers", "profile_events", "account_links"].map((table) => db.prepare(`DELETE FROM ${table} WHERE workspace_id = ?1 AND profile_id IN ${everyId}`).bind(workspaceId, ids)),
    db.prepare(`DELETE FROM profiles WHERE workspace_id = ?1 AND profile_id IN ${everyId}`).bind(workspaceId, ids),
  ];
}

function profileStatements(db: Db, workspaceId: string, version: number, p: ProfileRow): D1PreparedStatement[] {
  const row = db
      .prepare(
        `INSERT INTO profiles (workspace_id, profile_id, canonical_id, user_id, email, phone, first_name, last_name, traits, trait_meta,
           created_at, first_seen_at, last_seen_at, updated_at, last_source_id, last_message_id, version, segments, computed_traits, consent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)
         ON CONFLICT (workspace_id, profile_id) DO UPDATE SET canonical_id = excluded.canonical_id, user_id = excluded.user_id, email = excluded.email,
           phone = excluded.phone, first_name = excluded.first_name, last_name = excluded.last_name, traits = excluded.traits, trait_meta = excluded.trait_meta,
           created_at = excluded.created_at, first_seen_at = excluded.first_seen_at, last_seen_at = excluded.last_seen_at, updated_at = excluded.updated_at,
           last_source_id = excluded.last_source_id, last_message_id = excluded.last_message_id, version = excluded.version,
           segments = excluded.segments, computed_traits = excluded.computed_traits, consent = excluded.consent
         WHERE excluded.version > profiles.version`,
      )
      .bind(
        workspaceId,
        p.profileId,
        p.canonicalId,
        p.userId,
        p.email,
        p.phone,
        p.firstName,
        p.lastName,
        JSON.stringify(p.traits),
        JSON.stringify(p.traitMeta),
        p.createdAt,
        p.firstSeenAt,
        p.lastSeenAt,
        p.updatedAt,
        p.lastSourceId,
        p.lastMessageId,
        version,
        JSON.stringify(p.segments),
        JSON.stringify(p.computedTraits),
        JSON.stringify(p.consent ?? {}),
      );
  return [row, ...(p.identifiers ? identifierStatements(db, workspaceId, p.profileId, p.identifiers) : []), ...(p.links ? linkStatements(db, workspaceId, p.profileId, p.links) : [])];
}

function identifierStatements(db: Db, workspaceId: string, profileId: string, rows: IdentifierRow[]): D1PreparedStatement[] {
  const identifiers = JSON.stringify(rows);
  return [
    db
      .prepare(
        `DELETE FROM profile_identifiers WHERE workspace_id = ?1 AND profile_id = ?2
         AND type || ':' || value NOT IN (SELECT (j.value ->> '$.type') || ':' || (j.value ->> '$.value') FROM json_each(?3) AS j)`,
      )
      .bind(workspaceId, profileId, identifiers),
    db
      .prepare(
        `INSERT INTO profile_identifiers (workspace_id, type, value, profile_id, source_id, first_seen_at, last_seen_at)
         SELECT ?1, j.value ->> '$.type', j.value ->> '$.value', ?2, j.value ->> '$.sourceId', j.value ->> '$.firstSeen', j.value ->> '$.lastSeen'
         FROM json_each(?3) AS j WHERE true
         ON CONFLICT (workspace_id, type, value) DO UPDATE SET profile_id = excluded.profile_id, source_id = coalesce(profile_identifiers.source_id, excluded.source_id),
           first_seen_at = excluded.first_seen_at, last_seen_at = excluded.last_seen_at`,
      )
      .bind(workspaceId, profileId, identifiers),
  ];
}

function linkStatements(db: Db, workspaceId: string, profileId: string, links: NonNullable<ProfileRow["links"]>): D1PreparedStatement[] {
  return [
    db.prepare("DELETE FROM account_links WHERE workspace_id = ?1 AND profile_id = ?2").bind(workspaceId, profileId),
    db
      .prepare(
        `INSERT INTO account_links (workspace_id, profile_id, group_id, source_id, linked_at)
         SELECT ?1, ?2, j.value ->> '$.groupId', j.value ->> '$.sourceId', j.value ->> '$.at' FROM json_each(?3) AS j WHERE true
         ON CONFLICT DO NOTHING`,
      )
      .bind(workspaceId, profileId, JSON.stringify(links)),
  ];
}
