import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq, inArray } from "drizzle-orm";
import type { Context } from "hono";
import { DESTINATION_TYPES, type Destination, destinationSchema, parseDestinationWrite, publicDestination } from "../activation/destination";
import type { App, AppEnv } from "../context";
import type { Db } from "../db/client";
import { audiences, destinationBreakers, destinationCounters, destinations, jobs } from "../db/schema";
import { enqueueJob, syncTarget } from "../jobs/backfill";
import { generateId } from "../lib/keys";
import { ApiError, fieldErrors } from "../lib/problem";
import { auditInsert } from "./audit";
import { requireScope, targetWorkspace } from "./auth";
import { identityGraphFor } from "./identity-common";
import { jobSchema, toJob } from "./jobs";
import { idParam, isoDate, json, problemResponses, workspaceQuery } from "./schemas";

/**
 * Destinations (`/admin/v1/destinations`): where activation sends events and
 * audience / computed-trait changes. D1 keeps the whole validated destination
 * (secrets included) as `config`; the delivery consumer reads it from there.
 * Secrets are write-only: every response shows `secretsSet`, the names of the
 * secrets that are set, never their values, and neither does the audit log.
 */

const PATH = "/admin/v1/destinations";
const TAG = "Destinations";

type DestinationRow = typeof destinations.$inferSelect;

export const destinationViewSchema = z
  .object({
    id: z.string().openapi({ example: "dst_4f1c2a9e0b7d4c3a8e6f1a2b" }),
    workspaceId: z.string(),
    name: z.string().openapi({ description: "Also the key that turns it off or on in a message's `integrations` object." }),
    type: z.enum(DESTINATION_TYPES),
    enabled: z.boolean(),
    batchSize: z.number().int(),
    settings: z.record(z.string(), z.unknown()).openapi({ description: "The type's settings, as saved (defaults filled in)." }),
    subscriptions: z.object({ events: z.array(z.unknown()), audiences: z.array(z.string()), computedTraits: z.array(z.string()) }),
    consentCategories: z.array(z.string()),
    audienceSync: z.object({ mode: z.enum(["identify", "track", "both"]), traitComputedEvent: z.string() }),
    secretsSet: z.array(z.string()).openapi({ description: "The names of the secrets that are set; their values are never returned.", example: ["signingSecret"] }),
    createdAt: z.string().nullable(),
    updatedAt: z.string().nullable(),
  })
  .openapi("Destination");

/** The stored destination: validated on every write, so it is trusted as it is. */
export const storedDestination = (row: DestinationRow) => JSON.parse(row.config) as Destination;

export const toDestinationView = (row: DestinationRow) => ({
  ...publicDestination(storedDestination(row)),
  workspaceId: row.workspaceId,
  createdAt: isoDate(row.createdAt),
  updatedAt: isoDate(row.updatedAt),
});

/**
 * A destination by id, as the token may see it: another workspace's (or one
 * not in the workspace named) is a 404, so a token cannot learn it exists.
 */
export async function findDestination(c: Context<AppEnv>, id: string, requested: string | undefined): Promise<DestinationRow> {
  const admin = c.get("admin")!;
  const row = await c.get("db").select().from(destinations).where(eq(destinations.id, id)).get();
  const visible = row && (admin.workspaceId === null || admin.workspaceId === row.workspaceId) && (requested === undefined || requested === row.workspaceId);
  if (!visible) throw new ApiError("NOT_FOUND", `destination '${id}' not found`);
  return row;
}

export const destinationIdParam = idParam("Destination", "dst_4f1c2a9e0b7d4c3a8e6f1a2b");

const invalid = (issues: Parameters<typeof fieldErrors>[0]) => new ApiError("VALIDATION_FAILED", "the destination is invalid", { errors: fieldErrors(issues) });

export const workspaceField = workspaceQuery.shape.workspaceId;

/** The create body: each type's fields but `id` (assigned here), plus the workspace. The same checks as the delivery side's, so errors name their paths. */
const [webhookSchema, segmentSchema, brazeSchema, mailchimpSchema] = destinationSchema.options;
const createBody = z
  .discriminatedUnion("type", [
    webhookSchema.omit({ id: true }).extend({ workspaceId: workspaceField }),
    segmentSchema.omit({ id: true }).extend({ workspaceId: workspaceField }),
    brazeSchema.omit({ id: true }).extend({ workspaceId: workspaceField }),
    mailchimpSchema.omit({ id: true }).extend({ workspaceId: workspaceField }),
  ])
  .openapi("DestinationCreate", {
    example: {
      workspaceId: "default",
      name: "Order webhook",
      type: "webhook",
      settings: { url: "https://hooks.example.com/cdp" },
      secrets: { signingSecret: "whsec_0123456789abcdef" },
      subscriptions: { events: [{ type: ["track"], event: ["Order Completed"] }] },
    },
  });

const updateBody = z
  .record(z.string(), z.unknown())
  .openapi("DestinationUpdate", {
    description:
      "Any of the create fields but `workspaceId`. Each field given replaces the stored one whole (`settings`, `subscriptions` included); the others are kept. " +
      "A secret left out of `secrets` keeps its stored value. A new `type` starts over: its `settings` and every secret must be given.",
    example: { enabled: false, secrets: { signingSecret: "whsec_rotated_0123456789" } },
  });

