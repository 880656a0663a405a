import { describe, expect, it } from "vitest";
import { isBlockedValue } from "../../workers/identity/blocked";
import { DEFAULT_IDENTITY_SETTINGS, identitySettingsSchema } from "../../workers/identity/settings";

const defaults = DEFAULT_IDENTITY_SETTINGS;
const blocked = (type: string, value: string, settings = defaults) => isBlockedValue({ type, value }, settings);

describe("isBlockedValue", () => {
  it("accepts an ordinary user id, anonymous id and email", () => {
    expect(blocked("user_id", "usr_8f2c91")).toBeNull();
    expect(blocked("anonymous_id", "3f2504e0-4f89-11d3-9a0c-0305e82c3301")).toBeNull();
    expect(blocked("email", "jane.doe@acme.io")).toBeNull();
  });

  it.each(["null", "undefined", "nil", "none", "n/a", "na", "0", "-1", "anonymous", "anon", "guest", "unknown", "test", "user", "true", "false"])(
    "rejects the placeholder %j",
    (value) => {
      expect(blocked("user_id", value)).toMatch(/^placeholder value/);
    },
  );

  it("rejects placeholders whatever their case or surrounding spaces, like [object Object]", () => {
    expect(blocked("user_id", "[object Object]")).toBe("placeholder value ([object object])");
    expect(blocked("anonymous_id", "  NULL ")).toBe("placeholder value (null)");
  });

  it("accepts a value that merely contains a placeholder word", () => {
    expect(blocked("user_id", "guest-7731")).toBeNull();
    expect(blocked("user_id", "testa")).toBeNull();
  });

  it("rejects an empty or whitespace-only value", () => {
    expect(blocked("user_id", "")).toBe("empty value");
    expect(blocked("user_id", " \t ")).toBe("empty value");
  });

  it("rejects the all-zero UUID, the all-zero IDFA and strings of zeros, dashes and dots", () => {
    expect(blocked("device_id", "00000000-0000-0000-0000-000000000000")).toBe("all-zero id");
    expect(blocked("advertising_id", "00000000-0000-0000-0000-000000000000")).toBe("all-zero id");
    expect(blocked("user_id", "000")).toBe("all-zero id");
    expect(blocked("user_id", "0.0-0")).toBe("all-zero id");
  });

  it("accepts an id that has zeros but is not only zeros", () => {
    expect(blocked("device_id", "00000000-0000-0000-0000-000000000001")).toBeNull();
    expect(blocked("user_id", "1000")).toBeNull();
  });

  it("rejects one character repeated six times or more", () => {
    expect(blocked("user_id", "11111111")).toBe("one character repeated");
    expect(blocked("anonymous_id", "aaaaaa")).toBe("one character repeated");
    expect(blocked("anonymous_id", "xxxxxXXX")).toBe("one character repeated");
  });

  it("accepts a repeated character shorter than six, and a nearly repeated one", () => {
    expect(blocked("user_id", "11111")).toBeNull();
    expect(blocked("user_id", "1111112")).toBeNull();
  });

  it("rejects an IP address offered under any type, since IPs are never identifiers", () => {
    expect(blocked("anonymous_id", "203.0.113.9")).toBe("an IP address is never an identifier");
    expect(blocked("device_id", "2001:db8::1")).toBe("an IP address is never an identifier");
  });

  it("accepts a MAC-like device id and a version-like user id that are not IP addresses", () => {
    expect(blocked("device_id", "a4:5e:60:c2:11:9f")).toBeNull();
    expect(blocked("user_id", "1.2.3")).toBeNull();
    expect(blocked("user_id", "300.1.1.1")).toBeNull();
  });

  it("rejects info@ as a generic role email", () => {
    expect(blocked("email", "info@acme.io")).toBe("generic role email (info@)");
  });

  it.each(["noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "support", "admin", "sales", "contact", "hello", "help", "billing", "team", "office", "marketing", "postmaster", "webmaster", "abuse", "root", "test", "example"])(
    "rejects %s@ as a generic role email",
    (local) => {
      expect(blocked("email", `${local}@acme.io`)).toMatch(/^generic role email/);
    },
  );

  it("rejects a role email hidden behind a +tag", () => {
    expect(blocked("email", "support+tickets@acme.io")).toBe("generic role email (support@)");
  });

  it("accepts a person's email that starts like a role", () => {
    expect(blocked("email", "info.jane@acme.io")).toBeNull();
    expect(blocked("email", "helena@acme.io")).toBeNull();
  });

  it("applies role rules to emails only, so a user id of sales is fine", () => {
    expect(blocked("user_id", "sales")).toBeNull();
  });

  it("rejects any email at example.com, example.org, test.com and reserved domains", () => {
    expect(blocked("email", "jane@example.com")).toBe("reserved or example email domain (example.com)");
    expect(blocked("email", "jane@example.org")).toMatch(/^reserved or example email domain/);
    expect(blocked("email", "jane@test.com")).toMatch(/^reserved or example email domain/);
    expect(blocked("email", "jane@mail.example.com")).toMatch(/^reserved or example email domain/);
    expect(blocked("email", "jane@shop.test")).toMatch(/^reserved or example email domain/);
  });

  it("accepts an email at a domain that only looks like an example one", () => {
    expect(blocked("email", "jane@example.co.uk")).toBeNull();
    expect(blocked("email", "jane@contest.com")).toBeNull();
  });

  it("rejects a phone number made of one repeated digit", () => {
    expect(blocked("phone", "+33666666666")).toBe("phone number made of one repeated digit");
  });

  it("rejects a phone number with fewer than 7 digits", () => {
    expect(blocked("phone", "+6834002")).toBe("phone number with fewer than 7 digits");
  });

  it("accepts an ordinary E.164 phone number", () => {
    expect(blocked("phone", "+14155552671")).toBeNull();
    expect(blocked("phone", "+33612345678")).toBeNull();
  });

  it("rejects the workspace's own blocked values, compared case-insensitively after trim", () => {
    const settings = identitySettingsSchema.parse({ blockedValues: ["  Demo-User  ", "qa@acme.io"] });
    expect(blocked("user_id", "demo-user", settings)).toBe("blocked by the workspace");
    expect(blocked("user_id", " DEMO-USER", settings)).toBe("blocked by the workspace");
    expect(blocked("email", "qa@acme.io", settings)).toBe("blocked by the workspace");
    expect(blocked("user_id", "demo-user-2", settings)).toBeNull();
  });

  it("rejects values matching the workspace's patterns, case-insensitively, and names the pattern", () => {
    const settings = identitySettingsSchema.parse({ blockedPatterns: ["^loadtest-\\d+$", "@qa\\.acme\\.io$"] });
    expect(blocked("user_id", "LOADTEST-42", settings)).toBe("matches the workspace pattern /^loadtest-\\d+$/");
    expect(blocked("email", "bot@qa.acme.io", settings)).toBe("matches the workspace pattern /@qa\\.acme\\.io$/");
    expect(blocked("user_id", "loadtest-x", settings)).toBeNull();
  });

  it("does not let one workspace's blocked values leak into another's", () => {
    const strict = identitySettingsSchema.parse({ blockedValues: ["vip"] });
    expect(blocked("user_id", "vip", strict)).toBe("blocked by the workspace");
    expect(blocked("user_id", "vip", defaults)).toBeNull();
  });
});
