import type { z } from "zod";
import { type FieldError, fieldErrors } from "../lib/problem";
import { describeLimit, LIMITS } from "./limits";
import { type IncomingMessage, lacksIdentity, MISSING_IDENTITY, type MessageType, messageSchema } from "./schema";

/** An accepted message as it travels through the pipeline: validated, timed, identified. */
export type CdpEvent = IncomingMessage & {
  messageId: string;
  timestamp: string;
  receivedAt: string;
  context: Record<string, unknown>;
  integrations: Record<string, unknown>;
};

export interface BatchDefaults {
  context?: Record<string, unknown>;
  integrations?: Record<string, unknown>;
  sentAt?: string;
}

export type NormalizeResult = { ok: true; event: CdpEvent } | { ok: false; errors: FieldError[] };

const encoder = new TextEncoder();

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Deep merge where `own` wins: the message's own context overrides the batch's. */
export function mergeDefaults(base: Record<string, unknown> | undefined, own: unknown): Record<string, unknown> {
  if (!base) return isPlainObject(own) ? own : {};
  if (!isPlainObject(own)) return { ...base };
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(own)) {
    const existing = merged[key];
    merged[key] = isPlainObject(existing) && isPlainObject(value) ? mergeDefaults(existing, value) : value;
  }
  return merged;
}

/**
 * Segment's clock-skew correction: a device clock that is off shifts `sentAt`
 * and `originalTimestamp` alike, so the gap between them is trusted and anchored
 * to our own `receivedAt`.
 */
export function correctTimestamp(receivedAt: Date, originalTimestamp?: string, sentAt?: string): string {
  if (!originalTimestamp) return receivedAt.toISOString();
  if (!sentAt) return originalTimestamp;
  const skewed = receivedAt.getTime() - (Date.parse(sentAt) - Date.parse(originalTimestamp));
  return new Date(skewed).toISOString();
}

export function messageBytes(raw: unknown): number {
  return encoder.encode(JSON.stringify(raw)).byteLength;
}

/**
 * Validates and normalizes one message. `impliedType` is the endpoint's type
 * (`/v1/track` implies `track`); in a batch each item names its own.
 */
export function normalizeMessage(
  raw: unknown,
  options: { impliedType?: MessageType; defaults?: BatchDefaults; receivedAt: Date; byteLength?: number },
): NormalizeResult {
  if (!isPlainObject(raw)) return { ok: false, errors: [{ path: "(root)", message: "message must be a JSON object" }] };
  const bytes = options.byteLength ?? messageBytes(raw);
  if (bytes > LIMITS.messageBytes) {
    return { ok: false, errors: [{ path: "(root)", message: `message is ${bytes} bytes, over ${describeLimit.messageBytes}` }] };
  }
  const candidate: Record<string, unknown> = { ...raw };
  if (options.impliedType) candidate.type = options.impliedType;
  if (options.defaults?.context) candidate.context = mergeDefaults(options.defaults.context, raw.context);
  if (options.defaults?.integrations) candidate.integrations = mergeDefaults(options.defaults.integrations, raw.integrations);

  const parsed = messageSchema.safeParse(candidate);
  if (!parsed.success) {
    // Refinements do not run once the shape has failed, so the identity rule is checked here too.
    const errors = fieldErrors(unionAwareIssues(parsed.error));
    if (lacksIdentity(candidate) && !errors.some((e) => e.path === "userId")) errors.push({ path: "userId", message: MISSING_IDENTITY.message });
    return { ok: false, errors };
  }

  const message = parsed.data;
  const originalTimestamp = message.originalTimestamp ?? message.timestamp;
  const sentAt = message.sentAt ?? options.defaults?.sentAt;
  const event: CdpEvent = {
    ...message,
    messageId: message.messageId ?? `cdp-${crypto.randomUUID()}`,
    receivedAt: options.receivedAt.toISOString(),
    timestamp: correctTimestamp(options.receivedAt, originalTimestamp, sentAt),
    context: (message.context ?? {}) as Record<string, unknown>,
    integrations: message.integrations ?? {},
  };
  if (originalTimestamp) event.originalTimestamp = originalTimestamp;
  if (sentAt) event.sentAt = sentAt;
  return { ok: true, event };
}

/** A message with an unknown `type` should say so plainly rather than list every union branch. */
function unionAwareIssues(error: z.ZodError) {
  return error.issues.map((issue) =>
    issue.code === "invalid_union" && issue.path.length === 1 && issue.path[0] === "type"
      ? { ...issue, message: "type must be one of identify, track, page, screen, group, alias" }
      : issue,
  );
}
