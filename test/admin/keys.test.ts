import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../workers/index";
import { admin, bearer, call, track } from "../helpers";

async function json<T>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

describe("admin API: workspaces, sources and tokens", () => {
  it("creates a workspace, a source whose key writes, and a token whose secret is shown once and stored hashed", async () => {
    expect((await admin("/admin/v1/workspaces", { method: "POST", json: { id: "acme", name: "Acme" } })).status).toBe(201);
    const created = await json<{ source: { id: string; writeKeyPrefix: string }; writeKey: string }>(
      await admin("/admin/v1/sources", { method: "POST", json: { workspaceId: "acme", name: "Web" } }),
    );
    expect(created.writeKey).toMatch(/^cdp_wk_[0-9a-f]{64}$/);
    expect(created.writeKey.startsWith(created.source.writeKeyPrefix)).toBe(true);
    expect((await track("/v1/track", { userId: "u", event: "E" }, created.writeKey)).status).toBe(200);

    const stored = await env.DB.prepare("SELECT write_key_hash FROM sources WHERE id = ?").bind(created.source.id).first<{ write_key_hash: string }>();
    expect(stored!.write_key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(stored!.write_key_hash).not.toContain(created.writeKey.slice(7));

    const listed = await json<{ data: Record<string, unknown>[] }>(await admin("/admin/v1/sources?workspaceId=acme"));
    expect(listed.data).toHaveLength(1);
    expect(JSON.stringify(listed)).not.toContain(created.writeKey);
  });

  it("refuses a duplicate workspace id with 409 and an invalid one with the field named", async () => {
    await admin("/admin/v1/workspaces", { method: "POST", json: { id: "dupe", name: "One" } });
    const again = await admin("/admin/v1/workspaces", { method: "POST", json: { id: "dupe", name: "Two" } });
    expect(again.status).toBe(409);
    const invalid = await admin("/admin/v1/workspaces", { method: "POST", json: { id: "Not Valid!", name: "" } });
    expect(invalid.status).toBe(400);
    expect((await json<{ errors: { path: string }[] }>(invalid)).errors.map((e) => e.path).sort()).toEqual(["id", "name"]);
  });

  it("confines a workspace admin token to its own workspace and forbids scopes it lacks", async () => {
    await admin("/admin/v1/workspaces", { method: "POST", json: { id: "tenant-a", name: "A" } });
    await admin("/admin/v1/workspaces", { method: "POST", json: { id: "tenant-b", name: "B" } });
    const { secret } = await json<{ secret: string }>(await admin("/admin/v1/tokens", { method: "POST", json: { workspaceId: "tenant-a", name: "ops", scopes: ["admin"] } }));
    const asTenant = (path: string, init: RequestInit & { json?: unknown } = {}) => call(path, { ...init, headers: { authorization: bearer(secret) } });

    expect((await json<{ data: { id: string }[] }>(await asTenant("/admin/v1/workspaces"))).data.map((w) => w.id)).toEqual(["tenant-a"]);
    expect((await asTenant("/admin/v1/workspaces/tenant-b")).status).toBe(404);
    expect((await asTenant("/admin/v1/sources?workspaceId=tenant-b")).status).toBe(404);
    expect((await asTenant("/admin/v1/sources", { method: "POST", json: { name: "mine" } })).status).toBe(201);
    expect((await asTenant("/admin/v1/workspaces", { method: "POST", json: { id: "tenant-c", name: "C" } })).status).toBe(403);
    const escalate = await asTenant("/admin/v1/tokens", { method: "POST", json: { name: "x", scopes: ["privacy"] } });
    expect(escalate.status).toBe(403);
    expect((await json<{ detail: string }>(escalate)).detail).toContain("privacy");
  });

  it("keeps a profiles:read token out of the admin API and rejects unknown tokens", async () => {
    const readOnly = await call("/admin/v1/sources", { headers: { authorization: bearer("dev-access-token") } });
    expect(readOnly.status).toBe(403);
    expect((await json<{ detail: string }>(readOnly)).detail).toContain("'admin' scope");
    expect((await call("/admin/v1/sources", { headers: { authorization: bearer("nope") } })).status).toBe(401);
    expect((await call("/admin/v1/sources")).status).toBe(401);
  });

  it("revokes a token at once", async () => {
    const { token, secret } = await json<{ token: { id: string }; secret: string }>(
      await admin("/admin/v1/tokens", { method: "POST", json: { workspaceId: "default", name: "temp", scopes: ["admin"] } }),
    );
    expect((await call("/admin/v1/tokens?workspaceId=default", { headers: { authorization: bearer(secret) } })).status).toBe(200);
    const revoked = await json<{ revokedAt: string | null }>(await admin(`/admin/v1/tokens/${token.id}`, { method: "DELETE" }));
    expect(revoked.revokedAt).not.toBeNull();
    expect((await call("/admin/v1/tokens?workspaceId=default", { headers: { authorization: bearer(secret) } })).status).toBe(401);
  });

  it("expires tokens on the maintenance cron and records it in the audit log", async () => {
    const { token, secret } = await json<{ token: { id: string }; secret: string }>(
      await admin("/admin/v1/tokens", { method: "POST", json: { workspaceId: "default", name: "short", scopes: ["admin"], expiresAt: new Date(Date.now() + 60_000).toISOString() } }),
    );
    await worker.scheduled(createScheduledController({ scheduledTime: Date.now() + 120_000, cron: "*/5 * * * *" }), env, {} as ExecutionContext);
    const row = await env.DB.prepare("SELECT revoked_at FROM tokens WHERE id = ?").bind(token.id).first<{ revoked_at: number | null }>();
    expect(row!.revoked_at).not.toBeNull();
    expect((await call("/admin/v1/sources?workspaceId=default", { headers: { authorization: bearer(secret) } })).status).toBe(401);
    const log = await json<{ data: { action: string; target: string; actor: string }[] }>(await admin("/admin/v1/audit-log?workspaceId=default"));
    expect(log.data).toContainEqual(expect.objectContaining({ action: "token.expire", target: token.id, actor: "system:cron" }));
  });

  it("audit-logs every change with its actor and request id", async () => {
    await admin("/admin/v1/workspaces", { method: "POST", json: { id: "audited", name: "Audited" } });
    await admin("/admin/v1/sources", { method: "POST", json: { workspaceId: "audited", name: "S" } });
    const log = await json<{ data: { action: string; actor: string; requestId: string }[] }>(await admin("/admin/v1/audit-log?workspaceId=audited"));
    expect(log.data.map((e) => e.action)).toEqual(["source.create", "workspace.create"]);
    expect(log.data.every((e) => e.actor === "root" && e.requestId)).toBe(true);
  });

  it("describes the admin API in /openapi.json", async () => {
    const doc = await json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(await call("/openapi.json"));
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/admin/v1/workspaces", "/admin/v1/workspaces/{id}", "/admin/v1/sources", "/admin/v1/sources/{id}", "/admin/v1/tokens", "/admin/v1/tokens/{id}", "/admin/v1/audit-log"]),
    );
    expect(Object.keys(doc.paths["/admin/v1/tokens"]!)).toEqual(["get", "post"]);
  });
});

describe("analytics.js settings", () => {
  it("serves a settings document pointing the Segment.io destination at this host", async () => {
    const response = await call("/v1/projects/dev-write-key/settings");
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    const settings = await json<{ integrations: Record<string, { apiKey: string; apiHost: string; protocol: string }>; metrics: { sampleRate: number } }>(response);
    expect(settings.integrations["Segment.io"]).toMatchObject({ apiKey: "dev-write-key", apiHost: "cdp.test/v1", protocol: "http" });
    expect(settings.metrics.sampleRate).toBe(0);
  });

  it("answers 404 for an unknown write key", async () => {
    expect((await call("/v1/projects/unknown/settings")).status).toBe(404);
  });
});
