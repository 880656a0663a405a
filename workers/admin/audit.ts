import type { Context } from "hono";
import type { AppEnv } from "../context";
import { auditLog } from "../db/schema";
import { generateId } from "../lib/keys";

/**
 * The audit log is append-only: entries are inserted here, read by
 * `GET /admin/v1/audit-log`, and removed only by the workspace's audit log
 * retention (workers/maintenance/retention.ts).
 */

export interface AuditEntry {
  workspaceId: string | null;
  action: string;
  target?: string;
  details?: Record<string, unknown>;
}

/** Builds the audit insert so callers can put it in the same D1 batch as the change it records. */
export function auditInsert(c: Context<AppEnv>, entry: AuditEntry) {
  return c
    .get("db")
    .insert(auditLog)
    .values({
      id: generateId("aud"),
      workspaceId: entry.workspaceId,
      actor: c.get("admin")?.actor ?? "anonymous",
      action: entry.action,
      target: entry.target ?? null,
      details: entry.details ?? null,
      requestId: c.get("requestId"),
    });
}

/**
 * The insert for work no request asked for (the maintenance cron), as a plain D1
 * statement for its batches. `at` is the run's time, so an entry says when the
 * run it records happened.
 */
export function systemAuditStatement(d1: D1Database, entry: AuditEntry & { actor: `system:${string}`; at: number }): D1PreparedStatement {
  return d1
    .prepare("INSERT INTO audit_log (id, workspace_id, actor, action, target, details, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
    .bind(generateId("aud"), entry.workspaceId, entry.actor, entry.action, entry.target ?? null, entry.details ? JSON.stringify(entry.details) : null, entry.at);
}
