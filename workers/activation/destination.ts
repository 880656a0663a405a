import { z } from "zod";
import { eventFilterSchema } from "../segments/definition";

/**
 * A destination: where activation sends events and audience / computed-trait
 * changes, validated here, routed by routing.ts, formatted by formatters.ts.
 *
 * Types:
 * - `webhook`: JSON `{ batch, sentAt }` POSTed to `settings.url`, signed with
 *   `secrets.signingSecret` (see webhook.ts for how a receiver verifies it);
 * - `segment`: Segment's HTTP Tracking API, `POST {settings.url}/v1/batch` with
 *   the write key as Basic auth, to Segment itself or any compatible endpoint;
 * - `braze`: `POST {settings.instanceUrl}/users/track`, Bearer `secrets.apiKey`;
 * - `mailchimp`: audience members of `settings.listId`, by the subscriber hash
 *   of the email; the data center comes from the API key (`…-us6`).
 *
 * Secrets are write-only: accepted on create and update, kept by the store,
 * never shown again. `publicDestination` is what an API returns, and
 * `parseDestinationWrite` lets an update leave a secret out to keep it.
 */

export const DESTINATION_TYPES = ["webhook", "segment", "braze", "mailchimp"] as const;
export type DestinationType = (typeof DESTINATION_TYPES)[number];

/** The names Segment's `integrations` object knows these destinations by, checked after the destination's own name. */
export const CATALOG_NAMES: Record<DestinationType, string> = { webhook: "Webhooks", segment: "Segment", braze: "Braze", mailchimp: "Mailchimp" };

export const MAX_BATCH_SIZE = 500;

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * An absolute https URL. Plain http only on loopback, for a local endpoint in
 * development. Credentials in the URL are refused so they cannot end up in a
 * log line: they belong in `secrets`.
 */
function endpointSchema(options: { host?: RegExp; hostHint?: string } = {}) {
  return z
    .string()
    .max(2000)
    .superRefine((text, ctx) => {
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        ctx.addIssue({ code: "custom", message: "must be an absolute URL" });
        return;
      }
      const loopback = LOOPBACK.has(url.hostname);
      if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) ctx.addIssue({ code: "custom", message: "must use https (http only for localhost)" });
      if (url.username || url.password) ctx.addIssue({ code: "custom", message: "must not contain credentials; put them in secrets" });
      if (url.search || url.hash) ctx.addIssue({ code: "custom", message: "must not have a query string or fragment" });
      // The API key is sent to this host, so a typo or a hostile admin must not be able to point it elsewhere.
      if (options.host && !loopback && !options.host.test(url.hostname)) ctx.addIssue({ code: "custom", message: `must be ${options.hostHint}` });
    });
}

/**
 * A secret: marked writeOnly for OpenAPI, and never returned by publicDestination.
 * `.meta` comes last because zod keeps metadata on one schema instance only.
 */
const secret = (description: string, string: z.ZodString = z.string().min(1)) => string.max(1000).meta({ writeOnly: true, description });

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const RESERVED_HEADERS = new Set(["content-type", "content-length", "x-signature", "x-timestamp", "host"]);

const webhookSettings = z.strictObject({
  url: endpointSchema().describe("Where batches are POSTed."),
  headers: z
    .record(z.string(), z.string().max(2000))
    .superRefine((headers, ctx) => {
      const names = Object.keys(headers);
      if (names.length > 20) ctx.addIssue({ code: "custom", message: "at most 20 headers" });
      for (const name of names) {
        if (!HEADER_NAME.test(name)) ctx.addIssue({ code: "custom", path: [name], message: "must be a valid header name" });
        else if (RESERVED_HEADERS.has(name.toLowerCase())) ctx.addIssue({ code: "custom", path: [name], message: "is set by the sender and cannot be overridden" });
      }
    })
    .default({})
    .describe("Extra headers, sent as they are. Not secret: they are shown back."),
});

const segmentSettings = z.strictObject({
  url: endpointSchema().describe("The API base, without /v1: https://api.segment.io, https://events.eu1.segmentapis.com, or a compatible CDP."),
});

const brazeSettings = z.strictObject({
  instanceUrl: endpointSchema({ host: /^rest\.[a-z0-9-]+\.braze\.(com|eu)$/, hostHint: "a Braze REST endpoint, like https://rest.iad-01.braze.com" }).describe("Your Braze REST endpoint."),
  appId: z.string().min(1).max(200).optional().describe("Sent as `app_id` on events, to attribute them to an app."),
});

const MERGE_TAG = /^[A-Z0-9_]{1,10}$/;

