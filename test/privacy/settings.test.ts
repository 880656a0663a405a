import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEFAULT_PRIVACY_SETTINGS, type PrivacySettings } from "../../workers/privacy/settings";
import { loadPrivacySettings } from "../../workers/privacy/settings-store";
import { admin, bearer, call, json, type Problem, unique } from "../helpers";

/**
 * The privacy settings API through real HTTP and D1. Storage is shared by the
 * tests of this file, so every test uses its own workspace.
 */

interface State {
  workspaceId: string;
  isDefault: boolean;
  settings: PrivacySettings;
  updatedAt: string | null;
}
interface AuditEntry {
  actor: string;
  action: string;
  target: string | null;
  details: Record<string, unknown> | null;
  createdAt: string;
}

const PATH = "/admin/v1/privacy/settings";

async function createWorkspace(): Promise<string> {
  const id = `priv-${unique()}`;
  expect((await admin("/admin/v1/workspaces", { method: "POST", json: { id, name: "Privacy" } })).status).toBe(201);
  return id;
}

async function tokenFor(workspaceId: string, scopes: string[]): Promise<string> {
  const response = await admin("/admin/v1/tokens", { method: "POST", json: { workspaceId, name: "privacy test", scopes } });
  expect(response.status).toBe(201);
  return (await json<{ secret: string }>(response)).secret;
}

const put = (workspaceId: string, body: unknown) => admin(`${PATH}?workspaceId=${workspaceId}`, { method: "PUT", json: body });

async function auditOf(workspaceId: string): Promise<AuditEntry[]> {
  return (await json<{ data: AuditEntry[] }>(await admin(`/admin/v1/audit-log?workspaceId=${workspaceId}&action=privacy.*`))).data;
}

const changed: PrivacySettings = {
  consent: {
    categories: [...DEFAULT_PRIVACY_SETTINGS.consent.categories, { id: "c0004", name: "Targeting", description: "OneTrust group C0004" }],
    requiredAtCollection: ["necessary", "c0004"],
  },
  retention: { ...DEFAULT_PRIVACY_SETTINGS.retention, events: 30, auditLog: null },
};

describe("GET /admin/v1/privacy/settings", () => {
  it("answers the defaults, saying so, for a workspace that never saved any", async () => {
    const workspaceId = await createWorkspace();
    const response = await admin(`${PATH}?workspaceId=${workspaceId}`);
    expect(response.status).toBe(200);
    expect(await json<State>(response)).toEqual({ workspaceId, isDefault: true, settings: DEFAULT_PRIVACY_SETTINGS, updatedAt: null });
  });

  it("needs workspaceId with the root token, and an existing workspace", async () => {
    const missing = await admin(PATH);
    expect(missing.status).toBe(400);
    expect((await json<Problem>(missing)).errors).toEqual([{ path: "workspaceId", message: "required" }]);
    expect((await admin(`${PATH}?workspaceId=no-such-${unique()}`)).status).toBe(404);
  });
});

