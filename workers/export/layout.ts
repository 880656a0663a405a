/**
 * Where the warehouse export writes in R2: Hive-style `key=value` folders, so
 * DuckDB (`hive_partitioning = true`), ClickHouse (`use_hive_partitioning`),
 * Spark and Snowflake external tables read the partition columns from the path.
 * The partition columns (`workspace_id`, `date`, `hour`) are in the path only,
 * not inside the files, as Hive-partitioned datasets expect.
 */

export const WAREHOUSE_PREFIX = "warehouse/";

const HOUR = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})$/;
const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A calendar hour `yyyy-mm-ddThh` (UTC), as the archive partitions events. */
export function isHour(value: string): boolean {
  const ms = HOUR.test(value) ? Date.parse(`${value}:00:00.000Z`) : Number.NaN;
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 13) === value;
}

/** A calendar day `yyyy-mm-dd` (UTC). */
export function isDay(value: string): boolean {
  const ms = DAY.test(value) ? Date.parse(`${value}T00:00:00.000Z`) : Number.NaN;
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 10) === value;
}

export const hourOf = (ms: number) => new Date(ms).toISOString().slice(0, 13);
export const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
export const hourStart = (hour: string) => Date.parse(`${hour}:00:00.000Z`);

/** Part file names: `part-00000.parquet`, `part-00001.parquet`, … in the order they were written. */
export const partName = (index: number) => `part-${String(index).padStart(5, "0")}.parquet`;

/** `warehouse/events/workspace_id={ws}/date={yyyy-mm-dd}/hour={hh}/` */
export function eventsPrefix(workspaceId: string, hour: string): string {
  const [date, hh] = hour.split("T") as [string, string];
  return `${WAREHOUSE_PREFIX}events/workspace_id=${encodePartitionValue(workspaceId)}/date=${date}/hour=${hh}/`;
}

/** `warehouse/profiles/workspace_id={ws}/date={yyyy-mm-dd}/` */
export function profilesPrefix(workspaceId: string, day: string): string {
  return `${WAREHOUSE_PREFIX}profiles/workspace_id=${encodePartitionValue(workspaceId)}/date=${day}/`;
}

/**
 * Hive escapes characters that would break a path segment or a `key=value`
 * pair as `%XX`. Workspace ids are normally plain (`default`, `acme`), so this
 * changes nothing for them.
 */
export function encodePartitionValue(value: string): string {
  return value.replace(/[%/=\\#?:*"<>|\u0000-\u001f\u007f{}[\]^]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
}
