import type { SchemaElement } from "hyparquet";
// The package's browser entry: its root entry for Node adds a file writer that imports `fs`.
import { parquetWriteBuffer } from "hyparquet-writer/src/index.js";

/**
 * The column kinds the warehouse tables use. Every kind carries both the
 * legacy converted type and the logical type, so old and new readers agree:
 * - `string`: BYTE_ARRAY, UTF8 / STRING
 * - `timestamp`: INT64 milliseconds since the epoch, TIMESTAMP_MILLIS /
 *   TIMESTAMP(isAdjustedToUTC = true, MILLIS)
 * - `json`: BYTE_ARRAY holding a JSON document as UTF-8 text, JSON / JSON
 */
export type ColumnKind = "string" | "timestamp" | "json";

export interface ColumnSpec<Row> {
  name: string;
  kind: ColumnKind;
  /** REQUIRED in the Parquet schema: never null. */
  required?: boolean;
  /** string: a string; timestamp: epoch milliseconds; json: any JSON value (written with JSON.stringify). null for no value. */
  value: (row: Row) => unknown;
}

function schemaElement(spec: ColumnSpec<unknown>): SchemaElement {
  const repetition_type = spec.required ? "REQUIRED" : "OPTIONAL";
  switch (spec.kind) {
    case "string":
      return { name: spec.name, type: "BYTE_ARRAY", converted_type: "UTF8", logical_type: { type: "STRING" }, repetition_type };
    case "timestamp":
      return {
        name: spec.name,
        type: "INT64",
        converted_type: "TIMESTAMP_MILLIS",
        logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MILLIS" },
        repetition_type,
      };
    case "json":
      return { name: spec.name, type: "BYTE_ARRAY", converted_type: "JSON", logical_type: { type: "JSON" }, repetition_type };
  }
}

export interface ParquetFile {
  body: Uint8Array;
  rows: number;
}

/** Rows per row group: readers skip row groups by their min/max statistics, and a group is one unit of work. */
const ROW_GROUP_SIZE = 10_000;

/**
 * Encodes rows as one Parquet file (Snappy-compressed pages, statistics on
 * string and timestamp columns). JSON columns get no statistics: their min and
 * max would be whole documents in the footer.
 */
export function writeParquet<Row>(columns: ColumnSpec<Row>[], rows: Row[], metadata: Record<string, string> = {}): ParquetFile {
  const schema: SchemaElement[] = [{ name: "root", num_children: columns.length }, ...columns.map((column) => schemaElement(column as ColumnSpec<unknown>))];
  const columnData = columns.map((column) => ({
    name: column.name,
    data: rows.map((row) => {
      const value = column.value(row);
      if (value === undefined) return null;
      if (column.required && value === null) throw new Error(`column ${column.name} is required but a row has no value`);
      return value;
    }),
    ...(column.kind === "json" ? { statistics: false } : {}),
  }));
  const buffer = parquetWriteBuffer({
    columnData,
    schema,
    codec: "SNAPPY",
    rowGroupSize: ROW_GROUP_SIZE,
    createdBy: "edge-cdp warehouse export (hyparquet-writer)",
    kvMetadata: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  });
  return { body: new Uint8Array(buffer), rows: rows.length };
}

/** A string column's value: strings as they are, numbers and booleans as text (Segment allows a numeric userId), anything else null. */
export function text(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return null;
}

/** A timestamp column's value from an ISO 8601 string or epoch milliseconds; null when absent or not a date. */
export function epochMillis(value: unknown): number | null {
  if (typeof value === "number") return Number.isFinite(value) ? Math.trunc(value) : null;
  if (typeof value !== "string") return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}
