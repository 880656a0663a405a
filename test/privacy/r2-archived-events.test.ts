import { env } from "cloudflare:workers";
import { parquetReadObjects } from "hyparquet";
import { beforeAll, describe, expect, it } from "vitest";
import { identifierHash, writeArchiveObject } from "../../workers/archive/writer";
import { exportEventsHour } from "../../workers/export/events";
import { eventsPrefix } from "../../workers/export/layout";
import type { QueuedEvent } from "../../workers/intake/envelope";
import { archivedEventsOf, eraseFromR2 } from "../../workers/privacy/r2-erasure";
import { eraseArchive } from "../../workers/privacy/r2/archive";
import { personOf } from "../../workers/privacy/r2/subject";
import { eventRecord } from "../../workers/profiles/event-record";

const RUN = `r2a-${Date.now().toString(36)}`;
const HOURS = ["2026-02-01T08", "2026-02-01T09", "2026-02-02T17"] as const;
const ADA = { user: `${RUN}-ada`, anon: `${RUN}-ada-anon`, email: `ada.${RUN}@example.com` };
const BO = `${RUN}-bo`;

let sequence = 0;
function event(hour: string, fields: Record<string, unknown>): QueuedEvent {
  const n = ++sequence;
  const at = `${hour}:${String(60 - n).padStart(2, "0")}:00.000Z`;
  return { type: "track", event: "Viewed", messageId: `${RUN}-${n}`, receivedAt: at, timestamp: at, context: {}, integrations: {}, ...fields } as QueuedEvent;
}

/** The same people in a workspace of their own: by user id, anonymous id, email trait (any case) and a message only profile events know. */
async function seed(workspaceId: string) {
  const events = {
    late: event(HOURS[2], { userId: ADA.user, properties: { step: 3 } }),
    byEmail: event(HOURS[1], { anonymousId: `${RUN}-kiosk`, context: { traits: { email: ADA.email.toUpperCase() } } }),
    byAnon: event(HOURS[0], { type: "page", anonymousId: ADA.anon }),
    byUser: event(HOURS[0], { type: "identify", userId: ADA.user, traits: { email: ADA.email } }),
    byMessage: event(HOURS[1], { userId: `${RUN}-device` }),
    bystander: event(HOURS[0], { userId: BO }),
    bystanderLate: event(HOURS[1], { userId: BO, traits: { email: `bo.${RUN}@example.com` } }),
  };
  await writeArchiveObject(env, workspaceId, HOURS[0], "first", [events.bystander, events.byUser, events.byAnon]);
  // The index knows neither the kiosk nor the device as theirs: the object is found through the message's profile event.
  await writeArchiveObject(env, workspaceId, HOURS[1], "second", [events.byEmail, events.bystanderLate, events.byMessage]);
  await writeArchiveObject(env, workspaceId, HOURS[2], "third", [events.late]);
  await env.DB.prepare("INSERT INTO profile_events (workspace_id, message_id, profile_id, type, timestamp, payload) VALUES (?1, ?2, 'prf_ada', 'track', 0, ?3)")
    .bind(workspaceId, events.byMessage.messageId, JSON.stringify(eventRecord(events.byMessage, null)))
    .run();
  return events;
}

describe("a person's archived events, for an access request", () => {
  const WS = `${RUN}-access`;
  let events: Awaited<ReturnType<typeof seed>>;
  beforeAll(async () => {
    events = await seed(WS);
  });

  it("answers every archived event of theirs, found by any value or message id, oldest receipt first, and nobody else's", async () => {
    const answer = await archivedEventsOf(env, WS, Object.values(ADA), [events.byMessage.messageId]);
    const expected = [events.byUser, events.byAnon, events.byMessage, events.byEmail, events.late];
    expect(answer.events).toEqual(expected.map((e) => ({ ...e, workspaceId: WS })));
    expect(answer).toMatchObject({ objectsRead: 3, truncated: false });
  });

  it("reads at most maxObjects objects, oldest first, and says the answer is truncated", async () => {
    const answer = await archivedEventsOf(env, WS, Object.values(ADA), [events.byMessage.messageId], { maxObjects: 1 });
    expect(answer.events.map((e) => e.messageId)).toEqual([events.byUser.messageId, events.byAnon.messageId]);
    expect(answer).toMatchObject({ objectsRead: 1, truncated: true });
  });

  it("answers nothing for values of another workspace", async () => {
    expect(await archivedEventsOf(env, `${RUN}-elsewhere`, Object.values(ADA), [events.byMessage.messageId])).toEqual({ events: [], objectsRead: 0, truncated: false });
  });
});

describe("an erasure that stopped part way", () => {
  const WS = `${RUN}-resume`;
  let events: Awaited<ReturnType<typeof seed>>;
  beforeAll(async () => {
    events = await seed(WS);
    for (const hour of HOURS) await exportEventsHour(env, WS, hour);
  });

  const exported = async () => {
    const ids: unknown[] = [];
    for (const hour of HOURS) {
      for (const { key } of (await env.ARCHIVE.list({ prefix: eventsPrefix(WS, hour) })).objects) {
        const rows = await parquetReadObjects({ file: await (await env.ARCHIVE.get(key))!.arrayBuffer(), columns: ["message_id"] });
        ids.push(...rows.map((row) => row.message_id));
      }
    }
    return ids.sort();
  };

  it("finishes on the next run: the archive index still leads it to the hours whose warehouse files hold their rows", async () => {
    // The first run rewrote the archive, then stopped before the warehouse and the index.
    const first = await eraseArchive(env, WS, personOf(Object.values(ADA), [events.byMessage.messageId]));
    expect(first.report.eventsRemoved).toBe(5);
    expect(await exported()).toHaveLength(7);

    const report = await eraseFromR2(env, { workspaceId: WS, identifierValues: Object.values(ADA), messageIds: [events.byMessage.messageId], profileIds: [] });
    expect(report.archive).toEqual({ objectsRewritten: 0, objectsDeleted: 0, eventsRemoved: 0 });
    expect(report.warehouse).toEqual({ filesRewritten: 2, filesDeleted: 1, rowsRemoved: 5 });
    expect(await exported()).toEqual([events.bystander.messageId, events.bystanderLate.messageId].sort());
    const index = await env.DB.prepare("SELECT identifier_hash FROM archive_index WHERE workspace_id = ?1").bind(WS).all<{ identifier_hash: string }>();
    expect(index.results.map((r) => r.identifier_hash)).toEqual([await identifierHash(WS, BO), await identifierHash(WS, BO)]);
  });
});
