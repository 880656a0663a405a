import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { archiveHour } from "../../workers/archive/layout";
import { DEV_DEFAULTS } from "../../workers/env";
import { exportEventsHour } from "../../workers/export/events";
import { eventsPrefix } from "../../workers/export/layout";
import { admin, basic, call, createSource, track, waitForArchived } from "../helpers";
import { listKeys, readAll, readParquet } from "./helpers";

const RUN = `wx-${Date.now().toString(36)}`;
const USER = `${RUN}-user`;
const sentAt = Date.now() - 60_000;
const at = (offsetMs: number) => new Date(sentAt + offsetMs).toISOString();

let source: { id: string; writeKey: string };
let archived: Record<string, unknown>[];
let hours: string[];

async function runExport(body: Record<string, unknown>) {
  return admin("/admin/v1/exports", { method: "POST", json: { workspaceId: "default", ...body } });
}

async function exportedRows(): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for (const hour of hours) rows.push(...(await readAll(eventsPrefix("default", hour))));
  return rows.filter((row) => String(row.message_id).startsWith(RUN));
}

beforeAll(async () => {
  source = await createSource("warehouse export test");
  const send = async (path: string, body: Record<string, unknown>) => {
    const response = await track(`${path}?sync=true`, body, source.writeKey);
    expect(response.status).toBe(200);
  };
  await send("/v1/identify", { messageId: `${RUN}-1`, userId: USER, anonymousId: `${RUN}-anon`, traits: { plan: "pro", seats: 3, email: `${USER}@example.com` }, timestamp: at(0) });
  await send("/v1/track", {
    messageId: `${RUN}-2`,
    userId: USER,
    event: "Order Completed",
    properties: { revenue: 42.5, quantity: 2, currency: "EUR", paid: true, items: [{ sku: "a", price: 10 }] },
    timestamp: at(1_000),
  });
  await send("/v1/page", { messageId: `${RUN}-3`, userId: USER, name: "Pricing", category: "Docs", properties: { path: "/pricing" }, timestamp: at(2_000) });
  await send("/v1/group", { messageId: `${RUN}-4`, userId: USER, groupId: `${RUN}-org`, traits: { employees: 250 }, timestamp: at(3_000) });
  await send("/v1/alias", { messageId: `${RUN}-5`, userId: USER, previousId: `${RUN}-old`, timestamp: at(4_000) });
  archived = await waitForArchived(RUN, 5);
  expect(archived).toHaveLength(5);
  hours = [...new Set(archived.map((e) => archiveHour(String(e.receivedAt))))].sort();
});

