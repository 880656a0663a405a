import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { admin, bearer, call, track } from "../helpers";
import { queuedEvents } from "../identity/queued-events";

/**
 * The identity admin API, through real HTTP: events are tracked with the write
 * key, reach the workspace's identity graph through the real queue consumer
 * (about a second later), and are read and decided on through /admin/v1.
 * Storage is shared by the tests of this file, so every test uses its own ids.
 */

interface Identifier {
  type: string;
  value: string;
  firstSeen: string | null;
  lastSeen: string | null;
}
interface ProfileSummary {
  profileId: string;
  identifiers: Identifier[];
}
interface Merge {
  id: string;
  survivor: string;
  absorbed: string[];
  messageId: string;
  rule: string;
  evidence: { identifier: string; type: string; value: string; fromProfileId: string | null }[];
  retracted: { at: string | null; restored: string[] } | null;
}
interface Review {
  id: string;
  kind: string;
  status: string;
  profiles: string[];
  identifiers: string[];
  messageId: string | null;
}
interface Graph {
  requestedId: string;
  profileId: string;
  forwarded: boolean;
  identifiers: Identifier[];
  links: { messageId: string; identifiers: string[] }[];
  merges: Merge[];
  conflicts: { messageId: string; identifier: string; reason: string; profiles: string[] }[];
}
interface Settings {
  identifiers: { type: string; priority: number; limit: number; window: unknown }[];
  clusterCap: number;
  blockedValues: string[];
  [field: string]: unknown;
}

async function json<T>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

const unique = () => crypto.randomUUID().slice(0, 8);
const ago = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `done` holds or the deadline passes, and returns the last value: events reach the graph through the queue. */
async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(100);
  }
}

async function findProfile(identifier: string, workspaceId = "default"): Promise<ProfileSummary | undefined> {
  const response = await admin(`/admin/v1/profiles?workspaceId=${workspaceId}&identifier=${encodeURIComponent(identifier)}`);
  expect(response.status).toBe(200);
  return (await json<{ data: ProfileSummary[] }>(response)).data[0];
}

/** The profile holding an identifier, once the queue consumer has applied the event that brought it. */
async function profileOf(identifier: string, workspaceId = "default"): Promise<ProfileSummary> {
  const profile = await eventually(() => findProfile(identifier, workspaceId), Boolean);
  if (!profile) throw new Error(`no profile holds ${identifier} after 15 s`);
  return profile;
}

/** Every review in the queue, read page by page through the `next` cursor. */
async function allReviews(query = "", workspaceId = "default"): Promise<Review[]> {
  const reviews: Review[] = [];
  let next: string | null = null;
  do {
    const response = await admin(`/admin/v1/identity/reviews?workspaceId=${workspaceId}&limit=2${query}${next ? `&next=${next}` : ""}`);
    expect(response.status).toBe(200);
    const page = await json<{ data: Review[]; next: string | null }>(response);
    reviews.push(...page.data);
    next = page.next;
  } while (next);
  return reviews;
}

async function auditActions(workspaceId = "default") {
  return (await json<{ data: { action: string; target: string; details: Record<string, unknown> | null }[] }>(await admin(`/admin/v1/audit-log?workspaceId=${workspaceId}&limit=200`))).data;
}

/** Two user ids that share one email: the second is refused the email and a review is queued. */
async function twoUserIdsSharingAnEmail() {
  const id = unique();
  const [first, second, email] = [`user-a-${id}`, `user-b-${id}`, `pat-${id}@acme-shop.com`];
  const response = await track("/v1/batch", {
    batch: [
      { type: "identify", userId: first, traits: { email } },
      { type: "identify", userId: second, traits: { email } },
    ],
  });
  expect(response.status).toBe(200);
  const profiles = [await profileOf(`user_id:${first}`), await profileOf(`user_id:${second}`)];
  const review = (await allReviews("&status=open")).find((r) => r.identifiers.includes(`email:${email}`));
  if (!review) throw new Error(`no open review names email:${email}`);
  return { first, second, email, profiles, review };
}

