import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { enforceRetention } from "../../workers/maintenance/retention";
import { graphShardName } from "../../workers/identity/sharding/graph-shards";
import { DEFAULT_PRIVACY_SETTINGS } from "../../workers/privacy/settings";
import { admin, json, type Json, track, unique, until } from "../helpers";
import { shardedWorkspace } from "./sharded-workspace";

/**
 * Access and deletion requests and event retention with IDENTITY_GRAPH_SHARDS
 * = 3 (this project's binding), through the admin API, the real events and
 * jobs queues, D1 and R2. People are put on chosen shards by claiming their
 * user ids in the identifier index before their first event: the router then
 * sends everything of theirs to that shard.
 */

const DAY = 86_400_000;

const shard = (workspaceId: string, n: number) => env.IDENTITY.getByName(graphShardName(workspaceId, n));

const workspace = () => shardedWorkspace("shard-privacy", "Sharded privacy");

type Workspace = Awaited<ReturnType<typeof workspace>>;

/** A person on graph shard `n`, with a trait, an order and a second anonymous id, resolved and written through to D1. */
async function personOn(ws: Workspace, n: number) {
  const id = unique();
  const p = { userId: `user-${id}`, anonymousId: `anon-${id}`, email: `pat.${id}@acme-shop.com`, colour: `colour-${id}`, prefix: `${ws.workspaceId}-${id}` };
  await ws.index.claim([`user_id:${p.userId}`], n);
  const batch = [
    { type: "identify", userId: p.userId, anonymousId: p.anonymousId, traits: { email: p.email, colour: p.colour }, messageId: `${p.prefix}-1` },
    { type: "track", userId: p.userId, event: "Order Completed", properties: { total: 42 }, messageId: `${p.prefix}-2` },
  ];
  expect((await track("/v1/batch", { batch }, ws.writeKey)).status).toBe(200);
  const profileId = await until(`${p.userId} resolved on shard ${n}`, async () => (await shard(ws.workspaceId, n).lookup(`user_id:${p.userId}`))?.profileId);
  await until(`${p.userId} written through to D1`, async () => {
    const events = await env.DB.prepare("SELECT count(*) AS n FROM profile_events WHERE workspace_id = ?1 AND profile_id = ?2").bind(ws.workspaceId, profileId).first<{ n: number }>();
    return events!.n >= batch.length ? true : undefined;
  });
  return { ...p, profileId };
}

const ended = (ws: Workspace, kind: "exports" | "deletions", id: string) =>
  until(`${kind} ${id} to end`, async () => {
    const request = await json(await admin(`/admin/v1/privacy/${kind}/${id}?workspaceId=${ws.workspaceId}`));
    return ["finished", "partial_success", "failed"].includes(request.status) ? request : undefined;
  });

async function request(ws: Workspace, kind: "exports" | "deletions", identifier: { type: string; value: string }) {
  const response = await admin(`/admin/v1/privacy/${kind}`, { method: "POST", json: { workspaceId: ws.workspaceId, identifier } });
  expect(response.status).toBe(202);
  return ended(ws, kind, (await json(response)).request.id);
}

