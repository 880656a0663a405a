import { describe, expect, it } from "vitest";
import { admin, bearer, call, json, unique, type Json } from "../helpers";

/**
 * The suppression and collection admin routes: what they store and show (never
 * the raw identifier), the audit trail, paging, bad input, and who may call them.
 */

const PATH = "/admin/v1/privacy/suppressions";

const post = (body: unknown, headers: Record<string, string> = {}) => admin(PATH, { method: "POST", json: body, headers });

async function workspace(): Promise<string> {
  const id = `sup-${unique()}`;
  expect((await admin("/admin/v1/workspaces", { method: "POST", json: { id, name: id } })).status).toBe(201);
  return id;
}

async function tokenWith(scopes: string[]) {
  const response = await admin("/admin/v1/tokens", { method: "POST", json: { workspaceId: "default", name: `suppressions ${unique()}`, scopes } });
  expect(response.status).toBe(201);
  return (await json(response)).secret as string;
}

const auditEntries = async (workspaceId: string) => (await json(await admin(`/admin/v1/audit-log?workspaceId=${workspaceId}&limit=200`))).data as Json[];

describe("suppressing identifiers through the admin API", () => {
  it("stores a masked hint, never the value, and audit-logs each new suppression by id with the hint only", async () => {
    const ws = await workspace();
    const email = `Robin.${unique()}@Acme-Mail.io`;
    const created = await post({ workspaceId: ws, identifiers: [{ type: "email", value: email }, { type: "crm_id", value: "CRM-778812" }] });
    expect(created.status).toBe(201);
    const { data } = await json(created);
    expect(data).toEqual([
      { id: expect.stringMatching(/^sup_/), hint: "email:r***@acme-mail.io", created: true },
      { id: expect.stringMatching(/^sup_/), hint: "crm_id:CR***12", created: true },
    ]);

    const listed = await json(await admin(`${PATH}?workspaceId=${ws}`));
    expect(listed.data.map((s: Json) => s.id).sort()).toEqual(data.map((s: Json) => s.id).sort());
    expect(listed.data[0]).toMatchObject({ reason: "manual", requestId: null, createdBy: "root", createdAt: expect.any(String) });

    const audits = (await auditEntries(ws)).filter((e) => e.action === "privacy.suppression.created");
    expect(audits.map((e) => e.target).sort()).toEqual(data.map((s: Json) => s.id).sort());
    expect(audits.find((e) => e.target === data[0].id)!.details).toEqual({ hint: "email:r***@acme-mail.io", reason: "manual" });
    const everything = JSON.stringify([listed, audits]).toLowerCase();
    expect(everything).not.toContain(email.toLowerCase());
    expect(everything).not.toContain("crm-778812");
  });

  it("is idempotent: suppressing again returns the same suppression and logs nothing new", async () => {
    const ws = await workspace();
    const identifiers = [{ type: "user_id", value: `again-${unique()}` }];
    const first = (await json(await post({ workspaceId: ws, identifiers }))).data[0];
    const second = await post({ workspaceId: ws, identifiers });
    expect(second.status).toBe(201);
    expect((await json(second)).data).toEqual([{ ...first, created: false }]);
    expect((await auditEntries(ws)).filter((e) => e.action === "privacy.suppression.created")).toHaveLength(1);
  });

  it("pages newest first with a next cursor", async () => {
    const ws = await workspace();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await json(await post({ workspaceId: ws, identifiers: [{ type: "user_id", value: `paged-${i}-${unique()}` }] }))).data[0].id);
    const first = await json(await admin(`${PATH}?workspaceId=${ws}&limit=2`));
    expect(first.data).toHaveLength(2);
    expect(first.next).toEqual(expect.any(String));
    const second = await json(await admin(`${PATH}?workspaceId=${ws}&limit=2&next=${encodeURIComponent(first.next)}`));
    expect(second).toMatchObject({ next: null });
    expect([...first.data, ...second.data].map((s: Json) => s.id).sort()).toEqual([...ids].sort());
  });

  it("lifts a suppression, audit-logs it, and answers 404 for one that does not exist", async () => {
    const ws = await workspace();
    const [suppression] = (await json(await post({ workspaceId: ws, identifiers: [{ type: "phone", value: "+1 415 555 0142" }] }))).data;
    const removed = await admin(`${PATH}/${suppression.id}`, { method: "DELETE" });
    expect(removed.status).toBe(200);
    expect(await json(removed)).toMatchObject({ id: suppression.id, hint: "phone:+1***42" });
    expect((await json(await admin(`${PATH}?workspaceId=${ws}`))).data).toEqual([]);
    expect((await auditEntries(ws)).find((e) => e.action === "privacy.suppression.removed")).toMatchObject({ target: suppression.id, details: { hint: "phone:+1***42" } });
    expect((await admin(`${PATH}/${suppression.id}`, { method: "DELETE" })).status).toBe(404);
  });
});

