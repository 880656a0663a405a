import { and, isNotNull, isNull, lte } from "drizzle-orm";
import type { Db } from "../db/client";
import { auditLog, tokens } from "../db/schema";
import { generateId } from "../lib/keys";

/**
 * Expired tokens already fail authentication; this marks them revoked so that
 * listings show them as inactive, and records the expiry in the audit log.
 */
export async function expireTokens(db: Db, now: Date): Promise<number> {
  const expired = await db
    .update(tokens)
    .set({ revokedAt: now })
    .where(and(isNull(tokens.revokedAt), isNotNull(tokens.expiresAt), lte(tokens.expiresAt, now)))
    .returning({ id: tokens.id, workspaceId: tokens.workspaceId });
  if (expired.length > 0) {
    await db.insert(auditLog).values(
      expired.map((token) => ({ id: generateId("aud"), workspaceId: token.workspaceId, actor: "system:cron", action: "token.expire", target: token.id })),
    );
  }
  return expired.length;
}
