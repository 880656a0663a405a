import { describe, expect, it } from "vitest";
import { type Json, json, unique, until } from "../helpers";
import { accountOnTwoShards, profileReader, shardedWorkspace } from "./sharded-workspace";

/**
 * The Profile API and synchronous tracking with IDENTITY_GRAPH_SHARDS = 3
 * (this project's binding), through the real HTTP API and queue consumer.
 * People are placed on chosen shards by claiming their identifiers in the
 * index before their first event, as the router would have placed them.
 */

const at = (minute: number) => new Date(Date.UTC(2026, 10, 2, 9, minute)).toISOString();
type Page<T = Json> = { data: T[]; cursor: { has_more: boolean; next: string } };

async function workspace() {
  const ws = await shardedWorkspace("shard", "Sharded profiles");
  return {
    ...ws,
    /** A Profile API read with the workspace's access token. */
    read: await profileReader(ws.workspaceId),
    /** Whether graph shard `n` itself holds the live profile of `key`. */
    holds: async (n: number, key: string) => (await ws.shard(n).profileByKey(key)) !== null,
  };
}

/** Polls a Profile API read until it answers 200 and `ready` accepts the body. */
async function readWhen<T = Json>(read: () => Promise<Response>, ready: (body: T) => boolean): Promise<T> {
  return until("the profile read", async () => {
    const response = await read();
    if (response.status !== 200) return undefined;
    const body = await json<T>(response);
    return ready(body) ? body : undefined;
  });
}

