import { describe, expect, it } from "vitest";
import { type Json, json, until } from "../helpers";
import { accountOnTwoShards, profileReader, shardedWorkspace } from "./sharded-workspace";

/**
 * An account whose members are on two graph shards, read from D1 (the
 * Profile API's default read) with IDENTITY_GRAPH_SHARDS = 3: each shard
 * writes its own copy through, and D1's row merges them trait by trait.
 */

const at = (minute: number) => new Date(Date.UTC(2026, 10, 4, 9, minute)).toISOString();

async function workspace() {
  const ws = await shardedWorkspace("acct", "Sharded accounts");
  return { ...ws, read: await profileReader(ws.workspaceId) };
}

describe("an account's D1 row over three graph shards", () => {
  it("shows the latest write of each trait from either shard on the default read, and a stale write from one shard takes none back", async () => {
    const ws = await workspace();
    const { ana, ben, groupId, group } = await accountOnTwoShards(ws, at);
    const batch = [
      group(ana, 2, { name: "Acme", plan: "free", seats: 10, verified: false }),
      group(ben, 4, { plan: "pro", address: { city: "Berlin", zip: null } }),
      group(ana, 6, { seats: 25 }),
      group(ben, 0, { name: "Acme (old)", plan: "trial", verified: true }),
    ];
    expect((await ws.send("/v1/batch", { batch })).status).toBe(200);

    const path = `accounts/profiles/group_id:${groupId}`;
    const latest: Record<string, { value: unknown; message_id: string }> = {
      name: { value: "Acme", message_id: `${ana}-g2` },
      plan: { value: "pro", message_id: `${ben}-g4` },
      seats: { value: 25, message_id: `${ana}-g6` },
      verified: { value: false, message_id: `${ana}-g2` },
      address: { value: { city: "Berlin", zip: null }, message_id: `${ben}-g4` },
    };
    const expected = Object.fromEntries(Object.entries(latest).map(([key, { value }]) => [key, value]));
    const canonical = (traits: Json) => JSON.stringify(Object.keys(traits).sort().map((key) => [key, traits[key]]));
    // Both shards write through, in whatever order their alarms run: neither copy alone holds these traits.
    const d1 = await until("the account's traits in D1", async () => {
      const response = await ws.read(`${path}/traits?verbose=true`);
      if (response.status !== 200) return undefined;
      const { traits } = await json<{ traits: Json }>(response);
      return canonical(Object.fromEntries(Object.entries(traits).map(([key, trait]) => [key, trait.value]))) === canonical(expected) ? traits : undefined;
    });
    for (const [key, { message_id }] of Object.entries(latest)) expect(d1[key], key).toMatchObject({ message_id, updated_at: at(Number(message_id.split("-g").at(-1))) });
    // The same account a strong read merges from the shards' copies.
    const strong = await json<{ traits: Json }>(await ws.read(`${path}/traits?verbose=true&consistency=strong`));
    expect(d1).toEqual(strong.traits);
    const metadata = async (headers: Record<string, string> = {}) => (await json<{ metadata: Json }>(await ws.read(`${path}/metadata`, headers))).metadata;
    expect(await metadata()).toMatchObject({ created_at: at(0), updated_at: at(6), last_message_id: `${ana}-g6` });

    // Ben's shard writes its copy again, under a higher version: an old call wins only the trait nobody else wrote.
    const stale = await ws.send("/v1/group?sync=true", group(ben, 1, { name: "Acme (stale)", seats: 1, region: "eu" }));
    expect(stale.status).toBe(200);
    const bookmark = { "x-d1-bookmark": stale.headers.get("x-d1-bookmark")! };
    const after = await json<{ traits: Json }>(await ws.read(`${path}/traits`, bookmark));
    expect(after.traits).toEqual({ ...expected, region: "eu" });
    expect(await metadata(bookmark)).toMatchObject({ created_at: at(0), updated_at: at(6), last_message_id: `${ana}-g6` });
    // Ben's own copy does hold the stale call, and his latest call is older than ana's: D1's row is the merge, not his copy.
    const bens = (await ws.shard(2).account(groupId)) as { traits: Json; updatedAt: number } | null;
    expect(bens).toMatchObject({ traits: { name: "Acme (stale)", plan: "pro", region: "eu" }, updatedAt: Date.parse(at(4)) });
  });
});