/** What the audit log records of a destination: its configuration, never its secrets' values. */
const auditable = (destination: Destination) => publicDestination(destination) as unknown as Record<string, unknown>;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * The update as a full write: the stored destination without its secrets, the
 * fields given on top, and `parseDestinationWrite` to put back the secrets left out.
 */
function mergeUpdate(stored: Destination, body: Record<string, unknown>) {
  if (Object.keys(body).length === 0) throw new ApiError("VALIDATION_FAILED", "give at least one field to change", { errors: [{ path: "(root)", message: "empty update" }] });
  const errors = [];
  if (body.id !== undefined && body.id !== stored.id) errors.push({ path: "id", message: "cannot change" });
  if (body.secrets !== undefined && !isRecord(body.secrets)) errors.push({ path: "secrets", message: "must be an object" });
  if (errors.length) throw new ApiError("VALIDATION_FAILED", "the destination is invalid", { errors });
  const { secrets: _secrets, settings, ...common } = stored;
  const retyped = body.type !== undefined && body.type !== stored.type;
  const input = { ...common, ...(retyped ? {} : { settings }), ...body, id: stored.id, secrets: body.secrets ?? {} };
  const parsed = parseDestinationWrite(input, stored);
  if (!parsed.success) throw invalid(parsed.error.issues);
  return parsed.data;
}

/** The top-level fields an update changed; secrets by name only. */
function changes(before: Destination, after: Destination) {
  const fields = (Object.keys(after) as (keyof Destination)[]).filter((key) => key !== "secrets" && JSON.stringify(before[key]) !== JSON.stringify(after[key]));
  const secrets = Object.keys(after.secrets).filter((name) => (before.secrets as Record<string, string>)[name] !== (after.secrets as Record<string, string>)[name]);
  return { fields, secretsChanged: secrets.sort() };
}

/**
 * The audiences and computed traits a write starts the destination on: every
 * one it subscribes to that it did not before (all of them when it was just
 * created or enabled), among those the workspace defines. None while it is disabled.
 */
export function newlySubscribed(before: Destination | null, after: Destination): string[] {
  if (!after.enabled) return [];
  const ids = (d: Destination) => [...d.subscriptions.audiences, ...d.subscriptions.computedTraits];
  const had = new Set(before?.enabled ? ids(before) : []);
  return [...new Set(ids(after))].filter((id) => !had.has(id));
}

/** Queued `audience-sync` jobs for the ids the workspace defines as segments or computed traits; the others are skipped. */
async function syncJobInserts(db: Db, workspaceId: string, destinationId: string, ids: string[]) {
  if (!ids.length) return [];
  const known = await db
    .select({ id: audiences.id })
    .from(audiences)
    .where(and(eq(audiences.workspaceId, workspaceId), inArray(audiences.id, ids)))
    .all();
  const defined = new Set(known.map((row) => row.id));
  return ids
    .filter((id) => defined.has(id))
    .map((audienceId) => db.insert(jobs).values({ id: generateId("job"), workspaceId, kind: "audience-sync", target: syncTarget(destinationId, audienceId), status: "queued" }).returning());
}

/** Sends each job's first chunk (a refused send leaves the job queued with the error; the maintenance cron requeues it). */
export async function startJobs(c: Context<AppEnv>, rows: (typeof jobs.$inferSelect)[]) {
  return Promise.all(rows.map((row) => enqueueJob(c.get("db"), c.env.JOBS_QUEUE, row)));
}

