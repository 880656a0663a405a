import { isSupportedCountry } from "libphonenumber-js";
import { z } from "zod";
import { BUILT_IN_TYPES, type IdentifierRule } from "./types";

/**
 * A workspace's identity settings: which identifier types may link people,
 * how strongly, and which values must never link anyone. Every field has a
 * default, so `identitySettingsSchema.parse({})` is the design's behaviour.
 * Objects are strict: a misspelt setting is an error, not silently ignored.
 */

/**
 * Identifier type names end up in index keys (`type:value`) and URLs
 * (`/profiles/{type}:{value}`), so a colon, a slash or a space would make them
 * ambiguous. Dots and dashes are allowed for Segment names like `ios.idfa`.
 */
export const IDENTIFIER_TYPE_PATTERN = /^[a-z][a-z0-9_.-]{0,63}$/;

/** Custom external-id types nobody configured: as many as a person plausibly has, kept for good. */
export const CUSTOM_TYPE_DEFAULT_LIMIT = 5;

export const MAX_BLOCKED_PATTERNS = 50;
export const MAX_BLOCKED_PATTERN_LENGTH = 200;

/**
 * Flags every workspace pattern is compiled with, here and in blocked.ts:
 * case-insensitive because values are compared case-insensitively; no `u`
 * because admins write patterns like `\-` that `u` refuses.
 */
export const BLOCKED_PATTERN_FLAGS = "i";

const DEFAULT_RULES: readonly IdentifierRule[] = [
  { type: "user_id", priority: 1, limit: 1, window: "ever" },
  { type: "email", priority: 2, limit: 5, window: "ever" },
  { type: "phone", priority: 3, limit: 3, window: "ever" },
  { type: "device_id", priority: 4, limit: 5, window: { days: 7 } },
  { type: "advertising_id", priority: 5, limit: 5, window: { days: 7 } },
  { type: "anonymous_id", priority: 6, limit: 5, window: { days: 7 } },
];

const windowSchema = z.union([
  z.literal("ever"),
  z.strictObject({ days: z.number().int().min(1).max(3650) }),
]);

export const identifierRuleSchema = z.strictObject({
  type: z.string().regex(IDENTIFIER_TYPE_PATTERN, { message: "must be a lowercase name (letters, digits, _ . -), starting with a letter" }),
  priority: z.number().int().min(1).max(1000),
  limit: z.number().int().min(1).max(1000),
  window: windowSchema,
});

/** Whether a pattern compiles, and if not, why: the admin sees the engine's own words. */
function patternProblem(source: string): string | null {
  try {
    new RegExp(source, BLOCKED_PATTERN_FLAGS);
  } catch (error) {
    return `is not a valid regular expression: ${(error as Error).message}`;
  }
  // A quantified group that itself contains a quantifier, like (a+)+, backtracks
  // exponentially; patterns run on every identifier of every event, so refuse it.
  if (/\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)[+*{]/.test(source)) return "has a nested quantifier, which can take exponential time";
  return null;
}

