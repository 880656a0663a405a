import { privacyFor } from "../identity/sharding/privacy";
import { archivedEventsOf } from "./r2-erasure";
import { getPrivacyRequest, type PrivacyRequest, updatePrivacyRequest } from "./requests-store";
import { deleteWork, getWork, type PrivacyWork } from "./work";

/** Where an access request's document is kept until the person's deletion or the request's retention removes it. */
export const exportDocumentKey = (workspaceId: string, requestId: string) => `privacy/exports/${workspaceId}/${requestId}.json`;

export const EXPORT_FORMAT = "edge-cdp.privacy-export.v1";

/**
 * An access request, in one step: everything known about the person, from
 * each store, gathered into one JSON document in R2. Re-running it writes the
 * same document again.
 */
export async function runExport(env: Env, requestId: string): Promise<{ processed: number; total: number; next: null; sent: number }> {
  const request = await getPrivacyRequest(env.DB, requestId);
  if (!request || request.kind !== "export") throw new Error(`privacy request '${requestId}' is not an export`);
  if (request.status !== "initialized" && request.status !== "running") {
    await deleteWork(env.ARCHIVE, request.workspaceId, request.id);
    return { processed: 0, total: 1, next: null, sent: 0 };
  }
  const work = await getWork(env.ARCHIVE, request.workspaceId, request.id);
  if (!work) throw new Error(`export '${requestId}' lost its work object; it cannot continue`);
  const now = Date.now();
  const deletion = await deletionOf(env.DB, request);
  if (deletion) {
    // The person is being (or was) deleted: a copy of their data must not outlive that.
    await updatePrivacyRequest(env.DB, request.id, { status: "failed", error: `the person was deleted by deletion request ${deletion}; nothing was exported`, finishedAt: now }, now);
    await deleteWork(env.ARCHIVE, work.workspaceId, request.id);
    return { processed: 1, total: 1, next: null, sent: 0 };
  }
  const document = await gather(env, work);
  const body = JSON.stringify(document, null, 2);
  const key = exportDocumentKey(work.workspaceId, request.id);
  await env.ARCHIVE.put(key, body, { httpMetadata: { contentType: "application/json" }, customMetadata: { workspaceId: work.workspaceId, requestId } });
  // Recorded before the work goes: a document no row names would never be deleted.
  await updatePrivacyRequest(env.DB, request.id, { status: "finished", resultKey: key, resultBytes: new TextEncoder().encode(body).byteLength, finishedAt: now, stores: { document: { status: "done", counts: document.counts, at: now } } }, now);
  await deleteWork(env.ARCHIVE, work.workspaceId, request.id);
  return { processed: 1, total: 1, next: null, sent: 0 };
}

/** A deletion request about the same person (sharing a profile id or an identifier), if any. */
async function deletionOf(db: D1Database, request: PrivacyRequest): Promise<string | null> {
  const row = await db
    .prepare(
      `SELECT id FROM privacy_requests WHERE workspace_id = ?1 AND kind = 'deletion' AND (
         EXISTS (SELECT 1 FROM json_each(privacy_requests.profile_ids) p WHERE p.value IN (SELECT value FROM json_each(?2)))
         OR EXISTS (SELECT 1 FROM json_each(privacy_requests.identifier_hashes) h WHERE h.value IN (SELECT value FROM json_each(?3))))
       LIMIT 1`,
    )
    .bind(request.workspaceId, JSON.stringify(request.profileIds), JSON.stringify(request.identifierHashes))
    .first<{ id: string }>();
  return row?.id ?? null;
}

async function gather(env: Env, work: PrivacyWork) {
  const ws = work.workspaceId;
  const ids = JSON.stringify(work.profileIds);
  // From the graph shard the identifier index places the subject on.
  const person = await privacyFor(env, ws).person(work.subject.type, work.subject.value);
  const [profiles, identifiers, events, links, deliveries] = await env.DB.batch([
    env.DB.prepare("SELECT * FROM profiles WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2))").bind(ws, ids),
    env.DB.prepare("SELECT type, value, profile_id, source_id, first_seen_at, last_seen_at FROM profile_identifiers WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2))").bind(ws, ids),
    env.DB.prepare("SELECT message_id, profile_id, type, event, timestamp, source_id, payload FROM profile_events WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2)) ORDER BY timestamp").bind(ws, ids),
    env.DB.prepare("SELECT profile_id, group_id, source_id, linked_at FROM account_links WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2))").bind(ws, ids),
    env.DB.prepare(
      `SELECT l.id, l.destination_id, d.name AS destination_name, d.type AS destination_type, l.status, l.message_ids, l.attempts, l.first_attempt_at, l.updated_at
       FROM deliveries l LEFT JOIN destinations d ON d.id = l.destination_id
       WHERE l.workspace_id = ?1
         AND l.destination_id IN (SELECT destination_id FROM destination_recipients WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2)))
         AND EXISTS (SELECT 1 FROM json_each(l.profile_ids) p WHERE p.value IN (SELECT value FROM json_each(?2))) ORDER BY l.created_at`,
    ).bind(ws, ids),
  ]);
  const archived = await archivedEventsOf(env, ws, [...new Set(work.identifiers.map((i) => i.value))], work.messageIds);
  const d1Events = (events!.results as { payload: string }[]).map((row) => ({ ...row, payload: JSON.parse(row.payload) as unknown }));
  const d1Profiles = (profiles!.results as Record<string, unknown>[]).map((row) => parseJsonColumns(row, ["traits", "trait_meta", "computed_traits", "segments", "consent"]));
  const deliveryRows = (deliveries!.results as Record<string, unknown>[]).map((row) => parseJsonColumns(row, ["message_ids"]));
  const counts = {
    identifiers: work.identifiers.length,
    profileIds: work.profileIds.length,
    objectEvents: person?.events.length ?? 0,
    d1Events: d1Events.length,
    archivedEvents: archived.events.length,
    deliveries: deliveryRows.length,
    merges: person?.merges.length ?? 0,
    consentChanges: person?.consentHistory.length ?? 0,
  };
  return {
    format: EXPORT_FORMAT,
    requestId: work.requestId,
    workspaceId: ws,
    generatedAt: new Date().toISOString(),
    subject: work.subject,
    counts,
    profile: {
      profileId: person?.profileId ?? work.profileIds[0] ?? null,
      profileIds: work.profileIds,
      identifiers: person?.identifiers ?? work.identifiers,
      sharedIdentifiers: person?.sharedIdentifiers ?? [],
      current: person?.profile ?? null,
      consent: { current: person?.consent ?? null, history: person?.consentHistory ?? [] },
    },
    identity: { merges: person?.merges ?? [], reviews: person?.reviews ?? [] },
    accounts: links!.results,
    events: {
      identityObject: person?.events ?? [],
      d1: d1Events,
      archive: { events: archived.events, objectsRead: archived.objectsRead, truncated: archived.truncated },
    },
    d1: { profiles: d1Profiles, identifiers: identifiers!.results },
    deliveries: deliveryRows,
  };
}

function parseJsonColumns(row: Record<string, unknown>, columns: string[]): Record<string, unknown> {
  const out = { ...row };
  for (const column of columns) if (typeof out[column] === "string") out[column] = JSON.parse(out[column] as string) as unknown;
  return out;
}
