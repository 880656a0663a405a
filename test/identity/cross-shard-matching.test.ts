import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { LeadVersion } from "../../durable-objects/pending-match-leads";
import type { AnsweredEntry } from "../../workers/identity/blocks";
import { type MatchLead, matchAcrossShards } from "../../workers/identity/sharding/cross-shard-matching";
import { GraphShards, graphShardName } from "../../workers/identity/sharding/graph-shards";
import { IdentifierIndex } from "../../workers/identity/sharding/identifier-index";
import { handOverAll } from "./handover-steps";
import { queuedEvents } from "./queued-events";

/** Words on block entries (`BlockMembership`, typed loosely once through RPC) without their versions. */
const words = (updates: readonly (readonly unknown[])[] | undefined) => updates?.map((word) => word.slice(0, 3));
/** A lead as the router confirms it: the profile and the version it was answered at. */
const asAnswered = (answer: { profileId: string | null; matchVersion?: number }): LeadVersion => [answer.profileId!, answer.matchVersion ?? 0];
/** The version of an answer's first word on a block entry. */
const versionOf = (updates: readonly (readonly unknown[])[] | undefined) => Number(updates?.[0]?.[3]);

const home = { street: "12 Rue des Lilas", city: "Lyon", postalCode: "69003", country: "FR" };

/** Jane Doe on six devices, two per graph shard, each resolved there with the blocks the router would be answered. */
async function janeOnEveryShard(workspaceId: string) {
  const shards = new GraphShards(env.IDENTITY, workspaceId);
  const index = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
  const event = queuedEvents(workspaceId);
  const leads: MatchLead[] = [];
  const emails = ["jane.doe@gmail.com", "janedoe@yahoo.fr", "j.doe@proton.me", "jane@doe.family", "jdoe@acme-shop.com", "jane.d@web.de"];
  for (const [i, email] of emails.entries()) {
    const n = i % 3;
    await index.claim([`anonymous_id:device-${i}`], n);
    const jane = event({ anonymousId: `device-${i}`, traits: { firstName: "Jane", lastName: "Doe", email, address: home } });
    const [answer] = await shards.shard(n).resolveEvents([jane], { shard: n, matchLeads: true });
    expect(answer!.matchBlocks).toContain("pc:69003:d");
    await index.claim([`profile_id:${answer!.profileId}`], n);
    expect(answer!.matchVersion).toBeGreaterThan(0);
    leads.push({ profileId: answer!.profileId!, blocks: answer!.matchBlocks!, version: answer!.matchVersion!, at: Date.parse(jane.timestamp) });
  }
  const reviews = async () => {
    const all: string[] = [];
    for (let n = 0; n < 3; n++) {
      const queue = await env.IDENTITY.getByName(graphShardName(workspaceId, n)).reviewQueue("open", 0, 100);
      all.push(...queue.reviews.filter((r) => r.listed).map((r) => [...r.review.clusters].sort().join(" ")));
    }
    return all.sort();
  };
  return { shards, index, leads, reviews };
}

describe("matching across graph shards", () => {
  it("scores every pair on two shards once, in calls as small as asked, as in one call", async () => {
    const whole = await janeOnEveryShard("cross-match-whole");
    const split = await janeOnEveryShard("cross-match-split");
    const [a, b] = await Promise.all([
      matchAcrossShards(whole.shards, whole.index, whole.leads),
      matchAcrossShards(split.shards, split.index, split.leads, { featuresPerCall: 1, profilesPerScoring: 1 }),
    ]);
    // Six profiles, two per shard: the 12 pairs on two shards, each scored on the shard holding the first of its ids.
    expect(a).toEqual({ pairs: 12, reviews: 12, broughtTogether: 0 });
    expect(b).toEqual(a);
    const ids = (leads: MatchLead[]) => leads.map((l) => l.profileId);
    // Every pair of the six, once: the 3 on one shard were matched there as they resolved.
    const pairsOf = (leads: MatchLead[]) => ids(leads).flatMap((x, i) => ids(leads).slice(i + 1).map((y) => [x, y].sort().join(" "))).sort();
    expect(await whole.reviews()).toEqual(pairsOf(whole.leads));
    expect(await split.reviews()).toEqual(pairsOf(split.leads));
    // Matched again, as after a redelivery: every pair is already suggested.
    expect(await matchAcrossShards(whole.shards, whole.index, whole.leads)).toEqual({ pairs: 12, reviews: 0, broughtTogether: 0 });
  });
});

