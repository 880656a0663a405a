import { describe, expect, it } from "vitest";
import { extractIdentifiers, normalizeIdentifier, previousUserId } from "../../workers/identity/extract";
import { DEFAULT_IDENTITY_SETTINGS, identitySettingsSchema, type IdentitySettingsInput } from "../../workers/identity/settings";
import type { QueuedEvent } from "../../workers/intake/envelope";

const event = (fields: Partial<QueuedEvent> & Record<string, unknown>): QueuedEvent => ({
  type: "track",
  messageId: "m-1",
  receivedAt: "2025-01-01T00:00:00.000Z",
  timestamp: "2025-01-01T00:00:00.000Z",
  context: {},
  integrations: {},
  ...fields,
});

const settingsWith = (input: IdentitySettingsInput) => identitySettingsSchema.parse(input);
const extract = (fields: Partial<QueuedEvent> & Record<string, unknown>, settings = DEFAULT_IDENTITY_SETTINGS) => extractIdentifiers(event(fields), settings);
const identifiersOf = (fields: Partial<QueuedEvent> & Record<string, unknown>, settings = DEFAULT_IDENTITY_SETTINGS) => extract(fields, settings).identifiers;

describe("extractIdentifiers", () => {
  it("takes userId as user_id and anonymousId as anonymous_id, keeping their case", () => {
    expect(identifiersOf({ userId: "U-42", anonymousId: "Anon-7f3a" })).toEqual([
      { type: "user_id", value: "U-42" },
      { type: "anonymous_id", value: "Anon-7f3a" },
    ]);
  });

  it("trims surrounding spaces from ids", () => {
    expect(identifiersOf({ userId: "  u-42 " })).toEqual([{ type: "user_id", value: "u-42" }]);
  });

  it("takes the email from identify traits and from context.traits, lowercased and trimmed", () => {
    expect(identifiersOf({ type: "identify", traits: { email: " Jane@Acme.IO " }, context: { traits: { email: "jane.doe@work.io" } } })).toEqual([
      { type: "email", value: "jane@acme.io" },
      { type: "email", value: "jane.doe@work.io" },
    ]);
  });

  it("ignores group traits, which describe the account rather than the person", () => {
    expect(identifiersOf({ type: "group", userId: "u-1", groupId: "acme", traits: { email: "billing-lead@acme.io", phone: "+14155552671" } })).toEqual([
      { type: "user_id", value: "u-1" },
    ]);
  });

  it("still reads context.traits on a group message, which describe the person", () => {
    expect(identifiersOf({ type: "group", userId: "u-1", groupId: "acme", context: { traits: { email: "jane@acme.io" } } })).toContainEqual({ type: "email", value: "jane@acme.io" });
  });

  it("rejects an email without an @ and says so", () => {
    expect(extract({ type: "identify", userId: "u-1", traits: { email: "jane at acme" } }).rejected).toEqual([
      { type: "email", raw: "jane at acme", reason: "not an email address" },
    ]);
  });

  it("keeps a +tag unless the workspace strips tags", () => {
    const fields = { type: "identify" as const, traits: { email: "jane+news@acme.io" } };
    expect(identifiersOf(fields)).toEqual([{ type: "email", value: "jane+news@acme.io" }]);
    expect(identifiersOf(fields, settingsWith({ email: { stripPlusTags: true } }))).toEqual([{ type: "email", value: "jane@acme.io" }]);
  });

  it("keeps the dots of a Gmail address unless the workspace strips them", () => {
    const fields = { type: "identify" as const, traits: { email: "Jane.Doe@googlemail.com" } };
    expect(identifiersOf(fields)).toEqual([{ type: "email", value: "jane.doe@googlemail.com" }]);
    expect(identifiersOf(fields, settingsWith({ email: { stripDots: true } }))).toEqual([{ type: "email", value: "janedoe@gmail.com" }]);
  });

  it("strips dots only at Gmail, where they do not matter", () => {
    const settings = settingsWith({ email: { stripDots: true } });
    expect(identifiersOf({ type: "identify", traits: { email: "jane.doe@acme.io" } }, settings)).toEqual([{ type: "email", value: "jane.doe@acme.io" }]);
  });

  it("normalises a French mobile number to E.164", () => {
    const settings = settingsWith({ defaultPhoneCountry: "FR" });
    expect(identifiersOf({ type: "identify", traits: { phone: "06 12 34 56 78" } }, settings)).toEqual([{ type: "phone", value: "+33612345678" }]);
  });

  it("reads a national number in the workspace's default country, and an international one anywhere", () => {
    expect(identifiersOf({ context: { traits: { phone: "(415) 555-2671" } } })).toEqual([{ type: "phone", value: "+14155552671" }]);
    expect(identifiersOf({ context: { traits: { phone: "+33 6 12 34 56 78" } } })).toEqual([{ type: "phone", value: "+33612345678" }]);
  });

  it("rejects an unparseable phone number with the reason", () => {
    expect(extract({ type: "identify", userId: "u-1", traits: { phone: "call me maybe" } }).rejected).toEqual([
      { type: "phone", raw: "call me maybe", reason: "not a valid phone number (default country US)" },
    ]);
  });

  it("rejects a French national number when the default country is the US", () => {
    expect(extract({ type: "identify", traits: { phone: "06 12 34 56 78" } }).rejected).toMatchObject([{ type: "phone", reason: expect.stringMatching(/^not a valid phone number/) }]);
  });

  it("takes a numeric phone trait as digits", () => {
    expect(identifiersOf({ type: "identify", traits: { phone: 4155552671 } })).toEqual([{ type: "phone", value: "+14155552671" }]);
  });

  it("takes Segment externalIds with their type lowercased", () => {
    const externalIds = [
      { id: "cus_9Xa", type: "Stripe_Customer_ID", collection: "users", encoding: "none" },
      { id: 12345, type: "zendesk_id", collection: "users", encoding: "none" },
    ];
    expect(identifiersOf({ userId: "u-1", context: { externalIds } })).toEqual([
      { type: "user_id", value: "u-1" },
      { type: "stripe_customer_id", value: "cus_9Xa" },
      { type: "zendesk_id", value: "12345" },
    ]);
  });

  it("normalises an external id named like a built-in type as that type, and dedupes it", () => {
    const externalIds = [{ id: "JANE@acme.io", type: "email", collection: "users", encoding: "none" }];
    expect(identifiersOf({ type: "identify", traits: { email: "jane@acme.io" }, context: { externalIds } })).toEqual([{ type: "email", value: "jane@acme.io" }]);
  });

  it("rejects an external id whose type would make index keys ambiguous, or that has no type", () => {
    const externalIds = [{ id: "1", type: "crm:id" }, { id: "2" }];
    expect(extract({ userId: "u-1", context: { externalIds } }).rejected).toEqual([
      { type: "crm:id", raw: "1", reason: "not a valid identifier type name" },
      { type: "external_id", raw: { id: "2" }, reason: "an external id needs a type and an id" },
    ]);
  });

  it("takes the device id and the advertising id, lowercasing the advertising id", () => {
    expect(identifiersOf({ context: { device: { id: "B5F1-DEV", advertisingId: "6D92078A-8246-4BA4-AE5B-76104861E7DC", adTrackingEnabled: true } } })).toEqual([
      { type: "device_id", value: "B5F1-DEV" },
      { type: "advertising_id", value: "6d92078a-8246-4ba4-ae5b-76104861e7dc" },
    ]);
  });

  it("leaves out the advertising id when ad tracking is disabled, without keeping its value", () => {
    const result = extract({ context: { device: { id: "dev-1", advertisingId: "6d92078a-8246-4ba4-ae5b-76104861e7dc", adTrackingEnabled: false } } });
    expect(result.identifiers).toEqual([{ type: "device_id", value: "dev-1" }]);
    expect(result.rejected).toEqual([{ type: "advertising_id", raw: undefined, reason: "ad tracking is disabled on the device" }]);
  });

  it("rejects the all-zero advertising id that iOS reports when tracking is limited", () => {
    expect(extract({ context: { device: { advertisingId: "00000000-0000-0000-0000-000000000000" } } }).rejected).toEqual([
      { type: "advertising_id", raw: "00000000-0000-0000-0000-000000000000", reason: "all-zero id" },
    ]);
  });

  it("maps an alias's previousId to anonymous_id beside its userId", () => {
    expect(identifiersOf({ type: "alias", userId: "u-1", previousId: "anon-1" })).toEqual([
      { type: "user_id", value: "u-1" },
      { type: "anonymous_id", value: "anon-1" },
    ]);
  });

  it("ignores a previousId on anything but an alias", () => {
    expect(identifiersOf({ type: "track", userId: "u-1", previousId: "anon-1" })).toEqual([{ type: "user_id", value: "u-1" }]);
  });

  it("offers an alias's previousId as a possible earlier user id for the resolver to look up", () => {
    expect(previousUserId(event({ type: "alias", userId: "u-2", previousId: "u-1" }), DEFAULT_IDENTITY_SETTINGS)).toEqual({ type: "user_id", value: "u-1" });
    expect(previousUserId(event({ type: "alias", userId: "u-2", previousId: "null" }), DEFAULT_IDENTITY_SETTINGS)).toBeNull();
    expect(previousUserId(event({ type: "identify", userId: "u-2" }), DEFAULT_IDENTITY_SETTINGS)).toBeNull();
  });

  it("never extracts the IP address or user agent as an identifier", () => {
    const result = extract({ userId: "u-1", context: { ip: "203.0.113.9", userAgent: "Mozilla/5.0 (Macintosh)" } });
    expect(result).toEqual({ identifiers: [{ type: "user_id", value: "u-1" }], rejected: [] });
  });

  it("refuses IP and user-agent external ids by their type", () => {
    const externalIds = [{ id: "203.0.113.9", type: "ip" }, { id: "Mozilla/5.0", type: "user_agent" }];
    const result = extract({ userId: "u-1", context: { externalIds } });
    expect(result.identifiers).toEqual([{ type: "user_id", value: "u-1" }]);
    expect(result.rejected.map((rejected) => rejected.reason)).toEqual(["IP addresses and user agents are never identifiers", "IP addresses and user agents are never identifiers"]);
  });

  it("rejects blocked values with the blocker's reason and keeps the rest", () => {
    const result = extract({ type: "identify", userId: "u-1", anonymousId: "undefined", traits: { email: "noreply@acme.io" } });
    expect(result.identifiers).toEqual([{ type: "user_id", value: "u-1" }]);
    expect(result.rejected).toEqual([
      { type: "anonymous_id", raw: "undefined", reason: "placeholder value (undefined)" },
      { type: "email", raw: "noreply@acme.io", reason: "generic role email (noreply@)" },
    ]);
  });

  it("applies the workspace's blocked values to the normalised value", () => {
    const settings = settingsWith({ blockedValues: ["demo@acme.io"] });
    expect(extract({ type: "identify", userId: "u-1", traits: { email: "DEMO@acme.io" } }, settings).rejected).toEqual([
      { type: "email", raw: "DEMO@acme.io", reason: "blocked by the workspace" },
    ]);
  });

  it("dedupes an identifier seen in several places", () => {
    expect(identifiersOf({ type: "identify", userId: "u-1", traits: { email: "jane@acme.io" }, context: { traits: { email: "JANE@acme.io" } } })).toEqual([
      { type: "user_id", value: "u-1" },
      { type: "email", value: "jane@acme.io" },
    ]);
  });

  it("accepts a 512-character id and rejects a 513-character one", () => {
    expect(identifiersOf({ userId: "u".repeat(511) + "1" })).toHaveLength(1);
    expect(extract({ userId: "u".repeat(512) + "1" }).rejected).toMatchObject([{ type: "user_id", reason: "longer than 512 characters" }]);
  });

  it("rejects an id with control characters and a device id that is not a string", () => {
    const result = extract({ userId: "u-1\u0000", context: { device: { id: { nested: true } } } });
    expect(result.identifiers).toEqual([]);
    expect(result.rejected.map((rejected) => rejected.reason)).toEqual(["contains control characters", "must be a string"]);
  });

  it("returns nothing for a message without any identity fields", () => {
    expect(extract({ context: { traits: { name: "Jane" } } })).toEqual({ identifiers: [], rejected: [] });
  });
});

describe("normalizeIdentifier", () => {
  it("normalises a lookup the same way as extraction, so Jane@Acme.io finds jane@acme.io", () => {
    expect(normalizeIdentifier("email", "Jane@Acme.io", DEFAULT_IDENTITY_SETTINGS)).toEqual({ ok: true, identifier: { type: "email", value: "jane@acme.io" } });
  });

  it("refuses a value that is not a string or a number", () => {
    expect(normalizeIdentifier("user_id", null, DEFAULT_IDENTITY_SETTINGS)).toEqual({ ok: false, reason: "must be a string" });
  });
});
