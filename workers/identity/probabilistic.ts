/**
 * Fellegi–Sunter record linkage: how likely two profiles are one person.
 *
 * Each field is compared into a level ("exact", "different", …). A level has
 * m = P(level | same person) and u = P(level | different people), and adds
 * log2(m / u) to the total weight: positive when the level is more typical of
 * matches, negative when more typical of non-matches. Levels of a field
 * partition the non-missing outcomes, so the `different` level's m and u are
 * 1 − (the others); for a two-level field this is exactly FS's disagreement
 * weight log2((1 − m_agree) / (1 − u_agree)). A field missing on either side
 * adds 0. The total weight and a prior give a posterior probability.
 *
 * This only scores. It never merges: the review queue shows pairs above a
 * workspace threshold with `fields` as evidence, and only a workspace that
 * opts in merges above a second, higher threshold (see DESIGN.md).
 */
import { parseUserAgent } from "../tracking/enrich";
import { emailHandles, emailLocals } from "./email-locals";
import { jaroWinkler, normalizeName, soundex } from "./string-similarity";

export interface ProfileFeatures {
  firstName?: string;
  lastName?: string;
  emails: string[];
  /** E.164. */
  phones: string[];
  address?: { street?: string; city?: string; postalCode?: string; country?: string };
  ips: string[];
  userAgents: string[];
}

export interface MU {
  /** P(level | same person). */
  m: number;
  /** P(level | different people). */
  u: number;
}

/** Levels of each field, strongest first; a set-valued field takes its best level over all pairs. */
export const LEVELS = {
  firstName: ["exact", "jaro-winkler>=0.92", "jaro-winkler>=0.85", "different"],
  lastName: ["exact", "jaro-winkler>=0.92", "jaro-winkler>=0.85", "different"],
  email: ["exact", "jaro-winkler>=0.9", "different"],
  phone: ["exact", "same last 7 digits", "different"],
  address: ["same street and postal code", "same postal code", "same city", "different"],
  ip: ["shared", "not shared"],
  userAgent: ["identical", "same family", "different"],
} as const;

export type Field = keyof typeof LEVELS;
export type Level<F extends Field> = (typeof LEVELS)[F][number];

export interface LinkageModel {
  /** P(same person) for a pair before any field is compared: the pairs scored here have passed blocking. */
  prior: number;
  fields: { [F in Field]: Record<Level<F>, MU> };
}

export interface FieldEvidence {
  field: Field;
  level: Level<Field> | "missing";
  weight: number;
}

export interface LinkageScore {
  /** Sum of the field weights, in bits. */
  weight: number;
  /** Posterior P(same person) given the prior and the weight. */
  probability: number;
  /** One entry per field, in `LEVELS` order: the evidence the review queue shows. */
  fields: FieldEvidence[];
}

/**
 * Defaults: reasonable values for consumer data (web and app sign-ups, orders,
 * CRM imports), not measured on any one workspace. Calibrate per workspace
 * (EM on its own candidate pairs, or from reviewed decisions) before letting
 * a threshold merge on its own. m and u each sum to 1 over a field's levels.
 *
 * - prior: a random pair of profiles is one person about 1 in 10,000 times;
 *   pairs that share a blocking key are far likelier, about 1 in 100.
 * - Names: m reflects typos, nicknames and married names; u is how often
 *   strangers share a first name (~1%) or surname (~1%, raised above the
 *   population rate because surnames cluster in families and regions).
 * - Email local part (the domain ignored): people keep their handle across
 *   providers (m 0.55) but often hold unrelated addresses, so disagreement is
 *   only mildly negative; strangers rarely share a handle (u 0.0005).
 * - Phone: the strongest field; shared household landlines set u at 0.0005.
 *   "Same last 7 digits" catches a wrong or missing country/area code.
 * - Address: households, apartment blocks with the unit number missing and
 *   office billing addresses make strangers at the same street and postal
 *   code far commoner than 1/(number of addresses): u 0.02. People move, so
 *   a different address is only moderately negative.
 * - IP and user agent are weak by design and are never merge keys: carrier-
 *   grade NAT, offices, campuses and public Wi-Fi put many strangers behind
 *   one IP (u 0.06), while one person switches between home, mobile and work
 *   IPs (m only 0.25). User-agent strings are frozen or shared by whole device
 *   populations (every up-to-date iPhone sends the same one), and one person
 *   uses several devices. Alone, a shared IP with nothing else known stays
 *   below 5%.
 */
