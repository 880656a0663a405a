import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { writeArchiveObject } from "../../workers/archive/writer";
import { eventsPrefix } from "../../workers/export/layout";
import { getExport } from "../../workers/export/registry";
import type { QueuedEvent } from "../../workers/intake/envelope";
import worker from "../../workers/index";
import { pendingEventHours, runWarehouseExport } from "../../workers/maintenance/warehouse-export";
import { listKeys, readAll } from "./helpers";

const WS = "ws-warehouse-cron";

function events(hour: string, ids: string[]): QueuedEvent[] {
  return ids.map((id, i) => ({
    type: "track",
    event: "Viewed",
    messageId: id,
    userId: `user-${id}`,
    receivedAt: `${hour}:0${i % 10}:00.000Z`,
    timestamp: `${hour}:0${i % 10}:00.000Z`,
    properties: { n: i },
    context: {},
    integrations: {},
    // Archive lines may carry their source; the export keeps it.
    sourceId: "src_cron",
  }));
}

const at = (iso: string) => new Date(iso);
const batchKey = (n: number) => n.toString(16).padStart(32, "0");

beforeAll(async () => {
  await env.DB.prepare("INSERT OR IGNORE INTO workspaces (id, name) VALUES (?1, 'warehouse cron')").bind(WS).run();
  await writeArchiveObject(env, WS, "2020-03-01T10", batchKey(1), events("2020-03-01T10", ["a1", "a2"]));
  await writeArchiveObject(env, WS, "2020-03-01T10", batchKey(2), events("2020-03-01T10", ["a3"]));
  await writeArchiveObject(env, WS, "2020-03-01T11", batchKey(3), events("2020-03-01T11", ["b1"]));
});

describe("warehouse export cron", () => {
  it("exports each completed hour once, after the grace period", async () => {
    // 12:10: hour 10 ended 70 minutes ago, hour 11 only 10 minutes ago.
    expect(await pendingEventHours(env.DB, at("2020-03-01T12:10:00Z"))).toEqual([{ workspaceId: WS, hour: "2020-03-01T10" }]);
    const first = await runWarehouseExport(env, at("2020-03-01T12:10:00Z"));
    expect(first).toMatchObject({ eventHours: 1, eventRows: 3, failures: 0 });
    const rows = await readAll(eventsPrefix(WS, "2020-03-01T10"));
    // Sorted by timestamp, then messageId.
    expect(rows.map((r) => r.message_id)).toEqual(["a1", "a3", "a2"]);
    expect(rows.map((r) => r.source_id)).toEqual(["src_cron", "src_cron", "src_cron"]);
    expect(rows.map((r) => (r.properties as { n: number }).n)).toEqual([0, 0, 1]);

    expect(await runWarehouseExport(env, at("2020-03-01T12:15:00Z"))).toMatchObject({ eventHours: 0 });
    expect(await runWarehouseExport(env, at("2020-03-01T12:30:00Z"))).toMatchObject({ eventHours: 1, eventRows: 1 });
    expect(await runWarehouseExport(env, at("2020-03-01T12:35:00Z"))).toMatchObject({ eventHours: 0 });
    expect(await listKeys(eventsPrefix(WS, "2020-03-01T11"))).toEqual([`${eventsPrefix(WS, "2020-03-01T11")}part-00000.parquet`]);
  });

  it("exports an hour again when late events reach its archive", async () => {
    await writeArchiveObject(env, WS, "2020-03-01T10", batchKey(4), events("2020-03-01T10", ["a4"]));
    expect(await pendingEventHours(env.DB, at("2020-03-01T12:40:00Z"))).toEqual([{ workspaceId: WS, hour: "2020-03-01T10" }]);
    expect(await runWarehouseExport(env, at("2020-03-01T12:40:00Z"))).toMatchObject({ eventHours: 1, eventRows: 4 });
    const rows = await readAll(eventsPrefix(WS, "2020-03-01T10"));
    expect(rows.map((r) => r.message_id).sort()).toEqual(["a1", "a2", "a3", "a4"]);
    expect(await runWarehouseExport(env, at("2020-03-01T12:45:00Z"))).toMatchObject({ eventHours: 0 });
  });

  it("catches up on missed hours, a bounded number per run, oldest first", async () => {
    const missed = ["2020-04-02T01", "2020-04-02T02", "2020-04-02T03"];
    for (const [n, hour] of missed.entries()) await writeArchiveObject(env, WS, hour, batchKey(10 + n), events(hour, [`c${n}`]));
    // An hour older than the look-back is left to POST /admin/v1/exports.
    await writeArchiveObject(env, WS, "2020-03-20T01", batchKey(20), events("2020-03-20T01", ["old"]));
    const now = at("2020-04-02T06:00:00Z");
    expect((await pendingEventHours(env.DB, now)).map((p) => p.hour)).toEqual(missed);
    expect(await runWarehouseExport(env, now, { eventHours: 2 })).toMatchObject({ eventHours: 2 });
    expect((await pendingEventHours(env.DB, now)).map((p) => p.hour)).toEqual(["2020-04-02T03"]);
    expect(await runWarehouseExport(env, now, { eventHours: 2 })).toMatchObject({ eventHours: 1 });
    expect(await pendingEventHours(env.DB, now)).toEqual([]);
  });

  it("records a failing hour and stops retrying it after three attempts", async () => {
    const hour = "2020-05-03T05";
    await env.DB.prepare("INSERT INTO archive_objects (key, workspace_id, hour, event_count, bytes) VALUES (?1, ?2, ?3, 1, 10)")
      .bind(`events/${WS}/2020/05/03/05/missing.ndjson.gz`, WS, hour)
      .run();
    const now = at("2020-05-03T07:00:00Z");
    for (let attempt = 1; attempt <= 3; attempt++) {
      expect(await runWarehouseExport(env, now)).toMatchObject({ eventHours: 0, failures: 1 });
      expect(await getExport(env.DB, WS, "events", hour)).toMatchObject({ status: "failed", attempts: attempt, error: expect.stringContaining("missing from R2") });
    }
    expect(await runWarehouseExport(env, now)).toMatchObject({ eventHours: 0, failures: 0 });
  });

  it("takes each workspace's profile snapshot once a day from the Worker's scheduled handler", async () => {
    const now = Date.parse("2020-03-04T00:03:00Z");
    await worker.scheduled(createScheduledController({ scheduledTime: now, cron: "*/5 * * * *" }), env, {} as ExecutionContext);
    const snapshot = await getExport(env.DB, WS, "profiles", "2020-03-04");
    expect(snapshot).toMatchObject({ status: "done", rowCount: 0, files: [] });
    const defaultSnapshot = await getExport(env.DB, "default", "profiles", "2020-03-04");
    expect(defaultSnapshot?.status).toBe("done");
    const before = defaultSnapshot!.finishedAt!.getTime();
    await worker.scheduled(createScheduledController({ scheduledTime: now + 300_000, cron: "*/5 * * * *" }), env, {} as ExecutionContext);
    expect((await getExport(env.DB, "default", "profiles", "2020-03-04"))!.finishedAt!.getTime()).toBe(before);
  });
});
