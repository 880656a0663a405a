import { beforeAll, describe, expect, it } from "vitest";
import { DEV_DEFAULTS } from "../../workers/env";
import { admin, basic, bearer, call, track } from "../helpers";
import { profileApi, SPACE, unique } from "./helpers";

const at = (minute: number) => new Date(Date.UTC(2026, 10, 2, 9, minute)).toISOString();
const sync = async (path: string, body: Record<string, unknown>) => {
  const response = await track(`${path}?sync=true`, body);
  expect(response.status).toBe(200);
  return response;
};
const body = async <T = Record<string, unknown>>(response: Response) => (await response.json()) as T;
type Page<T> = { data: T[]; cursor: { url: string; has_more: boolean; next: string } };

const userId = unique("pat");
const email = `${userId}@acme-shop.com`;
const anon = unique("anon");
const groupId = unique("org");

beforeAll(async () => {
  await sync("/v1/identify", { userId, anonymousId: anon, messageId: `${userId}-id1`, timestamp: at(0), traits: { email, first_name: "Pat", last_name: "Lee", plan: "free", age: 41 }, context: { externalIds: [{ id: "crm-77", type: "crm_id", collection: "users", encoding: "none" }] } });
  for (let i = 1; i <= 5; i++) await sync("/v1/track", { userId, messageId: `${userId}-t${i}`, timestamp: at(i), event: i % 2 ? "Product Viewed" : "Order Completed", properties: { n: i } });
  await sync("/v1/page", { userId, messageId: `${userId}-p`, timestamp: at(6), name: "Pricing", properties: { path: "/pricing" } });
  await sync("/v1/group", { userId, messageId: `${userId}-g`, timestamp: at(7), groupId, traits: { name: "Acme Shop", employees: 40 } });
  await sync("/v1/identify", { userId, messageId: `${userId}-id2`, timestamp: at(8), traits: { plan: "pro" } });
});

describe("GET …/traits", () => {
  it("returns the latest traits by any identifier, a lookup value normalised as stored", async () => {
    const expected = { email, first_name: "Pat", last_name: "Lee", plan: "pro", age: 41 };
    for (const id of [`user_id:${userId}`, `email:${email.toUpperCase()}`, `anonymous_id:${anon}`, "crm_id:crm-77"]) {
      const response = await profileApi(`users/profiles/${encodeURIComponent(id)}/traits?limit=200`);
      expect(response.status).toBe(200);
      expect((await body<{ traits: unknown }>(response)).traits).toEqual(expected);
    }
  });

  it("narrows with include, pages in name order with limit and next, and describes each trait when verbose", async () => {
    expect(await body(await profileApi(`users/profiles/user_id:${userId}/traits?include=plan,age`))).toMatchObject({ traits: { age: 41, plan: "pro" }, cursor: { has_more: false, next: "" } });
    const first = await body<{ traits: object; cursor: Page<never>["cursor"] }>(await profileApi(`users/profiles/user_id:${userId}/traits?limit=2`));
    expect(Object.keys(first.traits)).toEqual(["age", "email"]);
    expect(first.cursor).toMatchObject({ has_more: true, next: "email", url: `${SPACE}/users/profiles/user_id:${userId}/traits?limit=2` });
    const second = await body<{ traits: object }>(await profileApi(`users/profiles/user_id:${userId}/traits?limit=2&next=email`));
    expect(Object.keys(second.traits)).toEqual(["first_name", "last_name"]);
    const verbose = await body<{ traits: Record<string, unknown> }>(await profileApi(`users/profiles/user_id:${userId}/traits?include=plan&verbose=true`));
    expect(verbose.traits.plan).toEqual({ value: "pro", updated_at: at(8), source_id: "src_default", message_id: `${userId}-id2` });
    expect((await body<{ traits: object }>(await profileApi(`users/profiles/user_id:${userId}/traits?class=audience`))).traits).toEqual({});
  });

  it("answers an unknown profile with a 404 problem document and a malformed request with the field at fault", async () => {
    const missing = await profileApi("users/profiles/user_id:nobody-at-all/traits");
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toContain("application/problem+json");
    expect(await body(missing)).toMatchObject({ status: 404, title: "Not found", detail: expect.stringContaining("nobody-at-all") });
    for (const [path, field] of [
      [`users/profiles/${userId}/traits`, "externalId"],
      [`users/profiles/user_id:${userId}/traits?limit=0`, "limit"],
      [`users/profiles/user_id:${userId}/traits?limit=201`, "limit"],
      [`users/profiles/user_id:${userId}/traits?class=vip`, "class"],
      [`users/profiles/user_id:${userId}/traits?consistency=perfect`, "consistency"],
      [`teams/profiles/user_id:${userId}/traits`, "collection"],
      [`users/profiles/email:not-an-email/traits`, "externalId"],
    ] as const) {
      const response = await profileApi(path);
      expect(response.status, path).toBe(400);
      expect((await body<{ errors: { path: string }[] }>(response)).errors.map((e) => e.path), path).toContain(field);
    }
  });
});

