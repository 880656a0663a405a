import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import { CONSENT_EVENT } from "../../workers/privacy/settings";
import type { ProfileRow } from "../../workers/profiles/write-through";
import { unique } from "../helpers";
import { buyers } from "../privacy/object-helpers";
import { eventsOf, failure, handOverAll, type Stub } from "./handover-steps";


/**
 * Pat: browses anonymously, signs up (the two profiles merge), orders, joins
 * an account, states consent. Sam: joins the same account, then sends Pat's
 * email with his own user id, which queues a review naming them both.
 */
async function workspaceWithPat() {
  const ws = `handover-${unique()}`;
  const shard0 = env.IDENTITY.getByName(ws);
  const shard1 = env.IDENTITY.getByName(`${ws}#1`);
  const event = eventsOf(ws);
  const pat = { anon: `pat-anon-${ws}`, user: `pat-${ws}`, email: `pat-${ws}@acme-shop.com`, crm: `crm-${ws}`, colour: `teal-of-${ws}` };
  const sam = { user: `sam-${ws}`, email: `sam-${ws}@acme-shop.com` };
  const group = `acme-${ws}`;
  const batch = [
    event({ type: "identify", anonymousId: pat.anon, traits: { favourite_colour: pat.colour } }, 50),
    event({ type: "identify", userId: pat.user, traits: { email: pat.email, name: "Patricia Handed" }, context: { externalIds: [{ type: "crm_id", id: pat.crm, collection: "users", encoding: "none" }] } }, 45),
    event({ event: "Order Completed", userId: pat.user, anonymousId: pat.anon, properties: { revenue: 42 } }, 40),
    event({ type: "page", name: "Home", userId: pat.user }, 35),
    event({ type: "group", userId: pat.user, groupId: group }, 30),
    event({ event: CONSENT_EVENT, userId: pat.user, context: { consent: { categoryPreferences: { analytics: true, advertising: false } } } }, 25),
    event({ type: "identify", userId: sam.user, traits: { email: sam.email } }, 20),
    event({ type: "group", userId: sam.user, groupId: group, traits: { name: "Acme Corp" } }, 15),
    event({ type: "identify", userId: sam.user, traits: { email: pat.email } }, 10),
  ];
  for (const stub of [shard0, shard1]) expect((await stub.putAudience(buyers)).ok).toBe(true);
  const assignments = await shard0.resolveEvents(batch, { sources: Object.fromEntries(batch.map((e) => [e.messageId, "src_handover"])) });
  const patId = assignments[2]!.profileId!;
  const ids = { pat: patId, absorbed: assignments[1]!.profileId!, sam: assignments[6]!.profileId!, mergeId: assignments[2]!.mergeId! };
  expect(ids.absorbed).not.toBe(patId);
  const { reviews } = await shard0.reviews("open", 0, 10);
  expect(reviews).toHaveLength(1);
  expect(reviews[0]!.clusters.sort()).toEqual([patId, ids.sam].sort());
  return { ws, shard0, shard1, event, pat, sam, group, batch, ids, review: reviews[0]!.id };
}

/** The strongly consistent read; its rows hold parsed JSON, which the RPC stub's types cannot express. */
const profileByKey = async (stub: Stub, key: string) => (await stub.profileByKey(key)) as unknown as ProfileRow | null;

/** What the object answers about a person, with the time of the read left out. */
async function answers(stub: Stub, profileId: string, userId: string) {
  const strip = (row: ProfileRow | null) => (row ? { ...row, updatedAt: 0 } : row);
  return {
    profile: await stub.profile(profileId),
    byKey: strip(await profileByKey(stub, `user_id:${userId}`)),
    byProfileId: strip(await profileByKey(stub, `profile_id:${profileId}`)),
    events: await stub.profileEvents(profileId, { order: "asc", limit: 100 }),
  };
}

/** Every row of every table of the object, as text, by table (the runtime's own tables aside). */
const tableRows = (stub: Stub, leaveOut: string[] = []) =>
  runInDurableObject(stub, (_instance: IdentityGraphShard, state) => {
    const sql = state.storage.sql;
    const tables = sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name")
      .toArray()
      .map((t) => t.name)
      .filter((name) => !leaveOut.includes(name));
    return Object.fromEntries(tables.map((table) => [table, sql.exec(`SELECT * FROM "${table}" ORDER BY 1`).toArray().map((row) => Object.values(row).map(String).join("\u0001"))]));
  });

