import { env } from "cloudflare:workers";
import { parquetMetadata, parquetReadObjects, type FileMetaData, type SchemaElement } from "hyparquet";

export interface ParquetContents {
  rows: Record<string, unknown>[];
  metadata: FileMetaData;
  /** Leaf columns by name. */
  columns: Record<string, SchemaElement>;
  bytes: number;
}

/** Reads a Parquet object back from the real R2 bucket with hyparquet, an independent reader. */
export async function readParquet(key: string): Promise<ParquetContents> {
  const object = await env.ARCHIVE.get(key);
  if (!object) throw new Error(`${key} is not in R2`);
  const file = await object.arrayBuffer();
  const metadata = parquetMetadata(file);
  const rows = (await parquetReadObjects({ file })) as Record<string, unknown>[];
  const columns = Object.fromEntries(metadata.schema.slice(1).map((element) => [element.name, element]));
  return { rows, metadata, columns, bytes: file.byteLength };
}

/** Every key under a prefix, in order. */
export async function listKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.ARCHIVE.list({ prefix, cursor });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys;
}

/** Rows of every part under a prefix. */
export async function readAll(prefix: string): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for (const key of await listKeys(prefix)) rows.push(...(await readParquet(key)).rows);
  return rows;
}
