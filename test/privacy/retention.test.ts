import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { readArchiveObject, writeArchiveObject } from "../../workers/archive/writer";
import worker from "../../workers/index";
import type { QueuedEvent } from "../../workers/intake/envelope";
import { enforceRetention, type RetentionLimits } from "../../workers/maintenance/retention";
import { DEFAULT_PRIVACY_SETTINGS, type Retention } from "../../workers/privacy/settings";
import { savePrivacySettings } from "../../workers/privacy/settings-store";
import { admin, track, unique } from "../helpers";

/**
 * Retention with simulated time: rows and objects of known ages are seeded in
 * real D1 and R2 relative to a simulated "now", and `enforceRetention` is run
 * at that instant. Storage is shared by the tests of this file and every run
 * covers every workspace, so each test uses its own workspaces and only looks at them.
 */

const DAY = 86_400_000;
const NOW = new Date(Date.UTC(2031, 0, 15, 12, 30));
const ago = (days: number, from = NOW) => from.getTime() - days * DAY;

async function workspace(retention: Partial<Retention> | "defaults"): Promise<string> {
  const id = `ret-${unique()}`;
  await env.DB.prepare("INSERT INTO workspaces (id, name) VALUES (?1, ?1)").bind(id).run();
  if (retention !== "defaults") await savePrivacySettings(env.DB, id, { ...DEFAULT_PRIVACY_SETTINGS, retention: { ...DEFAULT_PRIVACY_SETTINGS.retention, ...retention } });
  return id;
}

/** A workspace with a source, through the admin API, for events that go through the real tracking path. */
async function workspaceWithSource(retention: Partial<Retention>): Promise<{ id: string; writeKey: string }> {
  const id = await workspace(retention);
  const response = await admin("/admin/v1/sources", { method: "POST", json: { workspaceId: id, name: "retention" } });
  expect(response.status).toBe(201);
  return { id, writeKey: ((await response.json()) as { writeKey: string }).writeKey };
}

/** One of each kind of retained data, `days` old, all named `name`. */
async function seed(workspaceId: string, name: string, days: number, from = NOW, deliveryStatus = "delivered") {
  const at = ago(days, from);
  const iso = new Date(at).toISOString();
  const event: QueuedEvent = { type: "track", event: "Seen", messageId: name, userId: `user-${name}`, receivedAt: iso, timestamp: iso, properties: {}, context: {}, integrations: {} };
  const batchKey = Array.from(new TextEncoder().encode(name.padEnd(16, "-").slice(0, 16)), (b) => b.toString(16).padStart(2, "0")).join("");
  await writeArchiveObject(env, workspaceId, iso.slice(0, 13), batchKey, [event]);
  await env.DB.batch([
    env.DB.prepare("INSERT INTO profile_events (workspace_id, message_id, profile_id, type, event, timestamp, payload) VALUES (?1, ?2, 'prof_1', 'track', 'Seen', ?3, '{}')").bind(workspaceId, name, at),
    env.DB.prepare(
      "INSERT INTO deliveries (id, workspace_id, destination_id, status, message_ids, profile_ids, attempts, first_attempt_at, created_at, updated_at) VALUES (?1, ?2, 'dst_1', ?3, '[]', '[]', 1, ?4, ?4, ?4)",
    ).bind(name, workspaceId, deliveryStatus, at),
    env.DB.prepare("INSERT INTO audit_log (id, workspace_id, actor, action, target, created_at) VALUES (?1, ?2, 'root', 'test.seeded', ?1, ?3)").bind(name, workspaceId, at),
  ]);
}

