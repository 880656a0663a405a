import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import { unique } from "../helpers";
import { eventsOf, failure, handOverAll, storage, type Stub } from "./handover-steps";

/** Pat (an anonymous visit merged into a sign-up) and Sam, who sends Pat's email with his own user id: a review names them both. */
async function twoPeople() {
  const ws = `handover-shards-${unique()}`;
  const event = eventsOf(ws);
  const pat = { anon: `pat-anon-${ws}`, user: `pat-${ws}`, email: `pat-${ws}@acme-shop.com` };
  const sam = { user: `sam-${ws}`, email: `sam-${ws}@acme-shop.com` };
  const shard0 = env.IDENTITY.getByName(ws);
  const answers = await shard0.resolveEvents([
    event({ type: "identify", anonymousId: pat.anon, traits: { colour: "teal" } }, 30),
    event({ type: "identify", userId: pat.user, traits: { email: pat.email, plan: "pro" } }, 25),
    event({ event: "Order Completed", userId: pat.user, anonymousId: pat.anon, properties: { revenue: 42 } }, 20),
    event({ type: "identify", userId: sam.user, traits: { email: sam.email } }, 15),
    event({ type: "identify", userId: sam.user, traits: { email: pat.email } }, 10),
  ]);
  return { ws, event, pat, sam, shard0, ids: { pat: answers[2]!.profileId!, absorbed: answers[1]!.profileId!, sam: answers[3]!.profileId!, mergeId: answers[2]!.mergeId! } };
}

