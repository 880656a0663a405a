import { CONSENT_EVENT } from "./settings";

/**
 * What collection refuses, without bindings: consent a workspace requires
 * before it keeps an event at all, and the names of the drop counters.
 */

export const DROP_REASONS = ["suppressed", "consent"] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** The message shape this reads; any tracking message has it. */
interface ConsentCarrier {
  type: string;
  event?: unknown;
  context: Record<string, unknown>;
}

/** The event that records a person's consent choices. Refusing it would leave no way to grant consent. */
export const isConsentEvent = (event: ConsentCarrier) => event.type === "track" && event.event === CONSENT_EVENT;

/**
 * The required categories an event does not mark as consented. Segment's
 * `context.consent.categoryPreferences` is the only source: a category that
 * is absent, false, or an event without a consent object at all, lacks it.
 */
export function missingConsent(event: ConsentCarrier, required: readonly string[]): string[] {
  if (required.length === 0 || isConsentEvent(event)) return [];
  const consent = event.context.consent;
  const preferences =
    consent && typeof consent === "object" ? (consent as { categoryPreferences?: unknown }).categoryPreferences : undefined;
  const granted = preferences && typeof preferences === "object" ? (preferences as Record<string, unknown>) : {};
  return required.filter((category) => granted[category] !== true);
}

/** `yyyy-mm-dd` in UTC: the drop counters' day. */
export const utcDay = (at: Date | number) => new Date(at).toISOString().slice(0, 10);

/** The last `days` UTC days up to and including today's, oldest first. */
export function recentDays(days: number, now: Date | number = Date.now()): string[] {
  const today = Date.parse(`${utcDay(now)}T00:00:00.000Z`);
  return Array.from({ length: days }, (_, i) => utcDay(today - (days - 1 - i) * 86_400_000));
}