const blockedPatternSchema = z
  .string()
  .min(1)
  .max(MAX_BLOCKED_PATTERN_LENGTH)
  .superRefine((source, ctx) => {
    const problem = patternProblem(source);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

const probabilisticSchema = z
  .strictObject({
    reviewThreshold: z.number().gt(0).max(1).default(0.9),
    autoMerge: z.boolean().default(false),
    autoMergeThreshold: z.number().gt(0).max(1).default(0.99),
  })
  // Checked even while autoMerge is off, so switching it on later cannot expose a bad threshold;
  // skipped when a threshold is already invalid, so one mistake is reported once.
  .refine((value) => value.autoMergeThreshold > value.reviewThreshold, {
    path: ["autoMergeThreshold"],
    message: "must be greater than reviewThreshold",
    when: (payload) => payload.issues.length === 0,
  });

export const identitySettingsSchema = z.strictObject({
  identifiers: z
    .array(identifierRuleSchema)
    .max(100)
    .default(() => DEFAULT_RULES.map((rule) => ({ ...rule })))
    .superRefine((rules, ctx) => {
      // Priorities must be distinct: "drop the lowest priority first" needs a total order.
      const types = new Map<string, number>();
      const priorities = new Map<number, number>();
      rules.forEach((rule, index) => {
        if (types.has(rule.type)) ctx.addIssue({ code: "custom", path: [index, "type"], message: `duplicates the rule at index ${types.get(rule.type)}` });
        else types.set(rule.type, index);
        if (priorities.has(rule.priority)) ctx.addIssue({ code: "custom", path: [index, "priority"], message: `is already used by the rule at index ${priorities.get(rule.priority)}` });
        else priorities.set(rule.priority, index);
      });
      for (const type of BUILT_IN_TYPES) {
        if (!types.has(type)) ctx.addIssue({ code: "custom", message: `must include a rule for ${type}` });
      }
    }),
  blockedValues: z.array(z.string().min(1).max(512)).max(1000).default(() => []),
  blockedPatterns: z.array(blockedPatternSchema).max(MAX_BLOCKED_PATTERNS).default(() => []),
  email: z
    .strictObject({
      stripDots: z.boolean().default(false),
      stripPlusTags: z.boolean().default(false),
    })
    .prefault({}),
  defaultPhoneCountry: z
    .string()
    .trim()
    .toUpperCase()
    .refine((code) => /^[A-Z]{2}$/.test(code) && isSupportedCountry(code), { message: "must be an ISO 3166-1 alpha-2 country code, like US or FR" })
    .default("US"),
  clusterCap: z.number().int().min(2).max(10_000).default(50),
  bridgeQuarantineThreshold: z.number().int().min(1).max(1000).default(3),
  probabilistic: probabilisticSchema.prefault({}),
});

export type IdentitySettings = z.infer<typeof identitySettingsSchema>;
/** What an admin may send: every field optional, defaults filled in by the schema. */
export type IdentitySettingsInput = z.input<typeof identitySettingsSchema>;

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Frozen, so no caller can change the defaults every other caller sees. Parse a copy to edit. */
export const DEFAULT_IDENTITY_SETTINGS: IdentitySettings = deepFreeze(identitySettingsSchema.parse({}));

/**
 * The rule for a type. A custom external-id type with no rule of its own ranks
 * just below every configured rule (so it is dropped before any of them) and
 * may hold CUSTOM_TYPE_DEFAULT_LIMIT values, ever. Several unconfigured types
 * share that priority; `compareTypes` breaks the tie by name.
 */
export function ruleFor(settings: IdentitySettings, type: string): IdentifierRule {
  let rules = rulesByType.get(settings);
  if (!rules) rulesByType.set(settings, (rules = new Map()));
  let rule = rules.get(type);
  if (!rule) rules.set(type, (rule = findRule(settings, type)));
  return rule;
}

/**
 * Rules by type per settings object: the guards ask for every identifier of
 * every event. Settings are replaced, never changed in place, so an entry
 * never goes stale.
 */
const rulesByType = new WeakMap<IdentitySettings, Map<string, IdentifierRule>>();

function findRule(settings: IdentitySettings, type: string): IdentifierRule {
  const rule = settings.identifiers.find((candidate) => candidate.type === type);
  if (rule) return rule;
  const lowest = settings.identifiers.reduce((max, candidate) => Math.max(max, candidate.priority), 0);
  return { type, priority: lowest + 1, limit: CUSTOM_TYPE_DEFAULT_LIMIT, window: "ever" };
}

/**
 * Orders types from highest priority to lowest, then by name: a total, stable
 * order, so that two resolvers given the same event drop the same identifiers.
 */
export function compareTypes(settings: IdentitySettings, a: string, b: string): number {
  const byPriority = ruleFor(settings, a).priority - ruleFor(settings, b).priority;
  if (byPriority !== 0) return byPriority;
  return a < b ? -1 : a > b ? 1 : 0;
}