async function createWorkspace(prefix: string) {
  const workspaceId = `${prefix}-${unique()}`;
  expect((await admin("/admin/v1/workspaces", { method: "POST", json: { id: workspaceId, name: prefix } })).status).toBe(201);
  return workspaceId;
}

describe("identity settings", () => {
  it("reads the settings in force, defaults included, and saves a changed document, audit-logged", async () => {
    const workspaceId = await createWorkspace("idset");
    const current = await json<Settings>(await admin(`/admin/v1/identity/settings?workspaceId=${workspaceId}`));
    expect(current.clusterCap).toBe(50);
    expect(current.identifiers.find((rule) => rule.type === "user_id")).toEqual({ type: "user_id", priority: 1, limit: 1, window: "ever" });

    const changed = { ...current, clusterCap: 80, blockedValues: ["kiosk-user"] };
    const saved = await admin(`/admin/v1/identity/settings?workspaceId=${workspaceId}`, { method: "PUT", json: changed });
    expect(saved.status).toBe(200);
    expect(await json<Settings>(saved)).toEqual(changed);
    expect(await json<Settings>(await admin(`/admin/v1/identity/settings?workspaceId=${workspaceId}`))).toEqual(changed);

    const entry = (await auditActions(workspaceId)).find((e) => e.action === "identity.settings.update");
    expect(entry).toMatchObject({ target: workspaceId, details: { settings: { clusterCap: 80, blockedValues: ["kiosk-user"] } } });
  });

  it("refuses an invalid document, naming every invalid field by its path, and keeps the settings it had", async () => {
    const workspaceId = await createWorkspace("idset");
    const current = await json<Settings>(await admin(`/admin/v1/identity/settings?workspaceId=${workspaceId}`));
    const identifiers = current.identifiers.map((rule, index) => (index === 5 ? { ...rule, priority: current.identifiers[0]!.priority } : rule));
    const refused = await admin(`/admin/v1/identity/settings?workspaceId=${workspaceId}`, {
      method: "PUT",
      json: { ...current, identifiers, clusterCap: 1, blockedPatterns: ["(a+)+"], surprise: true },
    });
    expect(refused.status).toBe(400);
    const problem = await json<{ code: string; errors: { path: string; message: string }[] }>(refused);
    expect(problem.code).toBe("VALIDATION_FAILED");
    expect(problem.errors.map((e) => e.path)).toEqual(expect.arrayContaining(["identifiers.5.priority", "clusterCap", "blockedPatterns.0"]));
    expect(problem.errors.find((e) => e.path === "identifiers.5.priority")!.message).toContain("index 0");
    expect((await json<Settings>(await admin(`/admin/v1/identity/settings?workspaceId=${workspaceId}`))).clusterCap).toBe(50);
    expect((await auditActions(workspaceId)).map((e) => e.action)).not.toContain("identity.settings.update");
  });
});