describe("people moving between graph shards", () => {
  it("brings a person back: handed over to shard 1 and back to shard 0, shard 0 answers as before and applies their events again", async () => {
    const { ws, event, pat, shard0, ids } = await twoPeople();
    const shard1 = env.IDENTITY.getByName(`${ws}#1`);
    const before = { profile: await shard0.profile(ids.pat), events: await shard0.profileEvents(ids.pat, { order: "asc", limit: 100 }), reviews: await shard0.reviews(undefined, 0, 10) };
    const first = await handOverAll(shard0, 0, shard1, 1, [`anonymous_id:${pat.anon}`]);
    expect(await shard0.profile(ids.pat)).toBeNull();
    const back = await handOverAll(shard1, 1, shard0, 0, [`user_id:${pat.user}`]);
    expect(back.moves[0]).toMatchObject({ from: 1, to: 0, keys: first.moves[0]!.keys });
    expect(back.moves[0]!.moveId).toMatch(/^mov_s1_/);
    expect({ profile: await shard0.profile(ids.pat), events: await shard0.profileEvents(ids.pat, { order: "asc", limit: 100 }), reviews: await shard0.reviews(undefined, 0, 10) }).toEqual(before);
    expect(await shard1.profile(ids.pat)).toBeNull();
    const [viewed] = await shard0.resolveEvents([event({ anonymousId: pat.anon, event: "Viewed" })]);
    expect(viewed).toEqual({ messageId: expect.any(String), profileId: ids.pat, dropped: [] });
    const [there] = await shard1.resolveEvents([event({ anonymousId: pat.anon, event: "Viewed" })]);
    expect(there!.moved).toEqual({ key: `anonymous_id:${pat.anon}`, to: 0 });
  });

  it("hands keys nobody holds over as a move of their own, the keys of two people as two moves, and answers a key of a person already moving with that move", async () => {
    const { ws, event, pat, sam, shard0, ids } = await twoPeople();
    const nobody = `email:nobody-${ws}@acme-shop.com`;
    const { moves } = await shard0.handOver([nobody, `user_id:${pat.user}`, `user_id:${sam.user}`, `email:${pat.email}`, `profile_id:${ids.absorbed}`], 1);
    expect(moves.map((m) => m.keys.filter((k) => k.startsWith("profile_id:")))).toEqual([[`profile_id:${ids.absorbed}`, `profile_id:${ids.pat}`].sort(), [`profile_id:${ids.sam}`], []]);
    expect(moves[2]).toMatchObject({ keys: [nobody], parts: 1, to: 1 });
    expect(moves.map((m) => m.to)).toEqual([1, 1, 1]);
    const again = await shard0.handOver([`anonymous_id:${pat.anon}`, `email:${sam.email}`, nobody], 2);
    expect(again).toEqual({ moves });
    // An event carrying the key that left with no one is sent on too: it may have been planned here before the key moved.
    const [late] = await shard0.resolveEvents([event({ type: "identify", traits: { email: nobody.slice("email:".length) } })]);
    expect(late!.moved).toEqual({ key: nobody, to: 1 });
  });

  it("refuses decisions naming a person who left, and resolves on without them after a restart", async () => {
    const { ws, event, pat, sam, shard0, ids } = await twoPeople();
    const shard1 = env.IDENTITY.getByName(`${ws}#1`);
    const { reviews } = await shard0.reviews("open", 0, 10);
    expect(reviews).toHaveLength(1);
    await handOverAll(shard0, 0, shard1, 1, [`user_id:${pat.user}`]);
    // The review names them both: it is a copy in both shards, and neither can decide it alone.
    for (const stub of [shard0, shard1]) {
      expect(await stub.approveReview(reviews[0]!.id)).toMatchObject({ ok: false, code: "NOT_FOUND", detail: expect.stringContaining("does not hold") });
      expect(await stub.rejectReview(reviews[0]!.id)).toMatchObject({ ok: false, code: "NOT_FOUND" });
    }
    expect(await shard1.unmerge(ids.mergeId)).toMatchObject({ ok: true });
    await evictDurableObject(shard0);
    const [later] = await shard0.resolveEvents([event({ type: "identify", userId: sam.user, traits: { email: sam.email, plan: "team" } })]);
    expect(later!.profileId).toBe(ids.sam);
    expect((await shard0.reviews("open", 0, 10)).reviews.map((r) => r.id)).toEqual([reviews[0]!.id]);
  });

  it("lets a review naming two people be decided once both are in one shard, and takes it from the shard neither is in", async () => {
    const { ws, pat, sam, shard0, ids } = await twoPeople();
    const shard1 = env.IDENTITY.getByName(`${ws}#1`);
    const [review] = (await shard0.reviews("open", 0, 10)).reviews;
    await handOverAll(shard0, 0, shard1, 1, [`user_id:${pat.user}`]);
    expect((await shard0.reviews(undefined, 0, 10)).reviews.map((r) => r.id)).toEqual([review!.id]);
    await handOverAll(shard0, 0, shard1, 1, [`user_id:${sam.user}`]);
    expect((await shard0.reviews(undefined, 0, 10)).reviews).toEqual([]);
    expect((await shard1.reviews("open", 0, 10)).reviews).toEqual([review]);
    const approved = await shard1.approveReview(review!.id);
    if (!approved.ok) throw new Error(approved.detail);
    expect((await shard1.lookup(`user_id:${sam.user}`))!.profileId).toBe(ids.pat);
    expect(await shard0.lookup(`user_id:${sam.user}`)).toBeNull();
  });

  it("answers a key still arriving with the move bringing it, rather than handing the half-arrived person on", async () => {
    const { ws, pat, shard0, ids } = await twoPeople();
    const shard1 = env.IDENTITY.getByName(`${ws}#1`);
    const [move] = (await shard0.handOver([`user_id:${pat.user}`], 1)).moves;
    await shard1.acceptHandOverPart(move!.moveId, 0, 0, await shard0.handOverPart(move!.moveId, 0));
    // Shard 1 holds Pat's rows but has not finished: asked to hand Pat to shard 2, it names the move still bringing Pat in.
    const { moves } = await shard1.handOver([`anonymous_id:${pat.anon}`], 2);
    expect(moves).toEqual([{ moveId: move!.moveId, from: 0, to: 1, keys: move!.keys, parts: -1, completed: false }]);
    expect(await shard0.handOverStatus(move!.moveId)).toEqual({ completed: false, parts: move!.parts });
    await shard1.finishHandOver(move!.moveId, 0, move!.keys);
    // Finished, Pat is shard 1's to hand on.
    const after = await shard1.handOver([`anonymous_id:${pat.anon}`], 2);
    expect(after.moves[0]).toMatchObject({ from: 1, to: 2, completed: false });
    expect(after.moves[0]!.keys).toContain(`profile_id:${ids.pat}`);
  });

  it("knows its shard number from its name before any call, issues ids of that shard, and still after a restart", async () => {
    const ws = `handover-shard2-${unique()}`;
    const event = eventsOf(ws);
    const shard2 = env.IDENTITY.getByName(`${ws}#2`);
    const [first] = await shard2.resolveEvents([event({ userId: "u1" })]);
    expect(first!.profileId).toMatch(/^prof_s2_/);
    const meta = await runInDurableObject(shard2, (_i: IdentityGraphShard, state) => state.storage.sql.exec<{ value: string }>("SELECT value FROM graph_meta WHERE name = 'shard'").one().value);
    expect(meta).toBe("2");
    await evictDurableObject(shard2);
    const [second, merging] = await shard2.resolveEvents([event({ userId: "u2", anonymousId: "a2" }), event({ anonymousId: "a3", traits: { email: "u2@acme-shop.com" }, type: "identify" })]);
    expect(second!.profileId).toMatch(/^prof_s2_/);
    expect(merging!.profileId).toMatch(/^prof_s2_/);
    expect(await failure(shard2.resolveEvents([event({ userId: "u3" })], { shard: 3 }))).toMatch("graph shard 2, not shard 3");
    // Shard 0 or no shard: ids as a single graph always issued them.
    const [plain] = await env.IDENTITY.getByName(ws).resolveEvents([event({ userId: "u1" })], { shard: 0 });
    expect(plain!.profileId).toMatch(/^prof_[0-9a-z]{6}$/);
  });

  it("refuses identifiers quarantined in another shard, and names the keys an event's resolution quarantined", async () => {
    const ws = `handover-quarantine-${unique()}`;
    const event = eventsOf(ws);
    const stub = env.IDENTITY.getByName(ws);
    const [refused] = await stub.resolveEvents([event({ userId: "u1", anonymousId: "kiosk-elsewhere" })], { quarantined: ["anonymous_id:kiosk-elsewhere"] });
    expect(refused!.dropped).toEqual([{ identifier: "anonymous_id:kiosk-elsewhere", reason: "quarantined" }]);
    expect(await stub.lookup("anonymous_id:kiosk-elsewhere")).toBeNull();
    const kiosk = (user: string) => event({ userId: user, context: { device: { id: "kiosk-here" } } });
    const answers = await stub.resolveEvents([kiosk("k1"), kiosk("k2"), kiosk("k3"), kiosk("k4")]);
    expect(answers.map((a) => a.quarantined)).toEqual([undefined, undefined, undefined, ["device_id:kiosk-here"]]);
  });

  it("refuses a package part that does not validate, naming the part and the invalid path, and leaves the target unchanged", async () => {
    const { ws, pat, shard0 } = await twoPeople();
    const shard1 = env.IDENTITY.getByName(`${ws}#1`);
    const { moves } = await shard0.handOver([`user_id:${pat.user}`], 1);
    const move = moves[0]!;
    const body = JSON.parse(await shard0.handOverPart(move.moveId, 0)) as { clusters: { createdAt: unknown }[]; events: { at: unknown }[] };
    body.clusters[0]!.createdAt = "yesterday";
    body.events[1]!.at = null;
    const before = await storage(shard1);
    const message = await failure(shard1.acceptHandOverPart(move.moveId, 0, 0, JSON.stringify(body)));
    expect(message).toContain(`hand-over ${move.moveId} part 0 is invalid`);
    expect(message).toContain("clusters.0.createdAt");
    expect(message).toContain("events.1.at");
    expect(await failure(shard1.acceptHandOverPart(move.moveId, 0, 0, "{not json"))).toContain(`hand-over ${move.moveId} part 0 is not JSON`);
    expect(await failure(shard1.acceptHandOverPart(move.moveId, 0, 1, await shard0.handOverPart(move.moveId, 0)))).toContain(`part 1 holds part 0`);
    expect(await failure(shard1.finishHandOver(move.moveId, 0, move.keys))).toContain("not complete here");
    expect(await storage(shard1)).toEqual(before);
  });

  it("moves a person too large for one part completely, in parts of at most 1,000,000 characters", async () => {
    const ws = `handover-large-${unique()}`;
    const event = eventsOf(ws);
    const shard0 = env.IDENTITY.getByName(ws);
    const shard1 = env.IDENTITY.getByName(`${ws}#1`);
    const events = Array.from({ length: 3_000 }, (_, i) => event({ userId: "big", anonymousId: `big-${i % 4}`, event: "Read", properties: { n: i, text: `é${"lorem ipsum ".repeat(25)}${i}` } }, 3_000 - i));
    for (let i = 0; i < events.length; i += 1_000) await shard0.resolveEvents(events.slice(i, i + 1_000));
    const profileId = (await shard0.lookup("user_id:big"))!.profileId;
    const before = { profile: await shard0.profile(profileId), events: await shard0.profileEvents(profileId, { order: "asc", limit: 5_000 }) };
    expect(before.events).toHaveLength(3_000);
    const { moves } = await shard0.handOver(["user_id:big"], 1);
    expect(moves[0]!.parts).toBeGreaterThan(2);
    for (let part = 0; part < moves[0]!.parts; part++) {
      const body = await shard0.handOverPart(moves[0]!.moveId, part);
      expect(body.length).toBeLessThanOrEqual(1_000_000);
      expect(new TextEncoder().encode(body).length).toBeLessThanOrEqual(1_000_000);
      await shard1.acceptHandOverPart(moves[0]!.moveId, 0, part, body);
    }
    expect(await shard1.finishHandOver(moves[0]!.moveId, 0, moves[0]!.keys)).toEqual({ profiles: 1, events: 3_000 });
    await shard0.completeHandOver(moves[0]!.moveId);
    expect({ profile: await shard1.profile(profileId), events: await shard1.profileEvents(profileId, { order: "asc", limit: 5_000 }) }).toEqual(before);
    expect(await shard1.appliedEvents()).toBe(3_000);
    expect(await shard0.appliedEvents()).toBe(0);
  });
});
