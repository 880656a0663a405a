import { identifierHash } from "../archive/writer";
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
  const archiveHashes = JSON.stringify(await Promise.all(values.map((value) => identifierHash(ws, value))));
  const redaction = JSON.stringify({ redacted: `details removed by privacy deletion ${work.requestId}` });
  const statements = {
    profiles: db.prepare("DELETE FROM profiles WHERE workspace_id = ?1 AND (profile_id IN (SELECT value FROM json_each(?2)) OR canonical_id IN (SELECT value FROM json_each(?2)))").bind(ws, ids),
    profileIdentifiers: db
      .prepare(
        `DELETE FROM profile_identifiers WHERE workspace_id = ?1 AND (profile_id IN (SELECT value FROM json_each(?2))
          OR (type || char(0) || value) IN (SELECT value FROM json_each(?3)))`,
      )
      .bind(ws, ids, keys),
    profileEvents: db
      .prepare("DELETE FROM profile_events WHERE workspace_id = ?1 AND (profile_id IN (SELECT value FROM json_each(?2)) OR message_id IN (SELECT value FROM json_each(?3)))")
      .bind(ws, ids, JSON.stringify(work.messageIds)),
    // The request's own record already names the destinations their deletion went to.
    destinationRecipients: db.prepare("DELETE FROM destination_recipients WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2))").bind(ws, ids),
    accountLinks: db.prepare("DELETE FROM account_links WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2))").bind(ws, ids),
    archiveIndex: db.prepare("DELETE FROM archive_index WHERE workspace_id = ?1 AND identifier_hash IN (SELECT value FROM json_each(?2))").bind(ws, archiveHashes),
    auditDetailsRedacted: db
      .prepare("UPDATE audit_log SET details = ?3 WHERE workspace_id = ?1 AND EXISTS (SELECT 1 FROM json_each(?2) v WHERE instr(lower(audit_log.details), lower(v.value)) > 0)")
      .bind(ws, JSON.stringify(values), redaction),
  };
  const results = await db.batch(Object.values(statements));
  return Object.fromEntries(Object.keys(statements).map((name, i) => [name, results[i]!.meta.changes ?? 0]));
}