/** What is left of the seeded data, per kind, by name. */
async function remaining(workspaceId: string) {
  const names = async (sql: string) => (await env.DB.prepare(sql).bind(workspaceId).all<{ name: string }>()).results.map((r) => r.name).sort();
  const objects = (await env.DB.prepare("SELECT key FROM archive_objects WHERE workspace_id = ?1").bind(workspaceId).all<{ key: string }>()).results;
  const archive = await Promise.all(objects.map(async ({ key }) => String((await readArchiveObject(env.ARCHIVE, key))?.[0]?.messageId ?? `missing from R2: ${key}`)));
  const indexed = await env.DB.prepare("SELECT count(DISTINCT object_key) AS n FROM archive_index WHERE workspace_id = ?1").bind(workspaceId).first<{ n: number }>();
  return {
    archive: archive.sort(),
    r2Objects: (await env.ARCHIVE.list({ prefix: `events/${workspaceId}/` })).objects.length,
    indexedObjects: indexed!.n,
    events: await names("SELECT message_id AS name FROM profile_events WHERE workspace_id = ?1"),
    deliveryLog: await names("SELECT id AS name FROM deliveries WHERE workspace_id = ?1"),
    auditLog: await names("SELECT id AS name FROM audit_log WHERE workspace_id = ?1 AND action = 'test.seeded'"),
  };
}

const everywhere = (names: string[]) => ({ archive: names, r2Objects: names.length, indexedObjects: names.length, events: names, deliveryLog: names, auditLog: names });

async function retentionEntries(workspaceId: string) {
  return (
    await env.DB.prepare("SELECT actor, target, details, created_at FROM audit_log WHERE workspace_id = ?1 AND action = 'privacy.retention.enforced' ORDER BY created_at, rowid").bind(workspaceId).all<{
      actor: string;
      target: string;
      details: string;
      created_at: number;
    }>()
  ).results.map((r) => ({ ...r, details: JSON.parse(r.details) as Record<string, unknown> }));
}

