/** Archive objects are partitioned by the hour the events were received (UTC). */
export function archiveHour(receivedAt: string): string {
  return receivedAt.slice(0, 13); // yyyy-mm-ddThh
}

/** `events/{workspace}/{yyyy}/{mm}/{dd}/{hh}/{batchKey}.ndjson.gz`; the same batch always lands on the same key. */
export function archiveObjectKey(workspaceId: string, hour: string, batchKey: string): string {
  const [date, hh] = hour.split("T") as [string, string];
  const [yyyy, mm, dd] = date.split("-");
  return `events/${workspaceId}/${yyyy}/${mm}/${dd}/${hh}/${batchKey}.ndjson.gz`;
}
