import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { IdentityGraph } from "../../workers/identity/graph";
import { identityProcessor } from "../../workers/identity/processor";
import { graphShardName } from "../../workers/identity/sharding/graph-shards";
import { IdentifierIndex } from "../../workers/identity/sharding/identifier-index";
import type { QueuedEvent } from "../../workers/intake/envelope";
import { applyPopulationEvent } from "./population";
import { smallPopulation } from "./small-population";

const process = (workspaceId: string, shards: number, events: QueuedEvent[]) => identityProcessor(env, shards).process(workspaceId, events, { sources: {}, profiles: new Map() });

async function profilesOf(workspaceId: string) {
  const out: { shard: number; keys: string[] }[] = [];
  for (let n = 0; n < 3; n++) {
    const { profiles } = await env.IDENTITY.getByName(graphShardName(workspaceId, n)).listProfiles(null, 1_000);
    for (const p of profiles) out.push({ shard: n, keys: p.identifiers.map((i) => `${i.type}:${i.value}`).sort() });
  }
  return out;
}

describe("spreading a workspace that lived on one graph object", () => {
  it("keeps its people on shard 0, found through the index, and spreads only people it meets afterwards", async () => {
    const workspaceId = "sharded-fill";
    const events = smallPopulation(51);
    const before = events.slice(0, 160);
    for (let i = 0; i < before.length; i += 20) await process(workspaceId, 1, before.slice(i, i + 20));
    const known = await new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId).locate(["user_id:user-0"]);
    expect(known.size).toBe(0);

    // People seen before come back too, one of them on a new device.
    const back = { ...events[0]!, messageId: "fill-back", userId: "user-0", anonymousId: "anon-0-new", timestamp: "2026-11-22T11:00:00.000Z" } as QueuedEvent;
    events.push(back);
    const after = events.slice(160);
    for (let i = 0; i < after.length; i += 20) await process(workspaceId, 3, after.slice(i, i + 20));

    const reference = new IdentityGraph();
    for (const event of events) applyPopulationEvent(reference, event as never);
    const profiles = await profilesOf(workspaceId);
    expect(profiles.map((p) => p.keys.join(",")).sort()).toEqual(reference.liveClusters().map((c) => [...c.identifiers.keys()].sort().join(",")).sort());
    // Everyone seen before stays on shard 0, where the index now finds them; people first seen afterwards went elsewhere too.
    const earlier = new Set(before.flatMap((e) => (e.userId ? [`user_id:${e.userId}`] : [])));
    const placed = await new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId).locate(earlier);
    expect([...placed.values()].every((p) => p.shard === 0)).toBe(true);
    expect(placed.size).toBe(earlier.size);
    expect(new Set(profiles.map((p) => p.shard)).size).toBeGreaterThan(1);
    expect(profiles.find((p) => p.keys.includes("anonymous_id:anon-0-new"))).toMatchObject({ shard: 0, keys: expect.arrayContaining(["user_id:user-0"]) });
  });

  it("pages through every identifier key and profile id of shard 0, moving on only once told the page is placed", async () => {
    const workspaceId = "sharded-fill-pages";
    await process(workspaceId, 1, smallPopulation(52).slice(0, 40));
    const shard0 = env.IDENTITY.getByName(workspaceId);
    expect((await shard0.routingState()).indexFilled).toBe(false);
    const first = await shard0.placementPage(7);
    // Not told: the same page again.
    expect(await shard0.placementPage(7)).toEqual(first);
    const seen: string[] = [];
    for (let page = first; ; page = await shard0.placementPage(7)) {
      // Over RPC a `[key, quarantined]` pair arrives typed as an array of either.
      seen.push(...page.keys.map((pair) => String(pair[0])));
      await shard0.placementsPlaced(page.next);
      if (page.last) break;
    }
    const { profiles } = await shard0.listProfiles(null, 1_000);
    const identifiers = profiles.flatMap((p) => p.identifiers.map((i) => `${i.type}:${i.value}`));
    expect(new Set(seen)).toEqual(new Set([...identifiers, ...seen.filter((key) => key.startsWith("profile_id:"))]));
    expect(seen.filter((key) => key.startsWith("profile_id:")).length).toBeGreaterThanOrEqual(profiles.length);
    expect(new Set(seen).size).toBe(seen.length);
    expect((await shard0.routingState()).indexFilled).toBe(true);
  });
});
