import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { Context } from "hono";
import type { App, AppEnv } from "../context";
import { privacySettings } from "../db/privacy-schema";
import { setEventRetentionOnEveryShard } from "../identity/sharding/event-retention";
import { errorFields } from "../lib/logger";
import { ApiError, type FieldError, fieldErrors } from "../lib/problem";
import { RETENTION_KINDS } from "../maintenance/retention";
import { DEFAULT_PRIVACY_SETTINGS, type PrivacySettings, privacySettingsSchema } from "../privacy/settings";
import { savePrivacySettings, SETTINGS_TTL_MS } from "../privacy/settings-store";
import { auditInsert } from "./audit";
import { existingWorkspace, requireScope } from "./auth";
import { json, problemResponses, workspaceQuery } from "./schemas";

const PATH = "/admin/v1/privacy/settings";

const settingsDocument = privacySettingsSchema.openapi("PrivacySettings", {
  description:
    "A workspace's consent categories (`id` as events carry it in `context.consent.categoryPreferences`), the categories an event must have consented to, every one of them, to be collected at all " +
    "(each must be one of the listed categories), and how long each kind of data is kept, in days (1 to 3650), or null to keep it forever: `archive` (raw events in R2), `events` (the Profile API's `/events` in D1), " +
    "`objectEvents` (event payloads in the workspace's identity object, which rebuilds and backfills read), `deliveryLog` and `auditLog`.",
});

const stateSchema = z
  .object({
    workspaceId: z.string(),
    isDefault: z.boolean().openapi({ description: "true while the workspace has never saved settings: these are the defaults in force." }),
    settings: settingsDocument,
    updatedAt: z.string().nullable(),
  })
  .openapi("PrivacySettingsState");

const APPLY =
  `Consent at collection follows a change within ${SETTINGS_TTL_MS / 1000} s. Retention is enforced by the maintenance cron (every 5 minutes), a bounded amount per data type per run, ` +
  "so a shortened period takes effect over the next runs; data already deleted does not come back when a period is lengthened.";


/** Read from D1 rather than the per-isolate cache: an admin reads back what was just saved. */
async function storedState(c: Context<AppEnv>, workspaceId: string) {
  const row = await c.get("db").select().from(privacySettings).where(eq(privacySettings.workspaceId, workspaceId)).get();
  if (!row) return { workspaceId, isDefault: true, settings: DEFAULT_PRIVACY_SETTINGS, updatedAt: null };
  return { workspaceId, isDefault: false, settings: privacySettingsSchema.parse(JSON.parse(row.settings)), updatedAt: new Date(row.updatedAt).toISOString() };
}

/**
 * Every invalid field of a document. A value of the wrong type stops zod before
 * the cross-field checks (required categories that are not listed), so those are
 * run again with each section holding one replaced by the defaults' section.
 */
export function settingsErrors(input: unknown): FieldError[] {
  const first = privacySettingsSchema.safeParse(input);
  if (first.success) return [];
  const issues = [...first.error.issues];
  if (typeof input === "object" && input !== null && !Array.isArray(input)) {
    const broken = new Set(issues.filter((issue) => issue.code === "invalid_type").map((issue) => issue.path[0]));
    const patched: Record<string, unknown> = { ...input };
    for (const section of Object.keys(DEFAULT_PRIVACY_SETTINGS) as (keyof PrivacySettings)[]) if (broken.has(section)) patched[section] = DEFAULT_PRIVACY_SETTINGS[section];
    const key = (issue: { path: PropertyKey[]; message: string }) => `${issue.path.join(".")}\u0000${issue.message}`;
    const seen = new Set(issues.map(key));
    for (const issue of privacySettingsSchema.safeParse(patched).error?.issues ?? []) {
      if (!broken.has(issue.path[0]) && !seen.has(key(issue))) issues.push(issue);
    }
  }
  return fieldErrors(issues);
}

