import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IdentifierIndexShard } from "../../durable-objects/identifier-index";
import { fnv1a, IdentifierIndex, INDEX_SHARDS, indexObjectName, indexShardOf, shardHash } from "../../workers/identity/sharding/identifier-index";

/** An index object of its own for each test. */
const object = () => env.IDENTIFIER_INDEX.getByName(`ws-${crypto.randomUUID().slice(0, 8)}/index/0`);
const workspace = () => `ws-${crypto.randomUUID().slice(0, 8)}`;

/** Every row an index object holds, as `key → shard` (with `!` for a quarantined key). */
const rowsOf = (workspaceId: string, n: number) =>
  runInDurableObject(env.IDENTIFIER_INDEX.getByName(indexObjectName(workspaceId, n)), (_o: IdentifierIndexShard, state) =>
    Object.fromEntries(
      state.storage.sql
        .exec<{ key: string; shard: number; quarantined: number }>("SELECT key, shard, quarantined FROM placements ORDER BY key")
        .toArray()
        .map((r) => [r.key, `${r.shard}${r.quarantined ? "!" : ""}`]),
    ),
  );

function seeded(seed: number) {
  let state = seed;
  return () => (state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** `count` distinct keys that the client sends to index object `n`. */
function keysOnObject(n: number, count: number, prefix = "anonymous_id:k"): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) if (indexShardOf(`${prefix}${i}`) === n) keys.push(`${prefix}${i}`);
  return keys;
}

const placed = (shard: number, quarantined = false) => ({ shard, quarantined });

