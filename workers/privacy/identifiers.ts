import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";

/**
 * How privacy code names a person's identifiers without keeping them: a salted
 * hash of the identifier key (`type:value`, as identity resolution normalises
 * it), and a masked hint for people to recognise it by.
 */

/**
 * SHA-256 of workspace id, NUL, `type:value`: the same key in two workspaces
 * hashes differently. Computed synchronously in JavaScript: intake hashes
 * every identifier of every event against the suppressions, and for inputs
 * this short that is several times cheaper than an asynchronous
 * `crypto.subtle.digest` call each (bench/privacy.mjs).
 */
export const identifierKeyHash = (workspaceId: string, key: string): string => bytesToHex(sha256(utf8ToBytes(`${workspaceId}\u0000${key}`)));

/**
 * The forms of a key that a suppression covers. An email is also suppressed in
 * its collapsed form (no `+tag`, no Gmail dots), so a workspace that collapses
 * them and one that does not both match the variants the deleted person used.
 */
export function suppressionForms(key: string): string[] {
  const colon = key.indexOf(":");
  const type = key.slice(0, colon);
  const value = key.slice(colon + 1);
  if (type !== "email") return [key];
  const at = value.lastIndexOf("@");
  if (at < 1) return [key];
  const domain = value.slice(at + 1);
  let local = value.slice(0, at).split("+")[0]!;
  if (domain === "gmail.com" || domain === "googlemail.com") local = local.replaceAll(".", "");
  const collapsed = `email:${local}@${domain === "googlemail.com" ? "gmail.com" : domain}`;
  return collapsed === key ? [key] : [key, collapsed];
}

/** `email:j***@example.com`, `user_id:us***42`: enough to recognise, not enough to recover. */
export function maskIdentifier(key: string): string {
  const colon = key.indexOf(":");
  const type = colon < 0 ? "" : key.slice(0, colon);
  const value = colon < 0 ? key : key.slice(colon + 1);
  if (type === "email") {
    const at = value.lastIndexOf("@");
    if (at > 0) return `email:${value[0]}***${value.slice(at)}`;
  }
  if (value.length <= 4) return `${type}:***`;
  return `${type}:${value.slice(0, 2)}***${value.slice(-2)}`;
}
