import { type CountryCode, parsePhoneNumberFromString } from "libphonenumber-js";
import type { QueuedEvent } from "../intake/envelope";
import { isBlockedValue } from "./blocked";
import { IDENTIFIER_TYPE_PATTERN, type IdentitySettings } from "./settings";
import { type Identifier, identifierKey } from "./types";

/**
 * Which identifiers a Segment message carries, normalised so that the same
 * person's values compare equal, with the refused ones and why.
 *
 * Read from the message (Segment's spec):
 * - `userId` → user_id; `anonymousId` → anonymous_id.
 * - alias `previousId` → anonymous_id. A message cannot say whether the
 *   earlier id was anonymous or a user id; most aliases link an anonymous
 *   visitor. When it was a user id, the resolver probes `previousUserId(event)`:
 *   joining two user ids is never automatic, so that case goes to review.
 * - `traits.email` / `traits.phone` of identify only: group traits describe the
 *   account, not the person. `context.traits.email` / `.phone` of any message.
 * - `context.externalIds[]` → `{ type: lowercased type, value: id }`; types
 *   named like a built-in one are normalised like it.
 * - `context.device.id` → device_id; `context.device.advertisingId` →
 *   advertising_id, unless `context.device.adTrackingEnabled` is false.
 *
 * Never read: `context.ip`, `context.userAgent`, or any other field. An IP or a
 * user agent is shared by many people (NAT, kiosks, one browser build), so it
 * may score a probabilistic suggestion but never links profiles.
 */

export const MAX_IDENTIFIER_LENGTH = 512;

export interface RejectedIdentifier {
  type: string;
  raw: unknown;
  reason: string;
}

export interface ExtractedIdentifiers {
  identifiers: Identifier[];
  rejected: RejectedIdentifier[];
}

/** External-id types that are just other names for IPs and user agents. */
const NEVER_IDENTIFIER_TYPES = new Set(["ip", "ip_address", "ipaddress", "user_agent", "useragent"]);
const GMAIL_DOMAINS = new Set(["gmail.com", "googlemail.com"]);
const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

export type Normalized = { ok: true; identifier: Identifier } | { ok: false; reason: string };

const fail = (reason: string): Normalized => ({ ok: false, reason });

function normalizeEmail(value: string, settings: IdentitySettings): Normalized {
  const email = value.toLowerCase();
  if (!EMAIL_SHAPE.test(email)) return fail("not an email address");
  const at = email.lastIndexOf("@");
  let local = email.slice(0, at);
  let domain = email.slice(at + 1);
  // Plus tags and Gmail dots reach the same mailbox, but not on every provider:
  // collapsing them is a workspace decision, off by default.
  if (settings.email.stripPlusTags) local = local.split("+")[0]!;
  if (settings.email.stripDots && GMAIL_DOMAINS.has(domain)) {
    local = local.replaceAll(".", "");
    domain = "gmail.com";
  }
  if (local === "") return fail("not an email address");
  return { ok: true, identifier: { type: "email", value: `${local}@${domain}` } };
}

function normalizePhone(value: string, settings: IdentitySettings): Normalized {
  // The settings schema only admits countries libphonenumber supports.
  const phone = parsePhoneNumberFromString(value, settings.defaultPhoneCountry as CountryCode);
  // With the default (min) metadata isValid() checks the length for the country, not the digits:
  // strict enough to keep garbage out, lenient enough not to go stale when numbering plans change.
  if (!phone || !phone.isValid()) return fail(`not a valid phone number (default country ${settings.defaultPhoneCountry})`);
  return { ok: true, identifier: { type: "phone", value: phone.number } };
}

/**
 * Normalises one raw value as an identifier of `type`, without the blocked
 * check. The Profile and admin APIs use it on lookups so that
 * `email:Jane@X.com` finds what was stored as `jane@x.com`.
 */
