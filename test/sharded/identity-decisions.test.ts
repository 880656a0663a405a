import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { GraphShards } from "../../workers/identity/sharding/graph-shards";
import { handOverKeys } from "../../workers/identity/sharding/handover-saga";
import { admin, json, type Problem, unique, until } from "../helpers";
import { shardedWorkspace } from "./sharded-workspace";

/**
 * The identity review queue and decisions with IDENTITY_GRAPH_SHARDS = 3
 * (this project's binding), through the real admin API, with events through
 * the real queue consumer and router. People are placed on chosen shards by
 * claiming their identifiers in the index before their first event.
 */

interface Review {
  id: string;
  kind: string;
  status: string;
  profiles: string[];
  identifiers: string[];
}
interface Merge {
  id: string;
  survivor: string;
  absorbed: string[];
  messageId: string;
  rule: string;
  retracted: { restored: string[] } | null;
}
interface Profile {
  profileId: string;
  identifiers: { type: string; value: string }[];
}
interface Graph extends Profile {
  requestedId: string;
  merges: Merge[];
}
type Page = { data: Review[]; next: string | null };

const keysOf = (profile: Profile) => profile.identifiers.map((i) => `${i.type}:${i.value}`).sort();

async function workspace() {
  const base = await shardedWorkspace("shard", "Sharded decisions");
  const { workspaceId } = base;
  const q = `workspaceId=${workspaceId}`;
  const ws = {
    ...base,
    send: async (body: unknown) => expect((await base.send("/v1/batch", body)).status).toBe(200),
    find: async (identifier: string) => (await json<{ data: Profile[] }>(await admin(`/admin/v1/profiles?${q}&identifier=${encodeURIComponent(identifier)}`))).data[0],
    /** The profile holding an identifier, once the consumer has applied the event that brought it. */
    profileOf: (identifier: string, ready: (p: Profile) => boolean = () => true) =>
      until(`a profile holding ${identifier}`, async () => {
        const profile = await ws.find(identifier);
        return profile && ready(profile) ? profile : undefined;
      }),
    page: async (query: string) => {
      const response = await admin(`/admin/v1/identity/reviews?${q}${query}`);
      expect(response.status, query).toBe(200);
      return json<Page>(response);
    },
    /** Every review, page by page through the `next` cursor; `between` runs after each page. */
    allReviews: async (query = "", limit = 200, between: (page: number) => Promise<void> = async () => {}) => {
      const reviews: Review[] = [];
      let next: string | null = null;
      let pages = 0;
      do {
        const page: Page = await ws.page(`&limit=${limit}${query}${next ? `&next=${next}` : ""}`);
        reviews.push(...page.data);
        next = page.next;
        await between(++pages);
      } while (next && pages < 50);
      return reviews;
    },
    reviewOf: (identifier: string) => until(`a review naming ${identifier}`, async () => (await ws.allReviews()).find((r) => r.identifiers.includes(identifier))),
    decide: (reviewId: string, verb: "approve" | "reject") => admin(`/admin/v1/identity/reviews/${reviewId}/${verb}?${q}`, { method: "POST" }),
    graph: (profileId: string) => admin(`/admin/v1/profiles/${profileId}/graph?${q}`),
    auditActions: async () => (await json<{ data: { action: string; target: string }[] }>(await admin(`/admin/v1/audit-log?${q}&limit=200`))).data,
    q,
  };
  return ws;
}

type Workspace = Awaited<ReturnType<typeof workspace>>;
const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();

/** Two user ids sharing one email, both placed on `shard`: the second is refused the email there and a review is queued there. */
async function conflictOn(ws: Workspace, shard: number, minutes: number) {
  const id = unique();
  const [first, second, email] = [`a-${id}`, `b-${id}`, `${id}@acme-shop.com`];
  await ws.place([`user_id:${first}`, `user_id:${second}`], shard);
  await ws.send({ batch: [{ type: "identify", userId: first, traits: { email }, timestamp: minutesAgo(minutes) }] });
  await ws.profileOf(`email:${email}`);
  await ws.send({ batch: [{ type: "identify", userId: second, traits: { email }, timestamp: minutesAgo(minutes - 1) }] });
  return { first, second, email, review: await ws.reviewOf(`email:${email}`) };
}

/**
 * A user-id-conflict review whose two people are on different shards: A and
 * B share an email on shard 1, where the review is queued; then B is handed
 * over to shard 2 with the router's saga, as the router does when B's
 * identifiers meet someone there. The review names both and is copied in
 * both shards, and neither can decide it alone.
 */
