import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import { queuedEvents } from "./queued-events";

const event = queuedEvents("obj");

describe("IdentityGraphShard", () => {
  it("resolves events, and a redelivered batch changes nothing", async () => {
    const stub = env.IDENTITY.getByName("ws-object-1");
    const batch = [
      event({ anonymousId: "a1" }),
      event({ anonymousId: "a1", userId: "u1", traits: { email: "Pat@Acme-Shop.com" } }),
      event({ anonymousId: "a2", traits: { email: "pat@acme-shop.com" } }),
    ];
    const first = await stub.resolveEvents(batch);
    expect(new Set(first.map((a) => a.profileId)).size).toBe(1);
    const again = await stub.resolveEvents(batch);
    expect(again.map((a) => a.profileId)).toEqual(first.map((a) => a.profileId));
    expect(again.every((a) => a.mergeId === undefined)).toBe(true);
    const profile = await stub.lookup("email:pat@acme-shop.com");
    expect(profile!.identifiers.map((i) => `${i.type}:${i.value}`).sort()).toEqual(["anonymous_id:a1", "anonymous_id:a2", "email:pat@acme-shop.com", "user_id:u1"]);
  });

  it("never turns a blocked placeholder into an identifier", async () => {
    const stub = env.IDENTITY.getByName("ws-object-2");
    const [one, two] = await stub.resolveEvents([event({ userId: "u1", anonymousId: "undefined" }), event({ userId: "u2", anonymousId: "undefined" })]);
    expect(one!.profileId).not.toBe(two!.profileId);
    expect(await stub.lookup("anonymous_id:undefined")).toBeNull();
  });

  it("keeps its graph across eviction, in its tables", async () => {
    const stub = env.IDENTITY.getByName("ws-object-3");
    const events = Array.from({ length: 1_200 }, (_, i) => event({ userId: `u${i % 300}`, anonymousId: `dev-${i % 300}-${Math.floor(i / 300) % 2}` }));
    for (let i = 0; i < events.length; i += 2) await stub.resolveEvents(events.slice(i, i + 2));
    const before = await stub.lookup("user_id:u7");
    const clusterRows = await runInDurableObject(stub, (_i: IdentityGraphShard, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM graph_clusters WHERE live = 1").one().n);
    expect(clusterRows).toBe(300);
    await evictDurableObject(stub);
    const after = await stub.lookup("user_id:u7");
    expect(after).toEqual(before);
    expect(after!.identifiers).toHaveLength(3);
  });

  it("unmerges through the object and refuses an unknown merge with a clear error", async () => {
    const stub = env.IDENTITY.getByName("ws-object-4");
    const [, , merging] = await stub.resolveEvents([event({ anonymousId: "x1", traits: { email: "x@acme-shop.com" } }), event({ anonymousId: "x2" }), event({ anonymousId: "x2", traits: { email: "x@acme-shop.com" } })]);
    expect(merging!.mergeId).toBeDefined();
    const result = await stub.unmerge(merging!.mergeId!);
    if (!result.ok) throw new Error(result.detail);
    expect(result.restored).toHaveLength(1);
    expect((await stub.lookup("anonymous_id:x2"))!.profileId).toBe(result.restored[0]);
    expect(await stub.unmerge("mrg_missing")).toMatchObject({ ok: false, code: "NOT_FOUND" });
    expect(await stub.unmerge(merging!.mergeId!)).toMatchObject({ ok: false, code: "CONFLICT", detail: expect.stringContaining("already retracted") });
  });

  it("applies new settings to later decisions only", async () => {
    const stub = env.IDENTITY.getByName("ws-object-5");
    await stub.resolveEvents([event({ userId: "u1", traits: { email: "a.b+news@gmail.com" } })]);
    await stub.putSettings({ email: { stripDots: true, stripPlusTags: true } });
    const [later] = await stub.resolveEvents([event({ anonymousId: "z", traits: { email: "ab@gmail.com" } })]);
    expect((await stub.lookup("user_id:u1"))!.profileId).not.toBe(later!.profileId);
    const refused = await stub.putSettings({ clusterCap: 1 });
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.errors.map((e) => e.path)).toEqual(["clusterCap"]);
    expect((await stub.getSettings()).email.stripDots).toBe(true);
  });
});