describe("GET …/events", () => {
  type Event = { type: string; message_id: string; event?: string; name?: string; timestamp: string; source_id: string; properties?: object };

  it("lists events newest first and pages through them all with next", async () => {
    const seen: string[] = [];
    let next = "";
    do {
      const page = await body<Page<Event>>(await profileApi(`users/profiles/user_id:${userId}/events?limit=3${next ? `&next=${next}` : ""}`));
      expect(page.data.length).toBeLessThanOrEqual(3);
      seen.push(...page.data.map((e) => e.message_id));
      next = page.cursor.next;
      expect(page.cursor.has_more).toBe(next !== "");
    } while (next);
    expect(seen).toEqual([`${userId}-id2`, `${userId}-g`, `${userId}-p`, ...[5, 4, 3, 2, 1].map((i) => `${userId}-t${i}`), `${userId}-id1`]);
  });

  it("returns Segment's event envelope", async () => {
    const [track] = (await body<Page<Event>>(await profileApi(`users/profiles/user_id:${userId}/events?include=Order%20Completed&limit=1`))).data;
    expect(track).toMatchObject({ type: "track", event: "Order Completed", message_id: `${userId}-t4`, source_id: "src_default", timestamp: at(4), properties: { n: 4 }, user_id: userId, context: expect.any(Object) });
  });

  it("filters by name, time range and order", async () => {
    const ids = async (query: string) => (await body<Page<Event>>(await profileApi(`users/profiles/user_id:${userId}/events?limit=100&${query}`))).data.map((e) => e.message_id);
    expect(await ids("include=Product%20Viewed")).toEqual([5, 3, 1].map((i) => `${userId}-t${i}`));
    expect(await ids("exclude=Product%20Viewed,Order%20Completed,Pricing")).toEqual([`${userId}-id2`, `${userId}-g`, `${userId}-id1`]);
    expect(await ids(`start=${at(2)}&end=${at(4)}&sort=asc`)).toEqual([2, 3, 4].map((i) => `${userId}-t${i}`));
    const filteredPage = await body<Page<Event>>(await profileApi(`users/profiles/user_id:${userId}/events?include=Product%20Viewed&limit=2`));
    expect(filteredPage.data.map((e) => e.message_id)).toEqual([`${userId}-t5`, `${userId}-t3`]);
    const rest = await body<Page<Event>>(await profileApi(`users/profiles/user_id:${userId}/events?include=Product%20Viewed&limit=2&next=${filteredPage.cursor.next}`));
    expect(rest.data.map((e) => e.message_id)).toEqual([`${userId}-t1`]);
    expect(rest.cursor.has_more).toBe(false);
  });

  it("rejects a cursor it did not issue and an inverted range", async () => {
    const bad = await profileApi(`users/profiles/user_id:${userId}/events?next=not-a-cursor`);
    expect(bad.status).toBe(400);
    expect((await body<{ errors: { path: string }[] }>(bad)).errors[0]!.path).toBe("next");
    expect((await profileApi(`users/profiles/user_id:${userId}/events?start=${at(5)}&end=${at(1)}`)).status).toBe(400);
    expect((await profileApi(`accounts/profiles/group_id:${groupId}/events`)).status).toBe(400);
  });
});

