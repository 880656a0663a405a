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
  /** Events already as JSON arrays of `EventRow`s, each at most about WRITE_CHUNK_CHARS (built by the object's SQLite). */
  eventChunks?: string[];
  /** Events already in D1 under an absorbed profile move to the profile it resolves to. */
  reassign: { from: string; to: string }[];
  /** Erased profiles: every D1 row of theirs goes (`eraseStatements`). */
  erase: string[];
}

/**
 * Rows travel as JSON in chunks of about this many characters per statement:
 * far below D1's largest string, and few statements per batch, since each
 * statement of a batch costs a round of parsing and a result of its own.
 */
export const WRITE_CHUNK_CHARS = 256_000;

type Db = Pick<D1Database, "prepare">;

/** Items as one JSON array parameter per chunk, each item serialised once. */
function jsonChunks<T>(items: Iterable<T>, toJson: (item: T) => unknown = (item) => item): string[] {
  const parts = [...items].map((item) => JSON.stringify(toJson(item)));
  return chunkBySize(parts, (part) => part.length + 1, WRITE_CHUNK_CHARS).map((chunk) => `[${chunk.join(",")}]`);
}

/**
 * A handful of set-based statements however many rows: a profile, its
 * identifiers and its links are rows of a JSON parameter, not statements of
 * their own, which keeps a write-through round far below D1's queries per invocation.
 */
export function writeStatements(db: Db, workspaceId: string, version: number, set: WriteSet): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
  for (const chunk of [...(set.eventChunks ?? []), ...jsonChunks(set.events)]) {
    statements.push(
      db
        .prepare(
          `INSERT INTO profile_events (workspace_id, message_id, profile_id, type, event, timestamp, source_id, payload)
           SELECT ?1, j.value ->> '$.messageId', j.value ->> '$.profileId', j.value ->> '$.type', j.value ->> '$.event', j.value ->> '$.timestamp', j.value ->> '$.sourceId', j.value ->> '$.payload'
           FROM json_each(?2) AS j WHERE true
           ON CONFLICT (workspace_id, message_id) DO UPDATE SET profile_id = excluded.profile_id`,
        )
        .bind(workspaceId, chunk),
    );
  }
  for (const { from, to } of set.reassign) {
    statements.push(db.prepare("UPDATE profile_events SET profile_id = ?3 WHERE workspace_id = ?1 AND profile_id = ?2").bind(workspaceId, from, to));
  }
  for (const chunk of jsonChunks(set.profiles, profileParameters)) statements.push(profileStatement(db, workspaceId, version, chunk));
  statements.push(...membershipStatements(db, workspaceId, set.profiles));
  for (const chunk of jsonChunks(set.accounts, accountParameters)) statements.push(accountStatement(db, workspaceId, version, chunk));
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

/** A profile row's values, its JSON columns already serialised so that `->>` reads them back as the same text. */
function profileParameters(p: ProfileRow) {
  return {
    ...p,
    traits: JSON.stringify(p.traits),
    traitMeta: JSON.stringify(p.traitMeta),
    segments: JSON.stringify(p.segments),
    computedTraits: JSON.stringify(p.computedTraits),
    consent: JSON.stringify(p.consent ?? {}),
    identifiers: undefined,
    links: undefined,
  };
}

const PROFILE_COLUMNS = [
  ["canonical_id", "canonicalId"],
  ["user_id", "userId"],
  ["email", "email"],
  ["phone", "phone"],
  ["first_name", "firstName"],
  ["last_name", "lastName"],
  ["traits", "traits"],
  ["trait_meta", "traitMeta"],
  ["created_at", "createdAt"],
  ["first_seen_at", "firstSeenAt"],
  ["last_seen_at", "lastSeenAt"],
  ["updated_at", "updatedAt"],
  ["last_source_id", "lastSourceId"],
  ["last_message_id", "lastMessageId"],
  ["segments", "segments"],
  ["computed_traits", "computedTraits"],
  ["consent", "consent"],
] as const;

const PROFILE_UPSERT = `INSERT INTO profiles (workspace_id, profile_id, version, ${PROFILE_COLUMNS.map(([column]) => column).join(", ")})
  SELECT ?1, j.value ->> '$.profileId', ?2, ${PROFILE_COLUMNS.map(([, field]) => `j.value ->> '$.${field}'`).join(", ")}
  FROM json_each(?3) AS j WHERE true
  ON CONFLICT (workspace_id, profile_id) DO UPDATE SET version = excluded.version, ${PROFILE_COLUMNS.map(([column]) => `${column} = excluded.${column}`).join(", ")}
  WHERE excluded.version > profiles.version`;

function profileStatement(db: Db, workspaceId: string, version: number, chunk: string): D1PreparedStatement {
  return db.prepare(PROFILE_UPSERT).bind(workspaceId, version, chunk);
}

function accountParameters(a: AccountRow) {
  return { ...a, traits: JSON.stringify(a.traits), traitMeta: JSON.stringify(a.traitMeta) };
}

/**
 * Each trait of the stored row and of the incoming one, with its meta, as
 * JSON text: `->` with json_each's own `fullkey` returns any value as JSON
 * text (json_each's `value` would turn true into 1 and strings into SQL text),
 * and `json()` gives it back its JSON type once out of the subquery. A trait
 * without meta sorts as the oldest write; on a tie the incoming one is kept.
 */
const TRAIT_WINNERS = `SELECT key, value, meta FROM (
    SELECT key, value, meta, row_number() OVER (
      PARTITION BY key ORDER BY coalesce(meta ->> '$.updatedAt', '') DESC, coalesce(meta ->> '$.messageId', '') DESC, incoming DESC) AS rank
    FROM (
      SELECT 0 AS incoming, t.key, accounts.traits -> t.fullkey AS value, accounts.trait_meta -> t.fullkey AS meta FROM json_each(accounts.traits) AS t
      UNION ALL
      SELECT 1, t.key, excluded.traits -> t.fullkey, excluded.trait_meta -> t.fullkey FROM json_each(excluded.traits) AS t))
  WHERE rank = 1`;

