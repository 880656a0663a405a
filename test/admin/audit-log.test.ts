import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { admin, basic, bearer, call, json, type Problem, unique } from "../helpers";

/**
 * The audit log: that admin actions leave entries saying who did what, when and
 * on what, through the real routes; the filters and the paging; and that no route
 * changes or deletes an entry. Storage is shared by the tests of this file, so
 * each test uses its own workspaces.
 */

interface Entry {
  id: string;
  workspaceId: string | null;
  actor: string;
  action: string;
  target: string | null;
  details: Record<string, unknown> | null;
  requestId: string | null;
  createdAt: string;
}
interface Page {
  data: Entry[];
  next: string | null;
}

const LOG = "/admin/v1/audit-log";

/**
 * Every route that changes something, with the action it records (null: it
 * changes nothing, like a preview). A new mutating route fails the first test
 * below until it is listed here, with the audit entry it writes.
 */
const MUTATING_ROUTES: Record<string, string | null> = {
  "POST /admin/v1/workspaces": "workspace.create",
  "POST /admin/v1/sources": "source.create",
  "DELETE /admin/v1/sources/{id}": "source.revoke",
  "POST /admin/v1/tokens": "token.create",
  "DELETE /admin/v1/tokens/{id}": "token.revoke",
  "PUT /admin/v1/identity/settings": "identity.settings.update",
  "POST /admin/v1/identity/reviews/{id}/approve": "identity.review.approve",
  "POST /admin/v1/identity/reviews/{id}/reject": "identity.review.reject",
  "POST /admin/v1/identity/merges/{id}/unmerge": "identity.merge.unmerge",
  "POST /admin/v1/profiles/{profileId}/split": "identity.profile.split",
  "POST /admin/v1/segments": "segment.create",
  "POST /admin/v1/segments/preview": null,
  "PATCH /admin/v1/segments/{id}": "segment.update",
  "DELETE /admin/v1/segments/{id}": "segment.delete",
  "POST /admin/v1/computed-traits": "computed_trait.create",
  "POST /admin/v1/computed-traits/preview": null,
  "PATCH /admin/v1/computed-traits/{id}": "computed_trait.update",
  "DELETE /admin/v1/computed-traits/{id}": "computed_trait.delete",
  "POST /admin/v1/destinations": "destination.create",
  "PATCH /admin/v1/destinations/{id}": "destination.update",
  "DELETE /admin/v1/destinations/{id}": "destination.delete",
  "POST /admin/v1/destinations/{id}/replay": "destination.replay",
  "POST /admin/v1/dead-letters/{deliveryId}/replay": "dead_letter.replay",
  "POST /admin/v1/exports": "warehouse_export.run",
  "PUT /admin/v1/privacy/settings": "privacy.settings.updated",
  "POST /admin/v1/privacy/exports": "privacy.export.requested",
  "POST /admin/v1/privacy/deletions": "privacy.deletion.requested",
  "POST /admin/v1/privacy/suppressions": "privacy.suppression.created",
  "DELETE /admin/v1/privacy/suppressions/{id}": "privacy.suppression.removed",
};

async function openApiOperations(): Promise<string[]> {
  const doc = await json<{ paths: Record<string, Record<string, unknown>> }>(await call("/openapi.json"));
  return Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
}

async function log(query: string): Promise<Page> {
  const response = await admin(`${LOG}?${query}`);
  expect(response.status).toBe(200);
  return json<Page>(response);
}

