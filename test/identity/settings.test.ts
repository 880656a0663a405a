import { describe, expect, it } from "vitest";
import {
  CUSTOM_TYPE_DEFAULT_LIMIT,
  DEFAULT_IDENTITY_SETTINGS,
  compareTypes,
  identitySettingsSchema,
  ruleFor,
  type IdentitySettingsInput,
} from "../../workers/identity/settings";

/** The field paths of every issue, dotted, so a test can say which field was named. */
function failurePaths(input: unknown): string[] {
  const result = identitySettingsSchema.safeParse(input);
  expect(result.success).toBe(false);
  return result.success ? [] : result.error.issues.map((issue) => issue.path.join("."));
}

const withRules = (change: (rules: IdentitySettingsInput["identifiers"] & object) => void): IdentitySettingsInput => {
  const identifiers = DEFAULT_IDENTITY_SETTINGS.identifiers.map((rule) => ({ ...rule }));
  change(identifiers);
  return { identifiers };
};

describe("identity settings", () => {
  it("fills every field with the design's defaults from an empty document", () => {
    const settings = identitySettingsSchema.parse({});
    expect(settings).toEqual(DEFAULT_IDENTITY_SETTINGS);
    expect(settings.identifiers).toEqual([
      { type: "user_id", priority: 1, limit: 1, window: "ever" },
      { type: "email", priority: 2, limit: 5, window: "ever" },
      { type: "phone", priority: 3, limit: 3, window: "ever" },
      { type: "device_id", priority: 4, limit: 5, window: { days: 7 } },
      { type: "advertising_id", priority: 5, limit: 5, window: { days: 7 } },
      { type: "anonymous_id", priority: 6, limit: 5, window: { days: 7 } },
    ]);
    expect(settings).toMatchObject({
      blockedValues: [],
      blockedPatterns: [],
      email: { stripDots: false, stripPlusTags: false },
      defaultPhoneCountry: "US",
      clusterCap: 50,
      bridgeQuarantineThreshold: 3,
      probabilistic: { reviewThreshold: 0.9, autoMerge: false, autoMergeThreshold: 0.99 },
    });
  });

  it("keeps the defaults frozen so that no caller can change them for everyone", () => {
    expect(Object.isFrozen(DEFAULT_IDENTITY_SETTINGS)).toBe(true);
    expect(Object.isFrozen(DEFAULT_IDENTITY_SETTINGS.identifiers[0])).toBe(true);
    expect(identitySettingsSchema.parse({}).identifiers).not.toBe(DEFAULT_IDENTITY_SETTINGS.identifiers);
  });

  it("fills the missing half of a partly given nested object", () => {
    const settings = identitySettingsSchema.parse({ email: { stripDots: true }, probabilistic: { autoMerge: true } });
    expect(settings.email).toEqual({ stripDots: true, stripPlusTags: false });
    expect(settings.probabilistic).toEqual({ reviewThreshold: 0.9, autoMerge: true, autoMergeThreshold: 0.99 });
  });

  it("refuses a misspelt setting instead of silently ignoring it, naming the key", () => {
    const result = identitySettingsSchema.safeParse({ blockedValue: ["x"], email: { stripDot: true } });
    expect(result.error?.issues).toEqual([
      expect.objectContaining({ path: ["email"], code: "unrecognized_keys", keys: ["stripDot"] }),
      expect.objectContaining({ path: [], code: "unrecognized_keys", keys: ["blockedValue"] }),
    ]);
  });

  it("accepts a custom external-id rule beside the built-in ones", () => {
    const input = withRules((rules) => rules.push({ type: "ios.idfa", priority: 7, limit: 2, window: { days: 30 } }));
    expect(identitySettingsSchema.parse(input).identifiers[6]).toEqual({ type: "ios.idfa", priority: 7, limit: 2, window: { days: 30 } });
  });

  it("refuses a fractional priority, naming the rule", () => {
    expect(failurePaths(withRules((rules) => rules.push({ type: "crm_id", priority: 2.5, limit: 1, window: "ever" })))).toEqual(["identifiers.6.priority"]);
  });

  it("refuses a rule set without a built-in type, naming the identifiers field", () => {
    const input = withRules((rules) => rules.splice(2, 1));
    const result = identitySettingsSchema.safeParse(input);
    expect(result.success).toBe(false);
    expect(result.error?.issues).toEqual([expect.objectContaining({ path: ["identifiers"], message: "must include a rule for phone" })]);
  });

  it("refuses two rules with the same priority, naming the second one", () => {
    expect(failurePaths(withRules((rules) => (rules[5]!.priority = 2)))).toEqual(["identifiers.5.priority"]);
  });

  it("refuses two rules for the same type, naming the second one", () => {
    expect(failurePaths(withRules((rules) => rules.push({ type: "email", priority: 9, limit: 1, window: "ever" })))).toEqual(["identifiers.6.type"]);
  });

  it("refuses a type name that would make index keys ambiguous", () => {
    expect(failurePaths(withRules((rules) => rules.push({ type: "crm:id", priority: 9, limit: 1, window: "ever" })))).toEqual(["identifiers.6.type"]);
    expect(failurePaths(withRules((rules) => rules.push({ type: "CRM_ID", priority: 9, limit: 1, window: "ever" })))).toEqual(["identifiers.6.type"]);
  });

  it("refuses a zero limit and a window of zero days, naming each", () => {
    const input = withRules((rules) => {
      rules[1]!.limit = 0;
      rules[3]!.window = { days: 0 };
    });
    expect(failurePaths(input)).toEqual(["identifiers.1.limit", "identifiers.3.window.days"]);
  });

  it("accepts a regular-expression pattern and refuses one that does not compile, naming its index", () => {
    expect(identitySettingsSchema.parse({ blockedPatterns: ["^qa-.*@acme\\.com$"] }).blockedPatterns).toEqual(["^qa-.*@acme\\.com$"]);
    const result = identitySettingsSchema.safeParse({ blockedPatterns: ["^ok$", "(unclosed"] });
    expect(result.error?.issues).toEqual([
      expect.objectContaining({ path: ["blockedPatterns", 1], message: expect.stringMatching(/^is not a valid regular expression/) }),
    ]);
  });

  it("refuses a pattern with nested quantifiers, which could take exponential time", () => {
    expect(failurePaths({ blockedPatterns: ["(a+)+$"] })).toEqual(["blockedPatterns.0"]);
    expect(identitySettingsSchema.safeParse({ blockedPatterns: ["^(foo|bar)+$"] }).success).toBe(true);
  });

  it("accepts 50 patterns of 200 characters and refuses a 51st or a 201st character", () => {
    expect(identitySettingsSchema.safeParse({ blockedPatterns: Array.from({ length: 50 }, () => "x".repeat(200)) }).success).toBe(true);
    expect(failurePaths({ blockedPatterns: Array.from({ length: 51 }, () => "x") })).toEqual(["blockedPatterns"]);
    expect(failurePaths({ blockedPatterns: ["x".repeat(201)] })).toEqual(["blockedPatterns.0"]);
  });

  it("accepts a lower-case country code and refuses one that is not a country", () => {
    expect(identitySettingsSchema.parse({ defaultPhoneCountry: "fr" }).defaultPhoneCountry).toBe("FR");
    expect(failurePaths({ defaultPhoneCountry: "France" })).toEqual(["defaultPhoneCountry"]);
    expect(failurePaths({ defaultPhoneCountry: "ZZ" })).toEqual(["defaultPhoneCountry"]);
  });

  it("accepts an autoMergeThreshold above the review threshold", () => {
    const settings = identitySettingsSchema.parse({ probabilistic: { reviewThreshold: 0.8, autoMerge: true, autoMergeThreshold: 0.95 } });
    expect(settings.probabilistic.autoMergeThreshold).toBe(0.95);
  });

  it("refuses an autoMergeThreshold below the review threshold, naming the field", () => {
    const result = identitySettingsSchema.safeParse({ probabilistic: { reviewThreshold: 0.9, autoMergeThreshold: 0.85 } });
    expect(result.error?.issues).toEqual([
      expect.objectContaining({ path: ["probabilistic", "autoMergeThreshold"], message: "must be greater than reviewThreshold" }),
    ]);
  });

  it("refuses an autoMergeThreshold equal to the review threshold, even with autoMerge off", () => {
    expect(failurePaths({ probabilistic: { reviewThreshold: 0.95, autoMergeThreshold: 0.95 } })).toEqual(["probabilistic.autoMergeThreshold"]);
  });

  it("refuses thresholds outside (0, 1] and a cluster cap below 2, naming each", () => {
    expect(failurePaths({ clusterCap: 1, bridgeQuarantineThreshold: 0, probabilistic: { reviewThreshold: 1.5 } })).toEqual([
      "clusterCap",
      "bridgeQuarantineThreshold",
      "probabilistic.reviewThreshold",
    ]);
  });
});