export const DEFAULT_MODEL: LinkageModel = {
  prior: 0.01,
  fields: {
    firstName: {
      exact: { m: 0.85, u: 0.01 },
      "jaro-winkler>=0.92": { m: 0.06, u: 0.005 },
      "jaro-winkler>=0.85": { m: 0.04, u: 0.015 },
      different: { m: 0.05, u: 0.97 },
    },
    lastName: {
      exact: { m: 0.88, u: 0.01 },
      "jaro-winkler>=0.92": { m: 0.06, u: 0.004 },
      "jaro-winkler>=0.85": { m: 0.03, u: 0.011 },
      different: { m: 0.03, u: 0.975 },
    },
    email: {
      exact: { m: 0.55, u: 0.0005 },
      "jaro-winkler>=0.9": { m: 0.1, u: 0.002 },
      different: { m: 0.35, u: 0.9975 },
    },
    phone: {
      exact: { m: 0.7, u: 0.0005 },
      "same last 7 digits": { m: 0.03, u: 0.0005 },
      different: { m: 0.27, u: 0.999 },
    },
    address: {
      "same street and postal code": { m: 0.55, u: 0.02 },
      "same postal code": { m: 0.15, u: 0.03 },
      "same city": { m: 0.1, u: 0.08 },
      different: { m: 0.2, u: 0.87 },
    },
    ip: {
      shared: { m: 0.25, u: 0.06 },
      "not shared": { m: 0.75, u: 0.94 },
    },
    userAgent: {
      identical: { m: 0.15, u: 0.05 },
      "same family": { m: 0.4, u: 0.3 },
      different: { m: 0.45, u: 0.65 },
    },
  },
};

/** FS weight of a level in bits: log2(m / u). */
export const levelWeight = ({ m, u }: MU): number => {
  if (!(m > 0 && u > 0)) throw new RangeError(`m and u must be positive (m=${m}, u=${u})`);
  return Math.log2(m / u);
};

/** Posterior from a total weight: p = 1 / (1 + 2^-(weight + log2(prior / (1 − prior)))). */
export const weightToProbability = (weight: number, prior: number): number =>
  1 / (1 + 2 ** -(weight + Math.log2(prior / (1 - prior))));

export function score(a: ProfileFeatures, b: ProfileFeatures, model: LinkageModel = DEFAULT_MODEL): LinkageScore {
  const levels: { [F in Field]: Level<F> | "missing" } = {
    firstName: compareNames(a.firstName, b.firstName),
    lastName: compareNames(a.lastName, b.lastName),
    email: emailLevel(a, b),
    phone: best("phone", digitsOf(a.phones), digitsOf(b.phones), comparePhones),
    address: compareAddresses(a.address, b.address),
    ip: compareIps(a.ips, b.ips),
    userAgent: best("userAgent", clean(a.userAgents), clean(b.userAgents), compareUserAgents),
  };
  const fields = (Object.keys(LEVELS) as Field[]).map((field): FieldEvidence => {
    const level = levels[field];
    const table = model.fields[field] as Record<string, MU>;
    return { field, level, weight: level === "missing" ? 0 : levelWeight(table[level]!) };
  });
  const weight = fields.reduce((sum, field) => sum + field.weight, 0);
  return { weight, probability: weightToProbability(weight, model.prior), fields };
}