describe("events export", () => {
  it("writes the hour's events to a Hive-partitioned Parquet file with typed columns", async () => {
    for (const hour of hours) {
      const response = await runExport({ kind: "events", hour });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { status: string; period: string; prefix: string; files: { key: string; rows: number; bytes: number }[]; rows: number };
      expect(body).toMatchObject({ status: "done", period: hour, prefix: eventsPrefix("default", hour) });
      const [date, hh] = hour.split("T");
      expect(body.files[0]!.key).toBe(`warehouse/events/workspace_id=default/date=${date}/hour=${hh}/part-00000.parquet`);
      expect(body.rows).toBe(body.files.reduce((sum, f) => sum + f.rows, 0));
      const head = await env.ARCHIVE.head(body.files[0]!.key);
      expect(head!.size).toBe(body.files[0]!.bytes);
      expect(head!.httpMetadata?.contentType).toBe("application/vnd.apache.parquet");
    }

    const file = await readParquet(`${eventsPrefix("default", hours[0]!)}part-00000.parquet`);
    expect(file.columns.message_id).toMatchObject({ type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "REQUIRED" });
    for (const name of ["timestamp", "received_at"]) {
      expect(file.columns[name]).toMatchObject({ type: "INT64", converted_type: "TIMESTAMP_MILLIS", repetition_type: "REQUIRED", logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MILLIS" } });
    }
    for (const name of ["properties", "traits", "context"]) expect(file.columns[name]).toMatchObject({ type: "BYTE_ARRAY", converted_type: "JSON" });
    // The partition columns live in the path only.
    expect(Object.keys(file.columns)).toEqual([
      "message_id", "type", "event", "name", "category", "user_id", "anonymous_id", "group_id", "previous_id",
      "timestamp", "received_at", "sent_at", "original_timestamp", "source_id", "properties", "traits", "context",
    ]);

    const rows = await exportedRows();
    expect(rows.map((r) => r.message_id).sort()).toEqual([1, 2, 3, 4, 5].map((n) => `${RUN}-${n}`));
    const byId = new Map(rows.map((r) => [r.message_id, r]));
    const archivedById = new Map(archived.map((e) => [e.messageId, e]));

    for (const [id, row] of byId) {
      const original = archivedById.get(id)!;
      expect(row.timestamp).toBeInstanceOf(Date);
      expect((row.timestamp as Date).toISOString()).toBe(original.timestamp);
      expect((row.received_at as Date).toISOString()).toBe(original.receivedAt);
      expect(row.user_id).toBe(USER);
      expect(row.source_id).toBe(source.id);
      expect(row.context).toEqual(original.context);
    }

    expect(byId.get(`${RUN}-1`)).toMatchObject({ type: "identify", anonymous_id: `${RUN}-anon`, traits: { plan: "pro", seats: 3 }, properties: null, event: null });
    const order = byId.get(`${RUN}-2`)!;
    expect(order).toMatchObject({ type: "track", event: "Order Completed", traits: null });
    const properties = order.properties as Record<string, unknown>;
    expect(properties).toEqual({ revenue: 42.5, quantity: 2, currency: "EUR", paid: true, items: [{ sku: "a", price: 10 }] });
    expect(typeof properties.revenue).toBe("number");
    expect(typeof properties.paid).toBe("boolean");
    expect(byId.get(`${RUN}-3`)).toMatchObject({ type: "page", name: "Pricing", category: "Docs", properties: { path: "/pricing" } });
    expect(byId.get(`${RUN}-4`)).toMatchObject({ type: "group", group_id: `${RUN}-org`, traits: { employees: 250 } });
    expect(typeof (byId.get(`${RUN}-4`)!.traits as Record<string, unknown>).employees).toBe("number");
    expect(byId.get(`${RUN}-5`)).toMatchObject({ type: "alias", previous_id: `${RUN}-old` });
  });

  it("is idempotent: a second export of the hour writes the same keys and rows, without duplicates", async () => {
    const first = await exportedRows();
    const keysBefore = (await Promise.all(hours.map((h) => listKeys(eventsPrefix("default", h))))).flat();
    for (const hour of hours) expect((await runExport({ kind: "events", hour })).status).toBe(200);
    const keysAfter = (await Promise.all(hours.map((h) => listKeys(eventsPrefix("default", h))))).flat();
    expect(keysAfter).toEqual(keysBefore);
    const second = await exportedRows();
    expect(second).toHaveLength(5);
    expect(new Set(second.map((r) => r.message_id)).size).toBe(5);
    expect(second).toEqual(first);
  });

  it("splits an hour at the row limit, and a later export removes parts it no longer needs", async () => {
    const hour = hours[0]!;
    const prefix = eventsPrefix("default", hour);
    const whole = await readAll(prefix);
    const split = await exportEventsHour(env, "default", hour, { rowsPerFile: 2 });
    expect(split.files.map((f) => f.rows)).toEqual(Array.from({ length: Math.ceil(whole.length / 2) }, (_, i) => Math.min(2, whole.length - 2 * i)));
    expect(await listKeys(prefix)).toEqual(split.files.map((f) => f.key));
    expect(split.files.map((f) => f.key.slice(prefix.length))).toEqual(split.files.map((_, i) => `part-${String(i).padStart(5, "0")}.parquet`));
    const splitRows = await readAll(prefix);
    expect(splitRows.map((r) => r.message_id).sort()).toEqual(whole.map((r) => r.message_id).sort());

    const again = await exportEventsHour(env, "default", hour);
    expect(again.files).toHaveLength(1);
    expect(await listKeys(prefix)).toEqual([`${prefix}part-00000.parquet`]);
  });

  it("lists what was exported, with keys, rows and bytes", async () => {
    const response = await admin("/admin/v1/exports?workspaceId=default&kind=events");
    expect(response.status).toBe(200);
    const body = (await response.json()) as { data: { period: string; kind: string; rows: number; bytes: number; files: { key: string; rows: number; bytes: number }[] }[]; next: string | null };
    for (const hour of hours) {
      const entry = body.data.find((e) => e.period === hour)!;
      expect(entry).toMatchObject({ kind: "events", rows: expect.any(Number), bytes: expect.any(Number) });
      expect(entry.files.length).toBeGreaterThan(0);
      expect(entry.bytes).toBe(entry.files.reduce((sum, f) => sum + f.bytes, 0));
      for (const file of entry.files) expect((await env.ARCHIVE.head(file.key))!.size).toBe(file.bytes);
    }
    const paged = await admin(`/admin/v1/exports?workspaceId=default&limit=1`);
    const page = (await paged.json()) as { data: unknown[]; next: string | null };
    expect(page.data).toHaveLength(1);
  });

  it("is described in the OpenAPI document", async () => {
    const doc = (await (await call("/openapi.json")).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths["/admin/v1/exports"]!).sort()).toEqual(["get", "post"]);
  });

  it("answers bad requests with problem documents", async () => {
    const problem = async (response: Response, status: number, path?: string) => {
      expect(response.status).toBe(status);
      expect(response.headers.get("content-type")).toContain("application/problem+json");
      const body = (await response.json()) as { code: string; errors?: { path: string }[] };
      if (path) expect(body.errors?.map((e) => e.path)).toContain(path);
      return body;
    };
    await problem(await runExport({ kind: "events", hour: "2026-02-30T10" }), 400, "hour");
    await problem(await runExport({ kind: "events", hour: "2026-11-22 10:00" }), 400, "hour");
    const future = new Date(Date.now() + 2 * 3_600_000).toISOString().slice(0, 13);
    await problem(await runExport({ kind: "events", hour: future }), 400, "hour");
    await problem(await runExport({ kind: "events", date: "2026-11-22" }), 400);
    await problem(await runExport({ kind: "tables" }), 400, "kind");
    await problem(await runExport({ kind: "profiles", date: "2001-01-01" }), 400, "date");
    await problem(await runExport({ kind: "events", workspaceId: "no-such-workspace" }), 404);
    await problem(await admin("/admin/v1/exports", { method: "POST", json: { kind: "events" } }), 400, "workspaceId");
    await problem(await call("/admin/v1/exports", { method: "POST", json: { kind: "events", workspaceId: "default" } }), 401);
    // The Profile API's token has only profiles:read.
    await problem(await call("/admin/v1/exports?workspaceId=default", { headers: { authorization: basic(DEV_DEFAULTS.accessToken) } }), 403);
  });
});
