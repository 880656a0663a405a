import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { describe, expect, it } from "vitest";
import { epochMillis, text, writeParquet, type ColumnSpec } from "../../workers/export/parquet";
import { encodePartitionValue, eventsPrefix, isDay, isHour, profilesPrefix } from "../../workers/export/layout";

interface Row {
  id: string;
  at: number;
  doc: unknown;
}

const COLUMNS: ColumnSpec<Row>[] = [
  { name: "id", kind: "string", required: true, value: (r) => r.id },
  { name: "at", kind: "timestamp", required: true, value: (r) => r.at },
  { name: "maybe_at", kind: "timestamp", value: () => null },
  { name: "doc", kind: "json", value: (r) => r.doc },
];

describe("Parquet writing inside workerd", () => {
  it("writes typed columns that an independent reader reads back: strings, UTC millisecond timestamps, JSON documents", async () => {
    const at = Date.parse("2026-11-22T10:15:30.123Z");
    const rows: Row[] = [
      { id: "a", at, doc: { revenue: 42.5, quantity: 2, big: 9007199254740991, ok: true, nested: { list: [1, "x", null] } } },
      { id: "b", at: at + 1, doc: null },
      { id: "ü—名", at: at + 2, doc: ["array", 1] },
    ];
    const file = writeParquet(COLUMNS, rows, { "edge-cdp.table": "test" });
    const buffer = file.body.buffer.slice(file.body.byteOffset, file.body.byteOffset + file.body.byteLength) as ArrayBuffer;
    expect(new TextDecoder().decode(file.body.slice(0, 4))).toBe("PAR1");

    const metadata = parquetMetadata(buffer);
    expect(Number(metadata.num_rows)).toBe(3);
    const [, id, atColumn, maybeAt, doc] = metadata.schema;
    expect(id).toMatchObject({ name: "id", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "REQUIRED", logical_type: { type: "STRING" } });
    expect(atColumn).toMatchObject({
      name: "at",
      type: "INT64",
      converted_type: "TIMESTAMP_MILLIS",
      repetition_type: "REQUIRED",
      logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MILLIS" },
    });
    expect(maybeAt).toMatchObject({ repetition_type: "OPTIONAL" });
    expect(doc).toMatchObject({ name: "doc", type: "BYTE_ARRAY", converted_type: "JSON", logical_type: { type: "JSON" } });
    expect(metadata.key_value_metadata).toContainEqual({ key: "edge-cdp.table", value: "test" });
    expect(metadata.row_groups[0]!.columns.every((c) => c.meta_data?.codec === "SNAPPY")).toBe(true);

    const read = await parquetReadObjects({ file: buffer });
    expect(read).toEqual([
      { id: "a", at: new Date(at), maybe_at: null, doc: rows[0]!.doc },
      { id: "b", at: new Date(at + 1), maybe_at: null, doc: null },
      { id: "ü—名", at: new Date(at + 2), maybe_at: null, doc: ["array", 1] },
    ]);
    const first = read[0]!.doc as { revenue: unknown; quantity: unknown };
    expect(typeof first.revenue).toBe("number");
    expect(typeof first.quantity).toBe("number");

    // The JSON column holds JSON text, numbers unquoted.
    const raw = await parquetReadObjects({ file: buffer, columns: ["doc"], utf8: false, parsers: { stringFromBytes: (bytes: Uint8Array) => new TextDecoder().decode(bytes), jsonFromBytes: (bytes: Uint8Array) => new TextDecoder().decode(bytes) } as never });
    expect(String(raw[0]!.doc)).toContain('"revenue":42.5');
  });

  it("refuses a row without a required value", () => {
    expect(() => writeParquet(COLUMNS, [{ id: null as unknown as string, at: 0, doc: null }])).toThrow(/required/);
  });

  it("reads values the way the tables need them", () => {
    expect(text("u1")).toBe("u1");
    expect(text(42)).toBe("42");
    expect(text({})).toBeNull();
    expect(epochMillis("2026-11-22T10:00:00.000Z")).toBe(Date.parse("2026-11-22T10:00:00.000Z"));
    expect(epochMillis("not a date")).toBeNull();
    expect(epochMillis(undefined)).toBeNull();
  });
});

describe("warehouse layout", () => {
  it("uses Hive-style partitions", () => {
    expect(eventsPrefix("acme", "2026-11-22T07")).toBe("warehouse/events/workspace_id=acme/date=2026-11-22/hour=07/");
    expect(profilesPrefix("acme", "2026-11-22")).toBe("warehouse/profiles/workspace_id=acme/date=2026-11-22/");
    expect(encodePartitionValue("a/b=c")).toBe("a%2Fb%3Dc");
  });

  it("accepts only real hours and days", () => {
    expect(isHour("2026-11-22T23")).toBe(true);
    expect(isHour("2026-11-22T24")).toBe(false);
    expect(isHour("2026-02-30T01")).toBe(false);
    expect(isHour("2026-11-22")).toBe(false);
    expect(isDay("2026-11-22")).toBe(true);
    expect(isDay("2026-13-01")).toBe(false);
  });
});
