import { mentions } from "./r2/subject";
import type { PrivacyWork } from "./work";

/**
 * Removes what D1 still holds of a person once the identity object has erased
 * them (its write-through deletes their profile rows first; this sweep makes
 * sure, and reaches what the object never wrote). Every statement is scoped to
 * the workspace and takes its lists as one JSON parameter through `json_each`.
 * Audit entries are append-only records of who did what, so they are kept and
 * only their details redacted where they name one of the person's identifiers.
 */
export async function eraseFromD1(db: D1Database, work: PrivacyWork): Promise<Record<string, number>> {
  const ws = work.workspaceId;
  const ids = JSON.stringify(work.profileIds);
  const keys = JSON.stringify(work.identifiers.map((i) => `${i.type}\u0000${i.value}`));
  const values = [...new Set(work.identifiers.map((i) => i.value))];
  const statements = {
    profiles: db.prepare("DELETE FROM profiles WHERE workspace_id = ?1 AND (profile_id IN (SELECT value FROM json_each(?2)) OR canonical_id IN (SELECT value FROM json_each(?2)))").bind(ws, ids),
    profileIdentifiers: db
      .prepare(
        `DELETE FROM profile_identifiers WHERE workspace_id = ?1 AND (profile_id IN (SELECT value FROM json_each(?2))
          OR (type || char(0) || value) IN (SELECT value FROM json_each(?3)))`,
      )
      .bind(ws, ids, keys),
    // By profile: every event row names the profile it was written for, and the person's messageIds could outgrow one bound string.
    profileEvents: db.prepare("DELETE FROM profile_events WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2))").bind(ws, ids),
    accountLinks: db.prepare("DELETE FROM account_links WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2))").bind(ws, ids),
  };
  const results = await db.batch(Object.values(statements));
  const counts = Object.fromEntries(Object.keys(statements).map((name, i) => [name, results[i]!.meta.changes ?? 0]));
  return { ...counts, auditDetailsRedacted: await redactAudit(db, work, values) };
}

/**
 * Audit entries keep who did what and when; details that name one of the
 * person's identifiers are replaced. A value counts where it stands on its own
 * (`user-42` names `42`, `1425` does not), the rule the R2 erasure uses.
 */
async function redactAudit(db: D1Database, work: PrivacyWork, values: string[]): Promise<number> {
  const needles = [...new Set([...values, ...work.identifiers.map((i) => `${i.type}:${i.value}`)].map((v) => v.toLowerCase()))].filter(Boolean);
  if (!needles.length) return 0;
  const { results } = await db
    .prepare("SELECT id, details FROM audit_log WHERE workspace_id = ?1 AND details IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(?2) v WHERE instr(lower(audit_log.details), v.value) > 0)")
    .bind(work.workspaceId, JSON.stringify(needles))
    .all<{ id: string; details: string }>();
  const ids = results.filter((row) => mentions(JSON.parse(row.details), needles)).map((row) => row.id);
  if (!ids.length) return 0;
  const redaction = JSON.stringify({ redacted: `details removed by privacy deletion ${work.requestId}` });
  await db.prepare("UPDATE audit_log SET details = ?2 WHERE id IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(ids), redaction).run();
  return ids.length;
}
