import { privacyFor } from "../identity/sharding/privacy";
import { eraseFromR2 } from "./r2-erasure";
import { eraseFromD1 } from "./d1-erasure";
import { destinationsThatReceived, sendDeletions } from "./destination-deletions";
import { getPrivacyRequest, type PrivacyRequest, type StoreReport, updatePrivacyRequest } from "./requests-store";
import { deleteWork, getWork, type PrivacyWork } from "./work";

/**
 * A deletion runs as a job, one step per jobs-queue message, each idempotent
 * so a redelivered step only repeats work:
 * 1. `r2`: the archive objects holding the person's events are rewritten
 *    without them, and so are the warehouse files, dead letters and
 *    quarantined messages; earlier access exports of them are deleted.
 * 2. `identity`: the workspace's identity object forgets them (graph, events,
 *    traits, audiences) and its write-through deletes their D1 profile rows.
 * 3. `d1`: every D1 table is swept for what is left.
 * 4. `destinations`: each destination the delivery log says received their
 *    data is sent its deletion call, retried with backoff until it succeeds or
 *    is given up (`MAX_DELETION_ATTEMPTS`).
 * 5. `finish`: what the live pipeline did meanwhile is put right (see
 *    `finish`), the status is settled and the job's clear-text work removed.
 * Intake suppression of every identifier was in place before step 1 (the
 * request is created with it), so nothing new of theirs arrives meanwhile.
 */
export const DELETION_STEPS = ["r2", "identity", "d1", "destinations", "finish"] as const;

export class DeletionPending extends Error {}

const done = (counts: Record<string, number>, now: number): StoreReport => ({ status: "done", counts, at: now });

export async function runDeletionStep(env: Env, requestId: string, after: string | null): Promise<{ processed: number; total: number; next: string | null; sent: number }> {
  const request = await getPrivacyRequest(env.DB, requestId);
  if (!request || request.kind !== "deletion") throw new Error(`privacy request '${requestId}' is not a deletion`);
  // The job's cursor is the index of the step done, as one digit: the jobs consumer orders cursors as text.
  const index = after === null ? 0 : Number(after) + 1;
  const step = DELETION_STEPS[index];
  if (!step) throw new Error(`deletion '${requestId}' has no step after '${after}'`);
  const total = DELETION_STEPS.length;
  const next = index + 1 < total ? String(index) : null;
  if (request.status !== "initialized" && request.status !== "running") {
    // An ended request (finished, or failed by its job's last retry) runs nothing more, and keeps nothing in the clear.
    await deleteWork(env.ARCHIVE, request.workspaceId, request.id);
    return { processed: 0, total, next: null, sent: 0 };
  }
  const work = await getWork(env.ARCHIVE, request.workspaceId, request.id);
  if (!work) throw new Error(`deletion '${requestId}' lost its work object; it cannot continue`);
  const now = Date.now();
  const stores = { ...request.stores };
  let sent = 0;
  switch (step) {
    case "r2": {
      const report = await eraseFromR2(env, subjectOf(work));
      const exports = await deleteEarlierExports(env, request);
      stores.r2 = done({ ...flatten(report), accessExportsDeleted: exports }, now);
      break;
    }
    case "identity": {
      // On the graph shard holding them, which then forgets their keys in the identifier index (identity/sharding/privacy.ts).
      const erased = await privacyFor(env, work.workspaceId).erase(work.profileIds, work.identifiers);
      stores.identity = done({ ...erased }, now);
      break;
    }
    case "d1":
      stores.d1 = done(await eraseFromD1(env.DB, work), now);
      break;
    case "destinations":
      sent = await destinationsStep(env, request, work, now);
      break;
    case "finish":
      await finish(env, request, work, now);
      return { processed: 1, total, next: null, sent };
  }
  await updatePrivacyRequest(env.DB, request.id, { status: "running", stores }, now);
  return { processed: 1, total, next, sent };
}