describe("identity review queue", () => {
  it("queues a review when an email is shared by two user ids, and approving it merges them", async () => {
    const { first, second, email, profiles, review } = await twoUserIdsSharingAnEmail();
    expect(profiles[0]!.profileId).not.toBe(profiles[1]!.profileId);
    expect(review).toMatchObject({ kind: "user-id-conflict", status: "open" });
    expect([...review.profiles].sort()).toEqual(profiles.map((p) => p.profileId).sort());
    // The email stayed with whichever user id came first; the dropped email is recorded on the profile it reached.
    const holder = (await findProfile(`email:${email}`))!.profileId;
    const graph = await json<Graph>(await admin(`/admin/v1/profiles/${holder}/graph?workspaceId=default`));
    expect(graph.conflicts).toContainEqual(expect.objectContaining({ identifier: `email:${email}`, reason: "user-id-conflict", profiles: [holder] }));

    const approved = await admin(`/admin/v1/identity/reviews/${review.id}/approve?workspaceId=default`, { method: "POST" });
    expect(approved.status).toBe(200);
    const body = await json<{ review: Review; merge: Merge | null }>(approved);
    expect(body.review.status).toBe("approved");
    expect(body.merge).toMatchObject({ rule: "review-approved", messageId: `review:${review.id}` });

    const merged = [await findProfile(`user_id:${first}`), await findProfile(`user_id:${second}`)];
    expect(merged[0]!.profileId).toBe(merged[1]!.profileId);
    expect(merged[0]!.identifiers.map((i) => `${i.type}:${i.value}`).sort()).toEqual([`email:${email}`, `user_id:${first}`, `user_id:${second}`]);
    expect(await auditActions()).toContainEqual(expect.objectContaining({ action: "identity.review.approve", target: review.id }));

    const again = await admin(`/admin/v1/identity/reviews/${review.id}/approve?workspaceId=default`, { method: "POST" });
    expect(again.status).toBe(409);
    expect((await json<{ code: string; detail: string }>(again)).detail).toContain("already approved");
    expect((await admin(`/admin/v1/identity/reviews/${review.id}/reject?workspaceId=default`, { method: "POST" })).status).toBe(409);
  });

  it("rejecting a review keeps the two user ids apart, and a decided review cannot be decided again", async () => {
    const { first, second, review } = await twoUserIdsSharingAnEmail();
    const rejected = await admin(`/admin/v1/identity/reviews/${review.id}/reject?workspaceId=default`, { method: "POST" });
    expect(rejected.status).toBe(200);
    expect((await json<{ review: Review }>(rejected)).review.status).toBe("rejected");
    expect((await findProfile(`user_id:${first}`))!.profileId).not.toBe((await findProfile(`user_id:${second}`))!.profileId);
    expect(await auditActions()).toContainEqual(expect.objectContaining({ action: "identity.review.reject", target: review.id }));

    expect((await allReviews("&status=rejected")).map((r) => r.id)).toContain(review.id);
    expect((await allReviews("&status=open")).map((r) => r.id)).not.toContain(review.id);
    const twice = await admin(`/admin/v1/identity/reviews/${review.id}/approve?workspaceId=default`, { method: "POST" });
    expect(twice.status).toBe(409);
    expect((await json<{ code: string }>(twice)).code).toBe("CONFLICT");
  });

  it("answers 404 for a review that does not exist and pages the queue with a cursor", async () => {
    await twoUserIdsSharingAnEmail();
    await twoUserIdsSharingAnEmail();
    const missing = await admin("/admin/v1/identity/reviews/rev_missing/approve?workspaceId=default", { method: "POST" });
    expect(missing.status).toBe(404);
    expect((await admin("/admin/v1/identity/reviews/rev_missing/reject?workspaceId=default", { method: "POST" })).status).toBe(404);

    const first = await json<{ data: Review[]; next: string | null }>(await admin("/admin/v1/identity/reviews?workspaceId=default&limit=1"));
    expect(first.data).toHaveLength(1);
    expect(first.next).not.toBeNull();
    const second = await json<{ data: Review[] }>(await admin(`/admin/v1/identity/reviews?workspaceId=default&limit=1&next=${first.next}`));
    expect(second.data[0]!.id).not.toBe(first.data[0]!.id);
    const everything = await json<{ data: Review[]; next: string | null }>(await admin("/admin/v1/identity/reviews?workspaceId=default&limit=200"));
    expect(everything.data.map((r) => r.id).slice(0, 2)).toEqual([first.data[0]!.id, second.data[0]!.id]);
    expect((await admin("/admin/v1/identity/reviews?workspaceId=default&limit=201")).status).toBe(400);
    expect((await admin("/admin/v1/identity/reviews?workspaceId=default&status=maybe")).status).toBe(400);
  });
});