/** The incoming row is the account's latest write: later updated_at, ties to the larger last message id (as a strong read merges copies). */
const INCOMING_IS_LATER = "(excluded.updated_at, coalesce(excluded.last_message_id, '')) >= (accounts.updated_at, coalesce(accounts.last_message_id, ''))";

/**
 * Every graph shard whose people joined an account keeps its own copy and
 * writes it here under its own write version, so a row is never replaced
 * whole: the stored and incoming copies are merged trait by trait, last write
 * wins by `trait_meta`, in this one statement, since two shards write at once.
 * Shards only ever add or overwrite account traits, so the merge (commutative
 * and idempotent) loses nothing and a stale or repeated write takes nothing
 * back. With one shard a higher version already holds every trait at its
 * latest write, and the merge gives what replacing the row did.
 */
const ACCOUNT_UPSERT = `INSERT INTO accounts (workspace_id, group_id, traits, trait_meta, created_at, updated_at, last_source_id, last_message_id, version)
  SELECT ?1, j.value ->> '$.groupId', j.value ->> '$.traits', j.value ->> '$.traitMeta', j.value ->> '$.createdAt', j.value ->> '$.updatedAt',
    j.value ->> '$.lastSourceId', j.value ->> '$.lastMessageId', ?2
  FROM json_each(?3) AS j WHERE true
  ON CONFLICT (workspace_id, group_id) DO UPDATE SET
    (traits, trait_meta) = (SELECT json_group_object(key, json(value) ORDER BY key), json_group_object(key, json(meta) ORDER BY key) FILTER (WHERE meta IS NOT NULL)
      FROM (${TRAIT_WINNERS})),
    created_at = min(accounts.created_at, excluded.created_at),
    updated_at = iif(${INCOMING_IS_LATER}, excluded.updated_at, accounts.updated_at),
    last_source_id = iif(${INCOMING_IS_LATER}, excluded.last_source_id, accounts.last_source_id),
    last_message_id = iif(${INCOMING_IS_LATER}, excluded.last_message_id, accounts.last_message_id),
    version = max(accounts.version, excluded.version)`;

function accountStatement(db: Db, workspaceId: string, version: number, chunk: string): D1PreparedStatement {
  return db.prepare(ACCOUNT_UPSERT).bind(workspaceId, version, chunk);
}

/**
 * Identifiers and account links of the profiles whose membership was read
 * (`null` lists are unchanged): each profile's rows not in its list go, then
 * its list is upserted. Rows are in the order of the profiles, so an
 * identifier two profiles list ends with the later one, as it would written one profile at a time.
 */
function membershipStatements(db: Db, workspaceId: string, profiles: ProfileRow[]): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
  for (const { ids, rows } of membershipChunks(profiles, (p) => p.identifiers)) {
    statements.push(
      db
        .prepare(
          `DELETE FROM profile_identifiers WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2))
           AND profile_id || char(0) || type || ':' || value NOT IN
             (SELECT (j.value ->> '$.profileId') || char(0) || (j.value ->> '$.type') || ':' || (j.value ->> '$.value') FROM json_each(?3) AS j)`,
        )
        .bind(workspaceId, ids, rows),
      db
        .prepare(
          `INSERT INTO profile_identifiers (workspace_id, type, value, profile_id, source_id, first_seen_at, last_seen_at)
           SELECT ?1, j.value ->> '$.type', j.value ->> '$.value', j.value ->> '$.profileId', j.value ->> '$.sourceId', j.value ->> '$.firstSeen', j.value ->> '$.lastSeen'
           FROM json_each(?2) AS j WHERE true
           ON CONFLICT (workspace_id, type, value) DO UPDATE SET profile_id = excluded.profile_id, source_id = coalesce(profile_identifiers.source_id, excluded.source_id),
             first_seen_at = excluded.first_seen_at, last_seen_at = excluded.last_seen_at`,
        )
        .bind(workspaceId, rows),
    );
  }
  for (const { ids, rows } of membershipChunks(profiles, (p) => p.links)) {
    statements.push(
      db.prepare("DELETE FROM account_links WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2))").bind(workspaceId, ids),
      db
        .prepare(
          `INSERT INTO account_links (workspace_id, profile_id, group_id, source_id, linked_at)
           SELECT ?1, j.value ->> '$.profileId', j.value ->> '$.groupId', j.value ->> '$.sourceId', j.value ->> '$.at' FROM json_each(?2) AS j WHERE true
           ON CONFLICT DO NOTHING`,
        )
        .bind(workspaceId, rows),
    );
  }
  return statements;
}

/** The profiles that carry a list (identifiers or links), in chunks: their ids, and every row of theirs tagged with its profile. */
function membershipChunks(profiles: ProfileRow[], listOf: (p: ProfileRow) => object[] | null): { ids: string; rows: string }[] {
  const carrying = profiles.flatMap((p) => {
    const list = listOf(p);
    return list ? [{ id: p.profileId, rows: list.map((row) => JSON.stringify({ profileId: p.profileId, ...row })) }] : [];
  });
  const size = (p: { id: string; rows: string[] }) => p.id.length + 3 + p.rows.reduce((n, row) => n + row.length + 1, 0);
  return chunkBySize(carrying, size, WRITE_CHUNK_CHARS).map((chunk) => ({
    ids: JSON.stringify(chunk.map((p) => p.id)),
    rows: `[${chunk.flatMap((p) => p.rows).join(",")}]`,
  }));
}
