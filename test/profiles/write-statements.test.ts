import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type ProfileRow, type WriteSet, writeStatements } from "../../workers/profiles/write-through";

const WORKSPACE = "ws_statements";

function profile(n: number, fields: Partial<ProfileRow> = {}): ProfileRow {
  const id = `prof_${String(n).padStart(4, "0")}`;
  return {
    profileId: id,
    canonicalId: null,
    userId: `user-${n}`,
    email: `person${n}@acme-shop.com`,
    phone: null,
    firstName: "Pat",
    lastName: `Lee ${n}`,
    traits: { plan: n % 2 ? "pro" : "free", nested: { visits: n, note: "it's \"quoted\"" } },
    traitMeta: { plan: { at: 1_700_000_000_000 + n, messageId: `m-${n}`, sourceId: null } },
    createdAt: 1_700_000_000_000 + n,
    firstSeenAt: 1_700_000_000_000,
    lastSeenAt: 1_700_000_100_000 + n,
    updatedAt: 1_700_000_200_000,
    lastSourceId: "src_web",
    lastMessageId: `m-${n}`,
    identifiers: [
      { type: "user_id", value: `user-${n}`, sourceId: "src_web", firstSeen: 1, lastSeen: 2 },
      { type: "email", value: `person${n}@acme-shop.com`, sourceId: null, firstSeen: 1, lastSeen: 3 },
    ],
    links: [{ groupId: `acct-${n % 7}`, sourceId: null, at: 5 }],
    segments: [{ id: "seg_1", key: "pros", name: "Pros", enteredAt: "2026-11-22T10:00:00.000Z" }],
    computedTraits: { orders: n },
    consent: {},
    ...fields,
  };
}

const writeSet = (profiles: ProfileRow[]): WriteSet => ({ profiles, accounts: [], events: [], reassign: [], erase: [] });

async function write(version: number, set: WriteSet) {
  const statements = writeStatements(env.DB, WORKSPACE, version, set);
  await env.DB.batch(statements);
  return statements.length;
}

const all = <T>(sql: string, ...params: unknown[]) =>
  env.DB.prepare(sql)
    .bind(WORKSPACE, ...params)
    .all<T>()
    .then((r) => r.results);

describe("write-through statements", () => {
  it("writes 600 profiles with their identifiers and links in a handful of statements", async () => {
    const profiles = Array.from({ length: 600 }, (_, n) => profile(n));
    const count = await write(1, writeSet(profiles));
    expect(count).toBeLessThanOrEqual(8);

    const rows = await all<{ profile_id: string; traits: string; trait_meta: string; segments: string; computed_traits: string; created_at: number; user_id: string; version: number }>(
      "SELECT * FROM profiles WHERE workspace_id = ? ORDER BY profile_id",
    );
    expect(rows).toHaveLength(600);
    expect(JSON.parse(rows[7]!.traits)).toEqual(profiles[7]!.traits);
    expect(JSON.parse(rows[7]!.trait_meta)).toEqual(profiles[7]!.traitMeta);
    expect(JSON.parse(rows[7]!.segments)).toEqual(profiles[7]!.segments);
    expect(JSON.parse(rows[7]!.computed_traits)).toEqual({ orders: 7 });
    expect(rows[7]).toMatchObject({ profile_id: "prof_0007", user_id: "user-7", created_at: 1_700_000_000_007, version: 1 });
    expect((await all("SELECT 1 FROM profile_identifiers WHERE workspace_id = ?")).length).toBe(1_200);
    expect((await all("SELECT 1 FROM account_links WHERE workspace_id = ?")).length).toBe(600);
  });

  it("removes identifiers a profile no longer holds, moves one listed by a later profile, and leaves unread lists alone", async () => {
    const [a, b, c] = [profile(900), profile(901), profile(902)];
    await write(10, writeSet([a, b, c]));
    const moved = { type: "email", value: "person900@acme-shop.com", sourceId: null, firstSeen: 1, lastSeen: 9 };
    await write(11, writeSet([
      profile(900, { identifiers: [a.identifiers![0]!], links: [] }),
      profile(901, { identifiers: [...b.identifiers!, moved] }),
      profile(902, { identifiers: null, links: null, traits: { plan: "gold" } }),
    ]));

    const identifiers = await all<{ profile_id: string; value: string }>(
      "SELECT profile_id, value FROM profile_identifiers WHERE workspace_id = ? AND profile_id IN ('prof_0900', 'prof_0901', 'prof_0902') ORDER BY profile_id, value",
    );
    expect(identifiers).toEqual([
      { profile_id: "prof_0900", value: "user-900" },
      { profile_id: "prof_0901", value: "person900@acme-shop.com" },
      { profile_id: "prof_0901", value: "person901@acme-shop.com" },
      { profile_id: "prof_0901", value: "user-901" },
      { profile_id: "prof_0902", value: "person902@acme-shop.com" },
      { profile_id: "prof_0902", value: "user-902" },
    ]);
    const links = await all<{ profile_id: string }>("SELECT profile_id FROM account_links WHERE workspace_id = ? AND profile_id IN ('prof_0900', 'prof_0902') ORDER BY profile_id");
    expect(links).toEqual([{ profile_id: "prof_0902" }]);
    const [gold] = await all<{ traits: string }>("SELECT traits FROM profiles WHERE workspace_id = ? AND profile_id = 'prof_0902'");
    expect(JSON.parse(gold!.traits)).toEqual({ plan: "gold" });
  });

  it("never lets an older version overwrite a newer profile row", async () => {
    await write(20, writeSet([profile(950, { traits: { plan: "new" } })]));
    await write(19, writeSet([profile(950, { traits: { plan: "stale" } })]));
    const [row] = await all<{ traits: string; version: number }>("SELECT traits, version FROM profiles WHERE workspace_id = ? AND profile_id = 'prof_0950'");
    expect(row).toEqual({ traits: JSON.stringify({ plan: "new" }), version: 20 });
  });

  it("splits profiles into statements whose JSON stays far below D1's largest value", async () => {
    const big = "x".repeat(20_000);
    const profiles = Array.from({ length: 60 }, (_, n) => profile(1_000 + n, { traits: { bio: big } }));
    const statements = writeStatements(env.DB, WORKSPACE, 30, writeSet(profiles));
    expect(statements.length).toBeGreaterThan(4);
    await env.DB.batch(statements);
    const rows = await all<{ traits: string }>("SELECT traits FROM profiles WHERE workspace_id = ? AND profile_id >= 'prof_1000' AND profile_id < 'prof_1060'");
    expect(rows).toHaveLength(60);
    expect(rows.every((r) => JSON.parse(r.traits).bio === big)).toBe(true);
  });
});