describe("identity merges", () => {
  it("shows a merge of two anonymous profiles through a shared email with its evidence, and unmerges it", async () => {
    const id = unique();
    const [a1, a2, email] = [`anon-1-${id}`, `anon-2-${id}`, `sam-${id}@acme-shop.com`];
    // Two visitors, the first seen earlier: its profile is the older one and survives the merge.
    expect((await track("/v1/batch", { batch: [{ type: "track", event: "Viewed", anonymousId: a1, timestamp: ago(3) }, { type: "track", event: "Viewed", anonymousId: a2, timestamp: ago(2) }] })).status).toBe(200);
    const older = await profileOf(`anonymous_id:${a1}`);
    const newer = await profileOf(`anonymous_id:${a2}`);
    expect(older.profileId).not.toBe(newer.profileId);
    expect((await track("/v1/identify", { anonymousId: a1, traits: { email } })).status).toBe(200);
    await profileOf(`email:${email}`);
    const bridging = `bridge-${id}`;
    expect((await track("/v1/identify", { anonymousId: a2, traits: { email: email.toUpperCase() }, messageId: bridging })).status).toBe(200);
    const merged = await eventually(() => findProfile(`anonymous_id:${a2}`), (p) => p?.profileId === older.profileId);
    expect(merged!.profileId).toBe(older.profileId);

    const graph = await json<Graph>(await admin(`/admin/v1/profiles/${older.profileId}/graph?workspaceId=default`));
    expect(graph).toMatchObject({ requestedId: older.profileId, profileId: older.profileId, forwarded: false });
    expect(graph.identifiers.map((i) => `${i.type}:${i.value}`).sort()).toEqual([`anonymous_id:${a1}`, `anonymous_id:${a2}`, `email:${email}`]);
    expect(graph.links.map((l) => l.messageId)).toContain(bridging);
    const mergeId = graph.merges.find((m) => m.messageId === bridging)!.id;

    // The absorbed profile's id still answers, resolved to the survivor, and says so.
    const forwarded = await json<Graph>(await admin(`/admin/v1/profiles/${newer.profileId}/graph?workspaceId=default`));
    expect(forwarded).toMatchObject({ requestedId: newer.profileId, profileId: older.profileId, forwarded: true });

    const merge = await json<Merge>(await admin(`/admin/v1/identity/merges/${mergeId}?workspaceId=default`));
    expect(merge).toMatchObject({ id: mergeId, survivor: older.profileId, absorbed: [newer.profileId], messageId: bridging, rule: "shared-identifier", retracted: null });
    expect(merge.evidence).toEqual(
      expect.arrayContaining([
        { identifier: `email:${email}`, type: "email", value: email, fromProfileId: older.profileId },
        { identifier: `anonymous_id:${a2}`, type: "anonymous_id", value: a2, fromProfileId: newer.profileId },
      ]),
    );

    const unmerged = await admin(`/admin/v1/identity/merges/${mergeId}/unmerge?workspaceId=default`, { method: "POST" });
    expect(unmerged.status).toBe(200);
    const split = await json<{ mergeId: string; keptProfileId: string; newProfileIds: string[] }>(unmerged);
    expect(split.keptProfileId).toBe(older.profileId);
    expect(split.newProfileIds).toHaveLength(1);
    // The part holding the oldest identifier keeps the id; the other visitor gets a new profile.
    expect((await findProfile(`anonymous_id:${a1}`))!.profileId).toBe(older.profileId);
    expect((await findProfile(`email:${email}`))!.profileId).toBe(older.profileId);
    expect((await findProfile(`anonymous_id:${a2}`))!.profileId).toBe(split.newProfileIds[0]);

    const after = await json<Graph>(await admin(`/admin/v1/profiles/${older.profileId}/graph?workspaceId=default`));
    expect(after.identifiers.map((i) => `${i.type}:${i.value}`).sort()).toEqual([`anonymous_id:${a1}`, `email:${email}`]);
    expect(after.links.map((l) => l.messageId)).not.toContain(bridging);
    expect(after.merges.find((m) => m.id === mergeId)!.retracted).toMatchObject({ restored: split.newProfileIds });
    expect((await json<Merge>(await admin(`/admin/v1/identity/merges/${mergeId}?workspaceId=default`))).retracted).toMatchObject({ restored: split.newProfileIds });
    expect(await auditActions()).toContainEqual(expect.objectContaining({ action: "identity.merge.unmerge", target: mergeId, details: { keptProfileId: older.profileId, newProfileIds: split.newProfileIds } }));

    const again = await admin(`/admin/v1/identity/merges/${mergeId}/unmerge?workspaceId=default`, { method: "POST" });
    expect(again.status).toBe(409);
    expect((await json<{ detail: string }>(again)).detail).toContain("already retracted");
    expect((await admin("/admin/v1/identity/merges/mrg_missing?workspaceId=default")).status).toBe(404);
    expect((await admin("/admin/v1/identity/merges/mrg_missing/unmerge?workspaceId=default", { method: "POST" })).status).toBe(404);
  });
});

