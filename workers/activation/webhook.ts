/**
 * Webhook signatures.
 *
 * Each webhook request is `POST` with a JSON body `{ "batch": [...], "sentAt": "<ISO 8601>" }`
 * and the headers
 *
 *     X-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes, keyed with the signing secret>
 *     X-Timestamp: <the same ISO 8601 instant as the body's sentAt>
 *
 * A receiver verifies it so:
 * 1. Read the raw body as bytes, before any JSON parsing: re-serialising
 *    changes bytes and breaks the signature.
 * 2. Compute HMAC-SHA256 of those bytes with the shared secret and compare it
 *    with the hex after `sha256=` in constant time (WebCrypto `verify`, Node
 *    `timingSafeEqual`, Python `hmac.compare_digest`).
 * 3. Parse the body; require `sentAt` to equal `X-Timestamp` and to be within
 *    a few minutes of now. The signature covers `sentAt`, so an old request
 *    replayed later is refused; the header only lets a receiver reject a stale
 *    request before hashing it.
 * 4. Deduplicate on each message's `messageId`: a retried request carries the
 *    same messages with a new `sentAt` and signature.
 *
 * `verifyWebhook` below does steps 2–3 and is what the tests use against
 * the formatter's output.
 */

export const SIGNATURE_HEADER = "X-Signature";
export const TIMESTAMP_HEADER = "X-Timestamp";
export const DEFAULT_TOLERANCE_MS = 5 * 60_000;

const encoder = new TextEncoder();

const hmacKey = (secret: string, usage: "sign" | "verify") =>
  crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [usage]);

const toHex = (buffer: ArrayBuffer): string => [...new Uint8Array(buffer)].map((byte) => byte.toString(16).padStart(2, "0")).join("");

/** The `X-Signature` value for a body. */
export async function signatureFor(secret: string, body: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret, "sign"), encoder.encode(body));
  return `sha256=${toHex(mac)}`;
}

export type VerifyResult = { ok: true; payload: { batch: unknown[]; sentAt: string } } | { ok: false; reason: string };

/** A receiver's check of a webhook request; `body` is the raw text exactly as received. */
export async function verifyWebhook(input: {
  secret: string;
  body: string;
  signature: string | null;
  timestamp: string | null;
  now: number;
  toleranceMs?: number;
}): Promise<VerifyResult> {
  const hex = /^sha256=([0-9a-f]{64})$/.exec(input.signature ?? "")?.[1];
  if (!hex) return { ok: false, reason: "missing or malformed X-Signature" };
  const mac = new Uint8Array(hex.match(/../g)!.map((pair) => parseInt(pair, 16)));
  // WebCrypto's verify compares in constant time, so the signature cannot be guessed byte by byte.
  if (!(await crypto.subtle.verify("HMAC", await hmacKey(input.secret, "verify"), mac, encoder.encode(input.body)))) return { ok: false, reason: "signature does not match" };
  let payload: unknown;
  try {
    payload = JSON.parse(input.body);
  } catch {
    return { ok: false, reason: "body is not JSON" };
  }
  const { batch, sentAt } = (payload ?? {}) as { batch?: unknown; sentAt?: unknown };
  if (!Array.isArray(batch) || typeof sentAt !== "string") return { ok: false, reason: "body is not a batch" };
  if (sentAt !== input.timestamp) return { ok: false, reason: "X-Timestamp does not match sentAt" };
  const age = Math.abs(input.now - Date.parse(sentAt));
  if (!(age <= (input.toleranceMs ?? DEFAULT_TOLERANCE_MS))) return { ok: false, reason: "sentAt is outside the tolerance" };
  return { ok: true, payload: { batch, sentAt } };
}