describe("GET …/external_ids, /links, /metadata, /segments, /computed", () => {
  it("lists every identifier with its type and source, filtered and paged", async () => {
    const all = await body<Page<{ id: string; type: string; source_id: string; collection: string; encoding: string }>>(await profileApi(`users/profiles/user_id:${userId}/external_ids`));
    expect(all.data.map((i) => `${i.type}:${i.id}`).sort()).toEqual([`anonymous_id:${anon}`, "crm_id:crm-77", `email:${email}`, `user_id:${userId}`].sort());
    expect(all.data.every((i) => i.source_id === "src_default" && i.collection === "users" && i.encoding === "none")).toBe(true);
    expect((await body<Page<{ type: string }>>(await profileApi(`users/profiles/user_id:${userId}/external_ids?include=email`))).data.map((i) => i.type)).toEqual(["email"]);
    const first = await body<Page<unknown>>(await profileApi(`users/profiles/user_id:${userId}/external_ids?limit=3`));
    const second = await body<Page<unknown>>(await profileApi(`users/profiles/user_id:${userId}/external_ids?limit=3&next=${first.cursor.next}`));
    expect([first.data.length, first.cursor.has_more, second.data.length, second.cursor.has_more]).toEqual([3, true, 1, false]);
  });

  it("links users and accounts both ways, and reads the account's own traits and metadata", async () => {
    const links = await body<Page<{ to_collection: string; external_ids: { id: string; type: string }[] }>>(await profileApi(`users/profiles/email:${email}/links`));
    expect(links.data).toEqual([{ to_collection: "accounts", external_ids: [expect.objectContaining({ id: groupId, type: "group_id", collection: "accounts" })] }]);
    expect(await body(await profileApi(`accounts/profiles/group_id:${groupId}/traits`))).toMatchObject({ traits: { name: "Acme Shop", employees: 40 } });
    const members = await body<Page<{ external_ids: { id: string; type: string }[] }>>(await profileApi(`accounts/profiles/group_id:${groupId}/links`));
    expect(members.data.map((l) => l.external_ids[0])).toEqual([expect.objectContaining({ id: userId, type: "user_id", collection: "users" })]);
    expect(await body(await profileApi(`accounts/profiles/group_id:${groupId}/metadata`))).toMatchObject({ metadata: { last_message_id: `${userId}-g`, created_at: at(7) } });
    expect((await profileApi(`accounts/profiles/group_id:unknown-org/traits`)).status).toBe(404);
    expect((await profileApi(`accounts/profiles/user_id:${userId}/traits`)).status).toBe(400);
  });

  it("reports when the profile was first and last seen, and by which message", async () => {
    const { metadata } = await body<{ metadata: Record<string, unknown> }>(await profileApi(`users/profiles/user_id:${userId}/metadata`));
    expect(metadata).toMatchObject({ first_message_at: at(0), last_message_at: at(8), last_message_id: `${userId}-id2`, last_source_id: "src_default", expires_at: null, profile_id: expect.stringMatching(/^prof_/) });
  });

  it("lists segment memberships and computed traits (none defined in this workspace)", async () => {
    expect(await body(await profileApi(`users/profiles/user_id:${userId}/segments`))).toMatchObject({ data: [], cursor: { has_more: false } });
    expect(await body(await profileApi(`users/profiles/user_id:${userId}/computed`))).toMatchObject({ data: [], cursor: { has_more: false } });
  });
});