/**
 * Cheap keys; only profiles sharing at least one are compared. Each key is
 * narrow enough to keep blocks small and loose enough to survive the errors
 * the scorer forgives, and the keys overlap so one field's error is caught by
 * another's key:
 * - `ln:` surname Soundex (first 4 letters for non-ASCII names) + first
 *   initial: survives surname typos and transpositions after the first
 *   letter; the initial splits the huge Smith/Garcia blocks.
 * - `em:` email local part without dots and +tags: the same handle at
 *   another provider, or Gmail's dot and plus aliases.
 * - `ph:` last 7 digits: survives a missing or wrong country/area code.
 * - `pc:` postal code + surname initial: same place, surname spelt so
 *   differently that its Soundex changed (Smith/Smyth-Jones), or first names
 *   that disagree on the initial (Bob/Robert); the initial splits a postal
 *   code's thousands of residents.
 */
/**
 * Whether two feature sets certainly give the same blocking keys: the fields
 * the keys are built from hold the same values. Most events repeat what a
 * profile already holds, and this spares computing the keys twice for them.
 */
export function sameBlockingFields(a: ProfileFeatures, b: ProfileFeatures): boolean {
  const sameSet = (x: string[], y: string[]) => x.length === y.length && x.every((value) => y.includes(value));
  return (
    a.firstName === b.firstName &&
    a.lastName === b.lastName &&
    a.address?.postalCode === b.address?.postalCode &&
    sameSet(a.emails, b.emails) &&
    sameSet(a.phones, b.phones)
  );
}

export function blockingKeys(features: ProfileFeatures): string[] {
  const keys = new Set<string>();
  const first = normalizeName(features.firstName);
  const last = normalizeName(features.lastName);
  if (first && last) keys.add(`ln:${soundex(last) ?? Array.from(last).slice(0, 4).join("")}:${Array.from(first)[0]}`);
  for (const local of emailLocals(features)) keys.add(`em:${local}`);
  for (const digits of digitsOf(features.phones)) if (digits.length >= 7) keys.add(`ph:${digits.slice(-7)}`);
  const postal = normalizePostal(features.address?.postalCode);
  if (postal && last) keys.add(`pc:${postal}:${Array.from(last)[0]}`);
  return [...keys].sort();
}

// ---- comparisons ----------------------------------------------------------

/** Best (strongest-listed) level over all pairs of two value sets; "missing" if either is empty. */
function best<F extends Field, T>(field: F, as: T[], bs: T[], compare: (a: T, b: T) => Level<F>): Level<F> | "missing" {
  if (as.length === 0 || bs.length === 0) return "missing";
  const order: readonly string[] = LEVELS[field];
  let bestLevel = compare(as[0]!, bs[0]!);
  for (const x of as) for (const y of bs) {
    const level = compare(x, y);
    if (order.indexOf(level) < order.indexOf(bestLevel)) bestLevel = level;
  }
  return bestLevel;
}

function compareNames(a?: string, b?: string): Level<"firstName"> | "missing" {
  const x = normalizeName(a);
  const y = normalizeName(b);
  if (!x || !y) return "missing";
  if (x === y) return "exact";
  const similarity = jaroWinkler(x, y);
  return similarity >= 0.92 ? "jaro-winkler>=0.92" : similarity >= 0.85 ? "jaro-winkler>=0.85" : "different";
}

/**
 * Fields are assumed independent given the match status, and an email local
 * part built from a name is not: two namesakes' `jane.doe` and `janedoe77`
 * agree because their names do, and `andrewl` is every Andrew L. So local
 * parts are compared with every name known on either side taken out, and only
 * a handle of the person's own making (`jd_climbs`, `doe431`) is evidence.
 * Names are scored by their own fields.
 */