describe("privacy requests over three graph shards", () => {
  it("answers an access request for a person on shard 2 with what that shard, D1 and the archive hold of them", async () => {
    const ws = await workspace();
    const p = await personOn(ws, 2);
    expect(p.profileId).toMatch(/^prof_s2_/);

    const done = await request(ws, "exports", { type: "email", value: p.email.toUpperCase() });
    expect(done).toMatchObject({ status: "finished", profileIds: [p.profileId] });
    const document = await json(await admin(`${done.download}?workspaceId=${ws.workspaceId}`));
    expect(document.profile.profileId).toBe(p.profileId);
    expect(document.profile.identifiers.map((i: Json) => `${i.type}:${i.value}`).sort()).toEqual([`anonymous_id:${p.anonymousId}`, `email:${p.email}`, `user_id:${p.userId}`]);
    expect(JSON.stringify(document.profile.current)).toContain(p.colour);
    expect(document.events.identityObject.map((e: Json) => e.message_id ?? e.messageId).sort()).toEqual([`${p.prefix}-1`, `${p.prefix}-2`]);
    expect(document.events.d1).toHaveLength(2);
    expect(JSON.stringify(document.d1.profiles)).toContain(p.colour);

    // By profile id, through its placement in the index.
    const byId = await request(ws, "exports", { type: "profile_id", value: p.profileId });
    expect(byId).toMatchObject({ status: "finished", profileIds: [p.profileId] });
  });

  it("answers an access request naming no one on any shard with a 404", async () => {
    const ws = await workspace();
    await personOn(ws, 1);
    for (const identifier of [
      { type: "user_id", value: `ghost-${unique()}` },
      { type: "profile_id", value: "prof_s1_zzzzzz" },
    ]) {
      const response = await admin("/admin/v1/privacy/exports", { method: "POST", json: { workspaceId: ws.workspaceId, identifier } });
      expect(response.status).toBe(404);
    }
  });

  it("erases a person from shard 1, releases their keys in the index, and a later event with their identifiers does not bring them back", async () => {
    const ws = await workspace();
    const p = await personOn(ws, 1);
    const neighbour = await personOn(ws, 1);
    const keys = [`user_id:${p.userId}`, `email:${p.email}`, `anonymous_id:${p.anonymousId}`, `profile_id:${p.profileId}`];
    expect([...(await ws.index.locate(keys)).values()].map((placement) => placement.shard)).toEqual([1, 1, 1, 1]);

    const done = await request(ws, "deletions", { type: "email", value: p.email });
    expect(done).toMatchObject({ status: "finished", profileIds: [p.profileId], stores: { identity: { status: "done", counts: { profiles: 1, events: 2 } } } });
    expect(await shard(ws.workspaceId, 1).lookup(`user_id:${p.userId}`)).toBeNull();
    expect(await shard(ws.workspaceId, 1).profile(p.profileId)).toBeNull();
    expect(await ws.index.locate(keys)).toEqual(new Map());
    // Their neighbour on the same shard keeps everything, placements included.
    expect((await shard(ws.workspaceId, 1).lookup(`user_id:${neighbour.userId}`))?.profileId).toBe(neighbour.profileId);
    expect((await ws.index.locate([`user_id:${neighbour.userId}`])).get(`user_id:${neighbour.userId}`)).toMatchObject({ shard: 1 });
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM profiles WHERE workspace_id = ?1 AND profile_id = ?2").bind(ws.workspaceId, p.profileId).first<{ n: number }>();
    expect(rows!.n).toBe(0);

    // Their identifiers again, beside a newcomer's event that shows when the consumer has been through the batch.
    const newcomer = `new-${unique()}`;
    const batch = [
      { type: "identify", userId: p.userId, traits: { email: p.email, colour: "again" }, messageId: `${p.prefix}-again` },
      { type: "identify", userId: newcomer, traits: { colour: "fresh" }, messageId: `${p.prefix}-newcomer` },
    ];
    expect((await track("/v1/batch", { batch }, ws.writeKey)).status).toBe(200);
    await until("the newcomer resolved", async () => ((await ws.index.locate([`user_id:${newcomer}`])).size ? true : undefined));
    expect(await ws.index.locate(keys)).toEqual(new Map());
    for (const n of [0, 1, 2]) expect(await shard(ws.workspaceId, n).lookup(`user_id:${p.userId}`)).toBeNull();
    const found = await json(await admin(`/admin/v1/profiles?workspaceId=${ws.workspaceId}&identifier=${encodeURIComponent(`user_id:${p.userId}`)}`));
    expect(found.data).toEqual([]);
  });

  it("finishes a hand-over still moving the person before it looks for them, so a deletion finds and erases them and leaves no package behind", async () => {
    const ws = await workspace();
    const p = await personOn(ws, 1);
    // A consumer took the person out of shard 1 for shard 2 and stopped: they are only in the move's stored package.
    const { moves } = await shard(ws.workspaceId, 1).handOver([`user_id:${p.userId}`], 2);
    const move = moves.find((m) => m.keys.includes(`user_id:${p.userId}`))!;
    expect(await shard(ws.workspaceId, 1).handOverStatus(move.moveId)).toMatchObject({ completed: false });
    expect(await shard(ws.workspaceId, 1).lookup(`user_id:${p.userId}`)).toBeNull();

    const done = await request(ws, "deletions", { type: "email", value: p.email });
    expect(done).toMatchObject({ status: "finished", profileIds: [p.profileId], stores: { identity: { status: "done", counts: { profiles: 1, events: 2 } } } });
    // The move was finished (its package dropped) and the person erased where it brought them.
    expect(await shard(ws.workspaceId, 1).handOverStatus(move.moveId)).toMatchObject({ completed: true });
    for (const n of [1, 2]) expect(await shard(ws.workspaceId, n).lookup(`user_id:${p.userId}`)).toBeNull();
    expect(await ws.index.locate([`user_id:${p.userId}`, `email:${p.email}`, `profile_id:${p.profileId}`])).toEqual(new Map());
  });
});

describe("event retention over three graph shards", () => {
  it("tells every shard the workspace's objectEvents period, and the cron prunes old payloads on each of them", async () => {
    const ws = await workspace();
    const old = new Date(Date.now() - 40 * DAY).toISOString();
    const people = [0, 1, 2].map((n) => ({ n, userId: `kept-${n}-${unique()}` }));
    for (const { n, userId } of people) await ws.index.claim([`user_id:${userId}`], n);
    const batch = people.flatMap(({ userId }) => [
      { type: "track", userId, event: "Seen", timestamp: old, messageId: `${userId}-old` },
      { type: "track", userId, event: "Seen", messageId: `${userId}-new` },
    ]);
    expect((await track("/v1/batch", { batch }, ws.writeKey)).status).toBe(200);
    const profiles = await Promise.all(people.map(({ n, userId }) => until(`${userId} on shard ${n}`, async () => (await shard(ws.workspaceId, n).lookup(`user_id:${userId}`))?.profileId)));
    const held = async (n: number, profileId: string) => ((await shard(ws.workspaceId, n).profileEvents(profileId, { order: "asc", limit: 10 })) as unknown as { message_id: string }[]).map((e) => e.message_id);
    for (const [i, { n }] of people.entries()) await until("both events applied", async () => ((await held(n, profiles[i]!)).length === 2 ? true : undefined));

    const settings = { ...DEFAULT_PRIVACY_SETTINGS, retention: { ...DEFAULT_PRIVACY_SETTINGS.retention, objectEvents: 30 } };
    expect((await admin(`/admin/v1/privacy/settings?workspaceId=${ws.workspaceId}`, { method: "PUT", json: settings })).status).toBe(200);
    const periods = await Promise.all(
      [0, 1, 2].map((n) => runInDurableObject(shard(ws.workspaceId, n), (_object, state) => state.storage.sql.exec<{ value: number }>("SELECT value FROM meta WHERE key = 'event_retention_days'").toArray()[0]?.value)),
    );
    expect(periods).toEqual([30, 30, 30]);

    const run = await enforceRetention(env, new Date());
    expect(run.workspaces[ws.workspaceId]).toMatchObject({ deleted: { objectEvents: 3 }, failed: [] });
    for (const [i, { n, userId }] of people.entries()) expect(await held(n, profiles[i]!)).toEqual([`${userId}-new`]);
  });
});
