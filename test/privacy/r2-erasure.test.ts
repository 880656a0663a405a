import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { beforeAll, describe, expect, it } from "vitest";
import { identifierHash, readArchiveObject, writeArchiveObject } from "../../workers/archive/writer";
import { deadLetterKey } from "../../workers/consumers/activation";
import { deliverySchema } from "../../workers/delivery/messages";
import { exportEventsHour, fingerprintOf } from "../../workers/export/events";
import { eventsPrefix, profilesPrefix } from "../../workers/export/layout";
import { exportProfilesSnapshot } from "../../workers/export/profiles";
import worker from "../../workers/index";
import type { QueuedEvent } from "../../workers/intake/envelope";
import { eraseFromR2, type R2ErasureReport } from "../../workers/privacy/r2-erasure";
import { eventRecord } from "../../workers/profiles/event-record";
import { admin } from "../helpers";

const RUN = `r2e-${Date.now().toString(36)}`;
const WS = RUN;
const [H1, H2] = ["2026-03-04T10", "2026-03-04T11"];
const [DAY_DONE, DAY_SPLIT, DAY_RUNNING] = ["2026-03-04", "2026-03-05", "2026-03-06"];

// The person: every value they were known by, and a trait value only they have.
const ADA = { user: `${RUN}-ada`, anon: `${RUN}-ada-anon`, email: `Ada.${RUN}@Example.com`, phone: `+1555${Date.now() % 10_000_000}`, profile: `prf_a-${RUN}` };
const SECRET = `ada-secret-${RUN}`;
// Their events the index cannot name them by: a kiosk that only had their email, a device only their profile events know.
const KIOSK = `${RUN}-ada-kiosk`;
const DEVICE = `${RUN}-ada-device`;
// The bystander, sharing archive objects, warehouse files and a delivery with them.
const BO = { user: `${RUN}-bo`, anon: `${RUN}-bo-anon`, email: `bo.${RUN}@example.com`, profile: `prf_b-${RUN}` };

const subject = { workspaceId: WS, identifierValues: Object.values(ADA).filter((v) => v !== ADA.profile), messageIds: [`${RUN}-d1`], profileIds: [ADA.profile] };
const needles = [...Object.values(ADA), SECRET, KIOSK, DEVICE].map((v) => v.toLowerCase());

let minute = 0;
function event(hour: string, id: string, fields: Record<string, unknown>): QueuedEvent {
  const at = `${hour}:${String(minute++ % 60).padStart(2, "0")}:00.000Z`;
  return { type: "track", event: "Viewed", messageId: `${RUN}-${id}`, receivedAt: at, timestamp: at, context: {}, integrations: {}, ...fields } as QueuedEvent;
}

const archive = {
  a: [
    event(H1, "a1", { type: "identify", userId: ADA.user, anonymousId: ADA.anon, traits: { email: ADA.email, phone: ADA.phone, secret: SECRET } }),
    event(H1, "a2", { userId: BO.user, properties: { plan: "pro" } }),
    event(H1, "a3", { type: "page", anonymousId: ADA.anon, name: "Pricing" }),
    event(H1, "a4", { anonymousId: KIOSK, context: { traits: { email: ADA.email.toUpperCase() } } }),
    event(H1, "a5", { type: "identify", userId: BO.user, traits: { email: BO.email } }),
  ],
  b: [event(H1, "b1", { anonymousId: BO.anon }), event(H1, "b2", { anonymousId: BO.anon, properties: { step: 2 } })],
  c: [event(H2, "c1", { userId: ADA.user, properties: { secret: SECRET } }), event(H2, "c2", { type: "alias", userId: ADA.user, previousId: ADA.anon })],
  d: [event(H2, "d1", { userId: DEVICE }), event(H2, "d2", { userId: BO.user, event: "Ordered" })],
};
const boIds = Object.values(archive).flat().filter((e) => JSON.stringify(e).includes(BO.user) || JSON.stringify(e).includes(BO.anon)).map((e) => e.messageId);

