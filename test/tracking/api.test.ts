import { describe, expect, it } from "vitest";
import { admin, basic, call, createSource, track, waitForArchived } from "../helpers";

const anon = (n: number) => `anon-${n}`;

describe("tracking API", () => {
  it.each([
    ["/v1/identify", { userId: "u1", traits: { email: "a@example.com", plan: "pro" } }, "identify"],
    ["/v1/track", { userId: "u1", event: "Order Completed", properties: { revenue: 42.5, currency: "EUR" } }, "track"],
    ["/v1/page", { anonymousId: anon(1), name: "Home", properties: { url: "https://shop.example/" } }, "page"],
    ["/v1/screen", { anonymousId: anon(2), name: "Checkout" }, "screen"],
    ["/v1/group", { userId: "u1", groupId: "acme", traits: { name: "Acme" } }, "group"],
    ["/v1/alias", { userId: "u1", previousId: anon(1) }, "alias"],
    ["/v1/i", { userId: "u2" }, "identify"],
    ["/v1/t", { userId: "u2", event: "Signed Up" }, "track"],
    ["/v1/p", { userId: "u2" }, "page"],
    ["/v1/s", { userId: "u2" }, "screen"],
    ["/v1/g", { userId: "u2", groupId: "g2" }, "group"],
    ["/v1/a", { userId: "u2", previousId: "anon-x" }, "alias"],
  ])("accepts a valid message at $0 and archives it", async (path, body, type) => {
    const messageId = `valid-${path.replaceAll("/", "-")}-${crypto.randomUUID()}`;
    const response = await track(path, { ...body, messageId });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ success: true });
    const [archived] = await waitForArchived(messageId, 1);
    expect(archived).toMatchObject({ ...body, type, messageId, workspaceId: "default" });
  });

  it.each([
    ["/v1/track", { userId: "u1" }, "event"],
    ["/v1/track", { event: "No Identity" }, "userId"],
    ["/v1/group", { userId: "u1" }, "groupId"],
    ["/v1/alias", { userId: "u1" }, "previousId"],
    ["/v1/alias", { previousId: "p" }, "userId"],
    ["/v1/identify", { userId: "u1", traits: { email: 42 } }, "traits.email"],
    ["/v1/track", { userId: "u1", event: "X", properties: { revenue: "lots" } }, "properties.revenue"],
    ["/v1/track", { userId: "u1", event: "X", timestamp: "yesterday-ish" }, "timestamp"],
    ["/v1/identify", { userId: "" }, "userId"],
  ])("rejects an invalid message at $0 naming $2", async (path, body, field) => {
    const response = await track(path, body);
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toContain("application/problem+json");
    const problem = (await response.json()) as { type: string; title: string; status: number; detail: string; errors: { path: string }[]; requestId: string };
    expect(problem).toMatchObject({ status: 400, type: "urn:edge-cdp:problem:validation-failed" });
    expect(problem.title).toBeTruthy();
    expect(problem.requestId).toBeTruthy();
    expect(problem.errors.map((e) => e.path)).toContain(field);
  });

  it("rejects a body that is not JSON with a problem document", async () => {
    const response = await call("/v1/track", { method: "POST", body: "{not json", headers: { authorization: basic("dev-write-key") } });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "INVALID_JSON", errors: [{ path: "(body)" }] });
  });

  it("accepts the write key as writeKey in the body, and never archives the key", async () => {
    const messageId = `auth-body-${crypto.randomUUID()}`;
    const viaBody = await call("/v1/track", { json: { writeKey: "dev-write-key", userId: "u1", event: "Body Auth", messageId } });
    expect(viaBody.status).toBe(200);
    const [archived] = await waitForArchived(messageId, 1);
    expect(archived).toBeDefined();
    expect(archived).not.toHaveProperty("writeKey");
  });

  it("answers 401 for a missing or unknown write key", async () => {
    const missing = await call("/v1/track", { json: { userId: "u1", event: "E" } });
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toContain("Basic");
    const unknown = await track("/v1/track", { userId: "u1", event: "E" }, "not-a-key");
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toMatchObject({ code: "UNAUTHORIZED" });
  });

  it("stops accepting a source's key once it is revoked", async () => {
    const source = await createSource("to revoke");
    expect((await track("/v1/track", { userId: "u", event: "Before" }, source.writeKey)).status).toBe(200);
    expect((await admin(`/admin/v1/sources/${source.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await track("/v1/track", { userId: "u", event: "After" }, source.writeKey)).status).toBe(401);
  });

  it("rejects a single message over 32 KB naming the limit", async () => {
    const response = await track("/v1/track", { userId: "u1", event: "Big", properties: { blob: "x".repeat(33 * 1024) } });
    expect(response.status).toBe(413);
    const problem = (await response.json()) as { detail: string; limit: number };
    expect(problem.detail).toContain("32 KB per-message limit");
    expect(problem.limit).toBe(32 * 1024);
  });

  it("sets CORS headers for browsers, on success and on errors", async () => {
    const preflight = await call("/v1/t", { method: "OPTIONS", headers: { origin: "https://shop.example", "access-control-request-method": "POST" } });
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    // analytics.js retries carry X-Retry-Count; a preflight that refused it would lose the retried events.
    const retry = await call("/v1/t", {
      method: "OPTIONS",
      headers: { origin: "https://shop.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type,x-retry-count" },
    });
    expect(retry.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("x-retry-count");
    const error = await call("/v1/t", { json: { event: "x" }, headers: { origin: "https://shop.example" } });
    expect(error.status).toBe(401);
    expect(error.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("accepts analytics.js's text/plain bodies", async () => {
    const messageId = `textplain-${crypto.randomUUID()}`;
    const response = await call("/v1/t", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ writeKey: "dev-write-key", anonymousId: "a", event: "Clicked", messageId }),
    });
    expect(response.status).toBe(200);
    expect(await waitForArchived(messageId, 1)).toHaveLength(1);
  });

  it("answers 404 as a problem document for an unknown route", async () => {
    const response = await call("/v1/nope");
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ code: "NOT_FOUND", status: 404 });
  });
});
