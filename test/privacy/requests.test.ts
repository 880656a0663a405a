import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { admin, bearer, call, createSource, json, track, unique, until, waitForArchived, type Json } from "../helpers";

/**
 * Access and deletion requests through the admin API, with the real jobs
 * queue, identity object, D1 and R2: what an export contains, who may ask for
 * one, what bad input gets back, and the audit trail each request leaves. The
 * whole-store search after a deletion, with real destinations, is in
 * test/e2e/privacy-deletion.test.ts.
 */

const finished = (kind: "exports" | "deletions", id: string) =>
  until(`${kind} ${id} to end`, async () => {
    const request = await json(await admin(`/admin/v1/privacy/${kind}/${id}?workspaceId=default`));
    return ["finished", "partial_success", "failed"].includes(request.status) ? request : undefined;
  });

async function tokenWith(scopes: string[]) {
  const response = await admin("/admin/v1/tokens", { method: "POST", json: { workspaceId: "default", name: `privacy ${unique()}`, scopes } });
  expect(response.status).toBe(201);
  return (await json(response)).secret as string;
}

/** One person with a trait, a merge, a consent change, a group and a tracked order, collected through the real pipeline. */
async function collectPerson() {
  const id = unique();
  const p = { id, userId: `user-${id}`, anonymousId: `anon-${id}`, otherAnonymousId: `anon2-${id}`, email: `pat.${id}@acme-shop.com`, colour: `colour-${id}` };
  const { writeKey } = await createSource(`privacy ${id}`);
  const batch = [
    { type: "page", anonymousId: p.otherAnonymousId, name: "Pricing", messageId: `pr-${id}-1` },
    { type: "identify", userId: p.userId, anonymousId: p.anonymousId, traits: { email: p.email, colour: p.colour }, messageId: `pr-${id}-2` },
    { type: "alias", userId: p.userId, previousId: p.otherAnonymousId, messageId: `pr-${id}-3` },
    { type: "track", userId: p.userId, event: "Order Completed", properties: { total: 42 }, messageId: `pr-${id}-4` },
    {
      type: "track",
      userId: p.userId,
      event: "Segment Consent Preference Updated",
      context: { consent: { categoryPreferences: { analytics: true, advertising: false } } },
      messageId: `pr-${id}-5`,
    },
    { type: "group", userId: p.userId, groupId: `acct-${id}`, traits: { name: `Account ${id}` }, messageId: `pr-${id}-6` },
  ];
  expect((await track("/v1/batch", { batch }, writeKey)).status).toBe(200);
  expect(await waitForArchived(`pr-${id}-`, batch.length)).toHaveLength(batch.length);
  await until("the person's profile in D1", async () => {
    const row = await env.DB.prepare("SELECT profile_id FROM profile_identifiers WHERE workspace_id = 'default' AND type = 'user_id' AND value = ?1").bind(p.userId).first();
    const events = await env.DB.prepare("SELECT count(*) AS n FROM profile_events WHERE workspace_id = 'default' AND message_id LIKE ?1").bind(`pr-${id}-%`).first<{ n: number }>();
    return row && events!.n >= batch.length ? true : undefined;
  });
  return p;
}

