import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../workers/index";
import { BASE, basic, createSource, track, waitForArchived } from "../helpers";

async function viaWorker(request: Request, bindings: Env = env): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, bindings, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

describe("intake resilience", () => {
  it("answers 503 with Retry-After when the queue refuses the send, and accepts nothing", async () => {
    const refusingQueue = {
      send: () => Promise.reject(new Error("Queue send failed: Too Many Requests")),
      sendBatch: () => Promise.reject(new Error("Queue send failed: Too Many Requests")),
    } as unknown as Queue;
    const messageId = `refused-${crypto.randomUUID()}`;
    const response = await viaWorker(
      new Request(`${BASE}/v1/track`, { method: "POST", headers: { authorization: basic("dev-write-key") }, body: JSON.stringify({ userId: "u", event: "E", messageId }) }),
      { ...env, EVENTS_QUEUE: refusingQueue },
    );
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("5");
    expect(await response.json()).toMatchObject({ code: "UNAVAILABLE", status: 503 });
    await new Promise((r) => setTimeout(r, 1500));
    expect(await waitForArchived(messageId, 1, 0)).toEqual([]);
  });

  it("answers 429 with Retry-After once a source passes its rate limit, and other sources go on", { timeout: 30_000 }, async () => {
    const noisy = await createSource("noisy");
    const quiet = await createSource("quiet");
    // The limiter counts in fixed 10 s windows aligned to the clock: start just after a boundary so
    // that all 1,010 requests (under two seconds) fall in one window.
    await new Promise((resolve) => setTimeout(resolve, 10_000 - (Date.now() % 10_000) + 50));
    const statuses: number[] = [];
    for (let i = 0; i < 1_010; i++) statuses.push((await track("/v1/t", { userId: "u", event: "Spam" }, noisy.writeKey)).status);
    expect(statuses.slice(0, 1_000).every((s) => s === 200)).toBe(true);
    expect(statuses.slice(1_000).every((s) => s === 429)).toBe(true);
    const limited = await track("/v1/t", { userId: "u", event: "Spam" }, noisy.writeKey);
    expect(limited.headers.get("retry-after")).toBe("10");
    expect(((await limited.json()) as { detail: string }).detail).toContain("SOURCE_RATE_LIMITER");
    expect((await track("/v1/t", { userId: "u", event: "Calm" }, quiet.writeKey)).status).toBe(200);
  });

  it("enriches events with the location from request.cf and the connecting IP", async () => {
    const messageId = `geo-${crypto.randomUUID()}`;
    const request = new Request(`${BASE}/v1/track`, {
      method: "POST",
      headers: { authorization: basic("dev-write-key"), "cf-connecting-ip": "203.0.113.7" },
      body: JSON.stringify({ userId: "u", event: "Geo", messageId, context: { userAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15" } }),
      cf: { country: "JP", region: "Tokyo", city: "Tokyo", timezone: "Asia/Tokyo" },
    });
    expect((await viaWorker(request)).status).toBe(200);
    const [archived] = await waitForArchived(messageId, 1);
    expect(archived?.context).toMatchObject({
      ip: "203.0.113.7",
      location: { country: "JP", region: "Tokyo", city: "Tokyo", timezone: "Asia/Tokyo" },
      browser: { name: "Safari", version: "17.4" },
      os: { name: "macOS" },
    });
  });

  it("refuses to serve when a deployed environment uses the development admin token", async () => {
    const response = await viaWorker(new Request(`${BASE}/openapi.json`), { ...env, ENVIRONMENT: "production", ADMIN_TOKEN: "dev-admin-token" });
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ code: "INTERNAL", detail: expect.stringContaining("misconfigured") });
  });
});