export function registerDestinationRoutes(app: App) {
  // Also guards `/admin/v1/destinations/{id}/deliveries` (destination-deliveries.ts).
  app.use(PATH, requireScope("admin"));
  app.use(`${PATH}/*`, requireScope("admin"));

  app.openapi(
    createRoute({
      method: "post",
      path: PATH,
      tags: [TAG],
      summary: "Create a destination",
      description:
        "Validates the destination for its `type` (webhook, segment, braze, mailchimp); an invalid one is a 400 whose `errors` name each mistake by its path, like `settings.url`. " +
        "It receives what it subscribes to from then on; for each segment or computed trait it subscribes to, an `audience-sync` job (listed in `syncJobs`) sends it the current members. Secrets are accepted here and never returned: the response lists their names in `secretsSet`. Audit-logged as `destination.create`, without the secrets.",
      request: { body: { required: true, content: { "application/json": { schema: createBody } } } },
      responses: { 201: json(z.object({ destination: destinationViewSchema, syncJobs: z.array(jobSchema) }), "Created"), ...problemResponses },
    }),
    async (c) => {
      const { workspaceId: requested, ...fields } = c.req.valid("json");
      const { workspaceId } = await identityGraphFor(c, requested);
      const id = generateId("dst");
      const parsed = destinationSchema.safeParse({ ...fields, id });
      if (!parsed.success) throw invalid(parsed.error.issues);
      const destination = parsed.data;
      const db = c.get("db");
      const now = new Date();
      const syncs = await syncJobInserts(db, workspaceId, id, newlySubscribed(null, destination));
      const [rows, , ...jobRows] = await db.batch([
        db
          .insert(destinations)
          .values({ id, workspaceId, name: destination.name, type: destination.type, enabled: destination.enabled, config: JSON.stringify(destination), createdAt: now, updatedAt: now })
          .returning(),
        auditInsert(c, { workspaceId, action: "destination.create", target: id, details: auditable(destination) }),
        ...syncs,
      ]);
      const started = await startJobs(c, (jobRows as (typeof jobs.$inferSelect)[][]).map((r) => r[0]!));
      return c.json({ destination: toDestinationView(rows[0]!), syncJobs: started.map(toJob) }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: PATH,
      tags: [TAG],
      summary: "List a workspace's destinations",
      description: "Every destination of the workspace, by name. Secrets are shown by name only, in `secretsSet`.",
      request: { query: workspaceQuery },
      responses: { 200: json(z.object({ data: z.array(destinationViewSchema) }), "The destinations"), ...problemResponses },
    }),
    async (c) => {
      const workspaceId = targetWorkspace(c.get("admin")!, c.req.valid("query").workspaceId);
      const rows = await c.get("db").select().from(destinations).where(eq(destinations.workspaceId, workspaceId)).orderBy(asc(destinations.name), asc(destinations.id)).all();
      return c.json({ data: rows.map(toDestinationView) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: `${PATH}/{id}`,
      tags: [TAG],
      summary: "Read a destination",
      description: "Secrets are shown by name only, in `secretsSet`.",
      request: { params: destinationIdParam, query: workspaceQuery },
      responses: { 200: json(destinationViewSchema, "The destination"), ...problemResponses },
    }),
    async (c) => {
      const row = await findDestination(c, c.req.valid("param").id, c.req.valid("query").workspaceId);
      return c.json(toDestinationView(row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: `${PATH}/{id}`,
      tags: [TAG],
      summary: "Change a destination",
      description:
        "Each field given replaces the stored one whole (`settings` and `subscriptions` included); the others are kept. A secret left out of `secrets` keeps its stored value, " +
        "so a destination can be edited without knowing its keys; a new `type` must bring its `settings` and every secret. The result is validated as a whole, " +
        "and an invalid one is a 400 naming each mistake by its path. Deliveries already queued are sent with the new configuration. " +
        "Each segment or computed trait it starts subscribing to (all of them when it is enabled) gets an `audience-sync` job, listed in `syncJobs`, that sends it the current members. " +
        "Audit-logged as `destination.update`, with the fields changed and the names of the secrets changed.",
      request: { params: destinationIdParam, query: workspaceQuery, body: { required: true, content: { "application/json": { schema: updateBody } } } },
      responses: { 200: json(z.object({ destination: destinationViewSchema, syncJobs: z.array(jobSchema) }), "Updated"), ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const row = await findDestination(c, id, c.req.valid("query").workspaceId);
      const stored = storedDestination(row);
      const destination = mergeUpdate(stored, c.req.valid("json"));
      const db = c.get("db");
      const syncs = await syncJobInserts(db, row.workspaceId, id, newlySubscribed(stored, destination));
      const [rows, , ...jobRows] = await db.batch([
        db
          .update(destinations)
          .set({ name: destination.name, type: destination.type, enabled: destination.enabled, config: JSON.stringify(destination), updatedAt: new Date() })
          .where(and(eq(destinations.id, id), eq(destinations.workspaceId, row.workspaceId)))
          .returning(),
        auditInsert(c, { workspaceId: row.workspaceId, action: "destination.update", target: id, details: changes(stored, destination) }),
        ...syncs,
      ]);
      const updated = rows[0];
      if (!updated) throw new ApiError("NOT_FOUND", `destination '${id}' not found`);
      const started = await startJobs(c, (jobRows as (typeof jobs.$inferSelect)[][]).map((r) => r[0]!));
      return c.json({ destination: toDestinationView(updated), syncJobs: started.map(toJob) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: `${PATH}/{id}`,
      tags: [TAG],
      summary: "Delete a destination",
      description:
        "It receives nothing more: deliveries already queued for it are dropped. Its counters and circuit breaker go with it; the delivery log stays, " +
        "as the record of which destination received whose data. Audit-logged as `destination.delete`.",
      request: { params: destinationIdParam, query: workspaceQuery },
      responses: { 204: { description: "Deleted" }, ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const row = await findDestination(c, id, c.req.valid("query").workspaceId);
      const db = c.get("db");
      await db.batch([
        db.delete(destinations).where(eq(destinations.id, id)),
        db.delete(destinationCounters).where(and(eq(destinationCounters.workspaceId, row.workspaceId), eq(destinationCounters.destinationId, id))),
        db.delete(destinationBreakers).where(eq(destinationBreakers.destinationId, id)),
        auditInsert(c, { workspaceId: row.workspaceId, action: "destination.delete", target: id, details: { name: row.name, type: row.type } }),
      ]);
      return c.body(null, 204);
    },
  );
}
