import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import type { QueuedEvent } from "../../workers/intake/envelope";
import { ProfileStore } from "../../durable-objects/profile-store";
import { admin, track } from "../helpers";
import { profileApi, unique } from "./helpers";

const at = (minute: number) => new Date(Date.UTC(2026, 10, 1, 12, minute)).toISOString();
const event = (fields: Record<string, unknown>): QueuedEvent =>
  ({ type: "identify", receivedAt: at(0), timestamp: at(5), context: {}, integrations: {}, ...fields }) as QueuedEvent;

/** Tracks one message synchronously: resolved and written through to D1 before the response. */
async function sync(path: string, body: Record<string, unknown>) {
  const response = await track(`${path}?sync=true`, body);
  expect(response.status).toBe(200);
  return (await response.json()) as { success: true; profile: { id: string; traits: Record<string, unknown> } | null };
}

const row = (profileId: string) =>
  env.DB.prepare("SELECT * FROM profiles WHERE workspace_id = 'default' AND profile_id = ?").bind(profileId).first<{ canonical_id: string | null; traits: string; trait_meta: string; version: number; email: string | null; user_id: string | null }>();

const traitsOf = async (externalId: string) => {
  const response = await profileApi(`users/profiles/${externalId}/traits?limit=200`);
  return response.status === 200 ? ((await response.json()) as { traits: Record<string, unknown> }).traits : response.status;
};

describe("trait conflicts", () => {
  it("keeps the trait from the later timestamp when events arrive out of order, with its time and source", async () => {
    const userId = unique("lww");
    await sync("/v1/identify", { userId, messageId: `${userId}-late`, timestamp: at(30), traits: { plan: "pro", seats: 5 } });
    const { profile } = await sync("/v1/identify", { userId, messageId: `${userId}-early`, timestamp: at(10), traits: { plan: "free", industry: "retail" } });
    const stored = (await row(profile!.id))!;
    expect(JSON.parse(stored.traits)).toEqual({ plan: "pro", seats: 5, industry: "retail" });
    expect(JSON.parse(stored.trait_meta).plan).toEqual({ updatedAt: at(30), messageId: `${userId}-late`, sourceId: "src_default" });
    expect(JSON.parse(stored.trait_meta).industry).toMatchObject({ updatedAt: at(10), messageId: `${userId}-early` });
    expect(await traitsOf(`user_id:${userId}`)).toEqual({ plan: "pro", seats: 5, industry: "retail" });
  });
});

describe("merges and unmerges in D1", () => {
  it("resolves an absorbed profile to its survivor, and an unmerge puts traits and events back as if it never happened", async () => {
    const anon = unique("anon");
    const userId = unique("user");
    const before = await sync("/v1/identify", { anonymousId: anon, timestamp: at(1), traits: { favourite: "tea" } });
    await sync("/v1/track", { anonymousId: anon, timestamp: at(2), event: "Product Viewed", properties: { sku: "t-1" } });
    const known = await sync("/v1/identify", { userId, timestamp: at(3), traits: { email: `${userId}@example.com`, plan: "pro" } });
    const [anonBefore, userBefore] = [await traitsOf(`anonymous_id:${anon}`), await traitsOf(`user_id:${userId}`)];
    expect(anonBefore).toEqual({ favourite: "tea" });

    const bridge = await sync("/v1/identify", { userId, anonymousId: anon, timestamp: at(4), traits: { plan: "team" } });
    const survivor = before.profile!.id;
    expect(bridge.profile!.id).toBe(survivor);
    expect((await row(known.profile!.id))!.canonical_id).toBe(survivor);
    expect(await traitsOf(`anonymous_id:${anon}`)).toEqual({ favourite: "tea", email: `${userId}@example.com`, plan: "team" });
    expect(await traitsOf(`profile_id:${known.profile!.id}`)).toEqual(await traitsOf(`user_id:${userId}`));
    const events = (await (await profileApi(`users/profiles/user_id:${userId}/events?limit=100`)).json()) as { data: { message_id: string }[] };
    expect(events.data).toHaveLength(4);

    const graph = (await (await admin(`/admin/v1/profiles/${survivor}/graph?workspaceId=default`)).json()) as { merges: { id: string; retracted: unknown }[] };
    const merge = graph.merges.find((m) => !m.retracted)!;
    expect((await admin(`/admin/v1/identity/merges/${merge.id}/unmerge?workspaceId=default`, { method: "POST" })).status).toBe(200);
    await env.IDENTITY.getByName("default").flush();

    expect(await traitsOf(`anonymous_id:${anon}`)).toEqual(anonBefore);
    // The retracted event stays with the part holding its strongest identifier, the user id.
    expect(await traitsOf(`user_id:${userId}`)).toEqual({ ...(userBefore as object), plan: "team" });
    const anonEvents = (await (await profileApi(`users/profiles/anonymous_id:${anon}/events`)).json()) as { data: { type: string }[] };
    expect(anonEvents.data.map((e) => e.type)).toEqual(["track", "identify"]);
  });
});

