import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import type { QueuedEvent } from "../../workers/intake/envelope";
import type { AudienceChange } from "../../workers/segments/activation";
import { profileApi } from "../profiles/helpers";

const DAY = 86_400_000;
let n = 0;
const event = (fields: Record<string, unknown>, at: number): QueuedEvent =>
  ({ type: "track", messageId: `aud-${++n}`, receivedAt: new Date(at).toISOString(), timestamp: new Date(at).toISOString(), context: {}, integrations: {}, ...fields }) as QueuedEvent;

const viewedShoes = {
  id: "seg_shoes",
  kind: "segment",
  key: "shoe_browsers",
  name: "Viewed 3+ shoes this week, nothing added to cart",
  version: 1,
  definition: {
    kind: "and",
    conditions: [
      { kind: "event", event: "Product Viewed", where: [{ property: "category", op: "equals", value: "shoes" }], window: { within: { days: 7 } }, count: { op: "gte", value: 3 } },
      { kind: "event", event: "Product Added", window: { within: { days: 7 } }, count: { op: "equals", value: 0 } },
    ],
  },
};
const revenue = { id: "ctr_revenue", kind: "computed_trait", key: "revenue_30d", name: "Revenue, 30 days", version: 1, definition: { function: "sum", event: "Order Completed", property: "revenue", window: { within: { days: 30 } } } };

/** Members of an audience, by profile id (RPC types erase the `unknown` values, so the shape is restated). */
const membersOf = async (stub: DurableObjectStub<IdentityGraphShard>, audienceId: string) => ((await stub.audienceMembers(audienceId, null, 100)) as unknown as { profileId: string }[]).map((m) => m.profileId);

/** Runs `work` inside the object and returns the activation changes recorded in the same turn, before any alarm can send them. */
async function withEmissions<T>(stub: DurableObjectStub<IdentityGraphShard>, work: (instance: IdentityGraphShard) => T): Promise<{ result: T; changes: AudienceChange[] }> {
  return runInDurableObject(stub, (instance: IdentityGraphShard, state) => {
    const before = state.storage.sql.exec<{ seq: number }>("SELECT coalesce(max(seq), 0) AS seq FROM emissions").one().seq;
    const result = work(instance);
    const changes = state.storage.sql
      .exec<{ change: string }>("SELECT change FROM emissions WHERE seq > ? ORDER BY seq", before)
      .toArray()
      .map((r) => JSON.parse(r.change) as AudienceChange);
    return { result, changes };
  });
}