describe("Profile API reads over three graph shards", () => {
  it("reads a person held by shard 2 by identifier and by profile id, with their traits and events, from the shard itself and from D1", async () => {
    const ws = await workspace();
    const userId = `pat-${unique()}`;
    const email = `${userId}@acme-shop.com`;
    await ws.place([`user_id:${userId}`], 2);
    const batch = [
      { type: "identify", userId, anonymousId: `anon-${userId}`, messageId: `${userId}-id`, timestamp: at(0), traits: { email, plan: "pro" } },
      { type: "track", userId, messageId: `${userId}-t`, timestamp: at(1), event: "Order Completed", properties: { total: 42 } },
      { type: "page", userId, messageId: `${userId}-p`, timestamp: at(2), name: "Pricing" },
    ];
    expect((await ws.send("/v1/batch", { batch })).status).toBe(200);
    const newestFirst = [`${userId}-p`, `${userId}-t`, `${userId}-id`];

    for (const consistency of ["strong", "eventual"]) {
      // Strong reads wait for the consumer, eventual ones for the write-through to D1 after it.
      await readWhen<Page>(() => ws.read(`users/profiles/user_id:${userId}/events?consistency=${consistency}`), (page) => page.data.length === 3);
      const { metadata } = await json<{ metadata: { profile_id: string } }>(await ws.read(`users/profiles/user_id:${userId}/metadata?consistency=${consistency}`));
      expect(metadata.profile_id, consistency).toMatch(/^prof_s2_/);
      for (const id of [`email:${email.toUpperCase()}`, `anonymous_id:anon-${userId}`, `profile_id:${metadata.profile_id}`]) {
        const traits = await ws.read(`users/profiles/${encodeURIComponent(id)}/traits?consistency=${consistency}`);
        expect(traits.status, `${consistency} ${id}`).toBe(200);
        expect((await json(traits)).traits, `${consistency} ${id}`).toEqual({ email, plan: "pro" });
      }
      const events = await json<Page<{ message_id: string }>>(await ws.read(`users/profiles/profile_id:${metadata.profile_id}/events?consistency=${consistency}`));
      expect(events.data.map((e) => e.message_id), consistency).toEqual(newestFirst);
      const ids = await json<Page<{ type: string; id: string }>>(await ws.read(`users/profiles/profile_id:${metadata.profile_id}/external_ids?consistency=${consistency}`));
      expect(ids.data.map((i) => `${i.type}:${i.id}`).sort(), consistency).toEqual([`anonymous_id:anon-${userId}`, `email:${email}`, `user_id:${userId}`]);
    }
    // Shard 0, where a read that ignored the index would look, does not hold them.
    expect(await ws.holds(2, `user_id:${userId}`)).toBe(true);
    expect(await ws.holds(0, `user_id:${userId}`)).toBe(false);
  });

  it("answers an identifier or profile id nobody holds with the same 404 problem document as one graph", async () => {
    const ws = await workspace();
    const userId = `lee-${unique()}`;
    await ws.place([`user_id:${userId}`], 1);
    expect((await ws.send("/v1/identify", { userId, traits: { plan: "free" } })).status).toBe(200);
    await readWhen(() => ws.read(`users/profiles/user_id:${userId}/traits?consistency=strong`), () => true);

    for (const [path, detail] of [
      ["users/profiles/user_id:nobody-at-all/traits", `no user profile with user_id 'nobody-at-all' in space '${ws.workspaceId}'`],
      ["users/profiles/profile_id:prof_s1_zzzzzz/events", `no user profile with profile_id 'prof_s1_zzzzzz' in space '${ws.workspaceId}'`],
      ["accounts/profiles/group_id:no-such-org/traits", `no account with group_id 'no-such-org' in space '${ws.workspaceId}'`],
    ]) {
      for (const consistency of ["strong", "eventual"]) {
        const response = await ws.read(`${path}?consistency=${consistency}`);
        expect(response.status, `${consistency} ${path}`).toBe(404);
        expect(response.headers.get("content-type")).toContain("application/problem+json");
        expect(await json(response), `${consistency} ${path}`).toMatchObject({ status: 404, code: "NOT_FOUND", title: "Not found", detail });
      }
    }
  });

  it("shows an account whose members are on two shards with both members and the latest write of each trait from either shard", async () => {
    const ws = await workspace();
    const { ana, ben, groupId, group } = await accountOnTwoShards(ws, at);
    const batch = [
      group(ana, 1, { name: "Acme", plan: "free", seats: 10 }),
      group(ben, 2, { plan: "pro" }),
      group(ana, 3, { seats: 25 }),
      // Arrives last but was written first: it wins nothing, though it is ben's first link.
      group(ben, 0, { name: "Acme (old)", plan: "trial" }),
    ];
    expect((await ws.send("/v1/batch", { batch })).status).toBe(200);

    const strong = "consistency=strong";
    const members = await readWhen<Page<{ external_ids: { id: string; type: string }[] }>>(
      () => ws.read(`accounts/profiles/group_id:${groupId}/links?${strong}`),
      (page) => page.data.length === 2,
    );
    // Oldest link first: ben's first group call is timestamped before ana's.
    expect(members.data.map((l) => `${l.external_ids[0]!.type}:${l.external_ids[0]!.id}`)).toEqual([`user_id:${ben}`, `user_id:${ana}`]);
    const traits = await readWhen<{ traits: Json }>(() => ws.read(`accounts/profiles/group_id:${groupId}/traits?${strong}&verbose=true`), (body) => body.traits.seats?.value === 25);
    expect(traits.traits).toEqual({
      name: { value: "Acme", updated_at: at(1), source_id: expect.any(String), message_id: `${ana}-g1` },
      plan: { value: "pro", updated_at: at(2), source_id: expect.any(String), message_id: `${ben}-g2` },
      seats: { value: 25, updated_at: at(3), source_id: expect.any(String), message_id: `${ana}-g3` },
    });
    const { metadata } = await json<{ metadata: Json }>(await ws.read(`accounts/profiles/group_id:${groupId}/metadata?${strong}`));
    expect(metadata).toMatchObject({ created_at: at(0), updated_at: at(3), last_message_id: `${ana}-g3` });
    // Each shard really keeps its own copy: neither alone has the account's traits.
    // RPC types erase `unknown`-valued records (traits) to never: read the copies as JSON.
    const copies = await Promise.all([1, 2].map(async (n) => ((await ws.shard(n).account(groupId)) as { traits: Json } | null)?.traits));
    expect(copies).toEqual([
      { name: "Acme", plan: "free", seats: 25 },
      { name: "Acme (old)", plan: "pro" },
    ]);
    // Each member's own links, read on their shard, name the account.
    for (const userId of [ana, ben]) {
      const links = await json<Page<{ external_ids: { id: string }[] }>>(await ws.read(`users/profiles/user_id:${userId}/links?${strong}`));
      expect(links.data.map((l) => l.external_ids[0]!.id), userId).toEqual([groupId]);
    }
  });
});