function emailLevel(a: ProfileFeatures, b: ProfileFeatures): Level<"email"> | "missing" {
  const names = [a.firstName, a.lastName, b.firstName, b.lastName].map(normalizeName).filter((n): n is string => Boolean(n));
  return best("email", emailHandles(a, names), emailHandles(b, names), compareEmailLocals);
}

/** Numbers are random, not misspelt: `p162` and `162` share no typo, so handles without three letters compare exactly only. */
const letters = (value: string) => value.replace(/[^\p{L}]/gu, "").length;
const compareEmailLocals = (a: string, b: string): Level<"email"> =>
  a === b ? "exact" : letters(a) >= 3 && letters(b) >= 3 && jaroWinkler(a, b) >= 0.9 ? "jaro-winkler>=0.9" : "different";

const comparePhones = (a: string, b: string): Level<"phone"> =>
  a === b ? "exact" : a.length >= 7 && b.length >= 7 && a.slice(-7) === b.slice(-7) ? "same last 7 digits" : "different";

function compareAddresses(a: ProfileFeatures["address"], b: ProfileFeatures["address"]): Level<"address"> | "missing" {
  const x = normalizeAddress(a);
  const y = normalizeAddress(b);
  // A street alone is no evidence ("1 Main St" is in every town): it counts only with a postal code.
  if (!((x.postal && y.postal) || (x.city && y.city))) return "missing";
  // Postal codes and city names only mean something within one country.
  if (x.country && y.country && x.country !== y.country) return "different";
  if (x.postal && x.postal === y.postal) return x.street && x.street === y.street ? "same street and postal code" : "same postal code";
  if (x.city && x.city === y.city) return "same city";
  return "different";
}

function compareIps(a: string[], b: string[]): Level<"ip"> | "missing" {
  const x = new Set(clean(a).map(ipKey));
  const y = clean(b).map(ipKey);
  if (x.size === 0 || y.length === 0) return "missing";
  return y.some((ip) => x.has(ip)) ? "shared" : "not shared";
}

function compareUserAgents(a: string, b: string): Level<"userAgent"> {
  if (a === b) return "identical";
  const family = (agent: string) => {
    const parsed = parseUserAgent(agent);
    return parsed.browser?.name && parsed.os?.name ? `${parsed.browser.name}/${parsed.os.name}` : undefined;
  };
  const x = family(a);
  return x !== undefined && x === family(b) ? "same family" : "different";
}

// ---- normalisation --------------------------------------------------------

const digitsOf = (phones: string[]): string[] => [...new Set(phones.map((phone) => phone.replace(/\D/g, "")).filter(Boolean))];

const clean = (values: string[]): string[] => [...new Set(values.map((value) => value.trim()).filter(Boolean))];

/** IPv4 as is; IPv6 by its /64, since privacy addresses rotate the low half per device. */
function ipKey(ip: string): string {
  if (!ip.includes(":")) return ip;
  const [head = "", tail] = ip.toLowerCase().split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...new Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return groups.slice(0, 4).map((group) => group.replace(/^0+(?=.)/, "")).join(":");
}

const normalizePostal = (postal?: string) => postal?.toUpperCase().replace(/[^\p{L}\p{N}]/gu, "") || undefined;

const STREET_WORDS: Record<string, string> = {
  street: "st", avenue: "ave", av: "ave", road: "rd", boulevard: "blvd", drive: "dr", lane: "ln", court: "ct",
  place: "pl", square: "sq", highway: "hwy", apartment: "apt", suite: "ste", north: "n", south: "s", east: "e", west: "w",
};

function normalizeAddress(address: ProfileFeatures["address"]) {
  const words = (value?: string) =>
    value?.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean) ?? [];
  const street = words(address?.street).map((word) => STREET_WORDS[word] ?? word).join(" ");
  const city = words(address?.city).join(" ");
  const country = address?.country?.trim().toUpperCase();
  return { street: street || undefined, city: city || undefined, postal: normalizePostal(address?.postalCode), country: country || undefined };
}
