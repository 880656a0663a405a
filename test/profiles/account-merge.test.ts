import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { mergeAccountCopies } from "../../workers/identity/sharding/profile-reads";
import { applyWrites, type TraitState, traitMeta, traitValues, toWrites } from "../../workers/profiles/traits";
import { type AccountRow, writeStatements } from "../../workers/profiles/write-through";

/**
 * D1's `accounts` row as graph shards write their copies of one account
 * through, each under its own write version. The expected rows are what a
 * strong read merges from the same copies (`mergeAccountCopies`).
 */

const WORKSPACE = "ws_account_merge";
const at = (minute: number) => Date.UTC(2026, 10, 3, 8, minute);
let counter = 0;
const newGroup = () => `org-${(counter++).toString(36)}-${Date.now().toString(36)}`;

/** One shard's copy of an account after the group calls it saw, built as the shard builds it (per-trait last write wins). */
function copy(groupId: string, calls: { minute: number; messageId: string; traits: Record<string, unknown>; source?: string }[]): AccountRow {
  const state: TraitState = new Map();
  for (const call of calls) applyWrites(state, toWrites(call.traits, at(call.minute), call.messageId, call.source ?? "src_web"));
  const writes = [...state.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const latest = calls.reduce((best, call) => (call.minute >= best.minute ? call : best));
  return {
    groupId,
    traits: traitValues(writes),
    traitMeta: traitMeta(writes),
    createdAt: Math.min(...calls.map((call) => at(call.minute))),
    updatedAt: at(latest.minute),
    lastSourceId: latest.source ?? "src_web",
    lastMessageId: latest.messageId,
  };
}

async function write(version: number, ...accounts: AccountRow[]) {
  await env.DB.batch(writeStatements(env.DB, WORKSPACE, version, { profiles: [], accounts, events: [], reassign: [], erase: [] }));
}

type StoredAccount = { traits: string; trait_meta: string; created_at: number; updated_at: number; last_source_id: string | null; last_message_id: string | null; version: number };

async function stored(groupId: string) {
  const row = await env.DB.prepare("SELECT * FROM accounts WHERE workspace_id = ? AND group_id = ?").bind(WORKSPACE, groupId).first<StoredAccount>();
  if (!row) return null;
  return {
    account: {
      groupId,
      traits: JSON.parse(row.traits) as Record<string, unknown>,
      traitMeta: JSON.parse(row.trait_meta) as Record<string, unknown>,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      lastSourceId: row.last_source_id,
      lastMessageId: row.last_message_id,
    } satisfies AccountRow,
    version: row.version,
    text: row.traits,
  };
}

/** Two shards' copies of one account: each wins some traits, and each holds one the other never wrote. */
function twoCopies(groupId: string) {
  const a = copy(groupId, [
    { minute: 1, messageId: "a-1", traits: { name: "Acme", plan: "free", seats: 10, "a.b": "dotted", only_a: [1, "two", { three: 3 }] } },
    { minute: 5, messageId: "a-5", traits: { seats: 25, active: false, address: { city: "Berlin", zip: null } } },
  ]);
  const b = copy(groupId, [
    { minute: 0, messageId: "b-0", traits: { name: "Acme (old)", plan: "trial", 'say "hi"': "quoted" }, source: "src_app" },
    { minute: 3, messageId: "b-3", traits: { plan: "pro", active: true, ratio: 0.1, churn: null, only_b: { nested: [true, false, null] } }, source: "src_app" },
    // Same time as a's last write: the larger messageId wins the trait.
    { minute: 5, messageId: "b-5", traits: { seats: 30 }, source: "src_app" },
  ]);
  return { a, b };
}

describe("D1's accounts row over several graph shards", () => {
  it("holds the latest write of each trait from either copy, whichever order and versions they are written in", async () => {
    const expected = mergeAccountCopies(Object.values(twoCopies("x")))!;
    // The merged copy takes traits from both: otherwise this test could pass with one copy replacing the other.
    expect(expected.traits).toMatchObject({ name: "Acme", plan: "pro", seats: 30, active: false });

    const orders: [string, (a: AccountRow, b: AccountRow) => Promise<void>][] = [
      ["a, then b under a lower version", async (a, b) => (await write(9, a), await write(4, b))],
      ["b, then a under a lower version", async (a, b) => (await write(9, b), await write(4, a))],
      ["a, b, then a again", async (a, b) => (await write(2, a), await write(3, b), await write(2, a))],
      ["both in one statement", async (a, b) => write(7, a, b)],
    ];
    for (const [order, run] of orders) {
      const groupId = newGroup();
      const { a, b } = twoCopies(groupId);
      await run(a, b);
      const row = (await stored(groupId))!;
      expect(row.account, order).toEqual({ ...expected, groupId });
      expect(row.account.traitMeta.seats, order).toEqual({ updatedAt: new Date(at(5)).toISOString(), messageId: "b-5", sourceId: "src_app" });
      expect(row.account, order).toMatchObject({ createdAt: at(0), updatedAt: at(5), lastMessageId: "b-5", lastSourceId: "src_app" });
      // Keys sorted as the shards write them.
      expect(Object.keys(row.account.traits), order).toEqual(Object.keys(row.account.traits).sort());
    }
  });

  it("keeps every value's JSON type: strings, numbers, booleans, null, objects and arrays", async () => {
    const groupId = newGroup();
    const values = { s: "1", n: 1, f: 1.0000000000000002, big: 1e300, t: true, no: false, z: null, o: { deep: { list: [true, 0, "0", null] } }, arr: [], empty: {}, "": "blank key", 'q"x': "\\" };
    const first = copy(groupId, [{ minute: 1, messageId: "m-1", traits: { s: "old" } }]);
    const second = copy(groupId, [{ minute: 2, messageId: "m-2", traits: values }]);
    // Every value goes through the merge: the second write conflicts with the stored row.
    await write(1, first);
    await write(1, second);
    const row = (await stored(groupId))!;
    expect(row.account.traits).toStrictEqual(values);
    expect(JSON.parse(row.text)).toStrictEqual(values);
  });

  it("keeps a trait only one copy has written, with its meta", async () => {
    const groupId = newGroup();
    const older = copy(groupId, [{ minute: 1, messageId: "old", traits: { industry: "retail", plan: "free" } }]);
    const newer = copy(groupId, [{ minute: 9, messageId: "new", traits: { plan: "team" } }]);
    await write(5, older);
    await write(6, newer);
    const row = (await stored(groupId))!;
    expect(row.account.traits).toEqual({ industry: "retail", plan: "team" });
    expect(row.account.traitMeta).toEqual({ industry: older.traitMeta.industry, plan: newer.traitMeta.plan });
    expect(row.version).toBe(6);
  });

  it("takes a trait without meta as older than any write that has one", async () => {
    const groupId = newGroup();
    const withMeta = copy(groupId, [{ minute: 4, messageId: "m-4", traits: { plan: "pro", seats: 5 } }]);
    await write(1, { ...withMeta, traits: { plan: "legacy", seats: 99, tier: "gold" }, traitMeta: {} });
    await write(2, withMeta);
    const merged = (await stored(groupId))!.account;
    expect(merged.traits).toEqual({ plan: "pro", seats: 5, tier: "gold" });
    expect(merged.traitMeta).toEqual(withMeta.traitMeta);
    // And the other way round: a copy without meta takes nothing from the stored row.
    await write(3, { ...withMeta, traits: { plan: "legacy" }, traitMeta: {} });
    expect((await stored(groupId))!.account.traits).toEqual({ plan: "pro", seats: 5, tier: "gold" });
  });
});

describe("D1's accounts row with one graph shard", () => {
  it("keeps an account without traits as empty objects when it is written again", async () => {
    const groupId = newGroup();
    const bare = copy(groupId, [{ minute: 1, messageId: "m-1", traits: {} }]);
    await write(1, bare);
    await write(2, { ...bare, updatedAt: at(2), lastMessageId: "m-2" });
    const row = (await stored(groupId))!;
    expect(row.account).toEqual({ ...bare, updatedAt: at(2), lastMessageId: "m-2" });
    expect(row.text).toBe("{}");
  });


  it("is the shard's latest copy after every write, as replacing the row gave, and an older version changes nothing", async () => {
    const groupId = newGroup();
    const calls = [
      { minute: 10, messageId: "m-10", traits: { name: "Acme", plan: "free" } },
      { minute: 5, messageId: "m-05", traits: { plan: "trial", seats: 3 } },
      { minute: 20, messageId: "m-20", traits: { plan: "pro", address: { city: "Paris" } } },
      { minute: 20, messageId: "m-21", traits: { seats: 8, address: { city: "Lyon" } }, source: "src_app" },
      { minute: 15, messageId: "m-15", traits: { name: "Acme Inc", flag: true } },
    ];
    const copies: AccountRow[] = [];
    for (const [n, call] of calls.entries()) {
      // The shard's copy after each call, written under its next version.
      copies.push(copy(groupId, calls.slice(0, n + 1)));
      await write(n + 1, copies[n]!);
      const row = (await stored(groupId))!;
      expect(row.account, call.messageId).toEqual(copies[n]);
      expect(row.version).toBe(n + 1);
    }
    await write(2, copies[1]!);
    const row = (await stored(groupId))!;
    expect(row.account).toEqual(copies.at(-1));
    expect(row.version).toBe(calls.length);
  });
});
