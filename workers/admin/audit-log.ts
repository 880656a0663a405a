import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, gte, lt, or, type SQL, sql } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { App } from "../context";
import { auditLog } from "../db/schema";
import { ApiError } from "../lib/problem";
import { requireScope, targetWorkspace } from "./auth";
import { pageCursor, parseCursor } from "./destination-deliveries";
import { isoDate, json, problemResponses } from "./schemas";

/**
 * The audit log is append-only: this read is its only route. Entries leave it
 * only through the workspace's `auditLog` retention (workers/maintenance/retention.ts).
 */

const entrySchema = z
  .object({
    id: z.string(),
    workspaceId: z.string().nullable(),
    actor: z.string().openapi({ description: "`root` (the deployment's admin token), `token:{id}` (a workspace token), or `system:{task}` for the maintenance cron (`system:cron`, `system:retention`)." }),
    action: z.string().openapi({ example: "privacy.settings.updated" }),
    target: z.string().nullable().openapi({ description: "What the action was on: the id of the workspace, source, token, segment, destination, delivery, profile… it names." }),
    details: z.record(z.string(), z.unknown()).nullable(),
    requestId: z.string().nullable(),
    createdAt: z.string().nullable(),
  })
  .openapi("AuditEntry");

/** Letters, digits and `_.:-`, optionally ending in `*` for a prefix match. */
const matcher = (example: string, what: string) =>
  z
    .string()
    .regex(/^[A-Za-z0-9_.:-]*\*?$/, "letters, digits, '_', '.', ':' or '-', optionally ending in '*' to match a prefix")
    .max(200)
    .optional()
    .openapi({ example, description: `Only entries whose ${what} is this, or starts with it when it ends in \`*\`.` });

const instant = (description: string) => z.iso.datetime({ offset: true }).optional().openapi({ example: "2026-11-22T10:00:00Z", description });

const query = z.object({
  workspaceId: z.string().optional().openapi({ description: "Required with the root admin token; a workspace token is confined to its own." }),
  action: matcher("privacy.*", "action"),
  actor: matcher("token:*", "actor"),
  target: matcher("src_0123", "target"),
  since: instant("Only entries at or after this time (ISO 8601)."),
  until: instant("Only entries before this time (ISO 8601)."),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().min(1).optional().openapi({ description: "The `next` of the previous page; pages stay stable while entries are added." }),
});

/** Exact, or a prefix when the pattern ends in `*`; the pattern's characters are never wildcards themselves. */
function matches(column: SQLiteColumn, pattern: string): SQL {
  if (!pattern.endsWith("*")) return eq(column, pattern);
  const prefix = pattern.slice(0, -1);
  return sql`substr(${column}, 1, ${prefix.length}) = ${prefix}`;
}

export function registerAuditLogRoute(app: App) {
  // Privacy officers read it as well as admins: it records both kinds of action.
  app.use("/admin/v1/audit-log", requireScope("admin", "privacy"));
  app.openapi(
    createRoute({
      method: "get",
      path: "/admin/v1/audit-log",
      tags: ["Audit"],
      summary: "Read the append-only audit log, newest first",
      description:
        "Who did what, when, on what: every admin and privacy change, and what the maintenance cron did on its own (token expiry, retention). Filter by `action`, `actor` and `target` " +
        "(exact, or a prefix ending in `*`, like `action=privacy.*`) and by time (`since` inclusive, `until` exclusive); page with `limit` and `cursor`. " +
        "Entries cannot be changed or deleted through the API; they are removed only by the workspace's audit log retention (privacy settings).",
      request: { query },
      responses: { 200: json(z.object({ data: z.array(entrySchema), next: z.string().nullable() }), "Entries"), ...problemResponses },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const workspaceId = targetWorkspace(c.get("admin")!, q.workspaceId);
      if (q.since && q.until && Date.parse(q.since) >= Date.parse(q.until)) {
        throw new ApiError("VALIDATION_FAILED", "since must be before until", { errors: [{ path: "until", message: "must be after since" }] });
      }
      const filters: SQL[] = [eq(auditLog.workspaceId, workspaceId)];
      if (q.action) filters.push(matches(auditLog.action, q.action));
      if (q.actor) filters.push(matches(auditLog.actor, q.actor));
      if (q.target) filters.push(matches(auditLog.target, q.target));
      if (q.since) filters.push(gte(auditLog.createdAt, new Date(q.since)));
      if (q.until) filters.push(lt(auditLog.createdAt, new Date(q.until)));
      // Entries share a millisecond often (a batch, a cron run): the id breaks the tie, so no entry is skipped or shown twice.
      if (q.cursor) {
        const after = parseCursor(q.cursor);
        const at = new Date(after.time);
        filters.push(or(lt(auditLog.createdAt, at), and(eq(auditLog.createdAt, at), lt(auditLog.id, after.id)))!);
      }
      const rows = await c
        .get("db")
        .select()
        .from(auditLog)
        .where(and(...filters))
        .orderBy(desc(auditLog.createdAt), desc(auditLog.id))
        .limit(q.limit + 1)
        .all();
      const page = rows.slice(0, q.limit);
      const last = page.at(-1);
      const next = rows.length > q.limit && last ? pageCursor(last.createdAt.getTime(), last.id) : null;
      return c.json({ data: page.map((r) => ({ ...r, createdAt: isoDate(r.createdAt) })), next }, 200);
    },
  );
}
