import type { ProfileFeatures } from "./probabilistic";
import type { Identifier } from "./types";

/** Caps keep a profile's match features small however many events it has. */
const MAX = { emails: 5, phones: 3, ips: 10, userAgents: 5 } as const;

type Bag = Record<string, unknown>;
/** An event as it arrives (`QueuedEvent`) or as the profile store keeps its payload (`EventRecord`): both carry these. */
export type FeatureSource = { type: string; context: Bag; traits?: unknown };
const bag = (value: unknown): Bag => (typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Bag) : {});
const text = (value: unknown) => (typeof value === "string" && value.trim() ? value.trim() : undefined);

/**
 * What one event says about a person for probabilistic matching: names and
 * address from identify traits (or context.traits), the already normalised
 * emails and phones, and the IP and user agent it came from.
 */
export function featuresFromEvent(event: FeatureSource, identifiers: Identifier[]): Partial<ProfileFeatures> {
  const traits = { ...bag(event.context.traits), ...(event.type === "identify" ? bag(event.traits) : {}) };
  const [first, ...rest] = (text(traits.name) ?? "").split(/\s+/);
  const features: Partial<ProfileFeatures> = {
    emails: identifiers.filter((i) => i.type === "email").map((i) => i.value),
    phones: identifiers.filter((i) => i.type === "phone").map((i) => i.value),
    ips: text(event.context.ip) ? [text(event.context.ip)!] : [],
    userAgents: text(event.context.userAgent) ? [text(event.context.userAgent)!] : [],
  };
  const firstName = text(traits.firstName) ?? text(first);
  const lastName = text(traits.lastName) ?? (rest.length ? rest.join(" ") : undefined);
  if (firstName) features.firstName = firstName;
  if (lastName) features.lastName = lastName;
  const address = bag(traits.address);
  if (Object.keys(address).length) {
    features.address = Object.fromEntries(
      (["street", "city", "postalCode", "country"] as const).flatMap((k) => (address[k] === undefined ? [] : [[k, String(address[k])]])),
    );
  }
  return features;
}

const newestFirst = (latest: string[] = [], earlier: string[] = [], cap: number) => [...new Set([...latest, ...earlier])].slice(0, cap);

/** The latest name and address win; lists keep their newest values up to a cap. */
export function mergeFeatures(base: ProfileFeatures | undefined, latest: Partial<ProfileFeatures>): ProfileFeatures {
  const merged: ProfileFeatures = {
    emails: newestFirst(latest.emails, base?.emails, MAX.emails),
    phones: newestFirst(latest.phones, base?.phones, MAX.phones),
    ips: newestFirst(latest.ips, base?.ips, MAX.ips),
    userAgents: newestFirst(latest.userAgents, base?.userAgents, MAX.userAgents),
  };
  const firstName = latest.firstName ?? base?.firstName;
  const lastName = latest.lastName ?? base?.lastName;
  const address = latest.address ?? base?.address;
  if (firstName) merged.firstName = firstName;
  if (lastName) merged.lastName = lastName;
  if (address) merged.address = address;
  return merged;
}

export const hasMatchableFeatures = (f: ProfileFeatures | undefined) => Boolean(f && ((f.firstName && f.lastName) || f.emails.length || f.phones.length));
