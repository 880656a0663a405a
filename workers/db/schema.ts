import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

const createdAt = () =>
  integer("created_at", { mode: "timestamp_ms" })
    .notNull()
    .default(sql`(unixepoch('subsec') * 1000)`);

export const workspaces = sqliteTable("workspaces", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  createdAt: createdAt(),
});

/** A source is a place events come from; its write key may only write. */
export const sources = sqliteTable(
  "sources",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** SHA-256 of the write key, hex. The key itself is shown once, at creation. */
    writeKeyHash: text("write_key_hash").notNull(),
    /** First characters of the key, so a person can tell keys apart in a list. */
    writeKeyPrefix: text("write_key_prefix").notNull(),
    createdAt: createdAt(),
    revokedAt: integer("revoked_at", { mode: "timestamp_ms" }),
  },
  (t) => [uniqueIndex("sources_write_key_hash").on(t.writeKeyHash), index("sources_workspace").on(t.workspaceId)],
);

/** Scoped access tokens: profiles:read for the Profile API, admin and privacy for the admin API. */
export const tokens = sqliteTable(
  "tokens",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    tokenHash: text("token_hash").notNull(),
    tokenPrefix: text("token_prefix").notNull(),
    /** JSON array of scopes. */
    scopes: text("scopes", { mode: "json" }).$type<string[]>().notNull(),
    createdAt: createdAt(),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }),
    revokedAt: integer("revoked_at", { mode: "timestamp_ms" }),
  },
  (t) => [uniqueIndex("tokens_token_hash").on(t.tokenHash), index("tokens_workspace").on(t.workspaceId)],
);

/** One row per R2 archive object, so retention and warehouse loads can enumerate them. */
export const archiveObjects = sqliteTable(
  "archive_objects",
  {
    key: text("key").primaryKey(),
    workspaceId: text("workspace_id").notNull(),
    hour: text("hour").notNull(),
    eventCount: integer("event_count").notNull(),
    bytes: integer("bytes").notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("archive_objects_workspace_hour").on(t.workspaceId, t.hour)],
);

/**
 * Which archive objects hold events of which person identifier (SHA-256 of
 * workspace id, NUL, identifier value), so an erasure can find and rewrite
 * exactly those objects.
 */
export const archiveIndex = sqliteTable(
  "archive_index",
  {
    workspaceId: text("workspace_id").notNull(),
    identifierHash: text("identifier_hash").notNull(),
    objectKey: text("object_key").notNull(),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.identifierHash, t.objectKey] }), index("archive_index_object").on(t.objectKey)],
);

/** Append-only record of every admin and privacy action: who, what, when, on what. */
export const auditLog = sqliteTable(
  "audit_log",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id"),
    actor: text("actor").notNull(),
    action: text("action").notNull(),
    target: text("target"),
    details: text("details", { mode: "json" }).$type<Record<string, unknown>>(),
    requestId: text("request_id"),
    createdAt: createdAt(),
  },
  (t) => [index("audit_log_workspace_time").on(t.workspaceId, t.createdAt)],
);

/**
 * Profiles, written through from the workspace's identity object (the single
 * writer). A profile absorbed by a merge keeps its row with `canonicalId` set,
 * so a lookup by its old id resolves to the survivor. `version` only grows:
 * a write carrying an older version changes nothing.
 */
export const profiles = sqliteTable(
  "profiles",
  {
    workspaceId: text("workspace_id").notNull(),
    profileId: text("profile_id").notNull(),
    canonicalId: text("canonical_id"),
    userId: text("user_id"),
    email: text("email"),
    phone: text("phone"),
    firstName: text("first_name"),
    lastName: text("last_name"),
    /** JSON object: trait → value, last write wins by event timestamp. */
    traits: text("traits").notNull().default("{}"),
    /** JSON object: trait → { at, messageId, sourceId } of the write that won. */
    traitMeta: text("trait_meta").notNull().default("{}"),
    computedTraits: text("computed_traits").notNull().default("{}"),
    segments: text("segments").notNull().default("[]"),
    /** JSON object: consent category → { consented, at, messageId, conflict? } (workers/profiles/consent.ts). */
    consent: text("consent").notNull().default("{}"),
    createdAt: integer("created_at").notNull(),
    firstSeenAt: integer("first_seen_at"),
    lastSeenAt: integer("last_seen_at"),
    updatedAt: integer("updated_at").notNull(),
    lastSourceId: text("last_source_id"),
    lastMessageId: text("last_message_id"),
    version: integer("version").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.workspaceId, t.profileId] }),
    index("profiles_email").on(t.workspaceId, t.email),
    index("profiles_user_id").on(t.workspaceId, t.userId),
    index("profiles_last_name").on(t.workspaceId, t.lastName),
    index("profiles_first_name").on(t.workspaceId, t.firstName),
    index("profiles_phone").on(t.workspaceId, t.phone),
  ],
);