/** The parts a change touched, each `{ from, to }`: the category list and the required list whole, retention per data type. */
export function settingsChanges(before: PrivacySettings, after: PrivacySettings): Record<string, { from: unknown; to: unknown }> {
  const parts: [string, unknown, unknown][] = [
    ["consent.categories", before.consent.categories, after.consent.categories],
    ["consent.requiredAtCollection", before.consent.requiredAtCollection, after.consent.requiredAtCollection],
    ...RETENTION_KINDS.map((kind): [string, unknown, unknown] => [`retention.${kind}`, before.retention[kind], after.retention[kind]]),
  ];
  return Object.fromEntries(parts.filter(([, from, to]) => JSON.stringify(from) !== JSON.stringify(to)).map(([path, from, to]) => [path, { from, to }]));
}

/** A 400 naming every invalid field of the body as sent (Hono keeps it after the validator has read it). */
async function refuseSettings(c: Context<AppEnv>): Promise<never> {
  throw new ApiError("VALIDATION_FAILED", "the privacy settings are invalid", { errors: settingsErrors(await c.req.json()) });
}

export function registerPrivacySettingsRoutes(app: App) {
  app.use(PATH, requireScope("privacy"));

  app.openapi(
    createRoute({
      method: "get",
      path: PATH,
      tags: ["Privacy"],
      summary: "Read a workspace's privacy settings",
      description: `The settings in force: the saved document, or the defaults (\`isDefault: true\`) until one is saved. Edit \`settings\` and PUT it back. Needs the \`privacy\` scope. ${APPLY}`,
      request: { query: workspaceQuery },
      responses: { 200: json(stateSchema, "The settings in force"), ...problemResponses },
    }),
    async (c) => c.json(await storedState(c, await existingWorkspace(c, c.req.valid("query").workspaceId)), 200),
  );

  app.openapi(
    createRoute({
      method: "put",
      path: PATH,
      tags: ["Privacy"],
      summary: "Replace a workspace's privacy settings",
      description:
        "The body is the whole settings document. An invalid one changes nothing and is answered with a 400 problem whose `errors` name every invalid field by its path, like `consent.requiredAtCollection.0`. " +
        `Audit-logged as \`privacy.settings.updated\` with the parts that changed. Needs the \`privacy\` scope. ${APPLY}`,
      request: { query: workspaceQuery, body: { required: true, content: { "application/json": { schema: settingsDocument } } } },
      responses: { 200: json(stateSchema, "The settings now in force"), ...problemResponses },
    }),
    async (c) => {
      const workspaceId = await existingWorkspace(c, c.req.valid("query").workspaceId);
      const settings = c.req.valid("json");
      const before = await storedState(c, workspaceId);
      const now = Date.now();
      const stored = JSON.stringify(settings);
      const db = c.get("db");
      await db.batch([
        db.insert(privacySettings).values({ workspaceId, settings: stored, updatedAt: now }).onConflictDoUpdate({ target: privacySettings.workspaceId, set: { settings: stored, updatedAt: now } }),
        auditInsert(c, { workspaceId, action: "privacy.settings.updated", target: workspaceId, details: { changed: settingsChanges(before.settings, settings), wasDefault: before.isDefault } }),
      ]);
      // The same row again: the settings and their audit entry are written together above, and this
      // is the store's only way to drop this isolate's cached copy, which consent at collection reads.
      await savePrivacySettings(c.env.DB, workspaceId, settings, now);
      try {
        const told = await setEventRetentionOnEveryShard(c.env, workspaceId, settings.retention.objectEvents);
        if (!told.ok) throw new Error(told.errors.map((e) => `${e.path}: ${e.message}`).join("; "));
      } catch (error) {
        // Saved all the same: the maintenance cron tells the object the stored period on its next run.
        c.get("logger").warn("the identity object was not told its event retention", { workspaceId, ...errorFields(error) });
      }
      return c.json({ workspaceId, isDefault: false, settings, updatedAt: new Date(now).toISOString() }, 200);
    },
    (result, c) => {
      if (result.success) return;
      if (result.target !== "json") throw new ApiError("VALIDATION_FAILED", "request failed validation", { errors: fieldErrors(result.error.issues) });
      return refuseSettings(c);
    },
  );
}
