/**
 * What formatters produce: plain HTTP requests, built without sending them, so
 * every byte a destination receives can be asserted in a unit test and the
 * sender stays a thin loop over `fetch`.
 */

export interface HttpRequest {
  method: "POST" | "PUT";
  url: string;
  headers: Record<string, string>;
  /** The exact bytes to send (as UTF-8 text); null for a request with no body. */
  body: string | null;
  /**
   * The messages this request carries. A message can need several requests
   * (Mailchimp: upsert the member, then tag it); it is delivered when all the
   * requests naming it succeed. Requests must be sent in the order given.
   */
  messageIds: string[];
}

export interface SkippedMessage {
  messageId: string;
  /** Why it cannot be sent to this type at all (no retry would help). */
  reason: string;
}

export interface FormatResult {
  requests: HttpRequest[];
  skipped: SkippedMessage[];
}

/** The person a privacy request deletes, with every identifier the profile holds. */
export interface PersonToDelete {
  /** Unique per privacy request; sent where the destination takes an id. */
  requestId: string;
  userId?: string | null;
  anonymousIds?: string[];
  emails?: string[];
}

export interface DeletionResult {
  requests: HttpRequest[];
  /** Set when the destination cannot delete this person through its API, and why. */
  unsupported?: string;
}

export interface FormatOptions {
  /** Epoch ms; stamps `sentAt` and signatures, passed in so output is reproducible. */
  now: number;
}

export const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

export const messageIdOf = (message: Record<string, unknown>): string => String(message.messageId ?? "");

/** Joins a configured base URL (with or without a trailing slash) and an API path. */
export const joinUrl = (base: string, path: string): string => base.replace(/\/+$/, "") + path;

/** Base64 of UTF-8 text; btoa alone only takes Latin-1. */
export function base64(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** HTTP Basic credentials, as `Authorization` carries them. */
export const basicAuth = (username: string, password: string): string => `Basic ${base64(`${username}:${password}`)}`;

export const byteLength = (text: string): number => new TextEncoder().encode(text).length;

export const JSON_CONTENT = { "Content-Type": "application/json" } as const;

/** An email from a message: an identify's own traits, then `context.traits` on any call. */
export function emailOf(message: Record<string, unknown>): string | undefined {
  const own = message.type === "identify" && isRecord(message.traits) ? message.traits.email : undefined;
  const context = isRecord(message.context) && isRecord(message.context.traits) ? message.context.traits.email : undefined;
  const email = typeof own === "string" && own.trim() !== "" ? own : context;
  return typeof email === "string" && email.trim() !== "" ? email.trim() : undefined;
}
