import { createRoute, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import type { App } from "../context";
import { sources } from "../db/schema";
import { forgetCredential } from "../config/keys-store";
import { displayPrefix, generateId, generateSecret, sha256Hex } from "../lib/keys";
import { ApiError } from "../lib/problem";
import { auditInsert } from "./audit";
import { existingWorkspace, requireScope, targetWorkspace } from "./auth";
import { idParam, isoDate, json, problemResponses, workspaceQuery } from "./schemas";

const sourceSchema = z
  .object({
    id: z.string(),
    workspaceId: z.string(),
    name: z.string(),
    writeKeyPrefix: z.string().openapi({ description: "First characters of the write key, to tell keys apart." }),
    createdAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
  })
  .openapi("Source");

const toSource = (row: typeof sources.$inferSelect) => ({
  id: row.id,
  workspaceId: row.workspaceId,
  name: row.name,
  writeKeyPrefix: row.writeKeyPrefix,
  createdAt: isoDate(row.createdAt),
  revokedAt: isoDate(row.revokedAt),
});

export function registerSourceRoutes(app: App) {
  app.use("/admin/v1/sources", requireScope("admin"));
  app.use("/admin/v1/sources/*", requireScope("admin"));

  app.openapi(
    createRoute({
      method: "get",
      path: "/admin/v1/sources",
      tags: ["Sources"],
      summary: "List a workspace's sources",
      request: { query: workspaceQuery },
      responses: { 200: json(z.object({ data: z.array(sourceSchema) }), "Sources"), ...problemResponses },
    }),
    async (c) => {
      const workspaceId = targetWorkspace(c.get("admin")!, c.req.valid("query").workspaceId);
      const rows = await c.get("db").select().from(sources).where(eq(sources.workspaceId, workspaceId)).all();
      return c.json({ data: rows.map(toSource) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/admin/v1/sources",
      tags: ["Sources"],
      summary: "Create a source; the response carries its write key, shown this once",
      request: {
        body: {
          required: true,
          content: { "application/json": { schema: z.object({ workspaceId: z.string().optional(), name: z.string().min(1).max(200).openapi({ example: "Website" }) }) } },
        },
      },
      responses: { 201: json(z.object({ source: sourceSchema, writeKey: z.string() }), "Created"), ...problemResponses },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const workspaceId = await existingWorkspace(c, body.workspaceId);
      const db = c.get("db");
      const writeKey = generateSecret("wk");
      const id = generateId("src");
      const [rows] = await db.batch([
        db
          .insert(sources)
          .values({ id, workspaceId, name: body.name, writeKeyHash: await sha256Hex(writeKey), writeKeyPrefix: displayPrefix(writeKey) })
          .returning(),
        auditInsert(c, { workspaceId, action: "source.create", target: id, details: { name: body.name } }),
      ]);
      return c.json({ source: toSource(rows[0]!), writeKey }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/admin/v1/sources/{id}",
      tags: ["Sources"],
      summary: "Revoke a source's write key (takes effect everywhere within 30 s)",
      request: { params: idParam("Source", "src_123") },
      responses: { 200: json(sourceSchema, "The revoked source"), ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const admin = c.get("admin")!;
      const db = c.get("db");
      const row = await db.select().from(sources).where(eq(sources.id, id)).get();
      if (!row || (admin.workspaceId !== null && row.workspaceId !== admin.workspaceId)) throw new ApiError("NOT_FOUND", `source '${id}' not found`);
      const [updated] = await db.batch([
        db.update(sources).set({ revokedAt: row.revokedAt ?? new Date() }).where(and(eq(sources.id, id))).returning(),
        auditInsert(c, { workspaceId: row.workspaceId, action: "source.revoke", target: id }),
      ]);
      await forgetCredential(row.writeKeyHash);
      return c.json(toSource(updated[0]!), 200);
    },
  );
}