/** Every identifier of every live profile: how the Profile API finds a profile by `type:value`. */
export const profileIdentifiers = sqliteTable(
  "profile_identifiers",
  {
    workspaceId: text("workspace_id").notNull(),
    type: text("type").notNull(),
    value: text("value").notNull(),
    profileId: text("profile_id").notNull(),
    sourceId: text("source_id"),
    firstSeenAt: integer("first_seen_at").notNull(),
    lastSeenAt: integer("last_seen_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.type, t.value] }), index("profile_identifiers_profile").on(t.workspaceId, t.profileId)],
);

/** Recent events per profile for the Profile API's `/events`; kept for the workspace's `retention.events` days (workers/privacy/settings.ts). */
export const profileEvents = sqliteTable(
  "profile_events",
  {
    workspaceId: text("workspace_id").notNull(),
    messageId: text("message_id").notNull(),
    profileId: text("profile_id").notNull(),
    type: text("type").notNull(),
    event: text("event"),
    timestamp: integer("timestamp").notNull(),
    sourceId: text("source_id"),
    /** JSON: the event as the Profile API returns it. */
    payload: text("payload").notNull(),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.messageId] }), index("profile_events_profile_time").on(t.workspaceId, t.profileId, t.timestamp),
    // Retention deletes by age per workspace.
    index("profile_events_time").on(t.workspaceId, t.timestamp),
  ],
);

/** Account (group) profiles from `group` calls. */
export const accounts = sqliteTable(
  "accounts",
  {
    workspaceId: text("workspace_id").notNull(),
    groupId: text("group_id").notNull(),
    traits: text("traits").notNull().default("{}"),
    traitMeta: text("trait_meta").notNull().default("{}"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    lastSourceId: text("last_source_id"),
    lastMessageId: text("last_message_id"),
    version: integer("version").notNull(),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.groupId] })],
);

/** Which user profiles belong to which accounts, from `group` calls. */
export const accountLinks = sqliteTable(
  "account_links",
  {
    workspaceId: text("workspace_id").notNull(),
    profileId: text("profile_id").notNull(),
    groupId: text("group_id").notNull(),
    sourceId: text("source_id"),
    linkedAt: integer("linked_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.profileId, t.groupId] }), index("account_links_group").on(t.workspaceId, t.groupId)],
);

/**
 * Segments and computed traits: the configuration's source of truth. The
 * workspace's identity object holds a copy it evaluates; every change here is
 * put to it, and a backfill job brings existing profiles up to date.
 */
export const audiences = sqliteTable(
  "audiences",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id")
      .notNull()
      .references(() => workspaces.id, { onDelete: "cascade" }),
    kind: text("kind", { enum: ["segment", "computed_trait"] }).notNull(),
    /** What the audience appears under on profiles; one namespace for segments and computed traits. */
    key: text("key").notNull(),
    name: text("name").notNull(),
    /** JSON: the segment condition or computed trait definition. */
    definition: text("definition", { mode: "json" }).$type<unknown>().notNull(),
    /** Grows by one with every new definition. */
    version: integer("version").notNull().default(1),
    createdAt: createdAt(),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" })
      .notNull()
      .default(sql`(unixepoch('subsec') * 1000)`),
  },
  (t) => [uniqueIndex("audiences_workspace_key").on(t.workspaceId, t.key), index("audiences_workspace_kind_key").on(t.workspaceId, t.kind, t.key)],
);

export const JOB_STATUSES = ["queued", "running", "succeeded", "failed"] as const;
export const JOB_KINDS = ["backfill", "audience-sync", "archive-replay", "privacy-export", "privacy-deletion"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Long-running work done through the jobs queue, one chunk per message, with its progress. */
export const jobs = sqliteTable(
  "jobs",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id").notNull(),
    kind: text("kind", { enum: JOB_KINDS }).notNull(),
    /** What the job is for: the audience whose change started a backfill; see `jobMessage` (workers/jobs/backfill.ts) for the other kinds. */
    target: text("target").notNull(),
    status: text("status", { enum: JOB_STATUSES }).notNull().default("queued"),
    processed: integer("processed").notNull().default(0),
    total: integer("total"),
    /**
     * Where the last chunk recorded stopped (a backfill's `next` profile id), so a
     * redelivered chunk is counted once: progress only moves from the cursor its message started at.
     */
    cursor: text("cursor"),
    error: text("error"),
    createdAt: createdAt(),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" })
      .notNull()
      .default(sql`(unixepoch('subsec') * 1000)`),
    finishedAt: integer("finished_at", { mode: "timestamp_ms" }),
  },
  (t) => [index("jobs_workspace_time").on(t.workspaceId, t.createdAt), index("jobs_target").on(t.target)],
);

export const WAREHOUSE_EXPORT_KINDS = ["events", "profiles"] as const;
export type WarehouseExportKind = (typeof WAREHOUSE_EXPORT_KINDS)[number];
export const WAREHOUSE_EXPORT_STATUSES = ["running", "done", "failed"] as const;
export type WarehouseExportStatus = (typeof WAREHOUSE_EXPORT_STATUSES)[number];

/** One Parquet file of a warehouse export. */
export interface WarehouseExportFile {
  key: string;
  rows: number;
  bytes: number;
}

/**
 * What the warehouse export wrote to R2 under `warehouse/`: one row per
 * workspace, kind and period (an events hour `yyyy-mm-ddThh`, a profiles
 * snapshot day `yyyy-mm-dd`). The cron reads it to export each completed hour
 * once, and again only when the archive behind it changed.
 */
export const warehouseExports = sqliteTable(
  "warehouse_exports",
  {
    workspaceId: text("workspace_id").notNull(),
    kind: text("kind", { enum: WAREHOUSE_EXPORT_KINDS }).notNull(),
    /** An events hour `yyyy-mm-ddThh` or a profiles snapshot day `yyyy-mm-dd`: the Hive partition written. */
    period: text("period").notNull(),
    status: text("status", { enum: WAREHOUSE_EXPORT_STATUSES }).notNull(),
    /** JSON array of the files written, in part order. */
    files: text("files", { mode: "json" }).$type<WarehouseExportFile[]>().notNull(),
    rowCount: integer("row_count").notNull().default(0),
    bytes: integer("bytes").notNull().default(0),
    /** Events: `{objects}:{events}:{bytes}` of the archive objects read, so a changed hour is exported again. */
    sourceFingerprint: text("source_fingerprint"),
    /** Profiles: the last profile id written, so a snapshot too large for one run resumes after it. */
    cursor: text("cursor"),
    /** Failed runs in a row; the cron stops retrying at a bound. */
    attempts: integer("attempts").notNull().default(0),
    error: text("error"),
    startedAt: integer("started_at", { mode: "timestamp_ms" }).notNull(),
    finishedAt: integer("finished_at", { mode: "timestamp_ms" }),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.kind, t.period] }), index("warehouse_exports_kind_period").on(t.kind, t.period)],
);

