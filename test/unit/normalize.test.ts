import { describe, expect, it } from "vitest";
import { correctTimestamp, mergeDefaults, normalizeMessage } from "../../workers/tracking/normalize";

const receivedAt = new Date("2026-11-22T12:00:00.000Z");

describe("timestamps", () => {
  it("corrects a device clock that runs 1 hour fast using sentAt", () => {
    // The device thinks it is 13:00 when it sends; the event happened 10 s before sending.
    expect(correctTimestamp(receivedAt, "2026-11-22T12:59:50.000Z", "2026-11-22T13:00:00.000Z")).toBe("2026-11-22T11:59:50.000Z");
  });

  it("keeps the original timestamp when no sentAt came with it", () => {
    expect(correctTimestamp(receivedAt, "2026-11-01T08:00:00.000Z")).toBe("2026-11-01T08:00:00.000Z");
  });

  it("uses receivedAt when the client sent no timestamp", () => {
    expect(correctTimestamp(receivedAt)).toBe(receivedAt.toISOString());
  });

  it("applies a batch-level sentAt to every item and records receivedAt and originalTimestamp", () => {
    const result = normalizeMessage(
      { type: "track", userId: "u", event: "E", timestamp: "2026-11-22T13:59:00.000Z" },
      { receivedAt, defaults: { sentAt: "2026-11-22T14:00:00.000Z" } },
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event).toMatchObject({
      receivedAt: "2026-11-22T12:00:00.000Z",
      originalTimestamp: "2026-11-22T13:59:00.000Z",
      sentAt: "2026-11-22T14:00:00.000Z",
      timestamp: "2026-11-22T11:59:00.000Z",
    });
  });
});

describe("normalizeMessage", () => {
  it("generates a messageId when the client sent none, and keeps one it sent", () => {
    const generated = normalizeMessage({ type: "identify", userId: "u" }, { receivedAt });
    const kept = normalizeMessage({ type: "identify", userId: "u", messageId: "m-1" }, { receivedAt });
    expect(generated.ok && generated.event.messageId).toMatch(/^cdp-[0-9a-f-]{36}$/);
    expect(kept.ok && kept.event.messageId).toBe("m-1");
  });

  it("stringifies numeric ids as Segment does", () => {
    const result = normalizeMessage({ type: "identify", userId: 42 }, { receivedAt });
    expect(result.ok && result.event.userId).toBe("42");
  });

  it("names an unknown type plainly", () => {
    const result = normalizeMessage({ type: "purchase", userId: "u" }, { receivedAt });
    expect(result).toMatchObject({ ok: false, errors: [{ path: "type" }] });
    expect(!result.ok && result.errors[0]!.message).toContain("identify, track, page, screen, group, alias");
  });

  it("rejects a non-boolean consent preference, naming its path", () => {
    const result = normalizeMessage(
      { type: "track", userId: "u", event: "E", context: { consent: { categoryPreferences: { Advertising: "yes" } } } },
      { receivedAt },
    );
    expect(result).toMatchObject({ ok: false, errors: [{ path: "context.consent.categoryPreferences.Advertising" }] });
  });

  it("carries consent preferences through unchanged", () => {
    const consent = { categoryPreferences: { Advertising: false, Analytics: true } };
    const result = normalizeMessage({ type: "track", userId: "u", event: "E", context: { consent } }, { receivedAt });
    expect(result.ok && result.event.context.consent).toEqual(consent);
  });

  it("keeps custom traits and e-commerce properties as sent", () => {
    const products = [{ product_id: "p1", sku: "S-1", price: 9.5, quantity: 2, category: "shoes" }];
    const result = normalizeMessage(
      { type: "track", userId: "u", event: "Order Completed", properties: { order_id: "o1", revenue: 19, products, custom: { a: [1, 2] } } },
      { receivedAt },
    );
    expect(result.ok && (result.event as { properties?: unknown }).properties).toEqual({ order_id: "o1", revenue: 19, products, custom: { a: [1, 2] } });
  });
});

describe("mergeDefaults", () => {
  it("merges batch context into the item, the item's own values winning at every depth", () => {
    expect(mergeDefaults({ library: { name: "lib", version: "1" }, locale: "en" }, { library: { version: "2" }, ip: "1.2.3.4" })).toEqual({
      library: { name: "lib", version: "2" },
      locale: "en",
      ip: "1.2.3.4",
    });
  });
});