async function destinationsStep(env: Env, request: PrivacyRequest, work: PrivacyWork, now: number): Promise<number> {
  // A delivery already under way when the person was suppressed may have reached a destination since the request was made.
  const destinations = { ...request.destinations };
  for (const d of await destinationsThatReceived(env.DB, work.workspaceId, work.profileIds)) destinations[d.id] ??= { name: d.name, type: d.type, status: "pending", attempts: 0 };
  const { reports, retry } = await sendDeletions(env.DB, work, destinations, now);
  await updatePrivacyRequest(env.DB, request.id, { status: "running", destinations: reports }, now);
  const pending = Object.values(reports).filter((r) => r.status === "retrying").length;
  // The jobs consumer retries the step with backoff; each round sends only to destinations still pending.
  if (retry) throw new DeletionPending(`deletion calls pending at ${pending} destination(s); retrying`);
  return Object.values(reports).filter((r) => r.status === "finished").length;
}

/**
 * Settles the request, after putting right what the live pipeline may have
 * done while the steps ran: a profiles snapshot taken between the R2 step and
 * the removal of the rows it reads, an access export that finished after the
 * R2 step, a profile the identity object built from an event already past the
 * suppression check. Then the clear-text work goes, after the status is recorded.
 */
async function finish(env: Env, request: PrivacyRequest, work: PrivacyWork, now: number) {
  const since = request.stores.r2?.at ?? 0;
  const snapshot = await env.DB.prepare(
    "SELECT 1 FROM warehouse_exports WHERE workspace_id = ?1 AND kind = 'profiles' AND (finished_at IS NULL OR finished_at >= ?2 OR started_at >= ?2) LIMIT 1",
  )
    .bind(work.workspaceId, since)
    .first();
  if (snapshot) await eraseFromR2(env, subjectOf(work));
  await deleteEarlierExports(env, request);
  await privacyFor(env, work.workspaceId).eraseRecreated(work.identifiers);
  await env.DB.prepare("DELETE FROM destination_recipients WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2))")
    .bind(work.workspaceId, JSON.stringify(work.profileIds))
    .run();
  const fresh = (await getPrivacyRequest(env.DB, request.id)) ?? request;
  const incomplete = Object.values(fresh.destinations).filter((r) => r.status !== "finished");
  await updatePrivacyRequest(
    env.DB,
    request.id,
    {
      status: incomplete.length ? "partial_success" : "finished",
      finishedAt: now,
      error: incomplete.length ? `not deleted at ${incomplete.length} destination(s): ${incomplete.map((r) => `${r.name} (${r.status}${r.lastError ? `: ${r.lastError}` : ""})`).join("; ")}` : null,
    },
    now,
  );
  await deleteWork(env.ARCHIVE, work.workspaceId, request.id);
}

/** Access exports about the same person are copies of their data: removed, their rows kept as a record. */
async function deleteEarlierExports(env: Env, request: PrivacyRequest): Promise<number> {
  const { results } = await env.DB.prepare(
    `SELECT id, result_key FROM privacy_requests WHERE workspace_id = ?1 AND kind = 'export' AND result_key IS NOT NULL AND (
       EXISTS (SELECT 1 FROM json_each(privacy_requests.profile_ids) p WHERE p.value IN (SELECT value FROM json_each(?2)))
       OR EXISTS (SELECT 1 FROM json_each(privacy_requests.identifier_hashes) h WHERE h.value IN (SELECT value FROM json_each(?3))))`,
  )
    .bind(request.workspaceId, JSON.stringify(request.profileIds), JSON.stringify(request.identifierHashes))
    .all<{ id: string; result_key: string }>();
  if (!results.length) return 0;
  await env.ARCHIVE.delete(results.map((r) => r.result_key));
  await env.DB.prepare("UPDATE privacy_requests SET result_key = NULL, result_bytes = NULL, error = ?2 WHERE id IN (SELECT value FROM json_each(?1))")
    .bind(JSON.stringify(results.map((r) => r.id)), `the document was deleted by deletion request ${request.id}`)
    .run();
  return results.length;
}

const subjectOf = (work: PrivacyWork) => ({
  workspaceId: work.workspaceId,
  identifierValues: [...new Set(work.identifiers.map((i) => i.value))],
  messageIds: work.messageIds,
  profileIds: work.profileIds,
});

/** `{ archive: { objectsRewritten: 2 } }` → `{ archiveObjectsRewritten: 2 }`: one level of counts per store. */
function flatten(report: object): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [area, value] of Object.entries(report)) {
    if (typeof value === "number") out[area] = value;
    else if (value && typeof value === "object")
      for (const [name, count] of Object.entries(value)) if (typeof count === "number") out[`${area}${name[0]!.toUpperCase()}${name.slice(1)}`] = count;
  }
  return out;
}
