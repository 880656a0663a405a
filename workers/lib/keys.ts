/**
 * Write keys and tokens are random 32-byte secrets, so a single SHA-256 is the
 * right storage hash (a slow KDF only matters for guessable secrets). Lookups go
 * by hash; the final comparison is constant-time all the same.
 */
const encoder = new TextEncoder();

export async function sha256Hex(value: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(value));
  return toHex(new Uint8Array(digest));
}

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

export function timingSafeEqualHex(a: string, b: string): boolean {
  const left = encoder.encode(a);
  const right = encoder.encode(b);
  if (left.byteLength !== right.byteLength) return false;
  return crypto.subtle.timingSafeEqual(left, right);
}

export type SecretKind = "wk" | "at";

/** `cdp_wk_…` for write keys, `cdp_at_…` for access tokens: the prefix says what a leaked string is. */
export function generateSecret(kind: SecretKind): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `cdp_${kind}_${toHex(bytes)}`;
}

export const displayPrefix = (secret: string) => secret.slice(0, 12);

export function generateId(prefix: string): string {
  return `${prefix}_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
}
