import { type ArchivedEvents, type ArchiveReport, eraseArchive, hourFingerprints, readArchivedEvents } from "./r2/archive";
import { type DeadLetterReport, eraseDeadLetters, eraseQuarantine, type QuarantineReport } from "./r2/dead-letters";
import { type ErasureSubject, personOf } from "./r2/subject";
import { eraseWarehouse, type WarehouseReport } from "./r2/warehouse";

export type { ErasureSubject } from "./r2/subject";
export type { ArchivedEvents } from "./r2/archive";

/** What an erasure changed in R2, per area. A run that finds nothing left of the person reports zeros. */
export interface R2ErasureReport {
  archive: ArchiveReport;
  warehouse: WarehouseReport;
  deadLetters: DeadLetterReport;
  quarantine: QuarantineReport;
}

/**
 * Erases a person from everything the workspace keeps in R2: the raw event
 * archive (objects rewritten without their events, `archive_objects` kept in
 * step), the warehouse's Parquet files (their event rows, in the hours their
 * events were archived; their profile rows, in every snapshot), dead letters
 * and quarantined messages.
 *
 * Idempotent, and safe to run again after a run that stopped part way: the
 * archive index rows that lead to their objects are deleted last, so a rerun
 * finds the same objects and hours, reads them, and changes only what is
 * still there. Run it before their profile events leave D1, which tell the
 * hours and ids of messages the archive index does not know them by.
 */
export async function eraseFromR2(env: Pick<Env, "ARCHIVE" | "DB">, subject: ErasureSubject): Promise<R2ErasureReport> {
  const { workspaceId } = subject;
  const person = personOf(subject.identifierValues, subject.messageIds, subject.profileIds);
  const archive = await eraseArchive(env, workspaceId, person);
  const after = await hourFingerprints(env.DB, workspaceId, archive.hours);
  const warehouse = await eraseWarehouse(env, workspaceId, person, archive.hours, { before: archive.fingerprintsBefore, after });
  const deadLetters = await eraseDeadLetters(env.ARCHIVE, workspaceId, person);
  const quarantine = await eraseQuarantine(env.ARCHIVE, workspaceId, person);
  await archive.unindex();
  return { archive: archive.report, warehouse, deadLetters, quarantine };
}

/**
 * A person's archived events for an access request, oldest receipt first:
 * those of their messageIds, or naming one of the values as userId,
 * anonymousId or previousId, or as the email trait. Reads at most
 * `maxObjects` archive objects, oldest first; `truncated` says there were more.
 */
export async function archivedEventsOf(
  env: Pick<Env, "ARCHIVE" | "DB">,
  workspaceId: string,
  identifierValues: string[],
  messageIds: string[],
  { maxObjects = 2000 }: { maxObjects?: number } = {},
): Promise<ArchivedEvents> {
  return readArchivedEvents(env, workspaceId, personOf(identifierValues, messageIds), maxObjects);
}
