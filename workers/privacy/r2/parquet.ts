import { type AsyncBuffer, cachedAsyncBuffer, type FileMetaData, parquetMetadata, parquetMetadataAsync, parquetReadObjects } from "hyparquet";
// The package's browser entry, as workers/export/parquet.ts imports it: the root entry for Node adds a file writer that imports `fs`.
import { parquetWriteBuffer } from "hyparquet-writer/src/index.js";
import { rewriteObject } from "./objects";

export type ParquetRow = Record<string, unknown>;

/** hyparquet's AsyncBuffer over one version of an R2 object: ranged GETs, so reading a few columns downloads only those and the footer. */
function r2Buffer(bucket: R2Bucket, object: R2Object): AsyncBuffer {
  return {
    byteLength: object.size,
    async slice(start, end = object.size) {
      const part = await bucket.get(object.key, { range: { offset: start, length: end - start }, onlyIf: { etagMatches: object.etag } });
      if (!part || !("body" in part)) throw new Error(`${object.key} changed while it was being read`);
      return part.arrayBuffer();
    },
  };
}

/**
 * Whether any row may be picked by `match`, reading only `columns` (the rest
 * of a row is absent). A file that changes or cannot be read meanwhile counts
 * as a match: the rewrite then reads it whole and decides.
 */
export async function anyRowMatches(bucket: R2Bucket, object: R2Object, columns: string[], match: (row: ParquetRow) => boolean): Promise<boolean> {
  try {
    const file = cachedAsyncBuffer(r2Buffer(bucket, object));
    const metadata = await parquetMetadataAsync(file);
    const present = new Set(metadata.schema.slice(1).map((element) => element.name));
    const rows = (await parquetReadObjects({ file, metadata, columns: columns.filter((name) => present.has(name)) })) as ParquetRow[];
    return rows.some(match);
  } catch {
    return true;
  }
}

/**
 * Encodes rows the way the file `metadata` describes was written: its schema,
 * codec, row group size, which columns have statistics, key-value metadata
 * and writer name. With hyparquet reading values back as the writer takes
 * them (strings, Dates for timestamps, parsed JSON), re-encoding a file's own
 * rows gives the same bytes, so a rewritten file differs only by the rows
 * removed. Flat schemas only, as the warehouse tables are.
 */
export function encodeLike(metadata: FileMetaData, rows: ParquetRow[]): Uint8Array {
  const leaves = metadata.schema.slice(1);
  if (leaves.some((element) => element.num_children)) throw new Error("a nested Parquet schema cannot be rewritten");
  const chunks = metadata.row_groups[0]?.columns ?? [];
  const buffer = parquetWriteBuffer({
    schema: metadata.schema,
    columnData: leaves.map((element, i) => ({
      name: element.name,
      data: rows.map((row) => row[element.name] ?? null),
      statistics: Boolean(chunks[i]?.meta_data?.statistics),
    })),
    codec: chunks[0]?.meta_data?.codec ?? "SNAPPY",
    rowGroupSize: Math.max(1, ...metadata.row_groups.map((group) => Number(group.num_rows))),
    kvMetadata: metadata.key_value_metadata ?? [],
    ...(metadata.created_by ? { createdBy: metadata.created_by } : {}),
  });
  return new Uint8Array(buffer);
}

export interface ParquetRewrite {
  removed: number;
  /** What the file holds now: rows and bytes (both 0 when deleted). */
  rows: number;
  bytes: number;
  deleted: boolean;
}

/**
 * Rewrites a Parquet object at the same key without the rows `remove` picks,
 * keeping its HTTP and custom metadata (`rows` updated). A file left without
 * rows is deleted, or with `keepEmpty` written with no rows, for a listing
 * that names its files by position. Null when the object does not exist.
 */
export async function rewriteParquet(bucket: R2Bucket, key: string, remove: (row: ParquetRow) => boolean, keepEmpty = false): Promise<ParquetRewrite | null> {
  return rewriteObject<ParquetRewrite>(bucket, key, async (object) => {
    const file = await object.arrayBuffer();
    const metadata = parquetMetadata(file);
    const rows = (await parquetReadObjects({ file, metadata })) as ParquetRow[];
    const kept = rows.filter((row) => !remove(row));
    const removed = rows.length - kept.length;
    if (!removed) return { result: { removed, rows: rows.length, bytes: file.byteLength, deleted: false } };
    if (!kept.length && !keepEmpty) return { delete: true, result: { removed, rows: 0, bytes: 0, deleted: true } };
    const body = encodeLike(metadata, kept);
    return {
      put: body,
      options: { httpMetadata: object.httpMetadata, customMetadata: { ...object.customMetadata, rows: String(kept.length) } },
      result: { removed, rows: kept.length, bytes: body.byteLength, deleted: false },
    };
  });
}