async function crossShardConflict(ws: Workspace) {
  const { first: a, second: b, email, review } = await conflictOn(ws, 1, 30);
  const people = { a: await ws.profileOf(`user_id:${a}`), b: await ws.profileOf(`user_id:${b}`) };
  await handOverKeys(new GraphShards(env.IDENTITY, ws.workspaceId), ws.index, 1, [`profile_id:${people.b.profileId}`], 2);
  // The scenario really is split: each shard holds one of them and a copy of the review.
  expect(await ws.shard(1).profileByKey(`user_id:${a}`)).not.toBeNull();
  expect(await ws.shard(2).profileByKey(`user_id:${b}`)).not.toBeNull();
  for (const n of [1, 2]) expect((await ws.shard(n).reviewCopy(review.id))?.held, `shard ${n}`).toHaveLength(1);
  return { a, b, email, review, people };
}

const cursor = (value: unknown) => btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");

describe("the identity review queue over three graph shards", { timeout: 60_000 }, () => {
  it("lists the reviews of every shard once each, in each shard's order, paged with a small limit without skipping or repeating while reviews are queued and decided", async () => {
    const ws = await workspace();
    const cross = await crossShardConflict(ws);
    const local = [];
    for (const [i, shard] of [0, 1, 2, 0, 2, 1].entries()) local.push(await conflictOn(ws, shard, 20 - 2 * i));
    const expected = [cross.review.id, ...local.map((l) => l.review.id)];

    const whole = await ws.allReviews();
    expect([...whole.map((r) => r.id)].sort()).toEqual([...expected].sort());
    // Each shard's own queue order is kept in the merged listing.
    for (const n of [0, 1, 2]) {
      const own = (await ws.shard(n).reviews(undefined, 0, 200)).reviews.map((r) => r.id).filter((id) => id !== cross.review.id || n === 1);
      expect(whole.map((r) => r.id).filter((id) => own.includes(id)), `shard ${n}`).toEqual(own);
    }
    expect(await ws.allReviews("", 2)).toEqual(whole);

    // Paging two at a time while one review is decided ahead of the cursor, one behind it, and a new one is queued.
    let added: Awaited<ReturnType<typeof conflictOn>> | undefined;
    const paged = await ws.allReviews("", 2, async (page) => {
      if (page !== 1) return;
      const [behind, ahead] = [whole[0]!, whole.at(-1)!];
      expect((await ws.decide(behind.id, "reject")).status).toBe(200);
      expect((await ws.decide(ahead.id, "reject")).status).toBe(200);
      added = await conflictOn(ws, 2, 0);
    });
    const ids = paged.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual([...expected, added!.review.id].sort());
    expect(paged.find((r) => r.id === whole.at(-1)!.id)!.status).toBe("rejected");

    // The status filter, paged as well.
    const rejected = await ws.allReviews("&status=rejected", 1);
    expect(rejected.map((r) => r.id).sort()).toEqual([whole[0]!.id, whole.at(-1)!.id].sort());
    const open = await ws.allReviews("&status=open", 2);
    expect(open.map((r) => r.id).sort()).toEqual([...expected, added!.review.id].filter((id) => !rejected.some((r) => r.id === id)).sort());
    expect(open.every((r) => r.status === "open")).toBe(true);
  });

  it("refuses a malformed cursor with a 400 naming `next`", async () => {
    const ws = await workspace();
    for (const next of ["not a cursor!", "12", "abc", cursor({ 0: -1 }), cursor({ x: 1 }), cursor([1]), cursor({ 64: 1 }), cursor({ 1: 1.5 }), cursor("0")]) {
      const response = await admin(`/admin/v1/identity/reviews?${ws.q}&next=${encodeURIComponent(next)}`);
      expect(response.status, next).toBe(400);
      const problem = await json<Problem>(response);
      expect(problem.code).toBe("VALIDATION_FAILED");
      expect(problem.errors!.map((e) => e.path)).toEqual(["next"]);
    }
    // A cursor this endpoint could have made reads on from there.
    expect(await ws.page(`&next=${cursor({ 0: 5, 2: 1 })}`)).toEqual({ data: [], next: null });
  });
});

