import type { QueuedEvent } from "../../workers/intake/envelope";
import { type Destination, type DestinationOf, destinationSchema, type DestinationType } from "../../workers/activation/destination";
import { activationEnvelope, type AudienceChange } from "../../workers/segments/activation";

/** "Now" in every scenario. */
export const NOW = Date.UTC(2026, 10, 22, 10, 0, 0);

export const SIGNING_SECRET = "whsec_0123456789abcdef";

const BASE: Record<DestinationType, Record<string, unknown>> = {
  webhook: { settings: { url: "https://hooks.example.com/cdp" }, secrets: { signingSecret: SIGNING_SECRET } },
  segment: { settings: { url: "https://api.segment.io" }, secrets: { writeKey: "wk_target" } },
  braze: { settings: { instanceUrl: "https://rest.iad-01.braze.com" }, secrets: { apiKey: "braze-key" } },
  mailchimp: { settings: { listId: "abc123" }, secrets: { apiKey: "0123456789abcdef0123456789abcdef-us6" } },
};

/** A valid destination of a type, parsed as the admin API would, with every event subscribed unless told otherwise. */
export function destination<T extends DestinationType>(type: T, fields: Record<string, unknown> = {}): DestinationOf<T> {
  return destinationSchema.parse({
    id: `dest_${type}`,
    name: `My ${type}`,
    type,
    subscriptions: { events: [{}] },
    ...BASE[type],
    ...fields,
  }) as DestinationOf<T>;
}

export type AnyDestination = Destination;

/** An event as it leaves intake. */
export const event = (fields: Record<string, unknown> = {}): QueuedEvent =>
  ({
    type: "track",
    event: "Order Completed",
    messageId: "m-1",
    userId: "u1",
    receivedAt: "2026-11-22T09:59:59.000Z",
    timestamp: "2026-11-22T09:59:58.000Z",
    properties: { revenue: 42.5 },
    context: {},
    integrations: {},
    ...fields,
  }) as QueuedEvent;

/** Consent as analytics.js's consent wrapper sends it. */
export const consent = (categoryPreferences: Record<string, boolean>) => ({ consent: { categoryPreferences } });

export const audienceChange = (entered: boolean, fields: Partial<AudienceChange> = {}) =>
  activationEnvelope(
    "ws_1",
    { audience: { id: "aud_vip", key: "vip_customers", kind: "segment" }, profileId: "prof_1", at: NOW, seq: 7, entered, ...fields },
    { userId: "u1", anonymousId: "anon-1" },
  );

export const computedTraitChange = (value: unknown) =>
  activationEnvelope("ws_1", { audience: { id: "ct_ltv", key: "lifetime_value", kind: "computed_trait" }, profileId: "prof_1", at: NOW, seq: 8, value }, { userId: "u1", anonymousId: null });

/** A message's body as an object. */
export const bodyOf = (request: { body: string | null }): Record<string, unknown> => JSON.parse(request.body ?? "null") as Record<string, unknown>;
