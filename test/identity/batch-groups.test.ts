import { describe, expect, it } from "vitest";
import { hotKeys, KeyGroups, placeGroups } from "../../workers/identity/sharding/batch-groups";

describe("grouping a batch's events for the shards", () => {
  it("counts a key as bound for quarantine only past the threshold of distinct user ids, and never a user id", () => {
    const events = [1, 2, 3, 4].map((n) => [`user_id:u${n}`, "anonymous_id:kiosk", `anonymous_id:own-${n}`]);
    expect(hotKeys(events, 3)).toEqual(new Set(["anonymous_id:kiosk"]));
    expect(hotKeys(events.slice(0, 3), 3)).toEqual(new Set());
    // The same user id again is not another person.
    expect(hotKeys([...events.slice(0, 3), ["user_id:u1", "anonymous_id:kiosk"]], 3)).toEqual(new Set());
  });

  it("puts keys met on one event in one group, through any chain of events", () => {
    const groups = new KeyGroups();
    groups.add(["a:1", "b:1"]);
    groups.add(["b:1", "c:1"]);
    groups.add(["d:1"]);
    groups.add(["c:1", "e:1"]);
    const all = [...groups.groups().values()].map((keys) => keys.sort());
    expect(all.sort()).toEqual([["a:1", "b:1", "c:1", "e:1"], ["d:1"]]);
    expect(groups.root("e:1")).toBe(groups.root("a:1"));
  });

  it("places a group on the shard of its first user id, or else the one holding most of its keys, moving the rest there, merged per pair of shards", () => {
    const placed: Record<string, number> = { "user_id:u1": 2, "email:p@x.com": 2, "anonymous_id:phone": 0, "anonymous_id:tablet": 0, "anonymous_id:laptop": 1, "user_id:u2": 1 };
    const groups = new Map([
      ["g1", ["user_id:u1", "email:p@x.com", "anonymous_id:phone", "anonymous_id:new"]],
      ["g2", ["anonymous_id:tablet", "anonymous_id:laptop", "user_id:u2"]],
      ["g3", ["anonymous_id:fresh", "user_id:fresh"]],
      // Two user ids: the first in key order decides, though the other's shard holds more keys.
      ["g4", ["user_id:b", "email:b@x.com", "anonymous_id:b", "user_id:a"]],
    ]);
    Object.assign(placed, { "user_id:b": 5, "email:b@x.com": 5, "anonymous_id:b": 5, "user_id:a": 6 });
    const { targets, moves } = placeGroups(groups, (key) => placed[key], () => 7);
    expect(targets).toEqual(new Map([["g1", 2], ["g2", 1], ["g3", 7], ["g4", 6]]));
    expect(moves).toEqual([
      { from: 0, to: 2, keys: ["anonymous_id:phone"] },
      { from: 0, to: 1, keys: ["anonymous_id:tablet"] },
      { from: 5, to: 6, keys: ["user_id:b", "email:b@x.com", "anonymous_id:b"] },
    ]);
  });

  it("breaks a tie toward the lower shard, and asks for no move when a group sits on one shard", () => {
    const placed: Record<string, number> = { "a:1": 3, "b:1": 1, "c:1": 4 };
    const { targets, moves } = placeGroups(new Map([["t", ["a:1", "b:1"]], ["one", ["c:1", "d:new"]]]), (key) => placed[key], () => 0);
    expect(targets.get("t")).toBe(1);
    expect(moves).toEqual([{ from: 3, to: 1, keys: ["a:1"] }]);
    expect(targets.get("one")).toBe(4);
  });
});