describe("identity decisions over three graph shards", { timeout: 60_000 }, () => {
  it("approving a user-id-conflict review whose people are on different shards brings them together and merges them", async () => {
    const ws = await workspace();
    const { a, b, email, review, people } = await crossShardConflict(ws);
    const approved = await ws.decide(review.id, "approve");
    expect(approved.status).toBe(200);
    const body = await json<{ review: Review; merge: Merge }>(approved);
    expect(body.review).toMatchObject({ id: review.id, status: "approved" });
    expect(body.merge).toMatchObject({ rule: "review-approved", messageId: `review:${review.id}` });

    const merged = [await ws.find(`user_id:${a}`), await ws.find(`user_id:${b}`)];
    expect(merged[0]!.profileId).toBe(merged[1]!.profileId);
    expect(keysOf(merged[0]!)).toEqual(expect.arrayContaining([`email:${email}`, `user_id:${a}`, `user_id:${b}`]));
    // Both former profile ids answer, the absorbed one forwarded to the survivor.
    for (const person of [people.a, people.b]) expect((await json<Graph>(await ws.graph(person.profileId))).profileId).toBe(merged[0]!.profileId);
    expect(await ws.auditActions()).toContainEqual(expect.objectContaining({ action: "identity.review.approve", target: review.id }));
    expect((await ws.allReviews("&status=approved")).map((r) => r.id)).toEqual([review.id]);

    const again = await ws.decide(review.id, "approve");
    expect(again.status).toBe(409);
    expect((await json<Problem>(again)).detail).toContain("already approved");
    expect((await ws.decide(review.id, "reject")).status).toBe(409);
  });

  it("rejecting a review whose people are on different shards keeps them apart", async () => {
    const ws = await workspace();
    const { a, b, review } = await crossShardConflict(ws);
    const rejected = await ws.decide(review.id, "reject");
    expect(rejected.status).toBe(200);
    expect((await json<{ review: Review }>(rejected)).review.status).toBe("rejected");
    expect((await ws.find(`user_id:${a}`))!.profileId).not.toBe((await ws.find(`user_id:${b}`))!.profileId);
    expect(await ws.auditActions()).toContainEqual(expect.objectContaining({ action: "identity.review.reject", target: review.id }));
    expect((await ws.allReviews("&status=rejected")).map((r) => r.id)).toEqual([review.id]);
    expect((await ws.allReviews("&status=open")).map((r) => r.id)).toEqual([]);
    const twice = await ws.decide(review.id, "approve");
    expect(twice.status).toBe(409);
    expect((await json<Problem>(twice)).code).toBe("CONFLICT");
  });

  it("approving a quarantine review releases the identifier in the identifier index as well", async () => {
    const ws = await workspace();
    const device = `kiosk-${unique()}`;
    const users = [1, 2, 3, 4].map((n) => `kiosk-user-${n}-${unique()}`);
    await ws.place([`anonymous_id:${device}`, ...users.map((u) => `user_id:${u}`)], 2);
    await ws.send({ batch: users.map((userId, n) => ({ type: "identify", userId, anonymousId: device, timestamp: minutesAgo(10 - n) })) });
    const review = await until("a quarantine review", async () => (await ws.allReviews("&status=open")).find((r) => r.kind === "quarantine"));
    expect(review.identifiers).toEqual([`anonymous_id:${device}`]);
    expect((await ws.index.locate([`anonymous_id:${device}`])).get(`anonymous_id:${device}`)).toEqual({ shard: 2, quarantined: true });

    expect((await ws.decide(review.id, "approve")).status).toBe(200);
    expect((await ws.index.locate([`anonymous_id:${device}`])).get(`anonymous_id:${device}`)).toEqual({ shard: 2, quarantined: false });
  });

  it("unmerging a merge made on shard 2 restores both profiles, each readable by id", async () => {
    const ws = await workspace();
    const id = unique();
    const [first, second, email] = [`anon-1-${id}`, `anon-2-${id}`, `sam-${id}@acme-shop.com`];
    await ws.place([`anonymous_id:${first}`, `anonymous_id:${second}`], 2);
    await ws.send({ batch: [{ type: "track", event: "Viewed", anonymousId: first, timestamp: minutesAgo(3) }, { type: "track", event: "Viewed", anonymousId: second, timestamp: minutesAgo(2) }] });
    const older = await ws.profileOf(`anonymous_id:${first}`);
    await ws.profileOf(`anonymous_id:${second}`);
    await ws.send({ batch: [{ type: "identify", anonymousId: first, traits: { email } }] });
    await ws.profileOf(`email:${email}`);
    const bridging = `bridge-${id}`;
    await ws.send({ batch: [{ type: "identify", anonymousId: second, traits: { email }, messageId: bridging }] });
    await ws.profileOf(`anonymous_id:${second}`, (p) => p.profileId === older.profileId);

    const graph = await json<Graph>(await ws.graph(older.profileId));
    const mergeId = graph.merges.find((m) => m.messageId === bridging)!.id;
    expect(mergeId).toMatch(/^mrg_s2_/);
    expect(await json<Merge>(await admin(`/admin/v1/identity/merges/${mergeId}?${ws.q}`))).toMatchObject({ id: mergeId, survivor: older.profileId, retracted: null });

    const unmerged = await admin(`/admin/v1/identity/merges/${mergeId}/unmerge?${ws.q}`, { method: "POST" });
    expect(unmerged.status).toBe(200);
    const split = await json<{ keptProfileId: string; newProfileIds: string[] }>(unmerged);
    expect(split.keptProfileId).toBe(older.profileId);
    expect(split.newProfileIds).toHaveLength(1);
    expect(split.newProfileIds[0]).toMatch(/^prof_s2_/);

    const kept = await ws.graph(older.profileId);
    expect(kept.status).toBe(200);
    expect(keysOf(await json<Graph>(kept))).toEqual([`anonymous_id:${first}`, `email:${email}`]);
    const restored = await ws.graph(split.newProfileIds[0]!);
    expect(restored.status).toBe(200);
    expect(await json<Graph>(restored)).toMatchObject({ requestedId: split.newProfileIds[0], profileId: split.newProfileIds[0] });
    expect((await ws.find(`anonymous_id:${second}`))!.profileId).toBe(split.newProfileIds[0]);
    expect((await json<Merge>(await admin(`/admin/v1/identity/merges/${mergeId}?${ws.q}`))).retracted).toMatchObject({ restored: split.newProfileIds });
    expect(await ws.auditActions()).toContainEqual(expect.objectContaining({ action: "identity.merge.unmerge", target: mergeId }));
    expect((await admin(`/admin/v1/identity/merges/${mergeId}/unmerge?${ws.q}`, { method: "POST" })).status).toBe(409);
  });

  it("splitting identifiers out of a profile on shard 1 answers new profile ids readable by id", async () => {
    const ws = await workspace();
    const id = unique();
    const [user, tablet] = [`mum-${id}`, `tablet-${id}`];
    await ws.place([`user_id:${user}`, `anonymous_id:${tablet}`], 1);
    await ws.send({
      batch: [
        { type: "identify", userId: user, anonymousId: tablet, timestamp: minutesAgo(10) },
        { type: "track", event: "Viewed", anonymousId: tablet, timestamp: minutesAgo(9) },
        { type: "identify", userId: user, traits: { email: `mum-${id}@acme-shop.com` }, timestamp: minutesAgo(8) },
      ],
    });
    const profile = await ws.profileOf(`user_id:${user}`, (p) => p.identifiers.length === 3);
    expect(profile.profileId).toMatch(/^prof_s1_/);
    const response = await admin(`/admin/v1/profiles/${profile.profileId}/split?${ws.q}`, { method: "POST", json: { identifiers: [`anonymous_id:${tablet}`] } });
    expect(response.status).toBe(200);
    const split = await json<{ keptProfileId: string; newProfileIds: string[] }>(response);
    expect(split.keptProfileId).toBe(profile.profileId);
    expect(split.newProfileIds).toHaveLength(1);

    const created = await ws.graph(split.newProfileIds[0]!);
    expect(created.status).toBe(200);
    expect(keysOf(await json<Graph>(created))).toEqual([`anonymous_id:${tablet}`]);
    expect(keysOf((await ws.find(`user_id:${user}`))!)).toEqual([`email:mum-${id}@acme-shop.com`, `user_id:${user}`]);
    expect(await ws.auditActions()).toContainEqual(expect.objectContaining({ action: "identity.profile.split", target: profile.profileId }));
    const again = await admin(`/admin/v1/profiles/${profile.profileId}/split?${ws.q}`, { method: "POST", json: { identifiers: [`anonymous_id:${tablet}`] } });
    expect(again.status).toBe(409);
  });

  it("answers 404 for a review, merge or profile no shard holds", async () => {
    const ws = await workspace();
    await conflictOn(ws, 1, 5);
    for (const [method, path] of [
      ["POST", "/admin/v1/identity/reviews/rev_s1_zzzzzz/approve"],
      ["POST", "/admin/v1/identity/reviews/rev_s1_zzzzzz/reject"],
      ["GET", "/admin/v1/identity/merges/mrg_s2_zzzzzz"],
      ["POST", "/admin/v1/identity/merges/mrg_s2_zzzzzz/unmerge"],
    ]) {
      const response = await admin(`${path}?${ws.q}`, { method });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect((await json<Problem>(response)).code).toBe("NOT_FOUND");
    }
    const split = await admin(`/admin/v1/profiles/prof_s1_zzzzzz/split?${ws.q}`, { method: "POST", json: { identifiers: ["anonymous_id:x"] } });
    expect(split.status).toBe(404);
  });
});