async function deliver(queue: string, messages: { id: string; body: unknown }[]) {
  const batch = createMessageBatch(queue, messages.map((m) => ({ ...m, timestamp: new Date(), attempts: 11 })));
  const ctx = createExecutionContext();
  await worker.queue(batch as MessageBatch<unknown>, env, ctx);
  return getQueueResult(batch, ctx);
}

/** A delivery the real activation consumer dead-letters: its destination refuses connections and its retry budget is spent. */
async function deadLetter(id: string, messages: Record<string, unknown>[], profileIds: string[]) {
  const response = await admin("/admin/v1/destinations", {
    method: "POST",
    json: { workspaceId: WS, name: `Refusing ${id}`, type: "webhook", settings: { url: "http://127.0.0.1:9/hook" }, secrets: { signingSecret: "whsec_r2_erasure_0001" } },
  });
  expect(response.status).toBe(201);
  const { destination } = (await response.json()) as { destination: { id: string } };
  const body = { v: 1, kind: "deliver", deliveryId: `dlv_${RUN}_${id}`, workspaceId: WS, destinationId: destination.id, messages, profileIds, attempt: 12, firstAttemptAt: Date.now() - 5 * 3_600_000 };
  await deliver("cdp-activations", [{ id: `${RUN}-act-${id}`, body }]);
  expect(await env.ARCHIVE.head(deadLetterKey(body))).not.toBeNull();
  return deadLetterKey(body);
}

const profileRow = `INSERT INTO profiles (workspace_id, profile_id, user_id, email, phone, first_name, traits, created_at, updated_at, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1772600000000, 1772600000000, 1)`;

let keys: { mixed: string; onlyAda: string };

beforeAll(async () => {
  expect((await admin("/admin/v1/workspaces", { method: "POST", json: { id: WS, name: "R2 erasure" } })).status).toBe(201);
  await writeArchiveObject(env, WS, H1, "a", archive.a);
  await writeArchiveObject(env, WS, H1, "b", archive.b);
  await writeArchiveObject(env, WS, H2, "c", archive.c);
  await writeArchiveObject(env, WS, H2, "d", archive.d);
  const device = archive.d[0]!;
  await env.DB.prepare("INSERT INTO profile_events (workspace_id, message_id, profile_id, type, timestamp, payload) VALUES (?1, ?2, ?3, 'track', 0, ?4)")
    .bind(WS, device.messageId, ADA.profile, JSON.stringify(eventRecord(device, null)))
    .run();
  await exportEventsHour(env, WS, H1);
  await exportEventsHour(env, WS, H2);

  await env.DB.batch([
    env.DB.prepare(profileRow).bind(WS, ADA.profile, ADA.user, ADA.email.toLowerCase(), ADA.phone, "Ada", JSON.stringify({ secret: SECRET })),
    env.DB.prepare(profileRow).bind(WS, BO.profile, BO.user, BO.email, null, "Bo", JSON.stringify({ plan: "pro" })),
  ]);
  await exportProfilesSnapshot(env, WS, DAY_DONE);
  await exportProfilesSnapshot(env, WS, DAY_SPLIT, { rowsPerFile: 1 });
  expect(await exportProfilesSnapshot(env, WS, DAY_RUNNING, { rowsPerFile: 1, maxFiles: 1 })).toMatchObject({ status: "running", rowCount: 1 });

  keys = {
    mixed: await deadLetter("mixed", [
      { type: "track", messageId: `${RUN}-x1`, event: "Viewed", userId: ADA.user, properties: { secret: SECRET }, context: {} },
      { type: "track", messageId: `${RUN}-x2`, event: "Viewed", userId: BO.user, context: {} },
    ], [ADA.profile, BO.profile]),
    onlyAda: await deadLetter("ada", [{ type: "identify", messageId: `${RUN}-x3`, traits: { email: ADA.email }, context: {} }], [ADA.profile]),
  };
  await deliver("cdp-events-dlq", [{ id: `${RUN}-dlq`, body: { v: 1, workspaceId: WS, sourceId: "src_dlq", events: [event(H2, "q1", { userId: ADA.user }), event(H2, "q2", { userId: BO.user })] } }]);
  await deliver("cdp-events", [
    { id: `${RUN}-bad-ada`, body: { v: 1, workspaceId: WS, events: [{ type: "identify", traits: { email: ADA.email } }] } },
    { id: `${RUN}-bad-bo`, body: { v: 1, workspaceId: WS, events: [{ type: "identify", traits: { email: BO.email } }] } },
  ]);
});