describe("synchronous tracking over three graph shards", () => {
  it("answers the resolved profile of a person on shard 1, and a Profile API read with the bookmark sees the write", async () => {
    const ws = await workspace();
    const userId = `sam-${unique()}`;
    const email = `${userId}@acme-shop.com`;
    await ws.place([`user_id:${userId}`], 1);

    const identified = await ws.send("/v1/identify?sync=true", { userId, messageId: `${userId}-id`, timestamp: at(0), traits: { email, plan: "trial" } });
    expect(identified.status).toBe(200);
    const body = await json<{ success: boolean; profile: { id: string; traits: Json; segments: string[] } }>(identified);
    expect(body).toEqual({ success: true, profile: { id: expect.stringMatching(/^prof_s1_/), traits: { email, plan: "trial" }, segments: [] } });
    const bookmark = identified.headers.get("x-d1-bookmark");
    expect(bookmark).toBeTruthy();
    // No waiting: the bookmark is the write-through's own.
    const traits = await ws.read(`users/profiles/user_id:${userId}/traits`, { "x-d1-bookmark": bookmark! });
    expect(traits.status).toBe(200);
    expect((await json(traits)).traits).toEqual({ email, plan: "trial" });

    const tracked = await ws.send("/v1/track?sync=true", { userId, messageId: `${userId}-t`, timestamp: at(1), event: "Trial Started" });
    expect((await json<{ profile: { id: string } }>(tracked)).profile.id).toBe(body.profile.id);
    const events = await json<Page<{ message_id: string }>>(await ws.read(`users/profiles/profile_id:${body.profile.id}/events`, { "x-d1-bookmark": tracked.headers.get("x-d1-bookmark")! }));
    expect(events.data.map((e) => e.message_id)).toEqual([`${userId}-t`, `${userId}-id`]);
    expect(await ws.holds(1, `user_id:${userId}`)).toBe(true);
    expect(await ws.holds(0, `user_id:${userId}`)).toBe(false);
  });

  it("answers the joined profile when a synchronous identify brings an anonymous visitor on one shard to a user on another", async () => {
    const ws = await workspace();
    const userId = `kim-${unique()}`;
    const anonymousId = `anon-${userId}`;
    await ws.place([`user_id:${userId}`], 1);
    await ws.place([`anonymous_id:${anonymousId}`], 2);
    const visitor = await json<{ profile: { id: string } }>(await ws.send("/v1/page?sync=true", { anonymousId, name: "Pricing", timestamp: at(0), context: { traits: { plan_interest: "pro" } } }));
    expect(visitor.profile.id).toMatch(/^prof_s2_/);
    const user = await json<{ profile: { id: string } }>(await ws.send("/v1/identify?sync=true", { userId, timestamp: at(1), traits: { plan: "free" } }));
    expect(user.profile.id).toMatch(/^prof_s1_/);

    const joined = await ws.send("/v1/identify?sync=true", { userId, anonymousId, timestamp: at(2), traits: { email: `${userId}@acme-shop.com` } });
    const { profile } = await json<{ profile: { id: string; traits: Json } }>(joined);
    expect([visitor.profile.id, user.profile.id]).toContain(profile.id);
    expect(profile.traits).toEqual({ plan_interest: "pro", plan: "free", email: `${userId}@acme-shop.com` });
    // The visitor was handed over to the user's shard, and D1 shows one person by either identifier.
    expect(await ws.holds(1, `anonymous_id:${anonymousId}`)).toBe(true);
    for (const id of [`anonymous_id:${anonymousId}`, `user_id:${userId}`]) {
      const response = await ws.read(`users/profiles/${id}/metadata`, { "x-d1-bookmark": joined.headers.get("x-d1-bookmark")! });
      expect(response.status, id).toBe(200);
      expect((await json<{ metadata: { profile_id: string } }>(response)).metadata.profile_id, id).toBe(profile.id);
    }
  });
});
