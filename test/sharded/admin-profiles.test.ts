import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { graphShardName } from "../../workers/identity/sharding/graph-shards";
import { IdentifierIndex } from "../../workers/identity/sharding/identifier-index";
import { admin, json, track, unique, until } from "../helpers";

/**
 * The admin profile reads with IDENTITY_GRAPH_SHARDS = 3 (this project's
 * binding): events go through the real queue consumer and router, and the
 * reads find people on whichever shard holds them.
 */

interface ProfileSummary {
  profileId: string;
  identifiers: { type: string; value: string }[];
}

async function workspaceWithPeople(people: number) {
  const workspaceId = `shard-${unique()}`;
  await admin("/admin/v1/workspaces", { method: "POST", json: { id: workspaceId, name: "Sharded" } });
  const { writeKey } = await json<{ writeKey: string }>(await admin("/admin/v1/sources", { method: "POST", json: { workspaceId, name: "web" } }));
  const batch = Array.from({ length: people }, (_, p) => ({ type: "identify", userId: `user-${p}`, anonymousId: `anon-${p}`, traits: { email: `person${p}@acme-shop.com` }, messageId: `${workspaceId}-${p}` }));
  expect((await track("/v1/batch", { batch }, writeKey)).status).toBe(200);
  await until("every person resolved", async () => {
    const page = await json<{ data: ProfileSummary[] }>(await admin(`/admin/v1/profiles?workspaceId=${workspaceId}&limit=200`));
    return page.data.length === people ? true : undefined;
  });
  return workspaceId;
}

describe("admin profile reads over three graph shards", () => {
  it("lists the live profiles of every shard in id order, page by page, skipping and repeating none", async () => {
    const workspaceId = await workspaceWithPeople(14);
    const seen: ProfileSummary[] = [];
    for (let cursor: string | null = null, pages = 0; pages < 10; pages++) {
      const page: { data: ProfileSummary[]; next: string | null } = await json(await admin(`/admin/v1/profiles?workspaceId=${workspaceId}&limit=5${cursor ? `&cursor=${cursor}` : ""}`));
      seen.push(...page.data);
      if (!page.next) break;
      cursor = page.next;
    }
    const ids = seen.map((p) => p.profileId);
    expect(ids).toHaveLength(14);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(seen.map((p) => p.identifiers.find((i) => i.type === "user_id")!.value)).size).toBe(14);
    // The people really are spread: each shard lists some of them itself.
    const perShard = await Promise.all([0, 1, 2].map(async (n) => (await env.IDENTITY.getByName(graphShardName(workspaceId, n)).listProfiles(null, 100)).profiles.length));
    expect(perShard.every((count) => count > 0)).toBe(true);
    expect(perShard.reduce((a, b) => a + b, 0)).toBe(14);
  });

  it("finds a profile by identifier and shows its graph by id, on the shard the index places it", async () => {
    const workspaceId = await workspaceWithPeople(9);
    const index = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    const placements = await index.locate(Array.from({ length: 9 }, (_, p) => `user_id:user-${p}`));
    // A person away from shard 0, where a read that ignored the index would look.
    const p = Array.from({ length: 9 }, (_, i) => i).find((i) => placements.get(`user_id:user-${i}`)!.shard !== 0)!;
    expect(p).toBeDefined();

    const found = await json<{ data: ProfileSummary[] }>(await admin(`/admin/v1/profiles?workspaceId=${workspaceId}&identifier=${encodeURIComponent(`email:Person${p}@ACME-shop.com`)}`));
    expect(found.data).toHaveLength(1);
    expect(found.data[0]!.identifiers.map((i) => `${i.type}:${i.value}`).sort()).toEqual([`anonymous_id:anon-${p}`, `email:person${p}@acme-shop.com`, `user_id:user-${p}`]);

    const graph = await json<{ profileId: string; links: { messageId: string }[] }>(await admin(`/admin/v1/profiles/${found.data[0]!.profileId}/graph?workspaceId=${workspaceId}`));
    expect(graph.profileId).toBe(found.data[0]!.profileId);
    expect(graph.links.map((l) => l.messageId)).toEqual([`${workspaceId}-${p}`]);

    // Nobody holds these: an empty answer and a 404, not a read of the wrong shard.
    expect((await json<{ data: unknown[] }>(await admin(`/admin/v1/profiles?workspaceId=${workspaceId}&identifier=user_id:nobody`))).data).toEqual([]);
    expect((await admin(`/admin/v1/profiles/prof_s2_zzzzzz/graph?workspaceId=${workspaceId}`)).status).toBe(404);
  });

  it("writes identity settings to every shard, so each resolves with them", async () => {
    const workspaceId = `shard-${unique()}`;
    await admin("/admin/v1/workspaces", { method: "POST", json: { id: workspaceId, name: "Sharded settings" } });
    const response = await admin(`/admin/v1/identity/settings?workspaceId=${workspaceId}`, { method: "PUT", json: { clusterCap: 40 } });
    expect(response.status).toBe(200);
    const caps = await Promise.all([0, 1, 2].map(async (n) => (await env.IDENTITY.getByName(graphShardName(workspaceId, n)).getSettings()).clusterCap));
    expect(caps).toEqual([40, 40, 40]);
  });
});