describe("enforceRetention", () => {
  it("deletes exactly what is older than each workspace's own periods, in every store, and leaves the rest", async () => {
    const custom = await workspace({ archive: 30, events: 10, deliveryLog: 7, auditLog: 60, objectEvents: null });
    const defaults = await workspace("defaults");
    await seed(custom, "c-archive-old", 31);
    await seed(custom, "c-young", 6);
    await seed(defaults, "d-custom-old", 61);
    await seed(defaults, "d-ancient", 800);

    const run = await enforceRetention(env, NOW);

    // The custom workspace: 31 days is past every period but the audit log's 60.
    expect(await remaining(custom)).toEqual({ ...everywhere(["c-young"]), auditLog: ["c-archive-old", "c-young"] });
    expect(run.workspaces[custom]).toEqual({ deleted: { archive: 1, events: 1, deliveryLog: 1, auditLog: 0, accessExports: 0 }, backlog: [], failed: [] });
    // The defaults (archive 365, events 90, delivery log 30, audit log 730): 61 days is past the delivery log's period only.
    expect(await remaining(defaults)).toEqual({ ...everywhere(["d-custom-old"]), deliveryLog: [] });
    expect(run.workspaces[defaults]!.deleted).toMatchObject({ archive: 1, events: 1, deliveryLog: 2, auditLog: 1 });
  });

  it("records one audit entry per workspace that lost anything, as system:retention with the counts", async () => {
    const pruned = await workspace({ events: 10, objectEvents: null });
    const untouched = await workspace({ events: 10, objectEvents: null });
    await seed(pruned, "p-old", 11);
    await seed(untouched, "u-young", 9);

    await enforceRetention(env, NOW);

    const [entry, ...more] = await retentionEntries(pruned);
    expect(more).toEqual([]);
    expect(entry).toMatchObject({ actor: "system:retention", target: pruned, created_at: NOW.getTime() });
    expect(entry!.details).toMatchObject({ deleted: { events: 1, deliveryLog: 0, archive: 0, auditLog: 0 }, cutoffs: { events: new Date(ago(10)).toISOString() }, backlog: [] });
    expect(await retentionEntries(untouched)).toEqual([]);
  });

  it("keeps forever what a null period covers", async () => {
    const forever = await workspace({ archive: null, events: null, objectEvents: null, deliveryLog: null, auditLog: null, accessExports: null });
    await seed(forever, "f-ancient", 3_000);

    const run = await enforceRetention(env, NOW);

    expect(await remaining(forever)).toEqual(everywhere(["f-ancient"]));
    expect(run.workspaces[forever]).toEqual({ deleted: {}, backlog: [], failed: [] });
    expect(await retentionEntries(forever)).toEqual([]);
  });

  it("keeps a delivery that is still being retried past the delivery log's period, until it settles", async () => {
    const ws = await workspace({ deliveryLog: 7, objectEvents: null });
    await seed(ws, "r-retrying", 8, NOW, "retrying");
    await seed(ws, "r-dead", 8, NOW, "dead_lettered");

    await enforceRetention(env, NOW);

    expect((await remaining(ws)).deliveryLog).toEqual(["r-retrying"]);
  });

  it("stops at the run's limit per data type and carries the rest over to the next run", async () => {
    const ws = await workspace({ archive: 30, events: 10, deliveryLog: 7, auditLog: 60, objectEvents: null });
    for (const n of [1, 2, 3]) await seed(ws, `b-old-${n}`, 90 + n);
    await seed(ws, "b-young", 5);
    const limits: RetentionLimits = { rows: 2, archiveObjects: 2 };

    const first = await enforceRetention(env, NOW, limits);
    expect(first.workspaces[ws]).toEqual({ deleted: { archive: 2, events: 2, deliveryLog: 2, auditLog: 2, accessExports: 0 }, backlog: ["archive", "events", "deliveryLog", "auditLog"], failed: [] });
    const between = await remaining(ws);
    expect([between.archive, between.events, between.deliveryLog, between.auditLog].map((names) => names.length)).toEqual([2, 2, 2, 2]);
    // The oldest archive hours go first.
    expect(between.archive).toEqual(["b-old-1", "b-young"]);

    const second = await enforceRetention(env, NOW, limits);
    expect(second.workspaces[ws]).toEqual({ deleted: { archive: 1, events: 1, deliveryLog: 1, auditLog: 1, accessExports: 0 }, backlog: [], failed: [] });
    expect(await remaining(ws)).toEqual(everywhere(["b-young"]));
    expect((await retentionEntries(ws)).map((e) => (e.details as { backlog: string[] }).backlog)).toEqual([["archive", "events", "deliveryLog", "auditLog"], []]);
  });

  it("deletes access-export documents past their period and says so on the request", async () => {
    const ws = await workspace({ accessExports: 30, objectEvents: null });
    const exported = async (id: string, days: number) => {
      const key = `privacy/exports/${ws}/${id}.json`;
      await env.ARCHIVE.put(key, JSON.stringify({ requestId: id }));
      await env.DB.prepare(
        `INSERT INTO privacy_requests (id, workspace_id, kind, status, subject_hint, subject_hash, result_key, result_bytes, requested_by, created_at, updated_at, finished_at)
         VALUES (?1, ?2, 'export', 'finished', 'user_id:x***', 'h', ?3, 20, 'root', ?4, ?4, ?4)`,
      )
        .bind(id, ws, key, ago(days))
        .run();
      return key;
    };
    const oldKey = await exported(`exp-old-${ws}`, 31);
    const youngKey = await exported(`exp-young-${ws}`, 29);

    const run = await enforceRetention(env, NOW);

    expect(run.workspaces[ws]!.deleted.accessExports).toBe(1);
    expect(await env.ARCHIVE.head(oldKey)).toBeNull();
    expect(await env.ARCHIVE.head(youngKey)).not.toBeNull();
    const rows = (await env.DB.prepare("SELECT id, result_key, error FROM privacy_requests WHERE workspace_id = ?1 ORDER BY id").bind(ws).all()).results;
    expect(rows).toEqual([
      { id: `exp-old-${ws}`, result_key: null, error: expect.stringContaining("expired") },
      { id: `exp-young-${ws}`, result_key: youngKey, error: null },
    ]);
  });

  it("deletes warehouse partitions past the archive's period with their files, as the archive they came from", async () => {
    const ws = await workspace({ archive: 30, objectEvents: null });
    const partition = async (kind: "events" | "profiles", period: string) => {
      const key = `warehouse/${kind}/workspace_id=${ws}/${period}/part-0.parquet`;
      await env.ARCHIVE.put(key, "PAR1");
      await env.DB.prepare("INSERT INTO warehouse_exports (workspace_id, kind, period, status, files, started_at) VALUES (?1, ?2, ?3, 'done', ?4, 0)")
        .bind(ws, kind, period, JSON.stringify([{ key, rows: 1, bytes: 4 }]))
        .run();
      return key;
    };
    const day = (days: number) => new Date(ago(days)).toISOString().slice(0, 10);
    const hour = (days: number) => new Date(ago(days)).toISOString().slice(0, 13);
    const oldFiles = [await partition("events", hour(31)), await partition("profiles", day(32))];
    const youngFiles = [await partition("events", hour(29)), await partition("profiles", day(29))];

    const run = await enforceRetention(env, NOW);

    expect(run.workspaces[ws]!.deleted.archive).toBe(2);
    for (const key of oldFiles) expect(await env.ARCHIVE.head(key)).toBeNull();
    for (const key of youngFiles) expect(await env.ARCHIVE.head(key)).not.toBeNull();
    const periods = (await env.DB.prepare("SELECT period FROM warehouse_exports WHERE workspace_id = ?1 ORDER BY period").bind(ws).all<{ period: string }>()).results.map((r) => r.period);
    expect(periods.sort()).toEqual([hour(29), day(29)].sort());
  });

  it("skips a workspace whose stored settings do not parse rather than apply the defaults to it", async () => {
    const ws = await workspace("defaults");
    await env.DB.prepare("INSERT INTO privacy_settings (workspace_id, settings, updated_at) VALUES (?1, '{\"retention\":\"broken\"}', 0)").bind(ws).run();
    await seed(ws, "s-ancient", 3_000);

    const run = await enforceRetention(env, NOW);

    expect(run.workspaces[ws]).toBeUndefined();
    expect(run.failures).toBeGreaterThanOrEqual(1);
    expect(await remaining(ws)).toEqual(everywhere(["s-ancient"]));
  });

  it("has each workspace's identity object drop event payloads past its objectEvents period, once", async () => {
    const now = new Date();
    const pruned = await workspaceWithSource({ objectEvents: 30 });
    const kept = await workspaceWithSource({ objectEvents: null });
    for (const ws of [pruned, kept]) {
      const old = new Date(ago(40, now)).toISOString();
      expect((await track("/v1/track?sync=true", { userId: `u-${unique()}`, event: "Seen", timestamp: old }, ws.writeKey)).status).toBe(200);
      expect((await track("/v1/track?sync=true", { userId: `u-${unique()}`, event: "Seen" }, ws.writeKey)).status).toBe(200);
    }

    const first = await enforceRetention(env, now);
    expect(first.workspaces[pruned.id]).toMatchObject({ deleted: { objectEvents: 1 }, failed: [] });
    expect(first.workspaces[kept.id]).toEqual({ deleted: { archive: 0, events: 0, deliveryLog: 0, auditLog: 0, accessExports: 0 }, backlog: [], failed: [] });
    const second = await enforceRetention(env, now);
    expect(second.workspaces[pruned.id]!.deleted.objectEvents).toBe(0);
  });
});

describe("the maintenance cron", () => {
  it("enforces retention on its run instead of a fixed period", async () => {
    const now = new Date();
    const ws = await workspace({ events: 3, archive: 3, deliveryLog: 3, auditLog: 3, objectEvents: null });
    await seed(ws, "cron-old", 4, now);
    await seed(ws, "cron-young", 2, now);

    await worker.scheduled(createScheduledController({ scheduledTime: now.getTime(), cron: "*/5 * * * *" }), env, {} as ExecutionContext);

    expect(await remaining(ws)).toEqual(everywhere(["cron-young"]));
    expect(await retentionEntries(ws)).toHaveLength(1);
  });
});