describe("IdentifierIndexShard", () => {
  it("places unclaimed keys on the shard claimed for; a later claim for another shard gets the first shard back and places only the new keys", async () => {
    const index = object();
    expect(await index.claim(["email:pat@x.com", "anonymous_id:a1"], 2)).toEqual({ "email:pat@x.com": placed(2), "anonymous_id:a1": placed(2) });
    expect(await index.claim(["email:pat@x.com", "user_id:u1"], 5)).toEqual({ "email:pat@x.com": placed(2), "user_id:u1": placed(5) });
    expect(await index.locate(["email:pat@x.com", "anonymous_id:a1", "user_id:u1"])).toEqual({ "email:pat@x.com": placed(2), "anonymous_id:a1": placed(2), "user_id:u1": placed(5) });
  });

  it("leaves keys never claimed out of what locate answers", async () => {
    const index = object();
    await index.claim(["user_id:u1"], 0);
    expect(await index.locate(["user_id:u1", "user_id:u2", "email:nobody@x.com"])).toEqual({ "user_id:u1": placed(0) });
    expect(await index.locate([])).toEqual({});
  });

  it("repoints only the keys still on from: a key on another shard is answered back and stays, a key never placed goes to to", async () => {
    const index = object();
    await index.claim(["user_id:u1", "anonymous_id:a1"], 1);
    await index.claim(["anonymous_id:a2"], 3);
    const left = await index.repoint(["user_id:u1", "anonymous_id:a1", "anonymous_id:a2", "email:new@x.com"], 1, 4);
    expect(left).toEqual({ "anonymous_id:a2": placed(3) });
    expect(await index.locate(["user_id:u1", "anonymous_id:a1", "anonymous_id:a2", "email:new@x.com"])).toEqual({
      "user_id:u1": placed(4),
      "anonymous_id:a1": placed(4),
      "anonymous_id:a2": placed(3),
      "email:new@x.com": placed(4),
    });
    // Done again, it finds the keys already on `to` and changes nothing.
    expect(await index.repoint(["user_id:u1", "anonymous_id:a1"], 1, 4)).toEqual({});
  });

  it("counts a key already on to as repointed only when the same move put it there", async () => {
    const index = object();
    await index.claim(["anonymous_id:mine"], 1);
    await index.claim(["anonymous_id:theirs"], 4);
    expect(await index.repoint(["anonymous_id:mine", "anonymous_id:theirs"], 1, 4, "mov_a")).toEqual({ "anonymous_id:theirs": placed(4) });
    // The same move again finds its own key done; another move finds both keys put there by someone else.
    expect(await index.repoint(["anonymous_id:mine"], 1, 4, "mov_a")).toEqual({});
    expect(await index.repoint(["anonymous_id:mine", "anonymous_id:theirs"], 2, 4, "mov_b")).toEqual({ "anonymous_id:mine": placed(4), "anonymous_id:theirs": placed(4) });
  });

  it("marks keys quarantined and clears the mark, reported by locate and claim, and the keys keep their shard", async () => {
    const index = object();
    await index.claim(["device_id:kiosk-1", "device_id:kiosk-2"], 6);
    expect(await index.setQuarantined(["device_id:kiosk-1", "device_id:kiosk-2", "device_id:never-seen"], true)).toBe(2);
    expect(await index.setQuarantined(["device_id:kiosk-1"], true)).toBe(0);
    expect(await index.locate(["device_id:kiosk-1", "device_id:never-seen"])).toEqual({ "device_id:kiosk-1": placed(6, true) });
    expect(await index.claim(["device_id:kiosk-1", "device_id:kiosk-3"], 9)).toEqual({ "device_id:kiosk-1": placed(6, true), "device_id:kiosk-3": placed(9) });
    expect(await index.setQuarantined(["device_id:kiosk-1"], false)).toBe(1);
    expect(await index.locate(["device_id:kiosk-1", "device_id:kiosk-2"])).toEqual({ "device_id:kiosk-1": placed(6), "device_id:kiosk-2": placed(6, true) });
  });

  it("releases only the keys on from", async () => {
    const index = object();
    await index.claim(["email:gone@x.com", "user_id:gone"], 2);
    await index.claim(["anonymous_id:other"], 7);
    expect(await index.release(["email:gone@x.com", "user_id:gone", "anonymous_id:other", "user_id:never"], 2)).toBe(2);
    expect(await index.locate(["email:gone@x.com", "user_id:gone", "anonymous_id:other"])).toEqual({ "anonymous_id:other": placed(7) });
    expect(await index.release(["email:gone@x.com"], 2)).toBe(0);
  });

  it("keeps its placements across eviction", async () => {
    const index = object();
    await index.claim(["user_id:u1"], 11);
    await index.setQuarantined(["user_id:u1"], true);
    await evictDurableObject(index);
    expect(await index.locate(["user_id:u1"])).toEqual({ "user_id:u1": placed(11, true) });
  });

  it("takes 10,000 keys of the longest length in one call, though their JSON is past SQLite's 2 MB value limit", async () => {
    const index = object();
    const keys = Array.from({ length: 10_000 }, (_, i) => `email:${String(i).padStart(1_018, "x")}`);
    expect(keys.every((k) => k.length === 1_024)).toBe(true);
    expect(Object.keys(await index.claim(keys, 1))).toHaveLength(10_000);
    expect(await index.release(keys, 1)).toBe(10_000);
  });

  // Called on the instance: a Durable Object RPC that rejects leaks an unhandled rejection in
  // this test pool (cloudflare/workers-sdk#14736), though the caller gets the same Error.
  it("refuses a key over 1,024 characters, naming the limit and the key's type, with nothing placed", async () => {
    const index = object();
    const long = `email:${"x".repeat(1_019)}`;
    await runInDurableObject(index, (instance: IdentifierIndexShard) => {
      expect(() => instance.claim(["user_id:u1", long], 0)).toThrow(/keys\[1\] \(type email\) is 1025 characters long; an identifier key is at most 1024/);
      expect(() => instance.claim(["not an identifier"], 0)).toThrow(/type:value/);
      expect(() => instance.claim([42 as unknown as string], 0)).toThrow(/keys\[0\] must be a string/);
      expect(() => instance.locate("user_id:u1" as unknown as string[])).toThrow(/keys must be an array/);
    });
    expect(await index.locate(["user_id:u1"])).toEqual({});
  });

  it("refuses a negative or fractional shard and more than 10,000 keys in one call, with nothing placed", async () => {
    const index = object();
    const tooMany = Array.from({ length: 10_001 }, (_, i) => `user_id:u${i}`);
    await runInDurableObject(index, (instance: IdentifierIndexShard) => {
      expect(() => instance.claim(["user_id:u1"], -1)).toThrow(/^shard must be an integer from 0 to 63/);
      expect(() => instance.claim(["user_id:u1"], 1.5)).toThrow(/^shard must be an integer/);
      expect(() => instance.claim(["user_id:u1"], 64)).toThrow(/fewer than 64 graph shards/);
      expect(() => instance.repoint(["user_id:u1"], 0, -2)).toThrow(/^to must be an integer/);
      expect(() => instance.release(["user_id:u1"], 0.5)).toThrow(/^from must be an integer/);
      expect(() => instance.setQuarantined(["user_id:u1"], "yes" as unknown as boolean)).toThrow(/quarantined must be a boolean/);
      expect(() => instance.claim(tooMany, 0)).toThrow(/keys holds 10001 keys; at most 10000 are accepted in one call/);
    });
    expect(await index.locate(["user_id:u1", "user_id:u10000"])).toEqual({});
  });
});

