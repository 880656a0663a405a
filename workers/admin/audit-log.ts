import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt, type SQL } from "drizzle-orm";
import type { App } from "../context";
import { auditLog } from "../db/schema";
import { requireScope, targetWorkspace } from "./auth";
import { isoDate, json, problemResponses } from "./schemas";

const entrySchema = z
  .object({
    id: z.string(),
    workspaceId: z.string().nullable(),
    actor: z.string(),
    action: z.string(),
    target: z.string().nullable(),
    details: z.record(z.string(), z.unknown()).nullable(),
    requestId: z.string().nullable(),
    createdAt: z.string().nullable(),
  })
  .openapi("AuditEntry");

export function registerAuditLogRoute(app: App) {
  app.use("/admin/v1/audit-log", requireScope("admin"));
  app.openapi(
    createRoute({
      method: "get",
      path: "/admin/v1/audit-log",
      tags: ["Audit"],
      summary: "Read the append-only audit log, newest first",
      request: {
        query: z.object({
          workspaceId: z.string().optional(),
          limit: z.coerce.number().int().min(1).max(200).default(50),
          before: z.string().optional().openapi({ description: "Cursor: the `next` value of the previous page." }),
        }),
      },
      responses: { 200: json(z.object({ data: z.array(entrySchema), next: z.string().nullable() }), "Entries"), ...problemResponses },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const workspaceId = targetWorkspace(c.get("admin")!, query.workspaceId);
      const filters: SQL[] = [eq(auditLog.workspaceId, workspaceId)];
      if (query.before) filters.push(lt(auditLog.createdAt, new Date(Number(query.before))));
      const rows = await c
        .get("db")
        .select()
        .from(auditLog)
        .where(and(...filters))
        .orderBy(desc(auditLog.createdAt))
        .limit(query.limit + 1)
        .all();
      const page = rows.slice(0, query.limit);
      const next = rows.length > query.limit ? String(page.at(-1)!.createdAt.getTime()) : null;
      return c.json({ data: page.map((r) => ({ ...r, createdAt: isoDate(r.createdAt) })), next }, 200);
    },
  );
}
