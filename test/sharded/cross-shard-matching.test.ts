import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { graphShardName } from "../../workers/identity/sharding/graph-shards";
import { routeBatch } from "../../workers/identity/sharding/route-batch";
import { admin, json, unique, until } from "../helpers";
import { matchBlockEntries } from "../identity/match-block-entries";
import { queuedEvents } from "../identity/queued-events";
import { shardedWorkspace } from "./sharded-workspace";

/**
 * Probabilistic matching between people on different graph shards
 * (IDENTITY_GRAPH_SHARDS = 3, this project's binding), through the real
 * consumer, router and admin API. Each person is placed on a chosen shard by
 * claiming their identifiers in the index before their first event.
 */

interface Review {
  id: string;
  kind: string;
  status: string;
  profiles: string[];
  score: number | null;
}
interface Profile {
  profileId: string;
  identifiers: { type: string; value: string }[];
}

const home = { street: "12 Rue des Lilas", city: "Lyon", postalCode: "69003", country: "FR" };

async function workspace() {
  const { workspaceId, index, send, place } = await shardedWorkspace("shard-match", "Sharded matching");
  const q = `workspaceId=${workspaceId}`;
  const ws = {
    workspaceId,
    index,
    /** One identify from a device, placed on `shard` before it is sent. */
    identify: async (shard: number, anonymousId: string, traits: Record<string, unknown>, userId?: string) => {
      await place([`anonymous_id:${anonymousId}`, ...(userId ? [`user_id:${userId}`] : [])], shard);
      const event = { type: "identify", anonymousId, ...(userId ? { userId } : {}), traits, context: { ip: shard === 1 ? "203.0.113.5" : "198.51.100.7" } };
      expect((await send("/v1/batch", { batch: [event] })).status).toBe(200);
    },
    find: async (identifier: string) => (await json<{ data: Profile[] }>(await admin(`/admin/v1/profiles?${q}&identifier=${encodeURIComponent(identifier)}`))).data[0],
    profileOf: (identifier: string) => until(`a profile holding ${identifier}`, () => ws.find(identifier)),
    probabilisticReviews: async () => (await json<{ data: Review[] }>(await admin(`/admin/v1/identity/reviews?${q}&limit=200`))).data.filter((r) => r.kind === "probabilistic"),
    putSettings: async (change: Record<string, unknown>) => {
      const current = await json(await admin(`/admin/v1/identity/settings?${q}`));
      expect((await admin(`/admin/v1/identity/settings?${q}`, { method: "PUT", json: { ...current, ...change } })).status).toBe(200);
    },
    shardOf: async (profileId: string) => ws.index.shardOf(`profile_id:${profileId}`),
    q,
  };
  return ws;
}

type Workspace = Awaited<ReturnType<typeof workspace>>;

/** Jane Doe on her laptop (shard 1) and on her phone (shard 2): a different email on each, the same name and street. */
async function janeOnTwoShards(ws: Workspace, userIds: [string, string] | [] = []) {
  const id = unique();
  const laptop = `laptop-${id}`;
  const phone = `phone-${id}`;
  await ws.identify(1, laptop, { firstName: "Jane", lastName: "Doe", email: `jane.doe.${id}@gmail.com`, address: home }, userIds[0]);
  const a = await ws.profileOf(`anonymous_id:${laptop}`);
  await ws.identify(2, phone, { firstName: "Jane", lastName: "Doe", email: `janedoe.${id}@yahoo.fr`, address: home }, userIds[1]);
  const b = await ws.profileOf(`anonymous_id:${phone}`);
  return { id, laptop, phone, a, b };
}