/** Every entry matching `query`, page by page through the cursor. */
async function allPages(query: string, limit: number): Promise<Entry[]> {
  const entries: Entry[] = [];
  let cursor: string | null = null;
  do {
    const page = await log(`${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    expect(page.data.length).toBeLessThanOrEqual(limit);
    entries.push(...page.data);
    cursor = page.next;
  } while (cursor);
  return entries;
}

async function createWorkspace(prefix: string): Promise<string> {
  const id = `${prefix}-${unique()}`;
  expect((await admin("/admin/v1/workspaces", { method: "POST", json: { id, name: prefix } })).status).toBe(201);
  return id;
}

/**
 * Entries written straight to D1 with chosen times, for the filters and the
 * paging. Ids are `{workspace}.{name}`, so names order like their ids.
 */
async function seed(workspaceId: string, rows: { name: string; action: string; actor?: string; target?: string; at: number }[]) {
  const insert = "INSERT INTO audit_log (id, workspace_id, actor, action, target, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
  await env.DB.batch(rows.map((r) => env.DB.prepare(insert).bind(`${workspaceId}.${r.name}`, workspaceId, r.actor ?? "root", r.action, r.target ?? null, r.at)));
}

const names = (entries: Entry[]) => entries.map((e) => e.id.slice(e.id.lastIndexOf(".") + 1));
const namesOf = async (query: string) => names((await log(query)).data);

describe("what the audit log records", () => {
  it("knows every route that changes something, and the action each records", async () => {
    const mutating = (await openApiOperations()).filter((op) => /^(POST|PUT|PATCH|DELETE) /.test(op));
    expect(mutating.sort()).toEqual(Object.keys(MUTATING_ROUTES).sort());
  });

  it("records who did what, when and on what, for admin actions made through the API", async () => {
    const started = Date.now();
    const workspaceId = await createWorkspace("aud");
    const created = await json<{ token: { id: string }; secret: string }>(
      await admin("/admin/v1/tokens", { method: "POST", json: { workspaceId, name: "ops", scopes: ["admin", "privacy"] } }),
    );
    const actor = `token:${created.token.id}`;
    const send = async <T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> => {
      const response = await call(path, { method, headers: { authorization: bearer(created.secret), "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
      expect(response.status, `${method} ${path}: ${response.status}`).toBeLessThan(300);
      return (response.status === 204 ? {} : await json<T>(response)) as T;
    };

    const source = await send<{ source: { id: string }; writeKey: string }>("POST", "/admin/v1/sources", { name: "Web" });
    const identity = await send("GET", "/admin/v1/identity/settings");
    await send("PUT", "/admin/v1/identity/settings", { ...identity, clusterCap: 60 });
    const { segment } = await send<{ segment: { id: string } }>("POST", "/admin/v1/segments", { key: `pro_${unique()}`, name: "Pro", definition: { kind: "trait", trait: "plan", op: "equals", value: "pro" } });
    await send("PATCH", `/admin/v1/segments/${segment.id}`, { name: "Pro plan" });
    await send("DELETE", `/admin/v1/segments/${segment.id}`);
    const hook = { name: "Hook", type: "webhook", settings: { url: "https://hooks.example.com/cdp" }, secrets: { signingSecret: "whsec_0123456789abcdef" } };
    const { destination } = await send<{ destination: { id: string } }>("POST", "/admin/v1/destinations", hook);
    await send("PATCH", `/admin/v1/destinations/${destination.id}`, { enabled: false });
    await send("DELETE", `/admin/v1/destinations/${destination.id}`);
    const privacy = await send<{ settings: { retention: Record<string, number | null> } }>("GET", "/admin/v1/privacy/settings");
    await send("PUT", "/admin/v1/privacy/settings", { ...privacy.settings, retention: { ...privacy.settings.retention, deliveryLog: 14 } });

    // An identity action through the workspace's identity object: a shared tablet split out of a profile.
    const userId = `u-${unique()}`;
    const tracked = await call("/v1/identify?sync=true", { json: { userId, anonymousId: `tablet-${userId}`, traits: { plan: "pro" } }, headers: { authorization: basic(source.writeKey) } });
    expect(tracked.status).toBe(200);
    const [profile] = (await send<{ data: { profileId: string }[] }>("GET", `/admin/v1/profiles?identifier=user_id:${userId}`)).data;
    await send("POST", `/admin/v1/profiles/${profile!.profileId}/split`, { identifiers: [`anonymous_id:tablet-${userId}`] });

    expect((await admin(`/admin/v1/sources/${source.source.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await admin(`/admin/v1/tokens/${created.token.id}`, { method: "DELETE" })).status).toBe(200);
    const finished = Date.now();

    const expected = [
      ["root", "workspace.create", workspaceId],
      ["root", "token.create", created.token.id],
      [actor, "source.create", source.source.id],
      [actor, "identity.settings.update", workspaceId],
      [actor, "segment.create", segment.id],
      [actor, "segment.update", segment.id],
      [actor, "segment.delete", segment.id],
      [actor, "destination.create", destination.id],
      [actor, "destination.update", destination.id],
      [actor, "destination.delete", destination.id],
      [actor, "privacy.settings.updated", workspaceId],
      [actor, "identity.profile.split", profile!.profileId],
      ["root", "source.revoke", source.source.id],
      ["root", "token.revoke", created.token.id],
    ];
    const entries = await allPages(`workspaceId=${workspaceId}`, 200);
    // Compared in sorted order: two requests can land in the same millisecond, and ties are ordered by id.
    const described = (list: (string | null)[][]) => list.map((e) => e.join(" ")).sort();
    expect(described(entries.map((e) => [e.actor, e.action, e.target]))).toEqual(described(expected));
    for (const entry of entries) {
      expect(entry.workspaceId).toBe(workspaceId);
      expect(entry.requestId).toBeTruthy();
      // D1 stamps entries with its own clock; the Worker's only moves on I/O, so allow a second either way.
      expect(Date.parse(entry.createdAt)).toBeGreaterThanOrEqual(started - 1_000);
      expect(Date.parse(entry.createdAt)).toBeLessThanOrEqual(finished + 1_000);
    }
    expect(entries.find((e) => e.action === "privacy.settings.updated")!.details).toEqual({ wasDefault: true, changed: { "retention.deliveryLog": { from: 30, to: 14 } } });
  });
});

