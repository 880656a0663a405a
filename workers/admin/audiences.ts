import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq, gt, sql } from "drizzle-orm";
import type { Context } from "hono";
import { applyAudience, audienceOf, type AudienceRow } from "../audiences/apply";
import type { App, AppEnv } from "../context";
import { audiences } from "../db/schema";
import { audiencesFor } from "../identity/sharding/audiences";
import { backfillJobInsert } from "../jobs/backfill";
import { generateId } from "../lib/keys";
import { ApiError } from "../lib/problem";
import { audienceKeySchema } from "../segments/catalog";
import { auditInsert } from "./audit";
import { requireScope } from "./auth";
import { conflictResponse, identityGraphFor } from "./identity-common";
import { jobSchema, toJob } from "./jobs";
import { idParam, json, problemResponses, workspaceQuery } from "./schemas";

import { COMPUTED_TRAITS, definitionField, isUniqueViolation, type MembersResult, nameField, type PreviewResult, previewSchema, type Resource, SEGMENTS, toAudience } from "./audience-resources";

/**
 * Segments (`/admin/v1/segments`) and computed traits (`/admin/v1/computed-traits`):
 * the same resource over two definition languages, so one set of routes serves both.
 * D1 holds the configuration; every change is applied to the workspace's identity
 * object (every graph shard of it: identity/sharding/audiences.ts), and a new definition starts a backfill job (`/admin/v1/jobs/{id}`) that
 * evaluates the existing profiles through the jobs queue.
 */

export function registerSegmentRoutes(app: App) {
  registerAudienceRoutes(app, SEGMENTS);
}

export function registerComputedTraitRoutes(app: App) {
  registerAudienceRoutes(app, COMPUTED_TRAITS);
}

