import { parsePhoneNumberFromString } from "libphonenumber-js";
import { BLOCKED_PATTERN_FLAGS, type IdentitySettings } from "./settings";
import type { Identifier } from "./types";

/**
 * Values that must never link two people. One placeholder shared by thousands
 * of profiles ("guest", "null", info@…) would merge them all into one, so a
 * value is refused here before it can ever reach the index.
 */

/** What broken integrations send instead of an id: stringified nulls, defaults, test values. */
const PLACEHOLDERS = new Set([
  "null", "(null)", "<null>", "undefined", "nil", "none", "n/a", "#n/a", "na", "nan",
  "0", "-1", "anonymous", "anon", "guest", "unknown", "test", "user",
  "[object object]", "true", "false", "{}", "[]", '""', "''",
]);

/**
 * Mailboxes shared by a team, or no one, rather than a person. Compared with
 * dots, dashes and underscores removed, so `no-reply`, `no_reply` and
 * `no.reply` are one entry.
 */
const ROLE_LOCAL_PARTS = new Set(
  [
    "info", "noreply", "no-reply", "donotreply", "do-not-reply", "support", "admin", "administrator",
    "sales", "contact", "hello", "help", "billing", "team", "office", "marketing", "postmaster",
    "webmaster", "hostmaster", "abuse", "root", "test", "example", "mail", "email", "enquiries",
    "inquiries", "feedback", "service", "customerservice", "accounts", "careers", "jobs", "hr",
    "press", "privacy", "security", "newsletter", "notifications", "nobody", "null", "undefined",
    "user", "guest", "anonymous", "unknown",
  ].map((local) => local.replace(/[._-]/g, "")),
);

/** Domains reserved for documentation and tests (RFC 2606), plus the commonest fake one. */
const EXAMPLE_DOMAINS = new Set(["example.com", "example.org", "example.net", "test.com"]);
const RESERVED_TLDS = [".example", ".test", ".invalid", ".localhost"];

const ZEROS = /^[0.-]+$/;
const REPEATED_CHARACTER = /^(.)\1{5,}$/su;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const IPV6_SHAPE = /^[0-9a-f:.]+$/i;

function isIpAddress(value: string): boolean {
  if (IPV4.test(value)) return true;
  // Two colons at least, so MAC addresses and `a:b` ids are not mistaken for one; the URL parser has the final word.
  if (!IPV6_SHAPE.test(value) || value.split(":").length < 3) return false;
  try {
    new URL(`http://[${value}]/`);
    return true;
  } catch {
    return false;
  }
}

function emailProblem(value: string): string | null {
  const at = value.lastIndexOf("@");
  if (at < 0) return null;
  const local = value.slice(0, at).split("+")[0]!.replace(/[._-]/g, "");
  const domain = value.slice(at + 1);
  if (ROLE_LOCAL_PARTS.has(local)) return `generic role email (${value.slice(0, at).split("+")[0]}@)`;
  const parent = domain.split(".").slice(-2).join(".");
  if (EXAMPLE_DOMAINS.has(domain) || EXAMPLE_DOMAINS.has(parent) || RESERVED_TLDS.some((tld) => domain.endsWith(tld))) {
    return `reserved or example email domain (${domain})`;
  }
  return null;
}

function phoneProblem(value: string): string | null {
  // Judge the national number: the country code's digits would otherwise hide
  // a 555-5555-style fake behind a real-looking prefix.
  const national = parsePhoneNumberFromString(value)?.nationalNumber ?? value.replace(/\D/g, "");
  if (national.length < 7) return "phone number with fewer than 7 digits";
  if (/^(\d)\1*$/.test(national)) return "phone number made of one repeated digit";
  return null;
}

interface Compiled {
  values: Set<string>;
  patterns: RegExp[];
}

// Settings are parsed once and then only read, so compile per settings object, not per identifier.
const compiledCache = new WeakMap<IdentitySettings, Compiled>();

function compiled(settings: IdentitySettings): Compiled {
  let entry = compiledCache.get(settings);
  if (!entry) {
    entry = {
      values: new Set(settings.blockedValues.map((value) => value.trim().toLowerCase())),
      patterns: settings.blockedPatterns.map((source) => new RegExp(source, BLOCKED_PATTERN_FLAGS)),
    };
    compiledCache.set(settings, entry);
  }
  return entry;
}

/**
 * Why an identifier must not be used, or null when it may. Expects the
 * normalised value (see `normalizeIdentifier` in extract.ts): workspace values
 * and patterns are matched against what would be stored, case-insensitively.
 */
export function isBlockedValue(identifier: Identifier, settings: IdentitySettings): string | null {
  const value = identifier.value.trim();
  const lower = value.toLowerCase();
  if (lower === "") return "empty value";
  if (PLACEHOLDERS.has(lower)) return `placeholder value (${lower})`;
  if (ZEROS.test(lower)) return "all-zero id";
  if (REPEATED_CHARACTER.test(lower)) return "one character repeated";
  if (isIpAddress(lower)) return "an IP address is never an identifier";
  if (identifier.type === "email") {
    const problem = emailProblem(lower);
    if (problem) return problem;
  }
  if (identifier.type === "phone") {
    const problem = phoneProblem(value);
    if (problem) return problem;
  }
  const workspace = compiled(settings);
  if (workspace.values.has(lower)) return "blocked by the workspace";
  const pattern = workspace.patterns.find((candidate) => candidate.test(value));
  if (pattern) return `matches the workspace pattern /${pattern.source}/`;
  return null;
}