describe("ruleFor", () => {
  it("returns the workspace's rule for a configured type", () => {
    expect(ruleFor(DEFAULT_IDENTITY_SETTINGS, "email")).toEqual({ type: "email", priority: 2, limit: 5, window: "ever" });
  });

  it("gives an unknown external-id type a rule ranked after every configured one, limited to 5 ever", () => {
    expect(ruleFor(DEFAULT_IDENTITY_SETTINGS, "braze_id")).toEqual({ type: "braze_id", priority: 7, limit: CUSTOM_TYPE_DEFAULT_LIMIT, window: "ever" });
    expect(CUSTOM_TYPE_DEFAULT_LIMIT).toBe(5);
    const settings = identitySettingsSchema.parse(withRules((rules) => rules.push({ type: "crm_id", priority: 40, limit: 1, window: "ever" })));
    expect(ruleFor(settings, "braze_id").priority).toBe(41);
  });

  it("orders types by priority, then by name for unconfigured types that tie", () => {
    const types = ["zendesk_id", "anonymous_id", "braze_id", "user_id", "email"];
    expect(types.sort((a, b) => compareTypes(DEFAULT_IDENTITY_SETTINGS, a, b))).toEqual(["user_id", "email", "anonymous_id", "braze_id", "zendesk_id"]);
  });
});
