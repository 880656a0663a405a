import { text } from "../../export/parquet";

/** Who an R2 erasure removes, by every raw value they were known by. */
export interface ErasureSubject {
  workspaceId: string;
  /** Raw values of every identifier: user ids, anonymous ids, emails, phones, device and external ids. */
  identifierValues: string[];
  messageIds: string[];
  profileIds: string[];
}

/**
 * The person as the R2 stores are searched for them. `messageIds` grows while
 * an erasure runs: events matched by value in the archive name the rows to
 * remove from the warehouse files of the same hours.
 */
export interface Person {
  values: ReadonlySet<string>;
  /** Emails are compared case-insensitively, and a value does not say whether it is an email. */
  lowered: ReadonlySet<string>;
  messageIds: Set<string>;
  profileIds: ReadonlySet<string>;
}

// An empty value would match every event without that field, and every text.
const present = (values: Iterable<string>) => [...values].filter((value) => value.length > 0);

export function personOf(identifierValues: Iterable<string>, messageIds: Iterable<string>, profileIds: Iterable<string> = []): Person {
  const values = present(identifierValues);
  return {
    values: new Set(values),
    lowered: new Set(values.map((value) => value.toLowerCase())),
    messageIds: new Set(present(messageIds)),
    profileIds: new Set(present(profileIds)),
  };
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

const has = (set: ReadonlySet<string>, value: unknown) => {
  const key = text(value);
  return key !== null && set.has(key);
};

const emailOf = (traits: unknown) => (isRecord(traits) && typeof traits.email === "string" ? traits.email.toLowerCase() : null);

/**
 * An archived event (or a warehouse row put back in the event's shape) is
 * theirs when it is one of their messages, names one of their values as
 * `userId`, `anonymousId` or `previousId`, or carries one of them as the
 * email trait. Nothing broader: a bystander's event that merely mentions
 * them stays, because the archive is the record of what everyone sent.
 */
export function isTheirEvent(person: Person, event: Record<string, unknown>): boolean {
  if (has(person.messageIds, event.messageId)) return true;
  if (has(person.values, event.userId) || has(person.values, event.anonymousId) || has(person.values, event.previousId)) return true;
  const context = isRecord(event.context) ? event.context : {};
  for (const email of [emailOf(event.traits), emailOf(context.traits)]) if (email !== null && person.lowered.has(email)) return true;
  return false;
}

const WORD = /[\p{L}\p{N}]/u;

/** `needle` occurs in `haystack` (both lower case) not glued to letters or digits: `42` is in `user-42`, not in `1425`. */
function occurs(haystack: string, needle: string): boolean {
  const glued = (char: string | undefined, edge: string | undefined) => char !== undefined && edge !== undefined && WORD.test(char) && WORD.test(edge);
  for (let at = haystack.indexOf(needle); at >= 0; at = haystack.indexOf(needle, at + 1)) {
    if (!glued(haystack[at - 1], needle[0]) && !glued(haystack[at + needle.length], needle[needle.length - 1])) return true;
  }
  return false;
}

/** The lower-cased forms `mentions` looks for: every value, message id and profile id of the person. */
export function needlesOf(person: Person): string[] {
  return [...new Set([...person.lowered, ...[...person.messageIds, ...person.profileIds].map((id) => id.toLowerCase())])];
}

/**
 * Whether any string inside a JSON value contains one of the needles
 * (case-insensitively, on word boundaries). Only strings are searched, so a
 * user id `12` does not match a delivery's `"attempt": 12`. Used for stores
 * that hold copies of messages in transit (dead letters), where
 * removing too much loses nothing of record.
 */
export function mentions(value: unknown, needles: readonly string[]): boolean {
  if (!needles.length) return false;
  if (typeof value === "string") {
    const lower = value.toLowerCase();
    return needles.some((needle) => occurs(lower, needle));
  }
  if (Array.isArray(value)) return value.some((item) => mentions(item, needles));
  if (isRecord(value)) return Object.values(value).some((item) => mentions(item, needles));
  return false;
}

/** Whether raw text (a message that never parsed as what it should be) contains one of the needles, as written or JSON-escaped. */
export function textMentions(raw: string, needles: readonly string[]): boolean {
  const lower = raw.toLowerCase();
  return needles.some((needle) => occurs(lower, needle) || occurs(lower, JSON.stringify(needle).slice(1, -1)));
}

/** `value` with every case-insensitive occurrence of the needles replaced: for error messages that quote what a destination refused. */
export function redact(value: string, needles: readonly string[]): string {
  let out = value;
  for (const needle of [...needles].sort((a, b) => b.length - a.length)) {
    out = out.replace(new RegExp(needle.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gi"), "[erased]");
  }
  return out;
}