describe("profile search", () => {
  it("finds a profile by an identifier written as the user typed it, normalised as stored", async () => {
    const id = unique();
    const userId = `user-${id}`;
    expect((await track("/v1/identify", { userId, traits: { email: `Pat.${id}@Acme-Shop.com` } })).status).toBe(200);
    const profile = await profileOf(`user_id:${userId}`);
    expect(profile.identifiers.map((i) => `${i.type}:${i.value}`)).toContain(`email:pat.${id}@acme-shop.com`);
    expect((await findProfile(`email:  PAT.${id}@ACME-SHOP.COM `))!.profileId).toBe(profile.profileId);
    expect((await findProfile(`Email:pat.${id}@acme-shop.com`))!.profileId).toBe(profile.profileId);
    expect(profile.identifiers.find((i) => i.type === "user_id")).toMatchObject({ firstSeen: expect.any(String), lastSeen: expect.any(String) });

    const nobody = await admin(`/admin/v1/profiles?workspaceId=default&identifier=${encodeURIComponent(`email:nobody-${id}@acme-shop.com`)}`);
    expect(nobody.status).toBe(200);
    expect(await json(nobody)).toEqual({ data: [] });
  });

  it("names `identifier` when it is malformed, and answers 404 for an unknown profile's graph", async () => {
    for (const identifier of ["email", ":value", "email:", "email:not-an-email", "ip:10.0.0.1", "Bad Type:x"]) {
      const response = await admin(`/admin/v1/profiles?workspaceId=default&identifier=${encodeURIComponent(identifier)}`);
      expect(response.status, identifier).toBe(400);
      expect((await json<{ errors: { path: string }[] }>(response)).errors.map((e) => e.path)).toEqual(["identifier"]);
    }
    const both = await admin("/admin/v1/profiles?workspaceId=default&identifier=user_id:x&trait=plan&prefix=p");
    expect(both.status).toBe(400);
    expect((await json<{ errors: { path: string }[] }>(both)).errors.map((e) => e.path)).toEqual(["identifier"]);
    const noPrefix = await admin("/admin/v1/profiles?workspaceId=default&trait=plan");
    expect((await json<{ errors: { path: string }[] }>(noPrefix)).errors.map((e) => e.path)).toEqual(["prefix"]);
    expect((await admin("/admin/v1/profiles/prof_missing/graph?workspaceId=default")).status).toBe(404);
  });
});

