import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { App } from "../context";
import { workspaces } from "../db/schema";
import { ApiError } from "../lib/problem";
import { auditInsert } from "./audit";
import { requireScope } from "./auth";
import { idParam, isoDate, json, problemResponses } from "./schemas";

const workspaceSchema = z
  .object({ id: z.string(), name: z.string(), createdAt: z.string().nullable() })
  .openapi("Workspace");

const toWorkspace = (row: typeof workspaces.$inferSelect) => ({ id: row.id, name: row.name, createdAt: isoDate(row.createdAt) });

const createBody = z.object({
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{1,62}$/, "lowercase letters, digits, - and _, 2 to 63 characters")
    .openapi({ example: "acme", description: "Also the Profile API space id." }),
  name: z.string().min(1).max(200).openapi({ example: "Acme Inc." }),
});

export function registerWorkspaceRoutes(app: App) {
  app.use("/admin/v1/workspaces", requireScope("admin"));
  app.use("/admin/v1/workspaces/*", requireScope("admin"));

  app.openapi(
    createRoute({
      method: "get",
      path: "/admin/v1/workspaces",
      tags: ["Workspaces"],
      summary: "List workspaces (a workspace token sees only its own)",
      responses: { 200: json(z.object({ data: z.array(workspaceSchema) }), "Workspaces"), ...problemResponses },
    }),
    async (c) => {
      const admin = c.get("admin")!;
      const query = c.get("db").select().from(workspaces);
      const rows = admin.workspaceId === null ? await query.all() : await query.where(eq(workspaces.id, admin.workspaceId)).all();
      return c.json({ data: rows.map(toWorkspace) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/admin/v1/workspaces",
      tags: ["Workspaces"],
      summary: "Create a workspace (root admin token only)",
      request: { body: { content: { "application/json": { schema: createBody } }, required: true } },
      responses: { 201: json(workspaceSchema, "Created"), 409: problemResponses[400], ...problemResponses },
    }),
    async (c) => {
      if (c.get("admin")!.workspaceId !== null) throw new ApiError("FORBIDDEN", "only the root admin token can create workspaces");
      const body = c.req.valid("json");
      const db = c.get("db");
      const existing = await db.select({ id: workspaces.id }).from(workspaces).where(eq(workspaces.id, body.id)).get();
      if (existing) throw new ApiError("CONFLICT", `workspace '${body.id}' already exists`, { errors: [{ path: "id", message: "already taken" }] });
      const [rows] = await db.batch([
        db.insert(workspaces).values(body).returning(),
        auditInsert(c, { workspaceId: body.id, action: "workspace.create", target: body.id, details: { name: body.name } }),
      ]);
      return c.json(toWorkspace(rows[0]!), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/admin/v1/workspaces/{id}",
      tags: ["Workspaces"],
      summary: "Get a workspace",
      request: { params: idParam("Workspace", "default") },
      responses: { 200: json(workspaceSchema, "The workspace"), ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const admin = c.get("admin")!;
      const row = await c.get("db").select().from(workspaces).where(eq(workspaces.id, id)).get();
      if (!row || (admin.workspaceId !== null && admin.workspaceId !== id)) throw new ApiError("NOT_FOUND", `workspace '${id}' not found`);
      return c.json(toWorkspace(row), 200);
    },
  );
}