/** Every object in the bucket as text: archive objects gunzipped, Parquet files decoded, anything else as stored. */
async function bucketContents(): Promise<Map<string, { etag: string; text: string }>> {
  const contents = new Map<string, { etag: string; text: string }>();
  let cursor: string | undefined;
  do {
    const page = await env.ARCHIVE.list({ cursor });
    for (const { key, etag } of page.objects) {
      const object = await env.ARCHIVE.get(key);
      if (!object) continue;
      let text: string;
      if (key.startsWith("events/")) text = JSON.stringify(await readArchiveObject(env.ARCHIVE, key));
      else if (key.endsWith(".parquet")) text = JSON.stringify(await parquetReadObjects({ file: await object.arrayBuffer() }), (_, v) => (typeof v === "bigint" ? String(v) : v));
      else text = await object.text();
      contents.set(key, { etag, text });
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return contents;
}

async function parquetRows(prefix: string) {
  const rows: Record<string, unknown>[] = [];
  for (const { key } of (await env.ARCHIVE.list({ prefix })).objects) rows.push(...((await parquetReadObjects({ file: await (await env.ARCHIVE.get(key))!.arrayBuffer() })) as Record<string, unknown>[]));
  return rows;
}

const d1Rows = async (sql: string) => (await env.DB.prepare(sql).bind(WS).all<Record<string, unknown>>()).results;

describe("erasing a person from R2", () => {
  let report: R2ErasureReport;
  let before: { events: Record<string, unknown>[]; profiles: Record<string, unknown>[]; objectB: string };

  beforeAll(async () => {
    const byHour = [...(await parquetRows(eventsPrefix(WS, H1))), ...(await parquetRows(eventsPrefix(WS, H2)))];
    before = {
      events: byHour.filter((row) => boIds.includes(String(row.message_id))),
      profiles: (await parquetRows(profilesPrefix(WS, DAY_DONE))).filter((row) => row.profile_id === BO.profile),
      objectB: (await env.ARCHIVE.head(`events/${WS}/2026/03/04/10/b.ndjson.gz`))!.etag,
    };
    expect(before.events).toHaveLength(boIds.length);
    report = await eraseFromR2(env, subject);
  });

  it("reports what it removed from each area", () => {
    expect(report).toEqual({
      archive: { objectsRewritten: 2, objectsDeleted: 1, eventsRemoved: 6 },
      warehouse: { filesRewritten: 4, filesDeleted: 1, rowsRemoved: 9 },
      deadLetters: { objectsRewritten: 2, objectsDeleted: 1, messagesRemoved: 3 },
      quarantine: { objectsDeleted: 1 },
    });
  });

  it("leaves no object anywhere in the bucket that holds any of their values, ids or trait values", async () => {
    const contents = await bucketContents();
    // Every area was read: the scan below is not vacuous.
    expect([...contents.keys()]).toEqual(
      expect.arrayContaining([`events/${WS}/2026/03/04/10/a.ndjson.gz`, `${eventsPrefix(WS, H1)}part-00000.parquet`, `${profilesPrefix(WS, DAY_DONE)}part-00000.parquet`, keys.mixed, `quarantine/events/${RUN}-bad-bo.json`]),
    );
    for (const [key, { text }] of contents) {
      for (const needle of needles) expect(text.toLowerCase(), `${key} still holds ${needle}`).not.toContain(needle);
    }
  });

  it("keeps every bystander event in the archive, readable by the archive reader, and an object without them untouched", async () => {
    const listed = (await env.ARCHIVE.list({ prefix: `events/${WS}/` })).objects;
    const events = (await Promise.all(listed.map((o) => readArchiveObject(env.ARCHIVE, o.key)))).flat();
    expect(events.map((e) => e!.messageId).sort()).toEqual([...boIds].sort());
    expect(events).toEqual(expect.arrayContaining(Object.values(archive).flat().filter((e) => boIds.includes(e.messageId)).map((e) => ({ ...e, workspaceId: WS }))));
    expect((await env.ARCHIVE.head(`events/${WS}/2026/03/04/10/b.ndjson.gz`))!.etag).toBe(before.objectB);
    const rewritten = (await env.ARCHIVE.head(`events/${WS}/2026/03/04/10/a.ndjson.gz`))!;
    expect(rewritten.httpMetadata).toMatchObject({ contentType: "application/x-ndjson", contentEncoding: "gzip" });
    expect(rewritten.customMetadata).toEqual({ workspaceId: WS, eventCount: "2", hour: H1 });
  });

  it("keeps archive_objects in step with R2 and drops every index row that led to them", async () => {
    const rows = await d1Rows("SELECT key, event_count, bytes FROM archive_objects WHERE workspace_id = ?1 ORDER BY key");
    expect(rows.map((r) => r.key)).toEqual((await env.ARCHIVE.list({ prefix: `events/${WS}/` })).objects.map((o) => o.key));
    for (const row of rows) {
      const key = String(row.key);
      expect(row).toEqual({ key, event_count: (await readArchiveObject(env.ARCHIVE, key))!.length, bytes: (await env.ARCHIVE.head(key))!.size });
    }
    const index = await d1Rows("SELECT identifier_hash, object_key FROM archive_index WHERE workspace_id = ?1");
    for (const id of [ADA.user, ADA.anon, KIOSK, DEVICE]) expect(index.map((r) => r.identifier_hash)).not.toContain(await identifierHash(WS, id));
    expect(new Set(index.map((r) => r.object_key))).toEqual(new Set(rows.map((r) => r.key)));
    const bo = await identifierHash(WS, BO.user);
    expect(index.filter((r) => r.identifier_hash === bo).map((r) => r.object_key)).toEqual(expect.arrayContaining([`events/${WS}/2026/03/04/10/a.ndjson.gz`, `events/${WS}/2026/03/04/11/d.ndjson.gz`]));
  });

  it("keeps every bystander row in the warehouse files, with the same schema and compression, and the registry in step", async () => {
    const events = [...(await parquetRows(eventsPrefix(WS, H1))), ...(await parquetRows(eventsPrefix(WS, H2)))];
    expect(events).toEqual(expect.arrayContaining(before.events));
    expect(events).toHaveLength(before.events.length);
    for (const day of [DAY_DONE, DAY_SPLIT]) expect(await parquetRows(profilesPrefix(WS, day))).toEqual(before.profiles);

    const exports = await d1Rows("SELECT kind, period, files, row_count, bytes, source_fingerprint FROM warehouse_exports WHERE workspace_id = ?1");
    expect(exports).toHaveLength(5);
    for (const row of exports) {
      const files = JSON.parse(String(row.files)) as { key: string; rows: number; bytes: number }[];
      const prefix = row.kind === "events" ? eventsPrefix(WS, String(row.period)) : profilesPrefix(WS, String(row.period));
      expect((await env.ARCHIVE.list({ prefix })).objects.map((o) => o.key)).toEqual(files.map((f) => f.key));
      for (const file of files) {
        const bytes = await (await env.ARCHIVE.get(file.key))!.arrayBuffer();
        const metadata = parquetMetadata(bytes);
        expect({ rows: Number(metadata.num_rows), bytes: bytes.byteLength }).toEqual({ rows: file.rows, bytes: file.bytes });
        expect(metadata.row_groups.flatMap((g) => g.columns.map((c) => c.meta_data!.codec))).not.toContain("UNCOMPRESSED");
      }
      expect(row.row_count).toBe(files.reduce((sum, f) => sum + f.rows, 0));
      expect(row.bytes).toBe(files.reduce((sum, f) => sum + f.bytes, 0));
    }
    // The exported hours match the rewritten archive, so the cron does not export them again.
    for (const hour of [H1, H2]) {
      const objects = await d1Rows(`SELECT key, event_count, bytes FROM archive_objects WHERE workspace_id = ?1 AND hour = '${hour}'`);
      expect(exports.find((r) => r.period === hour)!.source_fingerprint).toBe(fingerprintOf(objects as { key: string; event_count: number; bytes: number }[]));
    }
  });

  it("lets a snapshot that was still being written go on after an emptied part", async () => {
    expect(await parquetRows(profilesPrefix(WS, DAY_RUNNING))).toEqual([]);
    const resumed = await exportProfilesSnapshot(env, WS, DAY_RUNNING, { rowsPerFile: 1 });
    expect(resumed).toMatchObject({ status: "done", rowCount: 1, files: [{ rows: 0 }, { rows: 1 }] });
    expect((await parquetRows(profilesPrefix(WS, DAY_RUNNING))).map((r) => r.profile_id)).toEqual([BO.profile]);
  });

  it("keeps the bystander's part of a dead-lettered delivery replayable and drops one only about them", async () => {
    const stored = deliverySchema.parse(await (await env.ARCHIVE.get(keys.mixed))!.json());
    expect(stored.messages.map((m) => m.messageId)).toEqual([`${RUN}-x2`]);
    expect(stored.profileIds).toEqual([BO.profile]);
    expect(await env.ARCHIVE.head(keys.onlyAda)).toBeNull();
    const dlq = (await env.ARCHIVE.list({ prefix: "dead-letters/cdp-events-dlq/" })).objects.filter((o) => o.key.endsWith(`/${RUN}-dlq.json`));
    const body = ((await (await env.ARCHIVE.get(dlq[0]!.key))!.json()) as { body: { events: { messageId: string }[] } }).body;
    expect(body.events.map((e) => e.messageId)).toEqual([`${RUN}-q2`]);
    expect(await env.ARCHIVE.head(`quarantine/events/${RUN}-bad-ada.json`)).toBeNull();
    expect(await env.ARCHIVE.head(`quarantine/events/${RUN}-bad-bo.json`)).not.toBeNull();
  });

  it("changes nothing and reports zeros when run again", async () => {
    const bucket = await bucketContents();
    const tables = [await d1Rows("SELECT * FROM archive_objects WHERE workspace_id = ?1 ORDER BY key"), await d1Rows("SELECT * FROM warehouse_exports WHERE workspace_id = ?1 ORDER BY kind, period")];
    expect(await eraseFromR2(env, subject)).toEqual({
      archive: { objectsRewritten: 0, objectsDeleted: 0, eventsRemoved: 0 },
      warehouse: { filesRewritten: 0, filesDeleted: 0, rowsRemoved: 0 },
      deadLetters: { objectsRewritten: 0, objectsDeleted: 0, messagesRemoved: 0 },
      quarantine: { objectsDeleted: 0 },
    });
    expect(await bucketContents()).toEqual(bucket);
    expect([await d1Rows("SELECT * FROM archive_objects WHERE workspace_id = ?1 ORDER BY key"), await d1Rows("SELECT * FROM warehouse_exports WHERE workspace_id = ?1 ORDER BY kind, period")]).toEqual(tables);
  });
});