describe("segments in the identity object", () => {
  it("enters a person on the event that makes the rule true and exits them on the one that makes it false, once each", async () => {
    const stub = env.IDENTITY.getByName("aud-ws-1");
    expect((await stub.putAudience(viewedShoes)).ok).toBe(true);
    const now = Date.now();
    const views = [1, 2, 3].map((i) => event({ userId: "u1", event: "Product Viewed", properties: { category: "shoes", sku: `s${i}` } }, now - i * 60_000));
    const entered = await withEmissions(stub, (o) => o.resolveEvents(views));
    expect(entered.changes).toEqual([expect.objectContaining({ profileId: entered.result[0]!.profileId, entered: true, audience: expect.objectContaining({ key: "shoe_browsers" }) })]);

    const again = await withEmissions(stub, (o) => o.resolveEvents(views));
    expect(again.changes).toEqual([]);

    const added = await withEmissions(stub, (o) => o.resolveEvents([event({ userId: "u1", event: "Product Added", properties: { sku: "s1" } }, now)]));
    expect(added.changes).toEqual([expect.objectContaining({ entered: false })]);
  });

  it("exits a person when the window slides past their views, at the instant its alarm is set for", async () => {
    const stub = env.IDENTITY.getByName("aud-ws-2");
    await stub.putAudience(viewedShoes);
    const now = Date.now();
    const oldest = now - 7 * DAY + 2 * 3_600_000;
    await stub.resolveEvents([0, 1, 2].map((i) => event({ userId: "u2", event: "Product Viewed", properties: { category: "shoes" } }, oldest + i * 3_600_000)));
    const { flipAt, alarm } = await runInDurableObject(stub, async (_o: IdentityGraphShard, state) => ({
      flipAt: state.storage.sql.exec<{ at: number }>("SELECT at FROM wakeups").one().at,
      alarm: await state.storage.getAlarm(),
    }));
    // The oldest view is counted until 7 days after the end of its hour.
    expect(flipAt).toBe(Math.ceil(oldest / 3_600_000) * 3_600_000 + 7 * DAY);
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(flipAt);

    const early = await withEmissions(stub, (o) => (o as unknown as { audiences: { wake(now: number): string[] } }).audiences.wake(flipAt - 1));
    expect(early.changes).toEqual([]);
    const due = await withEmissions(stub, (o) => (o as unknown as { audiences: { wake(now: number): string[] } }).audiences.wake(flipAt));
    expect(due.changes).toEqual([expect.objectContaining({ entered: false })]);
  });

  it("keeps computed traits current and shows them, with memberships, through the Profile API", async () => {
    const stub = env.IDENTITY.getByName("default");
    await stub.putAudience(revenue);
    await stub.putAudience({ ...viewedShoes, id: "seg_shoes_default" });
    const now = Date.now();
    const userId = `buyer-${now}`;
    const { changes } = await withEmissions(stub, (o) =>
      o.resolveEvents([
        event({ userId, event: "Order Completed", properties: { revenue: 20.5 } }, now - 40 * DAY),
        event({ userId, event: "Order Completed", properties: { revenue: 10.25 } }, now - 2 * DAY),
        event({ userId, event: "Order Completed", properties: { revenue: 5 } }, now - DAY),
        ...[1, 2, 3].map((i) => event({ userId, event: "Product Viewed", properties: { category: "shoes" } }, now - i * 1000)),
      ]),
    );
    expect(changes.filter((c) => c.audience.id === "ctr_revenue").at(-1)).toMatchObject({ value: 15.25 });
    await stub.flush();
    expect(await (await profileApi(`users/profiles/user_id:${userId}/computed`)).json()).toMatchObject({ data: [{ key: "revenue_30d", value: 15.25 }] });
    expect(await (await profileApi(`users/profiles/user_id:${userId}/segments`)).json()).toMatchObject({ data: [{ id: "seg_shoes_default", key: "shoe_browsers" }] });
    expect(await (await profileApi(`users/profiles/user_id:${userId}/traits?class=audience`)).json()).toMatchObject({ traits: { shoe_browsers: true } });
    expect(await (await profileApi(`users/profiles/user_id:${userId}/traits?class=computed_trait&consistency=strong`)).json()).toMatchObject({ traits: { revenue_30d: 15.25 } });
    await stub.removeAudience("seg_shoes_default");
    await stub.removeAudience("ctr_revenue");
  });

  it("backfills a new segment over existing profiles to exactly what a preview computes from scratch", async () => {
    const stub = env.IDENTITY.getByName("aud-ws-3");
    const now = Date.now();
    const people = Array.from({ length: 12 }, (_, i) => `p${i}`);
    await stub.resolveEvents(people.flatMap((userId, i) => Array.from({ length: i % 5 }, (_, k) => event({ userId, event: "Product Viewed", properties: { category: i % 2 ? "shoes" : "hats" } }, now - (k + 1) * DAY))));
    const preview = (await stub.previewAudience(viewedShoes, 50)) as unknown as { ok: true; size: number; sample: { profileId: string }[] };
    expect((await stub.putAudience(viewedShoes)).ok).toBe(true);
    let after: string | null = null;
    do after = (await stub.backfillAudiences(after, 5)).next;
    while (after);
    const members = await membersOf(stub, "seg_shoes");
    expect(members.sort()).toEqual(preview.sample.map((s) => s.profileId).sort());
    expect(members).toHaveLength(preview.size);
    expect(preview.size).toBe(people.filter((_, i) => i % 2 === 1 && i % 5 >= 3).length);
  });

  it("recomputes a merged person's segments from both sides' events, and an unmerge undoes it", async () => {
    const stub = env.IDENTITY.getByName("aud-ws-4");
    await stub.putAudience(viewedShoes);
    const now = Date.now();
    const [anonymous] = await stub.resolveEvents([1, 2].map((i) => event({ anonymousId: "a4", event: "Product Viewed", properties: { category: "shoes" } }, now - i * 1000)));
    const [known] = await stub.resolveEvents([event({ userId: "u4", event: "Product Viewed", properties: { category: "shoes" } }, now - 3000)]);
    expect(await membersOf(stub, "seg_shoes")).toEqual([]);
    const [bridge] = await stub.resolveEvents([event({ type: "identify", userId: "u4", anonymousId: "a4" }, now)]);
    // Two profiles, two views and one, became one with three.
    expect(anonymous!.profileId).not.toBe(known!.profileId);
    expect(bridge!.mergeId).toBeDefined();
    expect([anonymous!.profileId, known!.profileId]).toContain(bridge!.profileId);
    expect(await membersOf(stub, "seg_shoes")).toEqual([bridge!.profileId]);
    expect((await stub.unmerge(bridge!.mergeId!)).ok).toBe(true);
    expect(await membersOf(stub, "seg_shoes")).toEqual([]);
  });
});

describe("which events touch which conditions", () => {
  it("updates a condition naming a list of events when any of them arrives", async () => {
    const stub = env.IDENTITY.getByName("aud-ws-5");
    const engaged = { id: "seg_engaged", kind: "segment", key: "engaged", name: "Engaged", version: 1, definition: { kind: "event", event: ["Email Opened", "Email Clicked"], window: { within: { days: 30 } } } };
    await stub.putAudience(engaged);
    const { changes } = await withEmissions(stub, (o) => o.resolveEvents([event({ userId: "u5", event: "Email Clicked" }, Date.now())]));
    expect(changes).toEqual([expect.objectContaining({ entered: true, audience: expect.objectContaining({ id: "seg_engaged" }) })]);
  });
});