describe("PUT /admin/v1/privacy/settings", () => {
  it("stores a valid document, reads it back as not the defaults, and audit-logs only the parts that changed", async () => {
    const workspaceId = await createWorkspace();
    const saved = await put(workspaceId, changed);
    expect(saved.status).toBe(200);
    const state = await json<State>(saved);
    expect(state).toMatchObject({ workspaceId, isDefault: false, settings: changed });
    expect(await json<State>(await admin(`${PATH}?workspaceId=${workspaceId}`))).toEqual(state);

    const [entry] = await auditOf(workspaceId);
    expect(entry).toMatchObject({ actor: "root", action: "privacy.settings.updated", target: workspaceId });
    expect(entry!.details).toEqual({
      wasDefault: true,
      changed: {
        "consent.categories": { from: DEFAULT_PRIVACY_SETTINGS.consent.categories, to: changed.consent.categories },
        "consent.requiredAtCollection": { from: [], to: ["necessary", "c0004"] },
        "retention.events": { from: 90, to: 30 },
        "retention.auditLog": { from: 730, to: null },
      },
    });
  });

  it("records the next change against the stored settings, not the defaults", async () => {
    const workspaceId = await createWorkspace();
    await put(workspaceId, changed);
    await put(workspaceId, { ...changed, retention: { ...changed.retention, archive: 30 } });
    const [latest] = await auditOf(workspaceId);
    expect(latest!.details).toEqual({ wasDefault: false, changed: { "retention.archive": { from: 365, to: 30 } } });
  });

  it("refuses an invalid document with every invalid field's path, and changes nothing", async () => {
    const workspaceId = await createWorkspace();
    const refused = await put(workspaceId, {
      consent: {
        categories: [
          { id: "analytics", name: "Analytics" },
          { id: "analytics", name: "Again" },
          { id: "has space", name: "" },
        ],
        requiredAtCollection: ["analytics", "unknown"],
      },
      // A section of the wrong type stops zod before the cross-field checks; those are named all the same.
      retention: { ...DEFAULT_PRIVACY_SETTINGS.retention, events: "ninety", archive: 0, deliveryLog: 4000 },
      surprise: true,
    });
    expect(refused.status).toBe(400);
    const problem = await json<Problem>(refused);
    expect(problem.code).toBe("VALIDATION_FAILED");
    expect(problem.errors!.map((e) => e.path).sort()).toEqual(
      ["(root)", "consent.categories.1.id", "consent.categories.2.id", "consent.categories.2.name", "consent.requiredAtCollection.1", "retention.archive", "retention.deliveryLog", "retention.events"].sort(),
    );
    expect(problem.errors!.find((e) => e.path === "consent.requiredAtCollection.1")!.message).toContain("'unknown'");

    expect((await json<State>(await admin(`${PATH}?workspaceId=${workspaceId}`))).isDefault).toBe(true);
    expect(await auditOf(workspaceId)).toEqual([]);
  });

  it("names a required category that is not listed even when the retention section is missing", async () => {
    const workspaceId = await createWorkspace();
    const refused = await put(workspaceId, { consent: { categories: [], requiredAtCollection: ["analytics"] } });
    expect((await json<Problem>(refused)).errors!.map((e) => e.path).sort()).toEqual(["consent.requiredAtCollection.0", "retention"]);
  });

  it("reaches consent at collection at once in this isolate, despite its cache", async () => {
    const workspaceId = await createWorkspace();
    expect((await loadPrivacySettings(env.DB, workspaceId)).consent.requiredAtCollection).toEqual([]);
    await put(workspaceId, changed);
    expect((await loadPrivacySettings(env.DB, workspaceId)).consent.requiredAtCollection).toEqual(["necessary", "c0004"]);
  });
});

describe("privacy settings access", () => {
  it("turns away a workspace token with only the admin scope with a 403 naming the privacy scope", async () => {
    const workspaceId = await createWorkspace();
    const secret = await tokenFor(workspaceId, ["admin"]);
    for (const init of [{}, { method: "PUT", json: changed }]) {
      const response = await call(PATH, { ...init, headers: { authorization: bearer(secret) } });
      expect(response.status).toBe(403);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      const problem = await json<Problem>(response);
      expect(problem.code).toBe("FORBIDDEN");
      expect(problem.detail).toContain("'privacy' scope");
    }
    expect((await json<State>(await admin(`${PATH}?workspaceId=${workspaceId}`))).isDefault).toBe(true);
  });

  it("lets a token with the privacy scope read and change its own workspace's settings, audit-logged as that token, and no other workspace's", async () => {
    const workspaceId = await createWorkspace();
    const other = await createWorkspace();
    const secret = await tokenFor(workspaceId, ["privacy"]);
    const asToken = (path: string, init: RequestInit & { json?: unknown } = {}) => call(path, { ...init, headers: { authorization: bearer(secret) } });

    expect((await json<State>(await asToken(PATH))).workspaceId).toBe(workspaceId);
    const saved = await asToken(PATH, { method: "PUT", json: changed });
    expect(saved.status).toBe(200);
    expect((await json<State>(saved)).workspaceId).toBe(workspaceId);
    const tokenId = (await env.DB.prepare("SELECT id FROM tokens WHERE workspace_id = ?1").bind(workspaceId).first<{ id: string }>())!.id;
    expect((await auditOf(workspaceId))[0]).toMatchObject({ actor: `token:${tokenId}`, action: "privacy.settings.updated" });

    expect((await asToken(`${PATH}?workspaceId=${other}`)).status).toBe(404);
    expect((await asToken(`${PATH}?workspaceId=${other}`, { method: "PUT", json: changed })).status).toBe(404);
    expect((await json<State>(await admin(`${PATH}?workspaceId=${other}`))).isDefault).toBe(true);
  });

  it("describes both methods in /openapi.json", async () => {
    const doc = await json<{ paths: Record<string, Record<string, unknown>> }>(await call("/openapi.json"));
    expect(Object.keys(doc.paths[PATH] ?? {}).sort()).toEqual(["get", "put"]);
  });
});