/** Where activations go. `config` is the whole destination (workers/activation/destination.ts), secrets included; the API never returns them. */
export const destinations = sqliteTable(
  "destinations",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id").notNull(),
    name: text("name").notNull(),
    type: text("type").notNull(),
    enabled: integer("enabled", { mode: "boolean" }).notNull(),
    config: text("config").notNull(),
    createdAt: createdAt(),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [index("destinations_workspace").on(t.workspaceId)],
);

/**
 * The delivery log: one row per batch sent to a destination, updated by each
 * attempt. It is also the record of which destination received whose data,
 * which a deletion request needs.
 */
export const deliveries = sqliteTable(
  "deliveries",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id").notNull(),
    destinationId: text("destination_id").notNull(),
    status: text("status").notNull(),
    messageIds: text("message_ids").notNull(),
    profileIds: text("profile_ids").notNull(),
    attempts: integer("attempts").notNull(),
    lastError: text("last_error"),
    latencyMs: integer("latency_ms"),
    firstAttemptAt: integer("first_attempt_at").notNull(),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [index("deliveries_destination_time").on(t.workspaceId, t.destinationId, t.createdAt), index("deliveries_status").on(t.workspaceId, t.status),
    index("deliveries_time").on(t.workspaceId, t.createdAt),
  ],
);

/** Per destination and day: what was routed to it and what became of it. */
export const destinationCounters = sqliteTable(
  "destination_counters",
  {
    workspaceId: text("workspace_id").notNull(),
    destinationId: text("destination_id").notNull(),
    day: text("day").notNull(),
    received: integer("received").notNull().default(0),
    filteredConsent: integer("filtered_consent").notNull().default(0),
    filteredIntegrations: integer("filtered_integrations").notNull().default(0),
    notSubscribed: integer("not_subscribed").notNull().default(0),
    delivered: integer("delivered").notNull().default(0),
    retried: integer("retried").notNull().default(0),
    failed: integer("failed").notNull().default(0),
    deadLettered: integer("dead_lettered").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.destinationId, t.day] })],
);

/** Each destination's circuit breaker (workers/activation/retry.ts), shared by every consumer invocation. */
export const destinationBreakers = sqliteTable("destination_breakers", {
  destinationId: text("destination_id").primaryKey(),
  state: text("state").notNull(),
  updatedAt: integer("updated_at").notNull(),
});
