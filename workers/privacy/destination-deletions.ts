import { formatDeletion } from "../activation/formatters";
import { sendRequest } from "../delivery/send";
import { destinationById } from "../delivery/store";
import type { DestinationReport } from "./requests-store";
import type { PrivacyWork } from "./work";

/** Attempts per destination before a deletion there is given up as failed (the request then ends in partial success). */
export const MAX_DELETION_ATTEMPTS = 8;

/**
 * The destinations that were sent any of these profiles' data, from the
 * recipients record every delivery attempt writes (migration 0007 filled it
 * from the delivery log before it), which outlives the log's retention.
 */
export async function destinationsThatReceived(db: D1Database, workspaceId: string, profileIds: string[]): Promise<{ id: string; name: string; type: string }[]> {
  if (!profileIds.length) return [];
  const { results } = await db
    .prepare(
      `SELECT d.id, d.name, d.type FROM destinations d WHERE d.workspace_id = ?1 AND d.id IN (
         SELECT destination_id FROM destination_recipients WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2)))
       ORDER BY d.id`,
    )
    .bind(workspaceId, JSON.stringify(profileIds))
    .all<{ id: string; name: string; type: string }>();
  return results;
}

/**
 * One round of deletion calls: every destination still pending or retrying is
 * sent its type's deletion (a signed `delete` event for webhooks; Braze's
 * `users/delete`; Mailchimp's `delete-permanent`), in order, each with the
 * delivery timeout. A 404 counts as done (the person is already gone there).
 * Returns the new reports; `retry` says whether a later round should run.
 */
export async function sendDeletions(db: D1Database, work: PrivacyWork, reports: Record<string, DestinationReport>, now = Date.now()): Promise<{ reports: Record<string, DestinationReport>; retry: boolean }> {
  const next: Record<string, DestinationReport> = { ...reports };
  const person = { requestId: work.requestId, userId: work.person.userId, anonymousIds: work.person.anonymousIds, emails: work.person.emails };
  await Promise.all(
    Object.entries(reports)
      .filter(([, report]) => report.status === "pending" || report.status === "retrying")
      .map(async ([destinationId, report]) => {
        const destination = await destinationById(db, work.workspaceId, destinationId);
        if (!destination) {
          next[destinationId] = { ...report, status: "failed", lastError: "the destination was deleted or its configuration no longer parses" };
          return;
        }
        const deletion = await formatDeletion(destination, person, { now });
        if (deletion.unsupported) {
          next[destinationId] = { ...report, status: "unsupported", lastError: deletion.unsupported };
          return;
        }
        const attempts = report.attempts + 1;
        for (const request of deletion.requests) {
          const verdict = await sendRequest(request, { notFoundIsSuccess: true });
          if (verdict.verdict === "success") continue;
          const exhausted = verdict.verdict === "permanent" || attempts >= MAX_DELETION_ATTEMPTS;
          next[destinationId] = { ...report, attempts, status: exhausted ? "failed" : "retrying", lastError: verdict.reason };
          return;
        }
        next[destinationId] = { name: report.name, type: report.type, attempts, status: "finished", completedAt: Date.now() };
      }),
  );
  return { reports: next, retry: Object.values(next).some((r) => r.status === "retrying") };
}