describe("profile listing", () => {
  it("lists live profiles in creation order with their identifiers, page by page, leaving absorbed ones out", async () => {
    const workspaceId = await createWorkspace("list");
    const event = queuedEvents(`list-${workspaceId}`);
    const stub = env.IDENTITY.getByName(workspaceId);
    const [anonymous, absorbed] = await stub.resolveEvents([event({ type: "page", anonymousId: "anon-1" }), event({ userId: "user-1" })]);
    const [joined] = await stub.resolveEvents([event({ userId: "user-1", anonymousId: "anon-1" })]);
    expect(joined!.mergeId).toBeDefined();
    const others = await stub.resolveEvents(["user-2", "user-3", "user-4"].map((userId) => event({ userId })));

    const page = async (cursor?: string) =>
      json<{ data: { profileId: string; identifiers: { type: string; value: string; firstSeen: string | null }[] }[]; next: string | null }>(
        await admin(`/admin/v1/profiles?workspaceId=${workspaceId}&limit=2${cursor ? `&cursor=${cursor}` : ""}`),
      );
    const first = await page();
    const second = await page(first.next!);
    const listed = [...first.data, ...second.data];
    expect(listed.map((p) => p.profileId)).toEqual([anonymous!.profileId, ...others.map((o) => o.profileId)]);
    expect(listed.map((p) => p.profileId)).not.toContain(absorbed!.profileId);
    expect(second.next).toBeNull();
    expect(listed[0]!.identifiers.map((i) => `${i.type}:${i.value}`).sort()).toEqual(["anonymous_id:anon-1", "user_id:user-1"]);
    expect(listed[0]!.identifiers[0]!.firstSeen).toEqual(expect.any(String));
  });
});

describe("identity admin access", () => {
  const routes = (ids: { review: string; merge: string; profile: string }, workspace = "default") => [
    ["GET", `/admin/v1/identity/settings?workspaceId=${workspace}`],
    ["PUT", `/admin/v1/identity/settings?workspaceId=${workspace}`],
    ["GET", `/admin/v1/identity/reviews?workspaceId=${workspace}`],
    ["POST", `/admin/v1/identity/reviews/${ids.review}/approve?workspaceId=${workspace}`],
    ["POST", `/admin/v1/identity/reviews/${ids.review}/reject?workspaceId=${workspace}`],
    ["GET", `/admin/v1/identity/merges/${ids.merge}?workspaceId=${workspace}`],
    ["POST", `/admin/v1/identity/merges/${ids.merge}/unmerge?workspaceId=${workspace}`],
    ["GET", `/admin/v1/profiles?workspaceId=${workspace}&identifier=user_id:someone`],
    ["GET", `/admin/v1/profiles/${ids.profile}/graph?workspaceId=${workspace}`],
  ];
  const send = (token: string, method: string, path: string) => call(path, { method, headers: { authorization: bearer(token), "content-type": "application/json" }, body: method === "PUT" ? "{}" : undefined });

  it("turns away a token without the admin scope with 403", async () => {
    for (const [method, path] of routes({ review: "rev_x", merge: "mrg_x", profile: "prof_x" })) {
      const response = await send("dev-access-token", method!, path!);
      expect(response.status, `${method} ${path}`).toBe(403);
    }
  });

  it("confines a workspace token to its own workspace: another workspace's reviews, merges and profiles are 404", async () => {
    const { first, review, profiles } = await twoUserIdsSharingAnEmail();
    const approved = await json<{ merge: Merge }>(await admin(`/admin/v1/identity/reviews/${review.id}/approve?workspaceId=default`, { method: "POST" }));
    const ids = { review: review.id, merge: approved.merge.id, profile: profiles[0]!.profileId };

    const tenant = await createWorkspace("idtenant");
    const { secret } = await json<{ secret: string }>(await admin("/admin/v1/tokens", { method: "POST", json: { workspaceId: tenant, name: "ops", scopes: ["admin"] } }));
    for (const [method, path] of routes(ids)) {
      const response = await send(secret, method!, path!);
      expect(response.status, `${method} ${path}`).toBe(404);
    }
    // Without a workspace the token acts on its own, where none of these ids exist.
    for (const [method, path] of [
      ["POST", `/admin/v1/identity/reviews/${ids.review}/approve`],
      ["POST", `/admin/v1/identity/reviews/${ids.review}/reject`],
      ["GET", `/admin/v1/identity/merges/${ids.merge}`],
      ["POST", `/admin/v1/identity/merges/${ids.merge}/unmerge`],
      ["GET", `/admin/v1/profiles/${ids.profile}/graph`],
    ]) {
      expect((await send(secret, method!, path!)).status, `${method} ${path}`).toBe(404);
    }
    const own = await send(secret, "GET", `/admin/v1/profiles?identifier=${encodeURIComponent(`user_id:${first}`)}`);
    expect(await json(own)).toEqual({ data: [] });
    expect((await send(secret, "GET", "/admin/v1/identity/reviews")).status).toBe(200);
    expect((await send(secret, "GET", "/admin/v1/identity/settings")).status).toBe(200);
    // The default workspace's review is untouched by the attempts.
    expect((await allReviews("&status=approved")).map((r) => r.id)).toContain(review.id);

    expect((await admin("/admin/v1/identity/settings?workspaceId=no-such-workspace")).status).toBe(404);
    expect((await admin("/admin/v1/identity/settings")).status).toBe(400);
  });
});

