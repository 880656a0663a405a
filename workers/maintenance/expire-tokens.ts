/**
 * Expired tokens already fail authentication; this marks them revoked so that
 * listings show them as inactive, and records each expiry in the audit log.
 * Both statements run in one D1 batch (one transaction) and bind a single
 * parameter, so any number of expiries fits D1's bound-parameter limit.
 */
export async function expireTokens(d1: D1Database, now: Date): Promise<number> {
  const cutoff = now.getTime();
  const expiring = "revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ?1";
  const [audit] = await d1.batch([
    d1
      .prepare(
        `INSERT INTO audit_log (id, workspace_id, actor, action, target) SELECT 'aud_' || lower(hex(randomblob(12))), workspace_id, 'system:cron', 'token.expire', id FROM tokens WHERE ${expiring}`,
      )
      .bind(cutoff),
    d1.prepare(`UPDATE tokens SET revoked_at = ?1 WHERE ${expiring}`).bind(cutoff),
  ]);
  return audit?.meta.changes ?? 0;
}