describe("leads waiting for matching across graph shards", () => {
  const setup = (workspaceId: string) => {
    const shard = env.IDENTITY.getByName(graphShardName(workspaceId, 1));
    const event = queuedEvents(workspaceId);
    const resolve = async (e: ReturnType<typeof event>) => (await shard.resolveEvents([e], { shard: 1, matchLeads: true }))[0]!;
    const waiting = () => runInDurableObject(shard, (_o, state) => state.storage.sql.exec<{ profile_id: string }>("SELECT profile_id FROM match_leads").toArray().map((r) => r.profile_id));
    const waitingBlocks = () => runInDurableObject(shard, (_o, state) => state.storage.sql.exec<{ block: string; profile_id: string }>("SELECT block, profile_id FROM match_block_changes").toArray().map((r) => `${r.block} ${r.profile_id}`));
    return { shard, event, resolve, waiting, waitingBlocks };
  };

  it("answers a lead again when its batch is delivered again before the router confirmed matching, and not once it has", async () => {
    const { shard, event, resolve, waiting } = setup("leads-redelivered");
    const jane = event({ anonymousId: "jane-phone", traits: { firstName: "Jane", lastName: "Doe", email: "jane.doe@gmail.com", address: home } });
    const first = await resolve(jane);
    expect(first.matchBlocks).toContain("pc:69003:d");
    expect(await waiting()).toEqual([first.profileId]);
    // The consumer stopped before matching: the same batch again, its event already applied, answers the same lead.
    const again = await resolve(jane);
    expect(again).toMatchObject({ profileId: first.profileId, matchBlocks: first.matchBlocks });
    expect(await shard.leadsMatched([asAnswered(again)])).toBe(1);
    expect(await waiting()).toEqual([]);
    expect((await resolve(jane)).matchBlocks).toBeUndefined();
  });

  it("answers a waiting lead with the profile's next event, even one that gains no blocking key", async () => {
    const { shard, event, resolve, waiting } = setup("leads-next-event");
    const jane = await resolve(event({ anonymousId: "jane-laptop", traits: { firstName: "Jane", lastName: "Doe", email: "jane.doe@gmail.com" } }));
    // Matching failed for that batch: Jane's next page view carries her lead again.
    const page = await resolve(event({ type: "page", anonymousId: "jane-laptop", name: "Home" }));
    expect(page).toMatchObject({ profileId: jane.profileId, matchBlocks: jane.matchBlocks });
    await shard.leadsMatched([asAnswered(page)]);
    expect((await resolve(event({ type: "page", anonymousId: "jane-laptop", name: "Cart" }))).matchBlocks).toBeUndefined();
    expect(await waiting()).toEqual([]);
  });

  it("answers the block a renamed profile left, again when its batch is delivered again before the router confirmed it, and not once it has", async () => {
    const { shard, event, resolve, waitingBlocks } = setup("blocks-redelivered");
    const jane = await resolve(event({ anonymousId: "jane-ring", traits: { firstName: "Jane", lastName: "Doe", email: "jane.doe@gmail.com" } }));
    await shard.leadsMatched([asAnswered(jane)]);
    const married = event({ anonymousId: "jane-ring", traits: { firstName: "Jane", lastName: "Smith" } });
    const first = await resolve(married);
    expect(words(first.blockUpdates)).toEqual([["ln:D000:j", jane.profileId, false]]);
    expect(first.matchBlocks).toContain("ln:S530:j");
    // The consumer stopped before the index followed: the same batch again answers the same update.
    const again = await resolve(married);
    expect(words(again.blockUpdates)).toEqual(words(first.blockUpdates));
    expect(versionOf(again.blockUpdates)).toBeGreaterThan(versionOf(first.blockUpdates));
    await shard.leadsMatched([asAnswered(jane)], [["ln:D000:j", jane.profileId!, versionOf(again.blockUpdates)]]);
    expect(await waitingBlocks()).toEqual([]);
    expect((await resolve(married)).blockUpdates).toBeUndefined();
  });

  it("keeps a lead waiting when the profile was made a lead again after the answer a confirmation names", async () => {
    const { shard, event, resolve, waiting } = setup("leads-made-again");
    const first = await resolve(event({ anonymousId: "jane-laptop", traits: { firstName: "Jane", lastName: "Doe", email: "jane.doe@gmail.com" } }));
    // Another consumer's batch gives her an address before the first consumer confirms.
    const moved = await resolve(event({ anonymousId: "jane-laptop", traits: { address: home } }));
    expect(moved.matchBlocks).toContain("pc:69003:d");
    expect(moved.matchVersion).toBeGreaterThan(first.matchVersion!);
    await shard.leadsMatched([asAnswered(first)]);
    expect(await waiting()).toEqual([first.profileId]);
    await shard.leadsMatched([asAnswered(moved)]);
    expect(await waiting()).toEqual([]);
  });

  it("keeps an entry waiting when it changed again after the answer a confirmation names", async () => {
    const { shard, event, resolve, waitingBlocks } = setup("blocks-changed-again");
    const jane = await resolve(event({ anonymousId: "jane-ring", traits: { firstName: "Jane", lastName: "Doe", email: "jane.doe@gmail.com" } }));
    await shard.leadsMatched([asAnswered(jane)]);
    const married = await resolve(event({ anonymousId: "jane-ring", traits: { firstName: "Jane", lastName: "Smith" } }));
    // Other consumers' batches, before the first one confirms: her name back, then Smith again.
    await resolve(event({ anonymousId: "jane-ring", traits: { firstName: "Jane", lastName: "Doe" } }));
    const again = await resolve(event({ anonymousId: "jane-ring", traits: { firstName: "Jane", lastName: "Smith" } }));
    expect(words(again.blockUpdates)).toContainEqual(["ln:D000:j", jane.profileId, false]);
    await shard.leadsMatched([asAnswered(jane)], [["ln:D000:j", jane.profileId!, versionOf(married.blockUpdates)]]);
    expect(await waitingBlocks()).toContain(`ln:D000:j ${jane.profileId}`);
    await shard.leadsMatched([asAnswered(jane)], (again.blockUpdates ?? []).map(([block, id, , version]) => [block, id, version] as AnsweredEntry));
    expect(await waitingBlocks()).not.toContain(`ln:D000:j ${jane.profileId}`);
  });

  it("answers a merged-away profile's blocks as left and the survivor as in those it still holds", async () => {
    const { event, resolve, waitingBlocks } = setup("blocks-merged");
    const laptop = await resolve(event({ anonymousId: "laptop", traits: { firstName: "Jane", lastName: "Doe", email: "jane.doe@gmail.com" } }));
    const phone = await resolve(event({ anonymousId: "phone", traits: { phone: "+33612345678" } }));
    const merged = await resolve(event({ anonymousId: "phone", traits: { email: "jane.doe@gmail.com" } }));
    expect(merged.profileId).toBe(laptop.profileId);
    expect(words(merged.blockUpdates)).toEqual([
      ["ph:2345678", phone.profileId, false],
      ["ph:2345678", laptop.profileId, true],
    ]);
    expect((await waitingBlocks()).sort()).toEqual([`ph:2345678 ${laptop.profileId}`, `ph:2345678 ${phone.profileId}`]);
  });

  it("keeps the blocks an unmerge moved waiting for the index only when asked to, and leaves them out of the answer", async () => {
    for (const sharedBlocks of [false, true]) {
      const { shard, event, resolve, waitingBlocks } = setup(`blocks-unmerged-${sharedBlocks}`);
      await resolve(event({ anonymousId: "laptop", traits: { firstName: "Jane", lastName: "Doe", email: "jane.doe@gmail.com" } }));
      await resolve(event({ anonymousId: "phone", traits: { phone: "+33612345678" } }));
      const merged = await resolve(event({ anonymousId: "phone", traits: { email: "jane.doe@gmail.com" } }));
      await shard.leadsMatched([asAnswered(merged)], (await shard.blockChangesWaiting()).map(([block, id, , version]) => [block, id, version] as AnsweredEntry));
      expect(await waitingBlocks()).toEqual([]);
      const result = await shard.unmerge(merged.mergeId!, Date.now(), sharedBlocks);
      expect(result.ok && "blocksChanged" in result).toBe(false);
      const restored = result.ok ? result.restored[0]! : "";
      const expected = ["em:janedoe", "ln:D000:j", "ph:2345678"].map((block) => `${block} ${restored}`);
      expect((await waitingBlocks()).sort()).toEqual(sharedBlocks ? expected : []);
      expect((await shard.blockChangesWaiting()).map(([block, id, member]) => `${block} ${id} ${member}`).sort()).toEqual(sharedBlocks ? expected.map((e) => `${e} true`) : []);
    }
  });

  it("forgets the lead of an erased person, and only theirs", async () => {
    const { shard, event, resolve, waiting } = setup("leads-erased");
    const jane = await resolve(event({ anonymousId: "jane-tablet", traits: { firstName: "Jane", lastName: "Doe", email: "jane.doe@gmail.com" } }));
    const john = await resolve(event({ anonymousId: "john-tablet", traits: { firstName: "John", lastName: "Roe", email: "john.roe@gmail.com" } }));
    expect((await waiting()).sort()).toEqual([jane.profileId, john.profileId].sort());
    await shard.erasePerson([jane.profileId!]);
    expect(await waiting()).toEqual([john.profileId]);
  });

  it("takes a person's waiting lead and block entries along when they are handed over, and answers them from the shard that took them", async () => {
    const { shard, event, resolve, waiting, waitingBlocks } = setup("waiting-handed-over");
    const jane = await resolve(event({ anonymousId: "jane-ring", traits: { firstName: "Jane", lastName: "Doe", email: "jane.doe@gmail.com" } }));
    const john = await resolve(event({ anonymousId: "john-ring", traits: { firstName: "John", lastName: "Roe", email: "john.roe@gmail.com" } }));
    await shard.leadsMatched([asAnswered(jane), asAnswered(john)]);
    // Renamed, and the consumer stopped before matching and before the index followed.
    const renamed = await resolve(event({ anonymousId: "jane-ring", traits: { firstName: "Jane", lastName: "Smith" } }));
    expect(words(renamed.blockUpdates)).toEqual([["ln:D000:j", jane.profileId, false]]);
    expect(renamed.matchBlocks).toContain("ln:S530:j");
    await resolve(event({ anonymousId: "john-ring", traits: { firstName: "John", lastName: "Poe" } }));

    const target = env.IDENTITY.getByName(graphShardName("waiting-handed-over", 2));
    await handOverAll(shard, 1, target, 2, ["anonymous_id:jane-ring"]);
    expect(await waiting()).toEqual([john.profileId]);
    expect(await waitingBlocks()).toEqual([`ln:R000:j ${john.profileId}`]);

    const next = (await target.resolveEvents([event({ type: "page", anonymousId: "jane-ring", name: "Home" })], { shard: 2, matchLeads: true }))[0]!;
    expect(next.profileId).toBe(jane.profileId);
    expect(next.matchBlocks).toEqual(renamed.matchBlocks);
    expect(words(next.blockUpdates)).toEqual([["ln:D000:j", jane.profileId, false]]);
    // Spoken of on the shard that took her, above every word of the shard that had her.
    expect(versionOf(next.blockUpdates)).toBeGreaterThan(versionOf(renamed.blockUpdates));
  });

  it("takes along the block entries waiting under a profile merged away, answered from the other shard as the survivor's", async () => {
    const { shard, event, resolve, waitingBlocks } = setup("waiting-merged-handed-over");
    const laptop = await resolve(event({ anonymousId: "laptop", traits: { firstName: "Jane", lastName: "Doe", email: "jane.doe@gmail.com" } }));
    const phone = await resolve(event({ anonymousId: "phone", traits: { phone: "+33612345678" } }));
    await shard.leadsMatched([asAnswered(laptop), asAnswered(phone)]);
    await resolve(event({ anonymousId: "phone", traits: { email: "jane.doe@gmail.com" } }));
    expect((await waitingBlocks()).sort()).toEqual([`ph:2345678 ${laptop.profileId}`, `ph:2345678 ${phone.profileId}`]);

    const target = env.IDENTITY.getByName(graphShardName("waiting-merged-handed-over", 2));
    await handOverAll(shard, 1, target, 2, ["anonymous_id:phone"]);
    expect(await waitingBlocks()).toEqual([]);
    const next = (await target.resolveEvents([event({ type: "page", anonymousId: "phone", name: "Home" })], { shard: 2, matchLeads: true }))[0]!;
    expect(next.profileId).toBe(laptop.profileId);
    expect(words(next.blockUpdates)).toEqual([
      ["ph:2345678", laptop.profileId, true],
      ["ph:2345678", phone.profileId, false],
    ]);
  });
});
