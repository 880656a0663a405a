import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../workers/intake/envelope";
import { isConsentEvent, missingConsent, recentDays, utcDay } from "../../workers/privacy/collection";
import { identifierKeyHash } from "../../workers/privacy/identifiers";
import { eventKeyHashes, eventSuppressionKeys, suppressionEntries, suppressionKeys } from "../../workers/privacy/suppression";

const event = (fields: Partial<QueuedEvent> & Record<string, unknown>): QueuedEvent => ({
  type: "track",
  event: "Viewed",
  messageId: "m1",
  receivedAt: "2026-11-22T10:00:00.000Z",
  timestamp: "2026-11-22T10:00:00.000Z",
  context: {},
  integrations: {},
  ...fields,
});

/** Whether a suppression stored for `key` matches the event, as the store decides it: a shared hash. */
async function matches(key: string, suppressed: QueuedEvent): Promise<boolean> {
  const [entry] = suppressionEntries("ws", [key]);
  const { distinct } = eventKeyHashes("ws", [suppressed]);
  return entry!.hashes.some((hash) => distinct.includes(hash));
}

describe("suppression keys of an event", () => {
  it("reads every identifier identity resolution would, normalised the same way", () => {
    const keys = eventSuppressionKeys(
      event({
        type: "identify",
        userId: "u-1",
        anonymousId: "a-1",
        traits: { email: "Jane@acme-mail.io", phone: "+1 415 555 0100" },
        context: { externalIds: [{ id: "C-9", type: "Shopify_ID" }], device: { id: "dev-1", advertisingId: "ABCD-1234" } },
      }),
    );
    expect(keys.sort()).toEqual(
      ["user_id:u-1", "anonymous_id:a-1", "email:jane@acme-mail.io", "phone:+14155550100", "shopify_id:C-9", "device_id:dev-1", "advertising_id:abcd-1234"].sort(),
    );
  });

  it("reads an alias's previous id both as an anonymous id and as a user id", () => {
    expect(eventSuppressionKeys(event({ type: "alias", userId: "u-2", previousId: "old-7" })).sort()).toEqual(
      ["user_id:u-2", "anonymous_id:old-7", "user_id:old-7"].sort(),
    );
  });

  it("never makes an IP address or a user agent a suppression key", () => {
    const keys = eventSuppressionKeys(
      event({ userId: "u-3", context: { ip: "203.0.113.9", userAgent: "Mozilla/5.0", externalIds: [{ id: "203.0.113.9", type: "ip" }] } }),
    );
    expect(keys).toEqual(["user_id:u-3"]);
  });

  it("adds the collapsed form of an email, so the stored and collapsed forms both match", () => {
    expect(eventSuppressionKeys(event({ userId: "u-4", context: { traits: { email: "Jane.Doe+News@googlemail.com" } } }))).toContain("email:janedoe@gmail.com");
  });
});

describe("matching a suppressed email", () => {
  it("matches a +tag variant of the suppressed address", async () => {
    expect(await matches("email:jane@acme-mail.io", event({ userId: "x", context: { traits: { email: "jane+promo@acme-mail.io" } } }))).toBe(true);
  });

  it("matches a Gmail variant with dots, and the googlemail domain", async () => {
    expect(await matches("email:janedoe@gmail.com", event({ userId: "x", context: { traits: { email: "jane.doe@googlemail.com" } } }))).toBe(true);
  });

  it("matches the plain address when the suppressed one had a tag and dots", async () => {
    expect(await matches("email:jane.doe+x@gmail.com", event({ userId: "x", context: { traits: { email: "janedoe@gmail.com" } } }))).toBe(true);
  });

  it("does not collapse dots outside Gmail, where they name another mailbox", async () => {
    expect(await matches("email:jane.doe@acme-mail.io", event({ userId: "x", context: { traits: { email: "janedoe@acme-mail.io" } } }))).toBe(false);
  });

  it("hashes per workspace, so a suppression in one workspace never matches another's events", async () => {
    expect(identifierKeyHash("ws-a", "user_id:u")).not.toBe(identifierKeyHash("ws-b", "user_id:u"));
  });
});

describe("identifiers an admin asks to suppress", () => {
  it("normalises them as events are normalised, and drops repeats", () => {
    expect(
      suppressionKeys([
        { type: "email", value: " Jane@acme-mail.io " },
        { type: "phone", value: "(415) 555-0100" },
        { type: "email", value: "jane@acme-mail.io" },
        { type: "crm_id", value: "C-1" },
      ]),
    ).toEqual({ ok: true, keys: ["email:jane@acme-mail.io", "phone:+14155550100", "crm_id:C-1"] });
  });

  it("names each bad one by its path: a bad value, a type that is never an identifier, a blocked placeholder", () => {
    const result = suppressionKeys([
      { type: "user_id", value: "u-1" },
      { type: "email", value: "not-an-email" },
      { type: "ip", value: "203.0.113.9" },
      { type: "user_id", value: "undefined" },
    ]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => e.path)).toEqual(["identifiers.1.value", "identifiers.2.type", "identifiers.3.value"]);
    expect(result.errors[1]!.message).toMatch(/never identifiers/);
  });
});

describe("consent required at collection", () => {
  const withConsent = (preferences: Record<string, boolean> | undefined) =>
    event({ userId: "u", context: preferences ? { consent: { categoryPreferences: preferences } } : {} });

  it("requires nothing when the workspace requires no category", () => {
    expect(missingConsent(withConsent(undefined), [])).toEqual([]);
  });

  it("lists every required category not marked true: absent, false, or no consent object at all", () => {
    expect(missingConsent(withConsent({ analytics: true, advertising: false }), ["analytics", "advertising", "personalization"])).toEqual(["advertising", "personalization"]);
    expect(missingConsent(withConsent(undefined), ["analytics"])).toEqual(["analytics"]);
  });

  it("keeps an event that grants every required category", () => {
    expect(missingConsent(withConsent({ analytics: true, advertising: true }), ["analytics", "advertising"])).toEqual([]);
  });

  it("never refuses the consent event itself, which is how consent gets recorded", () => {
    const consentEvent = event({ event: "Segment Consent Preference Updated", userId: "u", context: { consent: { categoryPreferences: { analytics: false } } } });
    expect(isConsentEvent(consentEvent)).toBe(true);
    expect(missingConsent(consentEvent, ["analytics"])).toEqual([]);
    expect(isConsentEvent(event({ type: "page", event: "Segment Consent Preference Updated" }))).toBe(false);
  });
});

describe("drop counter days", () => {
  it("names UTC days, and lists the last n oldest first across a month end", () => {
    expect(utcDay(Date.parse("2026-11-30T23:59:59.999Z"))).toBe("2026-11-30");
    expect(recentDays(3, Date.parse("2026-12-01T00:30:00.000Z"))).toEqual(["2026-11-29", "2026-11-30", "2026-12-01"]);
  });
});