describe("identity admin OpenAPI", () => {
  it("describes every identity route in /openapi.json", async () => {
    const doc = await json<{ paths: Record<string, Record<string, { description?: string }>> }>(await call("/openapi.json"));
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/admin/v1/identity/settings",
        "/admin/v1/identity/reviews",
        "/admin/v1/identity/reviews/{id}/approve",
        "/admin/v1/identity/reviews/{id}/reject",
        "/admin/v1/identity/merges/{id}",
        "/admin/v1/identity/merges/{id}/unmerge",
        "/admin/v1/profiles",
        "/admin/v1/profiles/{profileId}/graph",
      ]),
    );
    expect(Object.keys(doc.paths["/admin/v1/identity/settings"]!)).toEqual(["get", "put"]);
    expect(doc.paths["/admin/v1/identity/settings"]!.put!.description).toContain("existing profiles are not re-evaluated");
  });
});

describe("splitting identifiers out of a profile", () => {
  it("moves a shared tablet out of a profile, answers 409 for one it does not hold, and audit-logs it", async () => {
    const id = unique();
    const [user, tablet] = [`mum-${id}`, `tablet-${id}`];
    const response = await track("/v1/batch", {
      batch: [
        { type: "identify", userId: user, anonymousId: tablet, timestamp: ago(10) },
        { type: "track", event: "Viewed", anonymousId: tablet, timestamp: ago(9) },
        { type: "identify", userId: user, traits: { email: `mum-${id}@acme-shop.com` }, timestamp: ago(8) },
      ],
    });
    expect(response.status).toBe(200);
    const profile = await eventually(
      () => findProfile(`user_id:${user}`),
      (p) => (p?.identifiers.length ?? 0) === 3,
    );
    const split = await admin(`/admin/v1/profiles/${profile!.profileId}/split?workspaceId=default`, { method: "POST", json: { identifiers: [`anonymous_id:${tablet}`] } });
    expect(split.status).toBe(200);
    const body = await json<{ keptProfileId: string; newProfileIds: string[] }>(split);
    expect(body.keptProfileId).toBe(profile!.profileId);
    expect((await findProfile(`anonymous_id:${tablet}`))!.profileId).toBe(body.newProfileIds[0]);
    expect((await findProfile(`user_id:${user}`))!.identifiers.map((i) => i.type).sort()).toEqual(["email", "user_id"]);

    const again = await admin(`/admin/v1/profiles/${profile!.profileId}/split?workspaceId=default`, { method: "POST", json: { identifiers: [`anonymous_id:${tablet}`] } });
    expect(again.status).toBe(409);
    const invalid = await admin(`/admin/v1/profiles/${profile!.profileId}/split?workspaceId=default`, { method: "POST", json: { identifiers: ["no-colon"] } });
    expect(invalid.status).toBe(400);
    expect((await json<{ errors: { path: string }[] }>(invalid)).errors[0]!.path).toBe("identifiers.0");
    expect(await auditActions()).toContainEqual(expect.objectContaining({ action: "identity.profile.split", target: profile!.profileId }));
  });
});
