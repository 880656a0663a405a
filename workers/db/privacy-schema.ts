import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * Privacy tables. None of them holds a person's identifiers in the clear:
 * subjects and suppressed identifiers are kept as salted hashes with a masked
 * hint for people to read, so a finished deletion leaves nothing behind here.
 */

/** A workspace's consent categories, what collection requires, and how long each kind of data is kept (workers/privacy/settings.ts). */
export const privacySettings = sqliteTable("privacy_settings", {
  workspaceId: text("workspace_id").primaryKey(),
  /** JSON, parsed with `privacySettingsSchema`. */
  settings: text("settings").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

export const PRIVACY_REQUEST_KINDS = ["export", "deletion"] as const;
export type PrivacyRequestKind = (typeof PRIVACY_REQUEST_KINDS)[number];
/** Segment's deletion statuses; an export uses the same ones. */
export const PRIVACY_REQUEST_STATUSES = ["initialized", "running", "partial_success", "failed", "finished"] as const;
export type PrivacyRequestStatus = (typeof PRIVACY_REQUEST_STATUSES)[number];

/** An access (export) or deletion request about one person, found by any of their identifiers. */
export const privacyRequests = sqliteTable(
  "privacy_requests",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id").notNull(),
    kind: text("kind", { enum: PRIVACY_REQUEST_KINDS }).notNull(),
    status: text("status", { enum: PRIVACY_REQUEST_STATUSES }).notNull(),
    /** The identifier the request named, masked (`email:j***@example.com`). */
    subjectHint: text("subject_hint").notNull(),
    /** `identifierKeyHash` of the identifier the request named. */
    subjectHash: text("subject_hash").notNull(),
    /** JSON array: every profile id the person had (live and absorbed), once resolved. */
    profileIds: text("profile_ids", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    /** JSON array: `identifierKeyHash` of each of the person's identifiers, once resolved. */
    identifierHashes: text("identifier_hashes", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    /** The job doing the work (`/admin/v1/jobs/{id}`). */
    jobId: text("job_id"),
    /** JSON: per store, what was done (workers/privacy/request.ts). */
    stores: text("stores", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    /** JSON: per destination, the deletion sent and its outcome. */
    destinations: text("destinations", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    /** An export's document in R2, once written. */
    resultKey: text("result_key"),
    resultBytes: integer("result_bytes"),
    error: text("error"),
    requestedBy: text("requested_by").notNull(),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    finishedAt: integer("finished_at"),
  },
  (t) => [index("privacy_requests_workspace_time").on(t.workspaceId, t.createdAt), index("privacy_requests_subject").on(t.workspaceId, t.subjectHash)],
);

/** Identifiers blocked at intake: events carrying one are dropped, so a deleted person cannot be re-created. */
export const suppressions = sqliteTable(
  "suppressions",
  {
    workspaceId: text("workspace_id").notNull(),
    /** `identifierKeyHash(workspaceId, "type:value")`. */
    keyHash: text("key_hash").notNull(),
    id: text("id").notNull(),
    /** The identifier masked, for people to recognise (`email:j***@example.com`). */
    hint: text("hint").notNull(),
    reason: text("reason", { enum: ["deletion", "manual"] }).notNull(),
    /** The deletion request that suppressed it, if any. */
    requestId: text("request_id"),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  // By time too: the events consumer looks only for suppressions newer than intake's check.
  (t) => [primaryKey({ columns: [t.workspaceId, t.keyHash] }), index("suppressions_id").on(t.id), index("suppressions_time").on(t.workspaceId, t.createdAt)],
);

/** Events dropped before the archive, per workspace, day and reason (`consent`, `suppressed`). */
export const intakeDrops = sqliteTable(
  "intake_drops",
  {
    workspaceId: text("workspace_id").notNull(),
    day: text("day").notNull(),
    reason: text("reason").notNull(),
    count: integer("count").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.day, t.reason] })],
);

/**
 * Which destinations were sent data about which profiles: one row per pair,
 * written with every delivery attempt. It outlives the delivery log's
 * retention, so a deletion years later still reaches every destination that
 * received the person's data, and only those. Ids only; a deletion removes the
 * person's rows once their deletion calls are recorded on the request.
 */
export const destinationRecipients = sqliteTable(
  "destination_recipients",
  {
    workspaceId: text("workspace_id").notNull(),
    profileId: text("profile_id").notNull(),
    destinationId: text("destination_id").notNull(),
    firstSentAt: integer("first_sent_at").notNull(),
    lastSentAt: integer("last_sent_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.profileId, t.destinationId] })],
);
