import { describe, expect, it } from "vitest";
import { enrich, parseUserAgent } from "../../workers/tracking/enrich";
import type { CdpEvent } from "../../workers/tracking/normalize";

const IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const CHROME_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

const event = (context: Record<string, unknown>): CdpEvent =>
  ({ type: "track", event: "E", userId: "u", messageId: "m", timestamp: "", receivedAt: "", context, integrations: {} }) as CdpEvent;

describe("enrichment", () => {
  it("parses a mobile user agent into browser, OS and device", () => {
    expect(parseUserAgent(IPHONE)).toEqual({
      browser: { name: "Mobile Safari", version: "17.4" },
      os: { name: "iOS", version: "17.4" },
      device: { type: "mobile", manufacturer: "Apple", model: "iPhone" },
    });
  });

  it("calls an agent with an OS and no device type a desktop", () => {
    expect(parseUserAgent(CHROME_WINDOWS)).toMatchObject({ browser: { name: "Chrome" }, os: { name: "Windows" }, device: { type: "desktop" } });
  });

  it("adds the IP and the location from request.cf", () => {
    const enriched = enrich(event({}), { ip: "203.0.113.9", country: "FR", region: "Île-de-France", city: "Paris", timezone: "Europe/Paris", latitude: "48.85", longitude: "2.35" });
    expect(enriched.context).toEqual({
      ip: "203.0.113.9",
      location: { country: "FR", region: "Île-de-France", city: "Paris", timezone: "Europe/Paris", latitude: 48.85, longitude: 2.35 },
    });
  });

  it("never overrides what the client sent", () => {
    const enriched = enrich(event({ ip: "198.51.100.1", location: { city: "Lyon" }, userAgent: IPHONE, os: { name: "iPadOS" } }), {
      ip: "203.0.113.9",
      city: "Paris",
      country: "FR",
    });
    expect(enriched.context.ip).toBe("198.51.100.1");
    expect(enriched.context.location).toEqual({ city: "Lyon", country: "FR" });
    expect(enriched.context.os).toEqual({ name: "iPadOS", version: "17.4" });
  });
});