describe("bad suppression requests", () => {
  const errorPaths = async (response: Response) => {
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toContain("application/problem+json");
    return ((await json(response)).errors as Json[]).map((e) => e.path);
  };

  it("names each malformed identifier by its path", async () => {
    const paths = await errorPaths(
      await post({ workspaceId: "default", identifiers: [{ type: "user_id", value: "ok-1" }, { type: "Bad Type", value: "v" }, { type: "user_id", value: "" }, { type: "user_id", value: "x".repeat(513) }] }),
    );
    expect(paths).toEqual(["identifiers.1.type", "identifiers.2.value", "identifiers.3.value"]);
  });

  it("names values that normalisation refuses, and changes nothing", async () => {
    const ws = await workspace();
    const response = await post({ workspaceId: ws, identifiers: [{ type: "user_id", value: "fine-1" }, { type: "email", value: "not-an-email" }, { type: "ip", value: "203.0.113.9" }] });
    expect(await errorPaths(response)).toEqual(["identifiers.1.value", "identifiers.2.type"]);
    expect((await json(await admin(`${PATH}?workspaceId=${ws}`))).data).toEqual([]);
  });

  it("refuses more than 1,000 identifiers in one call, saying so", async () => {
    const identifiers = Array.from({ length: 1001 }, (_, i) => ({ type: "user_id", value: `bulk-${i}` }));
    const response = await post({ workspaceId: "default", identifiers });
    expect(response.status).toBe(400);
    expect((await json(response)).errors).toEqual([{ path: "identifiers", message: expect.stringContaining("1,000") }]);
  });

  it("refuses a cursor it did not issue", async () => {
    expect(await errorPaths(await admin(`${PATH}?workspaceId=default&next=garbage`))).toEqual(["next"]);
  });
});

describe("who may call the privacy collection routes", () => {
  it("refuses a token with only the admin scope", async () => {
    const headers = { authorization: bearer(await tokenWith(["admin"])) };
    expect((await call(PATH, { headers })).status).toBe(403);
    expect((await call(PATH, { method: "POST", json: { identifiers: [{ type: "user_id", value: "u" }] }, headers })).status).toBe(403);
    expect((await call(`${PATH}/sup_123`, { method: "DELETE", headers })).status).toBe(403);
    expect((await call("/admin/v1/privacy/collection", { headers })).status).toBe(403);
  });

  it("serves a privacy token its own workspace only", async () => {
    const headers = { authorization: bearer(await tokenWith(["privacy"])) };
    expect((await call(PATH, { headers })).status).toBe(200);
    expect((await call("/admin/v1/privacy/collection", { headers })).status).toBe(200);
    expect((await call(`${PATH}?workspaceId=${await workspace()}`, { headers })).status).toBe(404);
  });

  it("does not let a workspace token lift another workspace's suppression", async () => {
    const ws = await workspace();
    const [suppression] = (await json(await post({ workspaceId: ws, identifiers: [{ type: "user_id", value: `theirs-${unique()}` }] }))).data;
    const headers = { authorization: bearer(await tokenWith(["privacy"])) };
    expect((await call(`${PATH}/${suppression.id}`, { method: "DELETE", headers })).status).toBe(404);
    expect((await json(await admin(`${PATH}?workspaceId=${ws}`))).data).toHaveLength(1);
  });
});