describe("consistency", () => {
  it("answers a synchronous track with the resolved profile and a bookmark that the next read honours", async () => {
    const id = unique("sync");
    const response = await sync("/v1/identify", { userId: id, traits: { plan: "trial" } });
    const bookmark = response.headers.get("x-d1-bookmark");
    expect(bookmark).toBeTruthy();
    expect(await body(response)).toMatchObject({ success: true, profile: { id: expect.stringMatching(/^prof_/), traits: { plan: "trial" }, segments: [] } });
    const read = await profileApi(`users/profiles/user_id:${id}/traits`, { "x-d1-bookmark": bookmark! });
    expect(await body(read)).toMatchObject({ traits: { plan: "trial" } });
    expect(read.headers.get("x-d1-bookmark")).toBeTruthy();
  });

  it("gives the same answer from the identity object with consistency=strong", async () => {
    for (const resource of ["traits?limit=200", "external_ids", "links", "metadata", "events?limit=100"]) {
      const eventualResponse = await profileApi(`users/profiles/user_id:${userId}/${resource}`);
      const strongResponse = await profileApi(`users/profiles/user_id:${userId}/${resource}${resource.includes("?") ? "&" : "?"}consistency=strong`);
      expect([eventualResponse.status, strongResponse.status], resource).toEqual([200, 200]);
      const [eventual, strong] = [await body<Record<string, unknown>>(eventualResponse), await body<Record<string, unknown>>(strongResponse)];
      const withoutVolatile = (value: Record<string, unknown>) => JSON.parse(JSON.stringify(value, (key, v) => (key === "url" || key === "updated_at" ? undefined : v)));
      expect(withoutVolatile(strong), resource).toEqual(withoutVolatile(eventual));
    }
  });
});

describe("access", () => {
  const traitsPath = `${SPACE}/users/profiles/user_id:${userId}/traits`;

  it("needs an access token, not a write key", async () => {
    expect((await call(traitsPath)).status).toBe(401);
    expect((await call(traitsPath, { headers: { authorization: basic(DEV_DEFAULTS.writeKey) } })).status).toBe(401);
    expect((await call(traitsPath, { headers: { authorization: bearer(DEV_DEFAULTS.accessToken) } })).status).toBe(200);
  });

  it("refuses a token without profiles:read, and hides one space from another's token", async () => {
    const other = unique("ws").toLowerCase();
    expect((await admin("/admin/v1/workspaces", { method: "POST", json: { id: other, name: "Other" } })).status).toBe(201);
    const mint = async (workspaceId: string, scopes: string[]) => body<{ secret: string }>(await admin("/admin/v1/tokens", { method: "POST", json: { workspaceId, name: "t", scopes } }));
    const adminOnly = await mint("default", ["admin"]);
    const forbidden = await call(traitsPath, { headers: { authorization: basic(adminOnly.secret) } });
    expect(forbidden.status).toBe(403);
    expect((await body<{ detail: string }>(forbidden)).detail).toContain("profiles:read");
    const foreign = await mint(other, ["profiles:read"]);
    expect((await call(traitsPath, { headers: { authorization: basic(foreign.secret) } })).status).toBe(404);
    expect((await call(`/v1/spaces/${other}/collections/users/profiles/user_id:${userId}/traits`, { headers: { authorization: basic(foreign.secret) } })).status).toBe(404);
  });
});

describe("admin profile search", () => {
  it("finds profiles by trait prefix, paged, on typed columns and any trait", async () => {
    const tag = unique("srch");
    for (const [last, plan] of [["Smith", "gold"], ["Smithers", "gold"], ["Jones", "golden"]]) await sync("/v1/identify", { userId: `${tag}-${last}`, traits: { last_name: `${tag}${last}`, tier: `${tag}-${plan}` } });
    const search = async (query: string) => body<{ data: { profileId: string; traits: Record<string, string>; identifiers: { type: string; value: string }[] }[]; next: string | null }>(await admin(`/admin/v1/profiles?workspaceId=default&${query}`));
    const smiths = await search(`trait=last_name&prefix=${tag}Smi`);
    expect(smiths.data.map((p) => p.traits.last_name).sort()).toEqual([`${tag}Smith`, `${tag}Smithers`]);
    expect(smiths.data[0]!.identifiers).toContainEqual(expect.objectContaining({ type: "user_id" }));
    const firstPage = await search(`trait=last_name&prefix=${tag}&limit=2`);
    const secondPage = await search(`trait=last_name&prefix=${tag}&limit=2&cursor=${firstPage.next}`);
    expect([firstPage.data.length, secondPage.data.length, secondPage.next]).toEqual([2, 1, null]);
    expect((await search(`trait=tier&prefix=${tag}-gold`)).data).toHaveLength(3);
    expect((await search(`trait=tier&prefix=${tag}-golden`)).data).toHaveLength(1);
    const both = await admin(`/admin/v1/profiles?workspaceId=default&trait=tier&prefix=x&identifier=user_id:${userId}`);
    expect(both.status).toBe(400);
  });
});