describe("filters", () => {
  const T = Date.UTC(2030, 0, 1);
  const iso = (ms: number) => new Date(ms).toISOString();

  async function seeded() {
    const ws = `flt-${unique()}`;
    await seed(ws, [
      { name: "a1", action: "privacy.settings.updated", target: ws, at: T },
      { name: "a2", action: "privacy.deletion.requested", actor: "token:tok_a", target: "req_1", at: T + 1_000 },
      { name: "a3", action: "privacyx.thing", at: T + 1_500 },
      { name: "a4", action: "source.create", actor: "token:tok_a", target: "src_1", at: T + 2_000 },
      { name: "a5", action: "source.revoke", target: "src_1", at: T + 3_000 },
      { name: "a6", action: "token.expire", actor: "system:cron", target: "tok_a", at: T + 4_000 },
      { name: "a7", action: "deadxletter.replay", at: T + 5_000 },
      { name: "a8", action: "dead_letter.replay", target: "dlv_1", at: T + 6_000 },
    ]);
    return ws;
  }

  it("matches an action exactly, or by prefix when it ends in *, never treating its characters as wildcards", async () => {
    const ws = await seeded();
    expect(await namesOf(`workspaceId=${ws}&action=source.create`)).toEqual(["a4"]);
    expect(await namesOf(`workspaceId=${ws}&action=privacy.*`)).toEqual(["a2", "a1"]);
    expect(await namesOf(`workspaceId=${ws}&action=dead_letter.*`)).toEqual(["a8"]);
    expect(await namesOf(`workspaceId=${ws}&action=source`)).toEqual([]);
  });

  it("filters by actor and target, and combines filters", async () => {
    const ws = await seeded();
    expect(await namesOf(`workspaceId=${ws}&actor=${encodeURIComponent("token:*")}`)).toEqual(["a4", "a2"]);
    expect(await namesOf(`workspaceId=${ws}&actor=system:cron`)).toEqual(["a6"]);
    expect(await namesOf(`workspaceId=${ws}&target=src_1`)).toEqual(["a5", "a4"]);
    expect(await namesOf(`workspaceId=${ws}&target=src_1&actor=root`)).toEqual(["a5"]);
    expect(await namesOf(`workspaceId=${ws}&action=source.*&actor=token:tok_a`)).toEqual(["a4"]);
  });

  it("filters by time, since inclusive and until exclusive", async () => {
    const ws = await seeded();
    expect(await namesOf(`workspaceId=${ws}&since=${iso(T + 1_000)}&until=${iso(T + 3_000)}`)).toEqual(["a4", "a3", "a2"]);
    expect(await namesOf(`workspaceId=${ws}&since=${iso(T + 5_000)}`)).toEqual(["a8", "a7"]);
    expect(await namesOf(`workspaceId=${ws}&until=${iso(T + 1_000)}`)).toEqual(["a1"]);
    expect(await namesOf(`workspaceId=${ws}&since=${encodeURIComponent("2030-01-01T01:00:01+01:00")}&until=${iso(T + 1_001)}`)).toEqual(["a2"]);
  });

  it("refuses a malformed filter, naming it", async () => {
    const paths = async (query: string) => {
      const response = await admin(`${LOG}?workspaceId=default&${query}`);
      expect(response.status).toBe(400);
      return ((await json<Problem>(response)).errors ?? []).map((e) => e.path).sort();
    };
    expect(await paths("action=priv*acy")).toEqual(["action"]);
    expect(await paths("actor=a%20b&since=yesterday")).toEqual(["actor", "since"]);
    expect(await paths(`since=${iso(T)}&until=${iso(T)}`)).toEqual(["until"]);
    expect(await paths("cursor=nonsense")).toEqual(["cursor"]);
  });

  it("keeps every workspace to its own entries", async () => {
    const ws = await seeded();
    const tenant = await createWorkspace("flt-tenant");
    const { secret } = await json<{ secret: string }>(await admin("/admin/v1/tokens", { method: "POST", json: { workspaceId: tenant, name: "t", scopes: ["admin"] } }));
    expect((await call(`${LOG}?workspaceId=${ws}`, { headers: { authorization: bearer(secret) } })).status).toBe(404);
    const own = await json<Page>(await call(LOG, { headers: { authorization: bearer(secret) } }));
    expect(own.data.map((e) => e.action).sort()).toEqual(["token.create", "workspace.create"]);
  });
});