describe("IdentifierIndex (the client)", () => {
  it("ends 50 concurrent claims of overlapping keys with every key on exactly one shard, the one every caller was told", async () => {
    const workspaceId = workspace();
    const random = seeded(7);
    const pool = Array.from({ length: 300 }, (_, i) => `email:person${i}@acme-shop.com`);
    const claims = Array.from({ length: 50 }, (_, caller) => ({ shard: caller % 8, keys: shuffle(pool, random).slice(0, 120) }));
    const answers = await Promise.all(claims.map(({ keys, shard }) => new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId).claim(keys, shard)));

    const final = await new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId).locate(pool);
    const claimed = new Set(claims.flatMap((c) => c.keys));
    expect(final.size).toBe(claimed.size);
    answers.forEach((answer, caller) => {
      expect(answer.size).toBe(claims[caller]!.keys.length);
      for (const [key, placement] of answer) expect(placement).toEqual(final.get(key));
    });
    const rows = (await Promise.all(Array.from({ length: INDEX_SHARDS }, (_, n) => rowsOf(workspaceId, n)))).flatMap((r) => Object.keys(r));
    expect(rows.sort()).toEqual([...claimed].sort());
  });

  it("sends each key to the object indexShardOf names, so each object holds exactly its keys", async () => {
    const workspaceId = workspace();
    const keys = Array.from({ length: 200 }, (_, i) => `user_id:u${i}`);
    const answer = await new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId).claim(keys, 3);
    expect([...answer.keys()]).toEqual(keys);
    for (const n of [indexShardOf("user_id:u0"), indexShardOf("user_id:u1")]) {
      const mine = keys.filter((k) => indexShardOf(k) === n).sort();
      expect(mine.length).toBeGreaterThan(0);
      expect(await rowsOf(workspaceId, n)).toEqual(Object.fromEntries(mine.map((k) => [k, "3"])));
    }
  });

  it("de-duplicates keys and answers each once, in the order first given", async () => {
    const workspaceId = workspace();
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    const answer = await client.claim(["user_id:b", "user_id:a", "user_id:b", "user_id:a"], 0);
    expect([...answer.keys()]).toEqual(["user_id:b", "user_id:a"]);
    expect(await client.setQuarantined(["user_id:a", "user_id:a"], true)).toBe(1);
    expect(await client.release(["user_id:a", "user_id:a", "user_id:b"], 0)).toBe(2);
  });

  it("handles more than 10,000 keys for one object by sending them in several calls", async () => {
    const workspaceId = workspace();
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    const keys = [...keysOnObject(5, 10_500), "user_id:elsewhere"];
    expect((await client.claim(keys, 2)).size).toBe(10_501);
    expect(Object.keys(await rowsOf(workspaceId, 5))).toHaveLength(10_500);
    expect((await client.repoint(keys, 2, 4)).size).toBe(0);
    expect(await client.setQuarantined(keys, true)).toBe(10_501);
    expect(await client.release(keys, 4)).toBe(10_501);
    expect((await client.locate(keys)).size).toBe(0);
  });

  it("refuses a bad key or shard before calling any object, so nothing is placed", async () => {
    const workspaceId = workspace();
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    const good = Array.from({ length: 50 }, (_, i) => `user_id:u${i}`);
    await expect(client.claim([...good, `phone:${"1".repeat(1_100)}`], 0)).rejects.toThrow(/\(type phone\) is 1106 characters long; an identifier key is at most 1024/);
    await expect(client.claim(good, 2.5)).rejects.toThrow(/shard must be an integer from 0 to 63/);
    await expect(client.repoint(good, -1, 0)).rejects.toThrow(/^from must be an integer/);
    expect((await client.locate(good)).size).toBe(0);
  });
});

describe("indexShardOf", () => {
  it("is stable: fixed keys always land on the same objects", () => {
    expect(["email:pat@x.com", "anonymous_id:abc", "user_id:u1", "profile_id:prof_00000a", "phone:+14155550100"].map(indexShardOf)).toEqual([2, 1, 1, 14, 4]);
    // The published FNV-1a test vectors: "" and "a".
    expect([fnv1a(""), fnv1a("a")]).toEqual([0x811c9dc5, 0xe40c292c]);
    expect(shardHash("a")).toBe(444_641_715);
    // The final mix lets every bit of a character count: "a" and "q" differ only above the low four bits.
    expect([indexShardOf("a"), indexShardOf("q")]).toEqual([3, 10]);
    expect(indexObjectName("acme", 7)).toBe("acme/index/7");
  });

  it("spreads 10,000 random keys over all 16 objects roughly evenly", () => {
    const counts = new Array<number>(INDEX_SHARDS).fill(0);
    for (let i = 0; i < 10_000; i++) counts[indexShardOf(`anonymous_id:${crypto.randomUUID()}`)]!++;
    for (const count of counts) {
      expect(count).toBeGreaterThanOrEqual(400);
      expect(count).toBeLessThanOrEqual(850);
    }
  });
});
