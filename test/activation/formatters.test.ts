import { describe, expect, it } from "vitest";
import { formatBatch, formatDeletion } from "../../workers/activation/formatters";
import { verifyWebhook } from "../../workers/activation/webhook";
import { normalizeMessage } from "../../workers/tracking/normalize";
import { bodyOf, destination, event, NOW, SIGNING_SECRET } from "./helpers";

const SENT_AT = "2026-11-22T10:00:00.000Z";

/** HMAC-SHA256 written out here with WebCrypto, independently of the code under test. */
async function hmacHex(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body));
  return Array.from(new Uint8Array(mac), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

describe("webhook requests", () => {
  const hook = destination("webhook", { settings: { url: "https://hooks.example.com/cdp", headers: { "X-Team": "growth" } } });

  it("POST { batch, sentAt } as JSON with a timestamp and a signature", async () => {
    const message = event();
    const { requests, skipped } = await formatBatch(hook, [message], { now: NOW });
    expect(skipped).toEqual([]);
    expect(requests).toHaveLength(1);
    const [request] = requests;
    const body = JSON.stringify({ batch: [message], sentAt: SENT_AT });
    expect(request).toEqual({
      method: "POST",
      url: "https://hooks.example.com/cdp",
      headers: { "X-Team": "growth", "Content-Type": "application/json", "X-Timestamp": SENT_AT, "X-Signature": `sha256=${await hmacHex(SIGNING_SECRET, body)}` },
      body,
      messageIds: ["m-1"],
    });
  });

  it("signs the exact bytes sent, non-ASCII included, so a receiver's own HMAC matches", async () => {
    const [request] = (await formatBatch(hook, [event({ properties: { city: "Zürich", note: "😀" } })], { now: NOW })).requests;
    expect(request!.headers["X-Signature"]).toBe(`sha256=${await hmacHex(SIGNING_SECRET, request!.body!)}`);
  });

  it("is accepted by the documented receiver check, and refused when tampered, replayed late or signed with another secret", async () => {
    const [request] = (await formatBatch(hook, [event()], { now: NOW })).requests;
    const check = (overrides: Partial<Parameters<typeof verifyWebhook>[0]>) =>
      verifyWebhook({ secret: SIGNING_SECRET, body: request!.body!, signature: request!.headers["X-Signature"]!, timestamp: request!.headers["X-Timestamp"]!, now: NOW + 1_000, ...overrides });
    expect(await check({})).toEqual({ ok: true, payload: { batch: [event()], sentAt: SENT_AT } });
    expect(await check({ body: request!.body!.replace("42.5", "4250") })).toEqual({ ok: false, reason: "signature does not match" });
    expect(await check({ secret: "another-secret-of-16+" })).toEqual({ ok: false, reason: "signature does not match" });
    expect(await check({ now: NOW + 10 * 60_000 })).toEqual({ ok: false, reason: "sentAt is outside the tolerance" });
    expect(await check({ timestamp: "2026-11-22T10:05:00.000Z" })).toEqual({ ok: false, reason: "X-Timestamp does not match sentAt" });
    expect(await check({ signature: "sha1=abc" })).toEqual({ ok: false, reason: "missing or malformed X-Signature" });
  });

  it("splits a batch into requests of batchSize messages", async () => {
    const small = destination("webhook", { batchSize: 2 });
    const { requests } = await formatBatch(small, ["a", "b", "c"].map((messageId) => event({ messageId })), { now: NOW });
    expect(requests.map((request) => request.messageIds)).toEqual([["a", "b"], ["c"]]);
  });

  it("deletes a person with a signed delete message naming every identifier", async () => {
    const { requests } = await formatDeletion(hook, { requestId: "del_1", userId: "u1", anonymousIds: ["anon-1"], emails: ["a@example.com"] }, { now: NOW });
    expect(bodyOf(requests[0]!)).toEqual({
      batch: [{ type: "delete", messageId: "del_1", timestamp: SENT_AT, userId: "u1", anonymousIds: ["anon-1"], emails: ["a@example.com"] }],
      sentAt: SENT_AT,
    });
    expect(requests[0]!.headers["X-Signature"]).toBe(`sha256=${await hmacHex(SIGNING_SECRET, requests[0]!.body!)}`);
  });
});

describe("Segment-format requests", () => {
  const segment = destination("segment", { settings: { url: "https://api.segment.io/" } });
  const received = event({ originalTimestamp: "2026-11-22T09:58:00.000Z", sentAt: "2026-11-22T09:58:01.000Z" });

  it("POST {url}/v1/batch with { batch }, the write key as the Basic user name, and our hop's fields left out", async () => {
    const { requests } = await formatBatch(segment, [received], { now: NOW });
    const { receivedAt: _r, sentAt: _s, originalTimestamp: _o, ...forwarded } = received as Record<string, unknown>;
    expect(requests).toEqual([
      {
        method: "POST",
        url: "https://api.segment.io/v1/batch",
        headers: { "Content-Type": "application/json", Authorization: `Basic ${btoa("wk_target:")}` },
        body: JSON.stringify({ batch: [forwarded] }),
        messageIds: ["m-1"],
      },
    ]);
  });

  it("keeps the event's timestamp when a Segment-compatible intake (ours) receives it", async () => {
    const [request] = (await formatBatch(segment, [received], { now: NOW })).requests;
    const [item] = (bodyOf(request!).batch as Record<string, unknown>[]) ?? [];
    const normalized = normalizeMessage(item, { receivedAt: new Date(NOW + 60_000) });
    expect(normalized.ok && normalized.event.timestamp).toBe(received.timestamp);
  });

  it("keeps each request under 500 KB and skips a message over 32 KB", async () => {
    const big = (index: number) => event({ messageId: `big-${index}`, properties: { blob: "x".repeat(30_000) } });
    const huge = event({ messageId: "huge", properties: { blob: "x".repeat(40_000) } });
    const { requests, skipped } = await formatBatch(segment, [...Array.from({ length: 20 }, (_, index) => big(index)), huge], { now: NOW });
    expect(requests.map((request) => request.messageIds.length)).toEqual([16, 4]);
    for (const request of requests) expect(new TextEncoder().encode(request.body!).length).toBeLessThanOrEqual(500 * 1024);
    expect(skipped).toEqual([{ messageId: "huge", reason: expect.stringMatching(/^message is 40\d{3} bytes, over Segment's 32768-byte limit$/) }]);
  });

  it("has no deletion call", async () => {
    const result = await formatDeletion(segment, { requestId: "del_1", userId: "u1" }, { now: NOW });
    expect(result.requests).toEqual([]);
    expect(result.unsupported).toMatch(/no deletion call/);
  });
});
