import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { generatePopulation } from "../../bench/identity/population.mjs";
import { IdentityGraph } from "../../workers/identity/graph";
import { identityProcessor } from "../../workers/identity/processor";
import { GraphShards, graphShardName } from "../../workers/identity/sharding/graph-shards";
import { handOverKeys } from "../../workers/identity/sharding/handover-saga";
import { IdentifierIndex } from "../../workers/identity/sharding/identifier-index";
import type { QueuedEvent } from "../../workers/intake/envelope";
import { applyPopulationEvent } from "./population";
import { queuedEvents } from "./queued-events";
import { shuffle, smallPopulation } from "./small-population";

const SHARDS = 3;

const process = (workspaceId: string, events: QueuedEvent[]) => identityProcessor(env, SHARDS).process(workspaceId, events, { sources: {}, profiles: new Map() });

const shard = (workspaceId: string, n: number) => env.IDENTITY.getByName(graphShardName(workspaceId, n));

/** Every live profile of every shard, as the sorted keys of its identifiers, with the shard holding it. */
async function shardedProfiles(workspaceId: string) {
  const out: { shard: number; profileId: string; keys: string }[] = [];
  for (let n = 0; n < SHARDS; n++) {
    const { profiles } = await shard(workspaceId, n).listProfiles(null, 10_000);
    for (const p of profiles) out.push({ shard: n, profileId: p.profileId, keys: p.identifiers.map((i) => `${i.type}:${i.value}`).sort().join(",") });
  }
  return out;
}

const partition = (graph: IdentityGraph) => graph.liveClusters().map((c) => [...c.identifiers.keys()].sort().join(",")).sort();

describe("identity over several graph shards", () => {
  it("resolves a population with households, kiosks and logouts into the same clusters as one graph", async () => {
    const { events } = generatePopulation({ people: 150, seed: 7 });
    const reference = new IdentityGraph();
    for (const event of events) applyPopulationEvent(reference, event);

    const workspaceId = "sharded-population";
    for (let i = 0; i < events.length; i += 250) await process(workspaceId, events.slice(i, i + 250) as unknown as QueuedEvent[]);

    const profiles = await shardedProfiles(workspaceId);
    expect(profiles.map((p) => p.keys).sort()).toEqual(partition(reference));
    // People live on every shard, and came together across them: a person's devices were first seen apart.
    expect(new Set(profiles.map((p) => p.shard)).size).toBe(SHARDS);
    let applied = 0;
    for (let n = 0; n < SHARDS; n++) applied += await shard(workspaceId, n).appliedEvents();
    expect(applied).toBe(reference.events.count());
    // Every profile id is placed on the shard that holds it, for reads by id.
    const placed = await new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId).locate(profiles.map((p) => `profile_id:${p.profileId}`));
    expect(profiles.filter((p) => placed.get(`profile_id:${p.profileId}`)?.shard !== p.shard)).toEqual([]);
  }, 60_000);

  it("hands a device's anonymous history over to the shard of the user who logs in on it", async () => {
    const workspaceId = "sharded-gather";
    const index = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    await index.claim(["anonymous_id:tablet-1"], 2);
    await index.claim(["user_id:u-1"], 1);
    const event = queuedEvents("gather");
    await process(workspaceId, [event({ type: "track", event: "Viewed", anonymousId: "tablet-1" }), event({ type: "track", event: "Viewed", anonymousId: "tablet-1" })]);
    await process(workspaceId, [event({ userId: "u-1", traits: { plan: "pro" } })]);
    expect((await shard(workspaceId, 2).listProfiles()).profiles).toHaveLength(1);

    await process(workspaceId, [event({ userId: "u-1", anonymousId: "tablet-1" })]);

    const profiles = await shardedProfiles(workspaceId);
    expect(profiles).toEqual([expect.objectContaining({ shard: 1, keys: "anonymous_id:tablet-1,user_id:u-1" })]);
    const events = (await shard(workspaceId, 1).profileEvents(profiles[0]!.profileId, { order: "asc", limit: 10 })) as unknown as { message_id: string }[];
    expect(events.map((e) => e.message_id)).toEqual(["gather-1", "gather-2", "gather-3", "gather-4"]);
    expect((await index.locate(["anonymous_id:tablet-1"])).get("anonymous_id:tablet-1")?.shard).toBe(1);
    // A late redelivery of the device's first events is sent on by shard 2 and changes nothing.
    await process(workspaceId, [event({ type: "track", event: "Viewed", anonymousId: "tablet-1", messageId: "gather-1" })]);
    expect(await shardedProfiles(workspaceId)).toEqual(profiles);
  });

  it("resolves a key placed back on a shard that once handed it over, instead of sending its event round for ever", async () => {
    const workspaceId = "sharded-placed-back";
    const index = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    await index.claim(["user_id:u-1", "anonymous_id:phone-1"], 1);
    const event = queuedEvents("placed-back");
    await process(workspaceId, [event({ userId: "u-1", anonymousId: "phone-1" })]);
    const [first] = (await shard(workspaceId, 1).listProfiles()).profiles;
    // The person moves to shard 2, leaving moved marks on shard 1; then is erased there and their keys released.
    await handOverKeys(new GraphShards(env.IDENTITY, workspaceId), index, 1, ["user_id:u-1"], 2);
    const keys = ["user_id:u-1", "anonymous_id:phone-1", `profile_id:${first!.profileId}`];
    expect([...(await index.locate(keys)).values()].map((p) => p.shard)).toEqual([2, 2, 2]);
    await shard(workspaceId, 2).erasePerson([first!.profileId]);
    expect(await index.release(keys, 2)).toBe(3);
    // A newcomer with the same user id is claimed on shard 1, where the stale marks are.
    await index.claim(["user_id:u-1"], 1);
    await process(workspaceId, [event({ userId: "u-1", traits: { plan: "pro" } })]);
    const profiles = await shardedProfiles(workspaceId);
    expect(profiles).toEqual([expect.objectContaining({ shard: 1, keys: "user_id:u-1" })]);
    expect(profiles[0]!.profileId).not.toBe(first!.profileId);
  });

  it("ends in the same clusters as one event at a time when shuffled batches arrive at once, and redeliveries change nothing", async () => {
    // Several arrival orders: people are handed back and forth between shards while other batches still route by where they were.
    for (const [n, seed] of [23, 32, 41].entries()) {
      const workspaceId = `sharded-concurrency-${n}`;
      const events = smallPopulation(seed);
      const batches: QueuedEvent[][] = [];
      const shuffled = shuffle(events, seed * 7 + n);
      for (let i = 0; i < shuffled.length; i += 10) batches.push(shuffled.slice(i, i + 10));
      await Promise.all(batches.map((batch) => process(workspaceId, batch)));
      const first = await shardedProfiles(workspaceId);
      await Promise.all(batches.filter((_, i) => i % 3 === 0).map((batch) => process(workspaceId, batch)));

      const reference = new IdentityGraph();
      for (const event of events) applyPopulationEvent(reference, event as never);
      expect(first.map((p) => p.keys).sort()).toEqual(partition(reference));
      expect(await shardedProfiles(workspaceId)).toEqual(first);
    }
  }, 60_000);
});