const mailchimpSettings = z.strictObject({
  listId: z.string().regex(/^[a-zA-Z0-9]{1,40}$/, "must be a Mailchimp audience (list) id").describe("The Mailchimp audience id."),
  statusIfNew: z
    .enum(["subscribed", "pending", "transactional"])
    .default("pending")
    .describe("Status for a new member. `pending` (double opt-in) unless marketing consent is already recorded elsewhere."),
  mergeFields: z
    .record(z.string().min(1).max(200), z.string().regex(MERGE_TAG, "must be a Mailchimp merge tag: A–Z, 0–9 and _, at most 10"))
    .default({})
    .describe("Trait name → merge tag, added to the defaults (first_name/firstName → FNAME, last_name/lastName → LNAME, phone → PHONE)."),
});

const id = z.string().min(1).max(200);

export const subscriptionsSchema = z
  .strictObject({
    events: z
      .array(eventFilterSchema)
      .max(50)
      .default([])
      .describe("An event is sent when any filter matches it; `{}` matches every event; empty: no events. For identify and group, `where` reads `traits`."),
    audiences: z.array(id).max(500).default([]).describe("Audience (segment) ids whose entries and exits are sent."),
    computedTraits: z.array(id).max(500).default([]).describe("Computed trait ids whose new values are sent."),
  })
  .describe("What the destination receives.");

const uniqueStrings = (items: string[]) => new Set(items).size === items.length;

const common = {
  id,
  name: z.string().trim().min(1).max(100).describe("Also the key that turns it off or on in a message's `integrations` object."),
  enabled: z.boolean().default(true),
  batchSize: z.number().int().min(1).max(MAX_BATCH_SIZE).default(100).describe("Messages per delivery; a type may split further to meet its API's limits."),
  subscriptions: subscriptionsSchema.default({ events: [], audiences: [], computedTraits: [] }),
  consentCategories: z
    .array(z.string().trim().min(1).max(100))
    .max(50)
    .refine(uniqueStrings, "must not repeat a category")
    .default([])
    .describe("Consent categories the destination belongs to; every one must be true in a message's categoryPreferences. Empty: consent never blocks it."),
  audienceSync: z
    .strictObject({
      mode: z.enum(["identify", "track", "both"]).default("identify").describe("Send changes as identify (a trait), track (an event), or both."),
      traitComputedEvent: z.string().min(1).max(200).default("Trait Computed").describe("The track event name for computed-trait changes."),
    })
    .default({ mode: "identify", traitComputedEvent: "Trait Computed" }),
};

export const destinationSchema = z
  .discriminatedUnion("type", [
    z.strictObject({ ...common, type: z.literal("webhook"), settings: webhookSettings, secrets: z.strictObject({ signingSecret: secret("HMAC-SHA256 key for X-Signature; at least 16 characters.", z.string().min(16)) }) }),
    z.strictObject({ ...common, type: z.literal("segment"), settings: segmentSettings, secrets: z.strictObject({ writeKey: secret("The target source's write key.") }) }),
    z.strictObject({ ...common, type: z.literal("braze"), settings: brazeSettings, secrets: z.strictObject({ apiKey: secret("A REST API key with users.track and users.delete.") }) }),
    z.strictObject({
      ...common,
      type: z.literal("mailchimp"),
      settings: mailchimpSettings,
      secrets: z.strictObject({
        apiKey: secret("A Marketing API key; its suffix (…-us6) names the data center.", z.string().regex(/-[a-z]+\d+$/, "must end with the data center, like -us6")),
      }),
    }),
  ])
  .describe("A destination for activation.");

export type Destination = z.infer<typeof destinationSchema>;
export type DestinationInput = z.input<typeof destinationSchema>;
export type DestinationOf<T extends DestinationType> = Extract<Destination, { type: T }>;

/** What an API shows: the configuration with the secrets' values replaced by the names of those that are set. */
export type PublicDestination = Omit<Destination, "secrets"> & { secretsSet: string[] };

export function publicDestination(destination: Destination): PublicDestination {
  const { secrets, ...rest } = destination;
  return { ...rest, secretsSet: Object.keys(secrets).sort() };
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Validates a create or a full update. A secret left out of `secrets` keeps the
 * stored value, so an admin can edit a destination without knowing its keys;
 * a new type starts with no secrets, so a type change must supply them all.
 */
export function parseDestinationWrite(input: unknown, stored?: Destination) {
  if (!isRecord(input) || !stored || input.type !== stored.type) return destinationSchema.safeParse(input);
  const secrets = isRecord(input.secrets) ? input.secrets : {};
  return destinationSchema.safeParse({ ...input, secrets: { ...stored.secrets, ...secrets } });
}

/** The Mailchimp data center, from the API key's suffix (`…-us6` → `us6`); the schema ensures there is one. */
export function mailchimpDataCenter(apiKey: string): string {
  return /-([a-z]+\d+)$/.exec(apiKey)?.[1] ?? "";
}
