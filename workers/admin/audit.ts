import type { Context } from "hono";
import type { AppEnv } from "../context";
import { auditLog } from "../db/schema";
import { generateId } from "../lib/keys";

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