describe("paging", () => {
  it("walks entries that share a millisecond without skipping or repeating one, newest first", async () => {
    const ws = `pg-${unique()}`;
    const T = Date.UTC(2030, 5, 1);
    const rows = [
      ...["p3", "p9", "p1", "p7", "p5"].map((name) => ({ name, action: "page.same", at: T })),
      { name: "p2", action: "page.later", at: T + 1 },
      { name: "p8", action: "page.later", at: T + 1 },
      { name: "p4", action: "page.earlier", at: T - 1 },
      { name: "p6", action: "other.earlier", at: T - 1 },
    ];
    await seed(ws, rows);
    const expected = ["p8", "p2", "p9", "p7", "p5", "p3", "p1", "p6", "p4"];

    for (const limit of [1, 2, 4]) expect(names(await allPages(`workspaceId=${ws}`, limit))).toEqual(expected);
    expect(names(await allPages(`workspaceId=${ws}&action=page.*`, 2))).toEqual(expected.filter((id) => id !== "p6"));
  });

  it("keeps the pages after a cursor as they were when newer entries arrive in between", async () => {
    const ws = `pg-${unique()}`;
    const T = Date.UTC(2030, 6, 1);
    await seed(ws, ["q1", "q2", "q3", "q4", "q5"].map((name) => ({ name, action: "page.same", at: T })));
    const first = await log(`workspaceId=${ws}&limit=2`);
    expect(names(first.data)).toEqual(["q5", "q4"]);
    await seed(ws, [
      { name: "q0", action: "page.newer", at: T + 10 },
      { name: "q9", action: "page.same", at: T + 1 },
    ]);
    const rest: Entry[] = [];
    for (let cursor = first.next; cursor; ) {
      const page = await log(`workspaceId=${ws}&limit=2&cursor=${encodeURIComponent(cursor)}`);
      rest.push(...page.data);
      cursor = page.next;
    }
    expect(names(rest)).toEqual(["q3", "q2", "q1"]);
  });
});

describe("append-only", () => {
  it("has no route that changes or deletes an entry", async () => {
    const operations = await openApiOperations();
    expect(operations.filter((op) => op.includes("audit"))).toEqual([`GET ${LOG}`]);

    const ws = `ro-${unique()}`;
    await seed(ws, [{ name: "kept", action: "kept.forever", at: Date.now() }]);
    const [entry] = (await log(`workspaceId=${ws}`)).data;
    for (const [method, path] of [
      ["DELETE", `${LOG}?workspaceId=${ws}`],
      ["PUT", `${LOG}?workspaceId=${ws}`],
      ["PATCH", `${LOG}?workspaceId=${ws}`],
      ["POST", `${LOG}?workspaceId=${ws}`],
      ["DELETE", `${LOG}/${entry!.id}`],
      ["PATCH", `${LOG}/${entry!.id}`],
    ] as const) {
      const response = await admin(path, { method, headers: { "content-type": "application/json" }, body: method === "DELETE" ? undefined : JSON.stringify({ action: "tampered" }) });
      expect(response.status, `${method} ${path}`).toBe(404);
    }
    expect((await log(`workspaceId=${ws}`)).data).toEqual([entry]);
  });
});