describe("write-through", () => {

  it("keeps changes in the object's outbox until the alarm writes them, and a strong read sees them first", async () => {
    const userId = unique("outbox");
    const stub = env.IDENTITY.getByName("default");
    await runInDurableObject(stub, async (instance: IdentityGraphShard, state) => {
      instance.resolveEvents([event({ messageId: `${userId}-1`, userId, traits: { plan: "pro" } })], { sources: { [`${userId}-1`]: "src_default" } });
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    expect(await stub.writeBacklog()).toBeGreaterThan(0);
    expect(await traitsOf(`user_id:${userId}`)).toBe(404);
    const strong = await profileApi(`users/profiles/user_id:${userId}/traits?consistency=strong`);
    expect(await strong.json()).toMatchObject({ traits: { plan: "pro" } });

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.writeBacklog()).toBe(0);
    expect(await traitsOf(`user_id:${userId}`)).toEqual({ plan: "pro" });
  });

  it("changes nothing in D1 when the same events are resolved again", async () => {
    const userId = unique("again");
    const stub = env.IDENTITY.getByName("default");
    const batch = [event({ messageId: `${userId}-1`, userId, traits: { plan: "pro" } }), event({ messageId: `${userId}-2`, type: "track", event: "Paid", userId })];
    const [first] = await stub.resolveEvents(batch);
    await stub.flush();
    const stored = (await row(first!.profileId!))!;
    await stub.resolveEvents(batch);
    expect(await stub.writeBacklog()).toBe(0);
    await stub.flush();
    expect(await row(first!.profileId!)).toEqual(stored);
    const count = await env.DB.prepare("SELECT count(*) AS n FROM profile_events WHERE workspace_id = 'default' AND profile_id = ?").bind(first!.profileId).first<{ n: number }>();
    expect(count!.n).toBe(2);
  });
});

describe("event retention", () => {
  it("drops Profile API events older than the retention period on the cron and keeps the rest and the traits", async () => {
    const { enforceRetention } = await import("../../workers/maintenance/retention");
    const userId = unique("old");
    const now = Date.now();
    const day = 86_400_000;
    await sync("/v1/identify", { userId, messageId: `${userId}-ancient`, timestamp: new Date(now - 60 * day).toISOString(), traits: { plan: "legacy" } });
    await sync("/v1/track", { userId, messageId: `${userId}-recent`, timestamp: new Date(now - day).toISOString(), event: "Seen" });
    const ninetyOneDaysOn = new Date(now + 31 * day);
    expect((await enforceRetention(env, ninetyOneDaysOn)).workspaces.default!.deleted.events).toBeGreaterThanOrEqual(1);
    const events = (await (await profileApi(`users/profiles/user_id:${userId}/events`)).json()) as { data: { message_id: string }[] };
    expect(events.data.map((e) => e.message_id)).toEqual([`${userId}-recent`]);
    expect(await traitsOf(`user_id:${userId}`)).toEqual({ plan: "legacy" });
  });
});

describe("the write-through outbox", () => {
  it("keeps an entry that changed again while its write was in flight, and clears the rest", async () => {
    const stub = env.IDENTITY.getByName(unique("outbox-ws"));
    await runInDurableObject(stub, async (_instance: IdentityGraphShard, state) => {
      const store = new ProfileStore(state.storage.sql);
      store.markDirty("profile", "prof_a");
      store.markDirty("profile", "prof_b");
      store.markDirty("event", "msg_1");
      await Promise.resolve(); // a new turn: marks of one turn are one write
      const inFlight = store.outbox.pending(10);
      expect(inFlight.map((e) => e.id).sort()).toEqual(["msg_1", "prof_a", "prof_b"]);
      store.markDirty("profile", "prof_a");
      store.outbox.written(inFlight);
      expect(store.outbox.pending(10).map((e) => `${e.kind}:${e.id}`)).toEqual(["profile:prof_a"]);
      expect(store.outbox.backlog()).toBe(1);
    });
  });

  it("marks each event by its own write seq, not an outbox entry, and writes every one to D1 once", async () => {
    const userId = unique("seq");
    const stub = env.IDENTITY.getByName(unique("events-ws"));
    const batch = Array.from({ length: 40 }, (_, n) => event({ messageId: `${userId}-${n}`, type: "track", event: "Viewed", userId, timestamp: at(n) }));
    await runInDurableObject(stub, async (instance: IdentityGraphShard, state) => {
      instance.resolveEvents(batch);
      const outbox = state.storage.sql.exec<{ kind: string }>("SELECT kind FROM outbox").toArray().map((r) => r.kind);
      expect(outbox.filter((kind) => kind === "event")).toEqual([]);
      expect(await instance.writeBacklog()).toBe(outbox.length + 40);
    });
    await stub.flush();
    expect(await stub.writeBacklog()).toBe(0);
    const written = await env.DB.prepare("SELECT count(*) AS n FROM profile_events WHERE message_id LIKE ?").bind(`${userId}-%`).first<{ n: number }>();
    expect(written!.n).toBe(40);
  });

  it("still writes the events an object stored before marked with outbox entries", async () => {
    const userId = unique("legacy");
    const stub = env.IDENTITY.getByName(unique("legacy-ws"));
    const [first] = await stub.resolveEvents([event({ messageId: `${userId}-1`, userId })]);
    await stub.flush();
    await env.DB.prepare("DELETE FROM profile_events WHERE message_id = ?").bind(`${userId}-1`).run();
    await runInDurableObject(stub, async (instance: IdentityGraphShard, state) => {
      // As the store left it before: no write seq on the row, an `event` entry in the outbox.
      state.storage.sql.exec("UPDATE profile_events SET wseq = NULL WHERE message_id = ?", `${userId}-1`);
      new ProfileStore(state.storage.sql).markDirty("event", `${userId}-1`);
      expect(await instance.writeBacklog()).toBe(1);
    });
    await stub.flush();
    const row = await env.DB.prepare("SELECT profile_id FROM profile_events WHERE message_id = ?").bind(`${userId}-1`).first<{ profile_id: string }>();
    expect(row).toEqual({ profile_id: first!.profileId });
  });

  it("hands pending events over as JSON chunks built by SQLite, passing over those past retention or in no profile", async () => {
    const userId = unique("chunks");
    const stub = env.IDENTITY.getByName(unique("chunks-ws"));
    const recent = Array.from({ length: 30 }, (_, n) => event({ messageId: `${userId}-${n}`, type: "track", event: "Viewed", userId, timestamp: at(n), properties: { note: "x".repeat(300) } }));
    const old = event({ messageId: `${userId}-old`, type: "track", event: "Viewed", userId, timestamp: "2024-01-01T00:00:00.000Z" });
    const refused = event({ messageId: `${userId}-refused`, type: "track", event: "Viewed", userId: "null" });
    await runInDurableObject(stub, async (instance: IdentityGraphShard, state) => {
      instance.resolveEvents([...recent, old, refused]);
      const store = new ProfileStore(state.storage.sql);
      const { chunks, upTo } = store.outbox.pendingEvents(1_000, Date.parse("2026-01-01T00:00:00.000Z"), 4_000);
      expect(chunks.length).toBeGreaterThan(2);
      const rows = chunks.flatMap((chunk) => JSON.parse(chunk) as { messageId: string; profileId: string; timestamp: number; payload: string }[]);
      expect(rows.map((r) => r.messageId).sort()).toEqual(recent.map((e) => e.messageId).sort());
      expect(JSON.parse(rows[0]!.payload)).toMatchObject({ message_id: rows[0]!.messageId, properties: { note: "x".repeat(300) } });
      expect(rows[0]).toMatchObject({ profileId: expect.stringMatching(/^prof_/), timestamp: expect.any(Number) });
      // Each chunk stays near its budget: rows are added while the running size is under it.
      for (const chunk of chunks) expect(chunk.length).toBeLessThan(4_000 + 2_000);
      store.outbox.eventsWritten(upTo);
      expect(store.outbox.pendingEvents(1_000, 0, 4_000)).toEqual({ chunks: [], upTo: null });
    });
  });
});