function registerAudienceRoutes(app: App, resource: Resource) {
  const { kind, path, noun } = resource;
  app.use(path, requireScope("admin"));
  app.use(`${path}/*`, requireScope("admin"));

  const audienceSchema = z
    .object({
      id: z.string().openapi({ example: `${resource.idPrefix}_4f1c2a9e0b7d4c3a8e6f1a2b` }),
      workspaceId: z.string(),
      key: z.string().openapi({ example: resource.exampleKey, description: "What it appears under on profiles; unique in the workspace across segments and computed traits, and fixed once created." }),
      name: z.string(),
      definition: z.unknown().openapi({ description: resource.definitionDescription, example: resource.definitionExample }),
      version: z.number().int().openapi({ description: "1 at creation; grows by one with every new definition." }),
      createdAt: z.string().nullable(),
      updatedAt: z.string().nullable(),
    })
    .openapi(resource.component);
  const changedSchema = z.object({
    [resource.field]: audienceSchema,
    job: jobSchema.nullable().openapi({ description: "The backfill that evaluates the existing profiles against the new definition; null when the definition did not change." }),
  });
  const memberSchema = z
    .object({
      profileId: z.string(),
      ...(kind === "computed_trait" ? { value: z.unknown().openapi({ description: "The computed value." }) } : {}),
      since: z.string().openapi({ description: resource.memberDescription }),
    })
    .openapi(`${resource.component}Member`);
  const byId = { params: idParam(resource.component, `${resource.idPrefix}_4f1c2a9e0b7d4c3a8e6f1a2b`), query: workspaceQuery };

  /**
   * The resource by id, as the token may see it: another workspace's (or one
   * not in the workspace named) is a 404, so a token cannot learn it exists.
   */
  async function find(c: Context<AppEnv>, id: string, requested: string | undefined) {
    const admin = c.get("admin")!;
    const row = await c.get("db").select().from(audiences).where(and(eq(audiences.id, id), eq(audiences.kind, kind))).get();
    const visible = row && (admin.workspaceId === null || admin.workspaceId === row.workspaceId) && (requested === undefined || requested === row.workspaceId);
    if (!visible) throw new ApiError("NOT_FOUND", `${noun} '${id}' not found`);
    return { row, graph: audiencesFor(c.env, row.workspaceId) };
  }

  app.openapi(
    createRoute({
      method: "post",
      path,
      tags: [resource.tag],
      summary: `Create a ${noun} and backfill it over the existing profiles`,
      description:
        `Saves the ${noun}, starts evaluating it on every new event at once, and starts a backfill job that evaluates the existing profiles (poll \`/admin/v1/jobs/{id}\`); ` +
        `until the job has succeeded, profiles it has not reached yet may not show the ${noun}. A key already used in the workspace is a 409. Audit-logged as \`${kind}.create\`.`,
      request: {
        body: {
          required: true,
          content: {
            "application/json": {
              schema: z.object({
                workspaceId: workspaceQuery.shape.workspaceId,
                key: audienceKeySchema.openapi({ example: resource.exampleKey }),
                name: nameField.openapi({ example: kind === "segment" ? "Repeat buyers" : "Revenue, last 30 days" }),
                definition: definitionField(resource),
              }),
            },
          },
        },
      },
      responses: { 201: json(changedSchema, "Created, with its backfill job"), 409: conflictResponse("The key is already used in the workspace"), ...problemResponses },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const { workspaceId } = await identityGraphFor(c, body.workspaceId);
      const graph = audiencesFor(c.env, workspaceId);
      const db = c.get("db");
      const taken = await db.select({ id: audiences.id, kind: audiences.kind }).from(audiences).where(and(eq(audiences.workspaceId, workspaceId), eq(audiences.key, body.key))).get();
      const conflict = (holder?: { id: string; kind: string }) =>
        new ApiError("CONFLICT", `key '${body.key}' is already used in workspace '${workspaceId}'${holder ? ` by ${holder.kind.replace("_", " ")} '${holder.id}'` : ""}`, {
          errors: [{ path: "key", message: "already taken" }],
        });
      if (taken) throw conflict(taken);
      const id = generateId(resource.idPrefix);
      let created: [AudienceRow[], Awaited<ReturnType<typeof backfillJobInsert>>, unknown];
      try {
        created = await db.batch([
          db.insert(audiences).values({ id, workspaceId, kind, key: body.key, name: body.name, definition: body.definition, version: 1 }).returning(),
          backfillJobInsert(db, workspaceId, id),
          auditInsert(c, { workspaceId, action: `${kind}.create`, target: id, details: { key: body.key, name: body.name, definition: body.definition } }),
        ]);
      } catch (error) {
        // Two requests raced for the key: the unique index let one through.
        if (isUniqueViolation(error)) throw conflict();
        throw error;
      }
      const row = created[0][0]!;
      const job = await applyAudience(c.env, db, graph, audienceOf(row), created[1][0]!, c.get("logger"));
      return c.json({ [resource.field]: toAudience(row), job: job ? toJob(job) : null }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path,
      tags: [resource.tag],
      summary: `List a workspace's ${noun}s`,
      description: "In key order, paged with `limit` and `cursor` (the `next` of the previous page).",
      request: {
        query: workspaceQuery.extend({
          limit: z.coerce.number().int().min(1).max(200).default(50),
          cursor: z.string().optional().openapi({ description: "The `next` of the previous page." }),
        }),
      },
      responses: { 200: json(z.object({ data: z.array(audienceSchema), next: z.string().nullable() }), `A page of ${noun}s`), ...problemResponses },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const { workspaceId } = await identityGraphFor(c, query.workspaceId);
      const filters = [eq(audiences.workspaceId, workspaceId), eq(audiences.kind, kind)];
      if (query.cursor !== undefined) filters.push(gt(audiences.key, query.cursor));
      const rows = await c
        .get("db")
        .select()
        .from(audiences)
        .where(and(...filters))
        .orderBy(asc(audiences.key))
        .limit(query.limit + 1)
        .all();
      const page = rows.slice(0, query.limit);
      return c.json({ data: page.map(toAudience), next: rows.length > query.limit ? page.at(-1)!.key : null }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: `${path}/preview`,
      tags: [resource.tag],
      summary: `Preview a ${noun} without saving it`,
      description: `How many live profiles the definition would hold now, out of how many, with a sample of them; nothing is saved and no profile changes.`,
      request: {
        body: {
          required: true,
          content: {
            "application/json": {
              schema: z.object({
                workspaceId: workspaceQuery.shape.workspaceId,
                definition: definitionField(resource),
                sample: z.number().int().min(0).max(100).default(10).openapi({ description: "How many profiles to return (0 to 100, default 10)." }),
              }),
            },
          },
        },
      },
      responses: { 200: json(previewSchema, "The preview"), ...problemResponses },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const { workspaceId } = await identityGraphFor(c, body.workspaceId);
      const graph = audiencesFor(c.env, workspaceId);
      const candidate = { id: `${resource.idPrefix}_preview`, kind, key: "preview", name: "preview", definition: body.definition, version: 0 };
      const result: PreviewResult = await graph.previewAudience(candidate, body.sample);
      if (!result.ok) throw new ApiError("VALIDATION_FAILED", "the definition is invalid", { errors: result.errors });
      return c.json({ size: result.size, total: result.total, sample: result.sample }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: `${path}/{id}`,
      tags: [resource.tag],
      summary: `Read a ${noun}`,
      request: byId,
      responses: { 200: json(audienceSchema, `The ${noun}`), ...problemResponses },
    }),
    async (c) => {
      const { row } = await find(c, c.req.valid("param").id, c.req.valid("query").workspaceId);
      return c.json(toAudience(row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: `${path}/{id}`,
      tags: [resource.tag],
      summary: `Rename a ${noun} or give it a new definition`,
      description:
        `A new definition replaces the old one for every new event at once, bumps \`version\`, and starts a backfill job that evaluates the existing profiles again; ` +
        `a new name alone changes no profile. The key cannot change. Audit-logged as \`${kind}.update\`.`,
      request: {
        params: byId.params,
        query: workspaceQuery,
        body: {
          required: true,
          content: {
            "application/json": {
              schema: z.object({ name: nameField.optional(), definition: definitionField(resource).optional() }).refine((b) => b.name !== undefined || b.definition !== undefined, {
                message: "give a name, a definition or both",
              }),
            },
          },
        },
      },
      responses: { 200: json(changedSchema, "Updated, with its backfill job when the definition changed"), ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const body = c.req.valid("json");
      const { row, graph } = await find(c, id, c.req.valid("query").workspaceId);
      const db = c.get("db");
      const redefined = body.definition !== undefined;
      // The version grows in D1 itself, so two edits at once get two versions; the later one wins everywhere.
      const update = db
        .update(audiences)
        .set({ ...(body.name !== undefined ? { name: body.name } : {}), ...(redefined ? { definition: body.definition, version: sql`${audiences.version} + 1` } : {}), updatedAt: new Date() })
        .where(eq(audiences.id, id))
        .returning();
      const audit = auditInsert(c, { workspaceId: row.workspaceId, action: `${kind}.update`, target: id, details: body });
      const [rows, jobs] = redefined ? await db.batch([update, backfillJobInsert(db, row.workspaceId, id), audit]) : await db.batch([update, audit]).then(([rows]) => [rows, null] as const);
      const updated = rows[0];
      if (!updated) throw new ApiError("NOT_FOUND", `${noun} '${id}' not found`);
      const jobRow = jobs?.[0] ?? null;
      const job = await applyAudience(c.env, db, graph, audienceOf(updated), jobRow, c.get("logger"));
      return c.json({ [resource.field]: toAudience(updated), job: job ? toJob(job) : null }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: `${path}/{id}`,
      tags: [resource.tag],
      summary: `Delete a ${noun}`,
      description: `Every profile stops holding it at once; the change reaches the profile rows read by the Profile API moments later. Audit-logged as \`${kind}.delete\`.`,
      request: byId,
      responses: { 204: { description: "Deleted" }, ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { row, graph } = await find(c, id, c.req.valid("query").workspaceId);
      // The object first: if D1 then fails, the row still stands and the maintenance cron puts it back, as the caller saw the delete fail.
      await graph.removeAudience(id);
      const db = c.get("db");
      await db.batch([db.delete(audiences).where(eq(audiences.id, id)), auditInsert(c, { workspaceId: row.workspaceId, action: `${kind}.delete`, target: id, details: { key: row.key, name: row.name } })]);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: `${path}/{id}/members`,
      tags: [resource.tag],
      summary: kind === "segment" ? "The profiles in a segment" : "The profiles holding a value of a computed trait, with the value",
      description:
        "Live profiles in profile id order, read from the workspace's identity object (so current to the last event), paged with `limit` and `cursor` (the `next` of the previous page). " +
        "While a backfill runs, profiles it has not reached yet are not listed.",
      request: {
        params: byId.params,
        query: workspaceQuery.extend({
          limit: z.coerce.number().int().min(1).max(1000).default(100),
          cursor: z.string().min(1).optional().openapi({ description: "The `next` of the previous page." }),
        }),
      },
      responses: { 200: json(z.object({ data: z.array(memberSchema), next: z.string().nullable() }), "A page of members"), ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const query = c.req.valid("query");
      const { graph } = await find(c, id, query.workspaceId);
      const members: MembersResult = await graph.audienceMembers(id, query.cursor ?? null, query.limit + 1);
      const page = members.slice(0, query.limit);
      const data = page.map((m) => ({ profileId: m.profileId, ...(kind === "computed_trait" ? { value: m.value } : {}), since: new Date(m.since).toISOString() }));
      return c.json({ data, next: members.length > query.limit ? page.at(-1)!.profileId : null }, 200);
    },
  );
}