export function normalizeIdentifier(type: string, raw: unknown, settings: IdentitySettings): Normalized {
  if (!IDENTIFIER_TYPE_PATTERN.test(type)) return fail("not a valid identifier type name");
  if (NEVER_IDENTIFIER_TYPES.has(type)) return fail("IP addresses and user agents are never identifiers");
  let text: string;
  if (typeof raw === "string") text = raw;
  else if (typeof raw === "number" && Number.isFinite(raw)) text = String(raw);
  else return fail("must be a string");
  text = text.trim();
  if (text === "") return fail("empty value");
  if (text.length > MAX_IDENTIFIER_LENGTH) return fail(`longer than ${MAX_IDENTIFIER_LENGTH} characters`);
  if (CONTROL_CHARACTERS.test(text)) return fail("contains control characters");
  switch (type) {
    case "email":
      return normalizeEmail(text, settings);
    case "phone":
      return normalizePhone(text, settings);
    case "advertising_id":
      // IDFAs come upper-case from iOS and GAIDs lower-case; both are UUIDs, so case carries no meaning.
      return { ok: true, identifier: { type, value: text.toLowerCase() } };
    default:
      return { ok: true, identifier: { type, value: text } };
  }
}

const asRecord = (value: unknown): Record<string, unknown> | undefined =>
  value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;

/** The alias's previous id, as the user id it may have been; null for other messages. */
export function previousUserId(event: QueuedEvent, settings: IdentitySettings): Identifier | null {
  if (event.type !== "alias" || event.previousId === undefined) return null;
  const normalized = normalizeIdentifier("user_id", event.previousId, settings);
  if (!normalized.ok || isBlockedValue(normalized.identifier, settings)) return null;
  return normalized.identifier;
}

export function extractIdentifiers(event: QueuedEvent, settings: IdentitySettings): ExtractedIdentifiers {
  const identifiers: Identifier[] = [];
  const rejected: RejectedIdentifier[] = [];
  const seen = new Set<string>();

  const offer = (type: string, raw: unknown) => {
    if (raw === undefined) return;
    const normalized = normalizeIdentifier(type, raw, settings);
    if (!normalized.ok) {
      rejected.push({ type, raw, reason: normalized.reason });
      return;
    }
    const reason = isBlockedValue(normalized.identifier, settings);
    if (reason) {
      rejected.push({ type, raw, reason });
      return;
    }
    const key = identifierKey(normalized.identifier);
    if (seen.has(key)) return;
    seen.add(key);
    identifiers.push(normalized.identifier);
  };

  offer("user_id", event.userId);
  offer("anonymous_id", event.anonymousId);
  if (event.type === "alias") offer("anonymous_id", event.previousId);

  const traits = event.type === "identify" ? asRecord(event.traits) : undefined;
  const contextTraits = asRecord(event.context.traits);
  offer("email", traits?.email);
  offer("email", contextTraits?.email);
  offer("phone", traits?.phone);
  offer("phone", contextTraits?.phone);

  const externalIds = event.context.externalIds;
  if (Array.isArray(externalIds)) {
    for (const entry of externalIds) {
      const externalId = asRecord(entry);
      const type = typeof externalId?.type === "string" ? externalId.type.trim().toLowerCase() : undefined;
      if (!externalId || !type) {
        rejected.push({ type: "external_id", raw: entry, reason: "an external id needs a type and an id" });
        continue;
      }
      offer(type, externalId.id ?? null);
    }
  }

  const device = asRecord(event.context.device);
  offer("device_id", device?.id);
  if (device?.advertisingId !== undefined) {
    // Honouring the opt-out means not keeping the value at all, not even among the rejected.
    if (device.adTrackingEnabled === false) rejected.push({ type: "advertising_id", raw: undefined, reason: "ad tracking is disabled on the device" });
    else offer("advertising_id", device.advertisingId);
  }

  return { identifiers, rejected };
}

/**
 * An event's identifiers as the graph extracts them, with an alias's previous
 * user id apart: the graph links that one only when it already knows it.
 */
export function eventIdentifiers(event: QueuedEvent, settings: IdentitySettings): { identifiers: Identifier[]; previous: Identifier | null } {
  return { identifiers: extractIdentifiers(event, settings).identifiers, previous: previousUserId(event, settings) };
}

/** The keys (`type:value`) of what `eventIdentifiers` found, the previous user id's last when there is one. */
export function keysOfFound({ identifiers, previous }: ReturnType<typeof eventIdentifiers>): string[] {
  const keys = identifiers.map(identifierKey);
  return previous ? [...keys, identifierKey(previous)] : keys;
}

/** The keys (`type:value`) of `eventIdentifiers`, the previous user id's last when there is one. */
export function identifierKeysOf(event: QueuedEvent, settings: IdentitySettings): string[] {
  return keysOfFound(eventIdentifiers(event, settings));
}