/** Jane's laptop and a phone on shard 1, merged through the router when the phone sends her email, then unmerged by a person. */
async function janeAndPhoneUnmerged(ws: Workspace, tag: string) {
  const id = unique();
  const event = queuedEvents(`${tag}-${id}`);
  await ws.index.claim([`anonymous_id:laptop-${id}`, `anonymous_id:phone-${id}`], 1);
  const route = async (fields: Parameters<typeof event>[0]) => (await routeBatch(env, ws.workspaceId, 3, [event(fields)], {}))[0]!;
  const jane = await route({ anonymousId: `laptop-${id}`, traits: { firstName: "Jane", lastName: "Doe", email: `jane.doe.${id}@gmail.com` } });
  await route({ anonymousId: `phone-${id}`, traits: { phone: "+33612345678" } });
  const merged = await route({ anonymousId: `phone-${id}`, traits: { email: `jane.doe.${id}@gmail.com` } });
  expect((await admin(`/admin/v1/identity/merges/${merged.mergeId}/unmerge?${ws.q}`, { method: "POST" })).status).toBe(200);
  const phone = await ws.profileOf(`anonymous_id:phone-${id}`);
  expect(phone.profileId).not.toBe(jane.profileId);
  return { id, route, jane, phone };
}

describe("probabilistic matching across graph shards", () => {
  it("queues one review for two profiles on different shards that are likely one person, merges nothing, and approving it merges them", async () => {
    const ws = await workspace();
    const jane = await janeOnTwoShards(ws);
    expect([await ws.shardOf(jane.a.profileId), await ws.shardOf(jane.b.profileId)]).toEqual([1, 2]);
    const [review] = await until("a probabilistic review", async () => {
      const reviews = await ws.probabilisticReviews();
      return reviews.length > 0 ? reviews : undefined;
    });
    expect(review!.profiles.sort()).toEqual([jane.a.profileId, jane.b.profileId].sort());
    expect(review!.score).toBeGreaterThanOrEqual(0.9);
    expect((await ws.find(`anonymous_id:${jane.laptop}`))!.profileId).not.toBe((await ws.find(`anonymous_id:${jane.phone}`))!.profileId);

    // Jane's phone gains a new email: the pair is matched again from the other side, and is already suggested.
    await ws.identify(2, jane.phone, { firstName: "Jane", lastName: "Doe", email: `jd.${jane.id}@proton.me` });
    await until("the new email resolved", async () => ((await ws.find(`email:jd.${jane.id}@proton.me`)) ? true : undefined));
    expect((await ws.probabilisticReviews()).map((r) => r.id)).toEqual([review!.id]);

    const approved = await admin(`/admin/v1/identity/reviews/${review!.id}/approve?${ws.q}`, { method: "POST" });
    expect(approved.status, await approved.clone().text()).toBe(200);
    const merged = await until("one profile for both devices", async () => {
      const [laptop, phone] = [await ws.find(`anonymous_id:${jane.laptop}`), await ws.find(`anonymous_id:${jane.phone}`)];
      return laptop && phone && laptop.profileId === phone.profileId ? laptop : undefined;
    });
    expect(merged.identifiers.map((i) => i.type).sort()).toEqual(["anonymous_id", "anonymous_id", "email", "email", "email"]);
    // The index's match blocks follow the approval: the profile merged away is in none, the survivor in its blocks.
    const absorbed = merged.profileId === jane.a.profileId ? jane.b.profileId : jane.a.profileId;
    const entries = await matchBlockEntries(ws.workspaceId);
    expect(entries.filter((e) => e.endsWith(` ${absorbed}`))).toEqual([]);
    expect(entries).toContain(`em:jd${jane.id} ${merged.profileId}`);
    expect(entries).toContain(`pc:69003:d ${merged.profileId}`);
  });

  it("brings the two onto one shard and merges them where the workspace opted in to auto-merge", async () => {
    const ws = await workspace();
    await ws.putSettings({ probabilistic: { reviewThreshold: 0.9, autoMerge: true, autoMergeThreshold: 0.95 } });
    const jane = await janeOnTwoShards(ws);
    const merged = await until("one profile for both devices", async () => {
      const [laptop, phone] = [await ws.find(`anonymous_id:${jane.laptop}`), await ws.find(`anonymous_id:${jane.phone}`)];
      return laptop && phone && laptop.profileId === phone.profileId ? laptop : undefined;
    });
    // Scored on the shard holding the first of the two ids, where the other was brought.
    const first = [jane.a.profileId, jane.b.profileId].sort()[0]!;
    expect(merged.profileId).toBe(first);
    expect(await ws.shardOf(merged.profileId)).toBe(first === jane.a.profileId ? 1 : 2);
    const graph = await json<{ merges: { rule: string }[] }>(await admin(`/admin/v1/profiles/${merged.profileId}/graph?${ws.q}`));
    expect(graph.merges.map((m) => m.rule)).toEqual(["probabilistic"]);
    expect(await ws.probabilisticReviews()).toEqual([]);
  });

  it("never merges two user ids on a score, even with auto-merge: once together they are queued for review", async () => {
    const ws = await workspace();
    await ws.putSettings({ probabilistic: { reviewThreshold: 0.9, autoMerge: true, autoMergeThreshold: 0.95 } });
    const id = unique();
    const jane = await janeOnTwoShards(ws, [`jane-1-${id}`, `jane-2-${id}`]);
    const [review] = await until("a probabilistic review", async () => {
      const reviews = await ws.probabilisticReviews();
      return reviews.length > 0 ? reviews : undefined;
    });
    expect(review!.profiles.sort()).toEqual([jane.a.profileId, jane.b.profileId].sort());
    expect((await ws.find(`user_id:jane-1-${id}`))!.profileId).not.toBe((await ws.find(`user_id:jane-2-${id}`))!.profileId);
  });

  it("erases a person from the match blocks and from the review another shard scored with them, leaving the other person's", async () => {
    const ws = await workspace();
    const jane = await janeOnTwoShards(ws);
    const [review] = await until("a probabilistic review", async () => {
      const reviews = await ws.probabilisticReviews();
      return reviews.length > 0 ? reviews : undefined;
    });
    const entries = await matchBlockEntries(ws.workspaceId);
    expect(entries).toContain(`pc:69003:d ${jane.a.profileId}`);
    expect(entries).toContain(`pc:69003:d ${jane.b.profileId}`);
    // Erase the one whose shard did not score the pair: the review lives on the other shard.
    const [scorer, erased] = [jane.a.profileId, jane.b.profileId].sort() as [string, string];
    const device = erased === jane.a.profileId ? jane.laptop : jane.phone;
    const response = await admin("/admin/v1/privacy/deletions", { method: "POST", json: { workspaceId: ws.workspaceId, identifier: { type: "anonymous_id", value: device } } });
    expect(response.status).toBe(202);
    const requestId = (await json(response)).request.id;
    await until("the deletion to finish", async () => ((await json(await admin(`/admin/v1/privacy/deletions/${requestId}?${ws.q}`))).status === "finished" ? true : undefined));

    const after = await matchBlockEntries(ws.workspaceId);
    expect(after.filter((e) => e.endsWith(` ${erased}`))).toEqual([]);
    expect(after.filter((e) => e.endsWith(` ${scorer}`))).toEqual(entries.filter((e) => e.endsWith(` ${scorer}`)));
    expect((await ws.probabilisticReviews()).map((r) => r.id)).not.toContain(review!.id);
    expect(await ws.find(`anonymous_id:${device}`)).toBeUndefined();
    expect((await ws.find(`anonymous_id:${device === jane.laptop ? jane.phone : jane.laptop}`))!.profileId).toBe(scorer);
  });

  it("takes a renamed profile out of its old blocks in the index, and the same batch delivered again changes nothing", async () => {
    const ws = await workspace();
    const id = unique();
    const ring = `ring-${id}`;
    await ws.identify(1, ring, { firstName: "Jane", lastName: "Doe", email: `jane.doe.${id}@gmail.com`, address: home });
    const jane = await ws.profileOf(`anonymous_id:${ring}`);
    await until("Jane in her name's block", async () => ((await matchBlockEntries(ws.workspaceId)).includes(`ln:D000:j ${jane.profileId}`) ? true : undefined));
    const married = queuedEvents(`married-${id}`)({ anonymousId: ring, traits: { firstName: "Jane", lastName: "Smith" } });
    const [answer] = await routeBatch(env, ws.workspaceId, 3, [married], {});
    expect(answer!.profileId).toBe(jane.profileId);
    const after = (await matchBlockEntries(ws.workspaceId)).filter((e) => e.endsWith(` ${jane.profileId}`));
    // Her Doe name and postal-code blocks are gone; her email's stays.
    expect(after).toEqual([`em:janedoe${id}`, "ln:S530:j", "pc:69003:s"].map((block) => `${block} ${jane.profileId}`).sort());
    await routeBatch(env, ws.workspaceId, 3, [married], {});
    expect((await matchBlockEntries(ws.workspaceId)).filter((e) => e.endsWith(` ${jane.profileId}`))).toEqual(after);
  });

  it("still takes a renamed profile out of its old block when the consumer stopped before the index followed, and the batch is delivered again", async () => {
    const ws = await workspace();
    const id = unique();
    const ring = `ring-${id}`;
    await ws.identify(2, ring, { firstName: "Jane", lastName: "Doe", email: `jane.doe.${id}@gmail.com` });
    const jane = await ws.profileOf(`anonymous_id:${ring}`);
    await until("Jane in her name's block", async () => ((await matchBlockEntries(ws.workspaceId)).includes(`ln:D000:j ${jane.profileId}`) ? true : undefined));
    const married = queuedEvents(`stopped-${id}`)({ anonymousId: ring, traits: { firstName: "Jane", lastName: "Smith" } });
    // The first delivery: shard 2 resolved it as the router asked, and the consumer stopped there.
    const [first] = await env.IDENTITY.getByName(graphShardName(ws.workspaceId, 2)).resolveEvents([married], { shard: 2, matchLeads: true });
    expect(first!.blockUpdates).toEqual([["ln:D000:j", jane.profileId, false, expect.any(Number)]]);
    expect(await matchBlockEntries(ws.workspaceId)).toContain(`ln:D000:j ${jane.profileId}`);
    await routeBatch(env, ws.workspaceId, 3, [married], {});
    const entries = await matchBlockEntries(ws.workspaceId);
    expect(entries).not.toContain(`ln:D000:j ${jane.profileId}`);
    expect(entries).toContain(`ln:S530:j ${jane.profileId}`);
  });

  it("hands a merged-away profile's blocks in the index to the survivor", async () => {
    const ws = await workspace();
    const id = unique();
    const event = queuedEvents(`merged-${id}`);
    await ws.index.claim([`anonymous_id:laptop-${id}`, `anonymous_id:phone-${id}`], 1);
    const route = async (fields: Parameters<typeof event>[0]) => (await routeBatch(env, ws.workspaceId, 3, [event(fields)], {}))[0]!;
    const laptop = await route({ anonymousId: `laptop-${id}`, traits: { firstName: "Jane", lastName: "Doe", email: `jane.doe.${id}@gmail.com` } });
    const phone = await route({ anonymousId: `phone-${id}`, traits: { phone: "+33612345678" } });
    expect(await matchBlockEntries(ws.workspaceId)).toContain(`ph:2345678 ${phone.profileId}`);
    const merged = await route({ anonymousId: `phone-${id}`, traits: { email: `jane.doe.${id}@gmail.com` } });
    expect(merged.profileId).toBe(laptop.profileId);
    const entries = await matchBlockEntries(ws.workspaceId);
    expect(entries.filter((e) => e.endsWith(` ${phone.profileId}`))).toEqual([]);
    expect(entries).toContain(`ph:2345678 ${laptop.profileId}`);
  });

  it("puts a part an unmerge restored in the index's blocks, so people on other shards are matched with it", async () => {
    const ws = await workspace();
    const { id, jane, phone } = await janeAndPhoneUnmerged(ws, "unmerged");
    // The part starts from the merged profile's features and blocks, in its graph and in the index alike.
    const entries = await matchBlockEntries(ws.workspaceId);
    expect(entries.filter((e) => e.endsWith(` ${phone.profileId}`))).toEqual([`em:janedoe${id}`, "ln:D000:j", "ph:2345678"].map((block) => `${block} ${phone.profileId}`));
    expect(entries).toContain(`ln:D000:j ${jane.profileId}`);
  });

  it("takes the erased person's email handle out of the index's blocks of another profile whose features had it", async () => {
    const ws = await workspace();
    // The phone's part starts from the merged profile's features, Jane's email among them.
    const { id, route, phone } = await janeAndPhoneUnmerged(ws, "erase-scrub");
    // The phone's owner gives her own name.
    await route({ anonymousId: `phone-${id}`, traits: { firstName: "Sam", lastName: "Roe" } });
    expect(await matchBlockEntries(ws.workspaceId)).toContain(`em:janedoe${id} ${phone.profileId}`);

    const response = await admin("/admin/v1/privacy/deletions", { method: "POST", json: { workspaceId: ws.workspaceId, identifier: { type: "email", value: `jane.doe.${id}@gmail.com` } } });
    expect(response.status).toBe(202);
    const requestId = (await json(response)).request.id;
    await until("the deletion to finish", async () => ((await json(await admin(`/admin/v1/privacy/deletions/${requestId}?${ws.q}`))).status === "finished" ? true : undefined));

    const after = await matchBlockEntries(ws.workspaceId);
    expect(after.filter((e) => e.includes(`janedoe${id}`))).toEqual([]);
    // The phone's own blocks stay.
    expect(after).toContain(`ln:R000:s ${phone.profileId}`);
    expect(after).toContain(`ph:2345678 ${phone.profileId}`);
    // Confirmed: the shard keeps nothing waiting.
    expect(await env.IDENTITY.getByName(graphShardName(ws.workspaceId, 1)).blockChangesWaiting()).toEqual([]);
  });

  it("still queues the review when the consumer stopped between resolving a batch and matching it, and the batch is delivered again", async () => {
    const ws = await workspace();
    const id = unique();
    await ws.identify(1, `laptop-${id}`, { firstName: "Jane", lastName: "Doe", email: `jane.doe.${id}@gmail.com`, address: home });
    const laptop = await ws.profileOf(`anonymous_id:laptop-${id}`);
    await ws.index.claim([`anonymous_id:phone-${id}`], 2);
    const phone = queuedEvents(`redelivered-${id}`)({ anonymousId: `phone-${id}`, traits: { firstName: "Jane", lastName: "Doe", email: `janedoe.${id}@yahoo.fr`, address: home } });
    // The first delivery: shard 2 resolved it as the router asked, and the consumer stopped there.
    const [first] = await env.IDENTITY.getByName(graphShardName(ws.workspaceId, 2)).resolveEvents([phone], { shard: 2, matchLeads: true });
    expect(first!.matchBlocks).toContain("pc:69003:d");
    expect(await ws.probabilisticReviews()).toEqual([]);
    // Delivered again: the event is already applied, and its lead is still answered.
    const [again] = await routeBatch(env, ws.workspaceId, 3, [phone], {});
    expect(again!.profileId).toBe(first!.profileId);
    const reviews = await ws.probabilisticReviews();
    expect(reviews.map((r) => r.profiles.sort())).toEqual([[laptop.profileId, first!.profileId].sort()]);
  });
});