/** The person's rows in D1, their write's time and version left out. */
async function d1Rows(ws: string, profileIds: string[]) {
  const ids = JSON.stringify(profileIds);
  const read = async (query: string) => (await env.DB.prepare(query).bind(ws, ids).all<Record<string, unknown>>()).results;
  const profiles = await read("SELECT * FROM profiles WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2)) ORDER BY profile_id");
  return {
    profiles: profiles.map(({ updated_at: _u, version: _v, ...row }) => row),
    versions: profiles.map((row) => row.version as number),
    identifiers: await read("SELECT * FROM profile_identifiers WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2)) ORDER BY type, value"),
    events: await read("SELECT * FROM profile_events WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2)) ORDER BY message_id"),
    links: await read("SELECT * FROM account_links WHERE workspace_id = ?1 AND profile_id IN (SELECT value FROM json_each(?2)) ORDER BY group_id"),
  };
}

describe("handing a person over to another graph shard", () => {
  it("moves a person with a merge, traits, events, consent, an account and a segment: the target answers as the source did, the source no longer does", async () => {
    const { shard0, shard1, pat, ids } = await workspaceWithPat();
    const before = await answers(shard0, ids.pat, pat.user);
    expect(before.profile!.merges.map((m) => m.id)).toEqual([ids.mergeId]);
    expect(before.profile!.conflicts).toHaveLength(1);
    expect(before.byKey).toMatchObject({ traits: { favourite_colour: pat.colour, email: pat.email }, segments: [expect.objectContaining({ key: "buyers" })], consent: { analytics: { consented: true } } });
    expect(before.byKey!.links).toHaveLength(1);
    expect(before.events).toHaveLength(6);

    const { moves } = await handOverAll(shard0, 0, shard1, 1, [`user_id:${pat.user}`]);
    expect(moves).toHaveLength(1);
    expect(moves[0]).toMatchObject({ from: 0, to: 1, parts: 1, completed: false });
    expect(moves[0]!.keys).toEqual(
      [`anonymous_id:${pat.anon}`, `crm_id:${pat.crm}`, `email:${pat.email}`, `user_id:${pat.user}`, `profile_id:${ids.pat}`, `profile_id:${ids.absorbed}`].sort(),
    );

    expect(await answers(shard1, ids.pat, pat.user)).toEqual(before);
    expect(await profileByKey(shard1, `profile_id:${ids.absorbed}`)).toMatchObject({ profileId: ids.pat });
    expect(await shard0.profile(ids.pat)).toBeNull();
    expect(await profileByKey(shard0, `user_id:${pat.user}`)).toBeNull();
    expect(await shard0.lookup(`email:${pat.email}`)).toBeNull();
    expect(await shard0.profileEvents(ids.pat, { order: "asc", limit: 100 })).toEqual([]);
    expect(await shard0.unmerge(ids.mergeId)).toMatchObject({ ok: false, code: "NOT_FOUND" });

    const unmerged = await shard1.unmerge(ids.mergeId);
    if (!unmerged.ok) throw new Error(unmerged.detail);
    expect(unmerged.kept).toBe(ids.pat);
    expect(unmerged.restored).toHaveLength(1);
    expect(unmerged.restored[0]).toMatch(/^prof_s1_/);
    expect((await shard1.lookup(`user_id:${pat.user}`))!.profileId).toBe(unmerged.restored[0]);
    expect((await shard1.lookup(`anonymous_id:${pat.anon}`))!.profileId).toBe(ids.pat);
    expect((await profileByKey(shard1, `user_id:${pat.user}`))!.traits).toMatchObject({ email: pat.email, name: "Patricia Handed" });
  });

  it("leaves nothing in the source naming the person but the moved marks and the rows that also name someone else", async () => {
    const { shard0, shard1, pat, sam, ids, batch, group } = await workspaceWithPat();
    const patMessages = batch.slice(0, 6).map((e) => e.messageId);
    const patValues = [ids.pat, ids.absorbed, pat.anon, pat.user, pat.email, pat.crm, pat.colour, ...patMessages];
    const samValues = [ids.sam, sam.user, ...batch.slice(6).map((e) => e.messageId)];
    const beforeTables = await tableRows(shard0);
    const naming = (rows: Record<string, string[]>) => {
      const out: Record<string, string[]> = {};
      for (const [table, lines] of Object.entries(rows)) {
        const mine = lines.filter((line) => patValues.some((v) => line.includes(v)));
        if (mine.length) out[table] = mine;
      }
      return out;
    };
    // Not a vacuous check: before the move, Pat's rows are all over the object.
    expect(Object.keys(naming(beforeTables)).length).toBeGreaterThan(15);

    await handOverAll(shard0, 0, shard1, 1, [`email:${pat.email}`]);
    const left = naming(await tableRows(shard0));
    // The marks are the person's keys, and each of their profile ids.
    expect(left.moved_keys).toHaveLength(6);
    // An account is group-level: its rows stay with the other people of this shard (the traits of the account were last written by Sam's call).
    const groupLevel = ["accounts", "account_traits"].filter((table) => left[table]);
    for (const table of groupLevel) for (const line of left[table]!) expect(line).toContain(group);
    // Every other row naming Pat is a copy naming Sam too: the review of them both, its conflict (Sam's event), Sam's event carrying Pat's email and the trait it wrote.
    const rest = Object.keys(left).filter((table) => table !== "moved_keys" && !groupLevel.includes(table));
    expect(rest.sort()).toEqual(["graph_conflicts", "graph_review_clusters", "graph_reviews", "profile_events", "profile_traits"]);
    for (const table of rest.filter((t) => t !== "graph_review_clusters")) {
      for (const line of left[table]!) expect(samValues.some((v) => line.includes(v)), `${table}: ${line}`).toBe(true);
    }
    // The review's side row names Pat's cluster and the review that names Sam's.
    expect(left.graph_review_clusters).toHaveLength(1);
    expect(left.graph_reviews).toHaveLength(1);
    const { reviews } = await shard0.reviews(undefined, 0, 10);
    expect(left.graph_review_clusters![0]).toContain(reviews[0]!.id);
    // Nothing left to write or send for them.
    const pending = await runInDurableObject(shard0, (_i: IdentityGraphShard, state) =>
      state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM outbox WHERE id IN (?, ?)", ids.pat, ids.absorbed).one().n,
    );
    expect(pending).toBe(0);
    const [move] = (await shard0.handOver([`email:${pat.email}`], 1)).moves;
    expect(await failure(shard0.handOverPart(move!.moveId, 0))).toMatch("its parts were dropped");
  });

  it("answers events carrying the person's keys as moved, defers every later event of the call, and applies the earlier ones", async () => {
    const { shard0, shard1, pat, sam, ids, event } = await workspaceWithPat();
    await handOverAll(shard0, 0, shard1, 1, [`user_id:${pat.user}`]);
    const carrying = [
      event({ userId: pat.user, event: "Viewed" }),
      event({ anonymousId: pat.anon, event: "Viewed" }),
      event({ type: "identify", userId: `new-${pat.user}`, traits: { email: pat.email } }),
      event({ anonymousId: `fresh-${pat.anon}`, event: "Viewed", context: { externalIds: [{ type: "crm_id", id: pat.crm, collection: "users", encoding: "none" }] } }),
      event({ type: "alias", userId: `renamed-${pat.user}`, previousId: pat.user }),
    ];
    const expectedKeys = [`user_id:${pat.user}`, `anonymous_id:${pat.anon}`, `email:${pat.email}`, `crm_id:${pat.crm}`, `user_id:${pat.user}`];
    for (const [i, e] of carrying.entries()) {
      const [answer] = await shard0.resolveEvents([e]);
      expect(answer).toEqual({ messageId: e.messageId, profileId: null, dropped: [], moved: { key: expectedKeys[i], to: 1 } });
    }
    const applied = await shard0.appliedEvents();
    const call = [event({ userId: sam.user, event: "Paid" }), event({ anonymousId: pat.anon, event: "Viewed" }), event({ userId: sam.user, event: "Paid again" })];
    const answered = await shard0.resolveEvents(call);
    expect(answered[0]).toMatchObject({ profileId: ids.sam });
    expect(answered[1]).toMatchObject({ profileId: null, moved: { key: `anonymous_id:${pat.anon}`, to: 1 } });
    expect(answered[2]).toEqual({ messageId: call[2]!.messageId, profileId: null, dropped: [], deferred: true });
    expect(await shard0.appliedEvents()).toBe(applied + 1);
    // Sent again to the shard holding them, in order, they are applied there.
    const there = await shard1.resolveEvents(call.slice(1));
    expect(there[0]!.profileId).toBe(ids.pat);
    // Sam's user id is unknown to shard 1: he gets a profile there, with an id of that shard.
    expect(there[1]!.profileId).toMatch(/^prof_s1_/);
  });

  it("changes nothing when every part is accepted twice, the hand-over finished and completed twice, and answers the same move when asked again", async () => {
    const { shard0, shard1, pat } = await workspaceWithPat();
    const keys = [`user_id:${pat.user}`];
    const { moves } = await shard0.handOver(keys, 1);
    const move = moves[0]!;
    expect((await shard0.handOver(keys, 1)).moves).toEqual([move]);
    expect((await shard0.handOver([`anonymous_id:${pat.anon}`], 2)).moves).toEqual([move]);
    const bodies = await Promise.all(Array.from({ length: move.parts }, (_, part) => shard0.handOverPart(move.moveId, part)));
    const result = await runInDurableObject(shard1, (instance: IdentityGraphShard, state) => {
      const rows = () => {
        const sql = state.storage.sql;
        const tables = sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name").toArray();
        return Object.fromEntries(tables.map(({ name }) => [name, sql.exec(`SELECT * FROM "${name}" ORDER BY 1`).toArray().map((r) => JSON.stringify(r))]));
      };
      const first = bodies.map((body, part) => instance.acceptHandOverPart(move.moveId, 0, part, body));
      const afterFirst = rows();
      const second = bodies.map((body, part) => instance.acceptHandOverPart(move.moveId, 0, part, body));
      const afterSecond = rows();
      const finished = instance.finishHandOver(move.moveId, 0, move.keys);
      const afterFinish = rows();
      const again = instance.finishHandOver(move.moveId, 0, move.keys);
      return { first, second, afterFirst, afterSecond, finished, again, afterFinish, afterAgain: rows() };
    });
    expect(result.second).toEqual(result.first);
    expect(result.first[0]!.rows).toBeGreaterThan(20);
    expect(result.afterSecond).toEqual(result.afterFirst);
    expect(result.finished).toEqual({ profiles: 2, events: 6 });
    expect(result.again).toEqual(result.finished);
    expect(result.afterAgain).toEqual(result.afterFinish);
    await shard0.completeHandOver(move.moveId);
    await shard0.completeHandOver(move.moveId);
    await shard0.completeHandOver("mov_unknown");
    expect((await shard0.handOver(keys, 1)).moves).toEqual([{ ...move, completed: true }]);
    expect(await failure(shard0.handOverPart(move.moveId, 0))).toMatch(`hand-over ${move.moveId} is completed`);
    expect(await failure(shard0.handOverPart("mov_unknown", 0))).toBe("hand-over mov_unknown is unknown here");
  });

  it("writes the person through to D1 from the target as the source had, and a write left pending at the source never lands after the target's", async () => {
    const { ws, shard0, shard1, pat, ids, event } = await workspaceWithPat();
    await shard0.flush();
    const before = await d1Rows(ws, [ids.pat, ids.absorbed]);
    expect(before.profiles).toHaveLength(2);
    expect(before.identifiers.map((r) => r.value)).toContain(pat.email);
    expect(before.events).toHaveLength(6);
    expect(before.links).toHaveLength(1);

    await handOverAll(shard0, 0, shard1, 1, [`user_id:${pat.user}`]);
    await shard1.flush();
    await shard0.flush();
    const after = await d1Rows(ws, [ids.pat, ids.absorbed]);
    expect({ ...after, versions: [] }).toEqual({ ...before, versions: [] });
    expect(Math.min(...after.versions)).toBeGreaterThan(Math.max(...before.versions));

    // Back the other way, with a change made at shard 1 and not yet written when the person leaves: shard 0 writes it, shard 1 never does.
    const late = event({ type: "identify", userId: pat.user, traits: { plan: "team" } }, 1);
    const { moves } = await runInDurableObject(shard1, (instance: IdentityGraphShard) => {
      instance.resolveEvents([late]);
      return instance.handOver([`user_id:${pat.user}`], 0);
    });
    const pending = await runInDurableObject(shard1, (_i: IdentityGraphShard, state) =>
      state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM outbox WHERE id IN (?, ?)", ids.pat, ids.absorbed).one().n,
    );
    expect(pending).toBe(0);
    const move = moves[0]!;
    for (let part = 0; part < move.parts; part++) await shard0.acceptHandOverPart(move.moveId, 1, part, await shard1.handOverPart(move.moveId, part));
    await shard0.finishHandOver(move.moveId, 1, move.keys);
    await shard1.completeHandOver(move.moveId);
    await shard0.flush();
    const written = await d1Rows(ws, [ids.pat, ids.absorbed]);
    expect(JSON.parse(written.profiles.find((p) => p.profile_id === ids.pat)!.traits as string)).toMatchObject({ plan: "team", email: pat.email });
    expect(written.events.map((e) => e.message_id)).toContain(late.messageId);
    expect(Math.min(...written.versions)).toBeGreaterThan(Math.max(...after.versions));
    await shard1.flush();
    expect(await d1Rows(ws, [ids.pat, ids.absorbed])).toEqual(written);
  });
});
