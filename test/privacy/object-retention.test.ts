import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import type { EventRecord } from "../../workers/profiles/event-record";
import type { ProfileRow } from "../../workers/profiles/write-through";
import { unique } from "../profiles/helpers";
import { queued } from "./object-helpers";

const DAY_MINUTES = 24 * 60;
const DAY = 86_400_000;

/** The messageIds of the event payloads the object still holds for a profile (RPC types erase the records' `unknown` fields, so the shape is restated). */
const heldEvents = async (stub: DurableObjectStub<IdentityGraphShard>, profileId: string) =>
  ((await stub.profileEvents(profileId, { order: "asc", limit: 100 })) as unknown as EventRecord[]).map((e) => e.message_id);

/** The object's alarm, run now: write-through, then the daily prune. */
const runAlarm = (stub: DurableObjectStub<IdentityGraphShard>) => runInDurableObject(stub, (instance: IdentityGraphShard) => instance.alarm());

/** A customer with events 40, 10 and 1 days old. */
async function customer(stub: DurableObjectStub<IdentityGraphShard>) {
  const userId = unique("retained");
  const events = [
    queued({ type: "identify", userId, traits: { plan: "legacy" } }, 40 * DAY_MINUTES),
    queued({ event: "Order Completed", userId }, 10 * DAY_MINUTES),
    queued({ event: "Order Completed", userId }, DAY_MINUTES),
  ];
  const [first] = await stub.resolveEvents(events);
  return { userId, profileId: first!.profileId!, ids: events.map((e) => e.messageId) };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("event payload retention in the identity object", () => {
  it("drops the payloads of events older than a cutoff on request, keeping what they wrote to the profile", async () => {
    const stub = env.IDENTITY.getByName(unique("prune-ws"));
    const { userId, profileId, ids } = await customer(stub);

    expect(await stub.pruneEvents(Date.now() - 30 * DAY)).toBe(1);
    expect(await heldEvents(stub, profileId)).toEqual(ids.slice(1));
    expect(((await stub.profileByKey(`user_id:${userId}`)) as unknown as ProfileRow).traits).toEqual({ plan: "legacy" });
    expect(await stub.pruneEvents(Date.now() - 30 * DAY)).toBe(0);
    expect(await stub.pruneEvents(Date.now() - 5 * DAY)).toBe(1);
    expect(await heldEvents(stub, profileId)).toEqual(ids.slice(2));
  });

  it("keeps the workspace's number of days on the daily prune, once a day, and everything when told to keep", async () => {
    const stub = env.IDENTITY.getByName(unique("retention-ws"));
    expect(await stub.setEventRetentionDays(7)).toEqual({ ok: true, days: 7 });
    const { profileId, ids } = await customer(stub);

    await runAlarm(stub);
    expect(await heldEvents(stub, profileId)).toEqual(ids.slice(2));

    // Later the same day an old event arrives late: the prune already ran today.
    const late = queued({ event: "Order Completed", userId: unique("late") }, 20 * DAY_MINUTES);
    const [lateAssignment] = await stub.resolveEvents([late]);
    await runAlarm(stub);
    expect(await heldEvents(stub, lateAssignment!.profileId!)).toEqual([late.messageId]);

    // The next day it goes.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + DAY + 60_000);
    await runAlarm(stub);
    expect(await heldEvents(stub, lateAssignment!.profileId!)).toEqual([]);
    expect(await heldEvents(stub, profileId)).toEqual(ids.slice(2));

    // Keeping everything from now on: another day later, a year-old event stays.
    expect(await stub.setEventRetentionDays(null)).toEqual({ ok: true, days: null });
    const ancient = queued({ event: "Order Completed", userId: unique("ancient") }, 365 * DAY_MINUTES);
    const [ancientAssignment] = await stub.resolveEvents([ancient]);
    vi.setSystemTime(Date.now() + DAY + 60_000);
    await runAlarm(stub);
    expect(await heldEvents(stub, ancientAssignment!.profileId!)).toEqual([ancient.messageId]);
  });

  it("refuses a number of days the workspace settings would refuse", async () => {
    const stub = env.IDENTITY.getByName(unique("retention-refused"));
    for (const days of [0, -3, 2.5, 4000]) expect(await stub.setEventRetentionDays(days)).toMatchObject({ ok: false, errors: [expect.objectContaining({ message: expect.any(String) })] });
  });
});
