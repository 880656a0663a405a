import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { graphShardName } from "../../workers/identity/sharding/graph-shards";
import { IdentifierIndex } from "../../workers/identity/sharding/identifier-index";
import { admin, basic, call, type Json, json, track, unique } from "../helpers";

/**
 * A workspace of its own for a test over three graph shards (this project's
 * binding): a web source, its identifier index, and people placed on chosen
 * shards by claiming their identifiers before their first event.
 */
export async function shardedWorkspace(prefix: string, name: string) {
  const workspaceId = `${prefix}-${unique()}`;
  expect((await admin("/admin/v1/workspaces", { method: "POST", json: { id: workspaceId, name } })).status).toBe(201);
  const { writeKey } = await json<{ writeKey: string }>(await admin("/admin/v1/sources", { method: "POST", json: { workspaceId, name: "web" } }));
  const index = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
  return {
    workspaceId,
    writeKey,
    index,
    /** Graph shard `n` of the workspace, reached directly. */
    shard: (n: number) => env.IDENTITY.getByName(graphShardName(workspaceId, n)),
    /** Sends a tracking call (`/v1/batch`, `/v1/identify?sync=true`...) with the workspace's write key. */
    send: (path: string, body: unknown) => track(path, body, writeKey),
    /** Places identifier keys on a shard before anyone sends them, as the router would have. */
    place: async (keys: string[], shard: number) => {
      for (const [key, placement] of await index.claim(keys, shard)) expect(placement.shard, key).toBe(shard);
    },
  };
}

/** A Profile API reader for the workspace: a read with an access token of scope `profiles:read`. */
export async function profileReader(workspaceId: string) {
  const { secret } = await json<{ secret: string }>(await admin("/admin/v1/tokens", { method: "POST", json: { workspaceId, name: "reader", scopes: ["profiles:read"] } }));
  return (path: string, headers: Record<string, string> = {}) => call(`/v1/spaces/${workspaceId}/collections/${path}`, { headers: { authorization: basic(secret), ...headers } });
}

/**
 * An account with two members, Ana placed on graph shard 1 and Ben on shard 2
 * before either sends anything, and a builder of their `group` calls: the
 * call at `minute` (timestamped by `at`) with its own messageId.
 */
export async function accountOnTwoShards(ws: { place(keys: string[], shard: number): Promise<void> }, at: (minute: number) => string) {
  const [ana, ben] = [`ana-${unique()}`, `ben-${unique()}`];
  const groupId = `org-${unique()}`;
  await ws.place([`user_id:${ana}`], 1);
  await ws.place([`user_id:${ben}`], 2);
  const group = (userId: string, minute: number, traits: Json) => ({ type: "group", userId, groupId, traits, timestamp: at(minute), messageId: `${userId}-g${minute}` });
  return { ana, ben, groupId, group };
}
