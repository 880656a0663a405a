import { z } from "zod";
import type { QueuedEvent } from "../intake/envelope";
import { CONSENT_EVENT } from "../privacy/settings";
import { eventTime, wins } from "./traits";

/**
 * A profile's consent, per category, as pure rules. The person states it with
 * Segment's `Segment Consent Preference Updated` track event, whose
 * `context.consent.categoryPreferences` names the categories it sets.
 *
 * - Per category the latest statement wins (event timestamp, ties to the larger
 *   messageId), the same rule as traits, so arrival order never matters.
 * - A merge of two profiles that stated different values for a category cannot
 *   know which one the person meant: the category becomes not consented and
 *   marked `conflict` until a later statement names it. A category only one
 *   side stated is kept as it was.
 * - An unmerge or split recomputes each part from its own statements
 *   (`consentFrom`), so a part never keeps a conflict the retracted merge made.
 */

export interface ConsentEntry {
  consented: boolean;
  at: number;
  messageId: string;
  /** Set when a merge joined two different statements for this category. */
  conflict?: true;
}

/** Category → the profile's current consent for it; stored as JSON in D1 `profiles.consent`. */
export type ProfileConsent = Record<string, ConsentEntry>;

/** One consent statement: a consent event's preferences. */
export interface ConsentStatement {
  messageId: string;
  at: number;
  categoryPreferences: Record<string, boolean>;
}

export const consentEntrySchema = z.object({ consented: z.boolean(), at: z.number(), messageId: z.string(), conflict: z.literal(true).optional() });
export const profileConsentSchema = z.record(z.string(), consentEntrySchema);
export const categoryPreferencesSchema = z.record(z.string(), z.boolean());

const asRecord = (value: unknown): Record<string, unknown> | undefined =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;

/** The consent statement an event makes, or null when it is not a consent event with preferences. */
export function consentStatementOf(event: QueuedEvent): ConsentStatement | null {
  if (event.type !== "track" || (event as { event?: unknown }).event !== CONSENT_EVENT) return null;
  const raw = asRecord(asRecord(asRecord(event.context)?.consent)?.categoryPreferences);
  if (!raw) return null;
  // Only booleans state anything; intake validates the shape, this keeps stored JSON honest.
  const categoryPreferences = Object.fromEntries(Object.entries(raw).filter((entry): entry is [string, boolean] => typeof entry[1] === "boolean"));
  if (Object.keys(categoryPreferences).length === 0) return null;
  return { messageId: event.messageId, at: eventTime(event), categoryPreferences };
}

/** Applies a statement to a profile's consent (a new object); a category it wins is no longer in conflict. */
export function applyStatement(consent: ProfileConsent, statement: ConsentStatement): ProfileConsent {
  const next = { ...consent };
  for (const [category, consented] of Object.entries(statement.categoryPreferences)) {
    if (wins(statement, next[category])) next[category] = { consented, at: statement.at, messageId: statement.messageId };
  }
  return next;
}

/** A profile's consent from its own statements alone, in any order. */
export function consentFrom(statements: Iterable<ConsentStatement>): ProfileConsent {
  let consent: ProfileConsent = {};
  for (const statement of statements) consent = applyStatement(consent, statement);
  return consent;
}

/**
 * Two profiles' consent joined by a merge. A category both hold with different
 * values is refused and marked as a conflict; it carries the later of the two
 * statements' time, so only a statement made after both clears it.
 */
export function mergeConsent(a: ProfileConsent, b: ProfileConsent): ProfileConsent {
  const merged: ProfileConsent = { ...a };
  for (const [category, theirs] of Object.entries(b)) {
    const mine = merged[category];
    if (!mine) {
      merged[category] = theirs;
      continue;
    }
    const later = wins(theirs, mine) ? theirs : mine;
    const disagree = mine.consented !== theirs.consented || mine.conflict === true || theirs.conflict === true;
    merged[category] = disagree ? { consented: false, at: later.at, messageId: later.messageId, conflict: true } : later;
  }
  return merged;
}

/** Category → consented, as `context.consent.categoryPreferences` carries it. */
export function categoryPreferences(consent: ProfileConsent): Record<string, boolean> {
  return Object.fromEntries(Object.entries(consent).map(([category, entry]) => [category, entry.consented]));
}
