import type { ProfileFeatures } from "./probabilistic";

/** Role mailboxes name a business, not a person: never evidence, never a block. */
const ROLE_LOCALS = new Set(["info", "admin", "contact", "support", "sales", "hello", "office", "noreply", "no-reply", "mail"]);

/** Shorter than this, what is left of a local part once names are removed is an initial or a year, not a handle. */
const MIN_HANDLE = 3;

/** Email local parts, lowercased, with +tags and dots removed (Gmail aliases; elsewhere dots rarely tell people apart). */
export function emailLocals(features: ProfileFeatures): string[] {
  const locals = new Set<string>();
  for (const email of features.emails) {
    const at = email.lastIndexOf("@");
    if (at <= 0) continue;
    const raw = email.slice(0, at).trim().toLowerCase();
    if (ROLE_LOCALS.has(raw)) continue;
    const local = raw.split("+")[0]!.replaceAll(".", "");
    if (local && !ROLE_LOCALS.has(local)) locals.add(local);
  }
  return [...locals];
}

/**
 * The local parts with `names` (normalised: lowercase letters only) and
 * separators taken out: `patricia.walker910` is `910` for Patricia Walker.
 * Local parts that are nothing but names and initials have no handle.
 */
export function emailHandles(features: ProfileFeatures, names: string[]): string[] {
  const longestFirst = [...new Set(names)].sort((x, y) => y.length - x.length);
  const handles = emailLocals(features).map((local) => longestFirst.reduce((rest, name) => rest.replaceAll(name, ""), local.replace(/[-_]/g, "")));
  return [...new Set(handles.filter((handle) => handle.length >= MIN_HANDLE))];
}
