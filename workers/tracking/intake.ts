import type { Context } from "hono";
import type { AppEnv } from "../context";
import { resolveWriteKey, type SourceAuth } from "../config/keys-store";
import { publishEvents } from "../intake/publish";
import type { EventEnvelope } from "../intake/envelope";
import { credentialFromHeader } from "../lib/credentials";
import { errorFields } from "../lib/logger";
import { ApiError } from "../lib/problem";
import { enrich, requestFacts } from "./enrich";
import { gateAtCollection } from "./gate";
import type { CdpEvent } from "./normalize";

type Ctx = Context<AppEnv>;

/** The write key comes from Basic auth (username, empty password) or from `writeKey` in the body. */
export async function authenticateSource(c: Ctx, body: unknown): Promise<SourceAuth> {
  const bodyKey = typeof body === "object" && body !== null ? (body as { writeKey?: unknown }).writeKey : undefined;
  const writeKey = credentialFromHeader(c.req.header("authorization")) ?? (typeof bodyKey === "string" ? bodyKey : undefined);
  if (!writeKey) {
    throw new ApiError("UNAUTHORIZED", "no write key: send it as the HTTP Basic username with an empty password, or as writeKey in the body", {
      headers: { "www-authenticate": 'Basic realm="tracking"' },
    });
  }
  const source = await resolveWriteKey(c.get("db"), writeKey);
  if (!source) throw new ApiError("UNAUTHORIZED", "the write key is not valid or has been revoked");
  c.set("logger", c.get("logger").child({ workspaceId: source.workspaceId, sourceId: source.sourceId }));
  return source;
}

/** Fixed-window limit per source from the rate-limiting binding; the window is 10 s, so that is the wait. */
export const RATE_LIMIT_WINDOW_SECONDS = 10;

export async function enforceSourceRateLimit(c: Ctx, source: SourceAuth): Promise<void> {
  const { success } = await c.env.SOURCE_RATE_LIMITER.limit({ key: source.sourceId });
  if (!success) {
    throw new ApiError("RATE_LIMITED", `source ${source.sourceId} is over its request rate limit (the SOURCE_RATE_LIMITER binding); retry after ${RATE_LIMIT_WINDOW_SECONDS} s`, {
      headers: { "retry-after": String(RATE_LIMIT_WINDOW_SECONDS) },
    });
  }
}

/**
 * Drops what collection refuses (gate.ts), then enriches and enqueues the
 * rest, which it returns. Only after the queue acknowledged the send does the
 * caller answer 200; a refused send is a 503 the SDKs retry.
 */
export async function acceptEvents(c: Ctx, source: SourceAuth, events: CdpEvent[]): Promise<CdpEvent[]> {
  const { kept, suppressionsAsOf } = await gateAtCollection(c, source, events);
  if (kept.length === 0) return kept;
  const facts = requestFacts(c.req.raw);
  for (const event of kept) enrich(event, facts);
  try {
    await publishEvents(c.env.EVENTS_QUEUE as Queue<EventEnvelope>, source.workspaceId, source.sourceId, kept, suppressionsAsOf);
  } catch (error) {
    c.get("logger").error("events queue refused the send", { ...errorFields(error), events: kept.length });
    throw new ApiError("UNAVAILABLE", "the event could not be stored durably right now; nothing was accepted, retry the request", {
      headers: { "retry-after": "5" },
    });
  }
  return kept;
}

/** The write key authenticates; it is never stored with the event. */
export function withoutWriteKey(body: unknown): unknown {
  if (typeof body !== "object" || body === null || !("writeKey" in body)) return body;
  const { writeKey: _secret, ...rest } = body as Record<string, unknown>;
  return rest;
}
