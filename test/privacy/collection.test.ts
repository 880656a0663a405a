import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { dedupShardName } from "../../durable-objects/dedup-shard";
import { intakeDropsByDay, recordIntakeDrops } from "../../workers/privacy/intake-drops";
import { savePrivacySettings } from "../../workers/privacy/settings-store";
import { DEFAULT_PRIVACY_SETTINGS } from "../../workers/privacy/settings";
import { admin, archivedEvents, json, track, unique, until, type Json } from "../helpers";

/**
 * Consent required at collection, through the real tracking API, queue and
 * archive: events lacking a required category are dropped before the queue
 * and counted, consented ones and the consent event itself are kept.
 */

/** A workspace of its own that requires `required` at collection, with a source to send from. */
async function workspaceRequiring(required: string[]): Promise<{ ws: string; writeKey: string }> {
  const ws = `consent-${unique()}`;
  expect((await admin("/admin/v1/workspaces", { method: "POST", json: { id: ws, name: ws } })).status).toBe(201);
  const source = await admin("/admin/v1/sources", { method: "POST", json: { workspaceId: ws, name: "web" } });
  expect(source.status).toBe(201);
  await savePrivacySettings(env.DB, ws, { ...DEFAULT_PRIVACY_SETTINGS, consent: { ...DEFAULT_PRIVACY_SETTINGS.consent, requiredAtCollection: required } });
  return { ws, writeKey: (await json(source)).writeKey };
}

const reachedConsumer = (workspaceId: string, messageId: string) =>
  runInDurableObject(env.DEDUP.getByName(dedupShardName(workspaceId, messageId)), (_, state) =>
    state.storage.sql.exec("SELECT 1 FROM seen WHERE message_id = ?", messageId).toArray().length > 0,
  );

const consentOf = (preferences: Record<string, boolean>) => ({ consent: { categoryPreferences: preferences } });

describe("drop counters", () => {
  it("adds up the drops of requests that arrive while a flush is pending into one D1 write", async () => {
    const ws = `drops-${unique()}`;
    const flushes: Promise<unknown>[] = [];
    recordIntakeDrops((flush) => flushes.push(flush), env.DB, ws, { consent: 2 });
    recordIntakeDrops((flush) => flushes.push(flush), env.DB, ws, { consent: 1, suppressed: 4 });
    expect(flushes).toHaveLength(1);
    await Promise.all(flushes);
    expect(await intakeDropsByDay(env.DB, ws, 2)).toEqual([
      { day: new Date(Date.now() - 86_400_000).toISOString().slice(0, 10), consent: 0, suppressed: 0 },
      { day: new Date().toISOString().slice(0, 10), consent: 3, suppressed: 4 },
    ]);
  });
});

describe("consent required at collection", () => {
  it("drops and counts events lacking a required category, and keeps consented ones and the consent event", async () => {
    const { ws, writeKey } = await workspaceRequiring(["analytics", "personalization"]);
    const id = unique();
    const batch = [
      { type: "track", userId: `u-${id}`, event: "Viewed", context: consentOf({ analytics: true, personalization: true }), messageId: `c-${id}-granted` },
      { type: "track", userId: `u-${id}`, event: "Viewed", context: consentOf({ analytics: true, personalization: false }), messageId: `c-${id}-refused` },
      { type: "page", userId: `u-${id}`, name: "Home", context: consentOf({ analytics: true }), messageId: `c-${id}-partial` },
      { type: "identify", userId: `u-${id}`, traits: { plan: "pro" }, messageId: `c-${id}-silent` },
      {
        type: "track",
        userId: `u-${id}`,
        event: "Segment Consent Preference Updated",
        context: consentOf({ analytics: false, personalization: false }),
        messageId: `c-${id}-consent-event`,
      },
    ];
    const response = await track("/v1/batch", { batch }, writeKey);
    expect(response.status).toBe(200);
    expect(await json(response)).toEqual({ success: true, accepted: 5, rejected: [] });

    const kept = await until("the kept events in the archive", async () => {
      const ids = (await archivedEvents(ws)).map((e) => String(e.messageId));
      return ids.length >= 2 ? ids.sort() : undefined;
    });
    expect(kept).toEqual([`c-${id}-consent-event`, `c-${id}-granted`]);
    for (const dropped of ["refused", "partial", "silent"]) expect(await reachedConsumer(ws, `c-${id}-${dropped}`)).toBe(false);

    const report = await until("the drops to be counted", async () => {
      const body = await json(await admin(`/admin/v1/privacy/collection?workspaceId=${ws}&days=3`));
      return body.totals.consent === 3 ? body : undefined;
    });
    expect(report).toMatchObject({ workspaceId: ws, requiredAtCollection: ["analytics", "personalization"], totals: { consent: 3, suppressed: 0 } });
    expect(report.days.map((d: Json) => d.day)).toHaveLength(3);
    expect(report.days.at(-1)).toEqual({ day: new Date().toISOString().slice(0, 10), consent: 3, suppressed: 0 });
  });

  it("answers a dropped single call with Segment's success, so the client does not retry it", async () => {
    const { ws, writeKey } = await workspaceRequiring(["advertising"]);
    const id = unique();
    const dropped = await track("/v1/track", { userId: `u-${id}`, event: "Ad Clicked", messageId: `c1-${id}-dropped` }, writeKey);
    expect(dropped.status).toBe(200);
    expect(await json(dropped)).toEqual({ success: true });
    await track("/v1/track", { userId: `u-${id}`, event: "Ad Clicked", context: consentOf({ advertising: true }), messageId: `c1-${id}-kept` }, writeKey);

    const kept = await until("the consented event", async () => {
      const ids = (await archivedEvents(ws)).map((e) => String(e.messageId));
      return ids.length ? ids : undefined;
    });
    expect(kept).toEqual([`c1-${id}-kept`]);
    expect(await reachedConsumer(ws, `c1-${id}-dropped`)).toBe(false);
  });

  it("refuses a days value outside 1 to 90", async () => {
    const response = await admin("/admin/v1/privacy/collection?workspaceId=default&days=0");
    expect(response.status).toBe(400);
    expect((await json(response)).errors.map((e: Json) => e.path)).toEqual(["days"]);
  });
});
