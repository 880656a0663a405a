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