describe("privacy requests", () => {
  it("exports every fact about a person from each store into one downloadable document", async () => {
    const p = await collectPerson();
    const created = await admin("/admin/v1/privacy/exports", { method: "POST", json: { workspaceId: "default", identifier: { type: "email", value: p.email.toUpperCase() } } });
    expect(created.status).toBe(202);
    const { request, job } = await json(created);
    expect(request).toMatchObject({ kind: "export", status: "initialized", subject: "email:p***@acme-shop.com", download: null });
    expect(job).toMatchObject({ kind: "privacy-export", target: request.id });

    const done = await finished("exports", request.id);
    expect(done).toMatchObject({ status: "finished", download: `/admin/v1/privacy/exports/${request.id}/download` });
    const download = await admin(`${done.download}?workspaceId=default`);
    expect(download.status).toBe(200);
    expect(download.headers.get("content-disposition")).toContain(`${request.id}.json`);
    const document = await json(download);

    expect(document).toMatchObject({ format: "edge-cdp.privacy-export.v1", requestId: request.id, subject: { type: "email", value: p.email } });
    const identifiers = document.profile.identifiers.map((i: Json) => `${i.type}:${i.value}`);
    expect(identifiers).toEqual(expect.arrayContaining([`user_id:${p.userId}`, `email:${p.email}`, `anonymous_id:${p.anonymousId}`, `anonymous_id:${p.otherAnonymousId}`]));
    expect(document.profile.profileIds.length).toBeGreaterThanOrEqual(2);
    expect(document.identity.merges.length).toBeGreaterThanOrEqual(1);
    // Traits, as the identity object and D1 hold them.
    expect(JSON.stringify(document.profile.current)).toContain(p.colour);
    expect(JSON.stringify(document.d1.profiles)).toContain(p.colour);
    // Consent: current state and the event that set it.
    expect(document.profile.consent.current).toMatchObject({ analytics: { consented: true }, advertising: { consented: false } });
    expect(document.profile.consent.history).toEqual([expect.objectContaining({ messageId: `pr-${p.id}-5`, categoryPreferences: { analytics: true, advertising: false } })]);
    // Events from each store: the identity object, D1, the R2 archive.
    const ids = (events: Json[]) => events.map((e) => e.messageId ?? e.message_id).sort();
    const all = [1, 2, 3, 4, 5, 6].map((n) => `pr-${p.id}-${n}`);
    expect(ids(document.events.identityObject)).toEqual(all);
    expect(ids(document.events.d1)).toEqual(expect.arrayContaining([`pr-${p.id}-4`, `pr-${p.id}-5`]));
    expect(ids(document.events.archive.events)).toEqual(all);
    expect(document.accounts).toEqual([expect.objectContaining({ group_id: `acct-${p.id}` })]);
    expect(document.counts).toMatchObject({ archivedEvents: 6, objectEvents: 6 });

    const audit = await json(await admin(`/admin/v1/audit-log?workspaceId=default&limit=200`));
    const actions = audit.data.filter((e: Json) => e.target === request.id).map((e: Json) => e.action);
    expect(actions.sort()).toEqual(["privacy.export.downloaded", "privacy.export.requested"]);
    expect(JSON.stringify(audit.data)).not.toContain(p.email);
  });

  it("deletes a person, leaving only hashes and a masked hint in its own record", async () => {
    const p = await collectPerson();
    // Audit entries that name them are redacted; one whose text only runs into their id (`…0`) is not.
    const naming = `aud_naming_${p.id}`;
    const unrelated = `aud_unrelated_${p.id}`;
    await env.DB.batch([
      env.DB.prepare("INSERT INTO audit_log (id, workspace_id, actor, action, target, details) VALUES (?1, 'default', 'root', 'identity.profile.split', 'prof_x', ?2)").bind(naming, JSON.stringify({ identifiers: [`email:${p.email}`] })),
      env.DB.prepare("INSERT INTO audit_log (id, workspace_id, actor, action, target, details) VALUES (?1, 'default', 'root', 'test.other', 'x', ?2)").bind(unrelated, JSON.stringify({ note: `${p.userId}0` })),
    ]);
    const created = await json(await admin("/admin/v1/privacy/deletions", { method: "POST", json: { workspaceId: "default", identifier: { type: "user_id", value: p.userId } } }));
    const done = await finished("deletions", created.request.id);
    expect(done).toMatchObject({ status: "finished", stores: { r2: { status: "done" }, identity: { status: "done" }, d1: { status: "done" } } });
    expect(done.stores.r2.counts.archiveEventsRemoved).toBe(6);

    const profile = await admin(`/admin/v1/profiles?workspaceId=default&identifier=${encodeURIComponent(`user_id:${p.userId}`)}`);
    expect(await json(profile)).toEqual({ data: [] });
    const audit = async (id: string) => (await env.DB.prepare("SELECT details FROM audit_log WHERE id = ?1").bind(id).first<{ details: string }>())!.details;
    expect(JSON.parse(await audit(naming))).toEqual({ redacted: `details removed by privacy deletion ${created.request.id}` });
    expect(JSON.parse(await audit(unrelated))).toEqual({ note: `${p.userId}0` });
    const row = await env.DB.prepare("SELECT * FROM privacy_requests WHERE id = ?1").bind(created.request.id).first();
    for (const value of [p.userId, p.email, p.anonymousId, p.colour]) expect(JSON.stringify(row)).not.toContain(value);
    const work = await env.ARCHIVE.list({ prefix: "privacy/work/" });
    expect(work.objects.filter((o) => o.key.includes(created.request.id))).toEqual([]);
  });

  it("still suppresses and sweeps for a person no profile holds", async () => {
    const email = `nobody.${unique()}@acme-shop.com`;
    const created = await admin("/admin/v1/privacy/deletions", { method: "POST", json: { workspaceId: "default", identifier: { type: "email", value: email } } });
    expect(created.status).toBe(202);
    const done = await finished("deletions", (await json(created)).request.id);
    expect(done).toMatchObject({ status: "finished", profileIds: [], destinations: {} });
    const suppressed = await env.DB.prepare("SELECT reason FROM suppressions WHERE workspace_id = 'default' AND request_id = ?1").bind(done.id).all();
    expect(suppressed.results).toEqual([{ reason: "deletion" }]);
  });

  it("answers an export of a person no profile holds with a 404 naming the masked identifier", async () => {
    const response = await admin("/admin/v1/privacy/exports", { method: "POST", json: { workspaceId: "default", identifier: { type: "user_id", value: `ghost-${unique()}` } } });
    expect(response.status).toBe(404);
    expect(response.headers.get("content-type")).toContain("application/problem+json");
    expect(await json(response)).toMatchObject({ code: "NOT_FOUND", detail: expect.stringMatching(/no profile .* holds user_id:gh\*\*\*/) });
  });

  it("rejects a request with an unusable identifier, naming the field, and creates nothing", async () => {
    const before = await env.DB.prepare("SELECT count(*) AS n FROM privacy_requests").first<{ n: number }>();
    const badType = await admin("/admin/v1/privacy/deletions", { method: "POST", json: { workspaceId: "default", identifier: { type: "Not A Type", value: "x" } } });
    expect(badType.status).toBe(400);
    expect((await json(badType)).errors).toEqual([expect.objectContaining({ path: "identifier.type" })]);
    const badEmail = await admin("/admin/v1/privacy/exports", { method: "POST", json: { workspaceId: "default", identifier: { type: "email", value: "not-an-email" } } });
    expect(badEmail.status).toBe(400);
    expect((await json(badEmail)).errors).toEqual([expect.objectContaining({ path: "identifier.value" })]);
    const missing = await admin("/admin/v1/privacy/deletions", { method: "POST", json: { workspaceId: "default" } });
    expect(missing.status).toBe(400);
    expect((await json(missing)).errors).toEqual([expect.objectContaining({ path: "identifier" })]);
    const after = await env.DB.prepare("SELECT count(*) AS n FROM privacy_requests").first<{ n: number }>();
    expect(after!.n).toBe(before!.n);
  });

  it("lets only the privacy scope export or delete, and follow the job", async () => {
    const adminOnly = await tokenWith(["admin"]);
    const privacyOnly = await tokenWith(["privacy"]);
    const body = { identifier: { type: "user_id", value: `someone-${unique()}` } };
    for (const path of ["/admin/v1/privacy/exports", "/admin/v1/privacy/deletions"]) {
      const refused = await call(path, { method: "POST", json: body, headers: { authorization: bearer(adminOnly) } });
      expect(refused.status).toBe(403);
      expect((await json(refused)).detail).toContain("'privacy'");
      const list = await call(path, { headers: { authorization: bearer(adminOnly) } });
      expect(list.status).toBe(403);
    }
    const accepted = await call("/admin/v1/privacy/deletions", { method: "POST", json: body, headers: { authorization: bearer(privacyOnly) } });
    expect(accepted.status).toBe(202);
    const { request, job } = await json(accepted);
    expect(request.requestedBy).toMatch(/^token:/);
    const asPrivacy = await call(`/admin/v1/jobs/${job.id}`, { headers: { authorization: bearer(privacyOnly) } });
    expect(asPrivacy.status).toBe(200);
    const asAdmin = await call(`/admin/v1/jobs/${job.id}`, { headers: { authorization: bearer(adminOnly) } });
    expect(asAdmin.status).toBe(404);
    const listed = await json(await call("/admin/v1/privacy/deletions?limit=5", { headers: { authorization: bearer(privacyOnly) } }));
    expect(listed.data.map((r: Json) => r.id)).toContain(request.id);
    // The audit log records privacy actions, so the privacy scope reads it too; a profiles:read token does not.
    const audit = await call(`/admin/v1/audit-log?action=privacy.*&target=${request.id}`, { headers: { authorization: bearer(privacyOnly) } });
    expect((await json(audit)).data.map((e: Json) => e.action)).toEqual(["privacy.deletion.requested"]);
    expect((await call("/admin/v1/audit-log", { headers: { authorization: bearer("dev-access-token") } })).status).toBe(403);
  });
});
