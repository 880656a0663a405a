import { z } from "zod";

/**
 * Segment's message spec as zod schemas. Custom traits and properties pass
 * through untouched; reserved ones are type-checked so that a profile never
 * stores an `email` that is a number. Unknown top-level fields are dropped.
 */

const timestamp = z
  .union([z.string(), z.number()])
  .refine((value) => !Number.isNaN(new Date(value).getTime()), { message: "must be an ISO-8601 date-time" })
  .transform((value) => new Date(value).toISOString());

/** Segment ids are strings; numeric ids are accepted and stringified, as Segment does. */
const id = z
  .union([z.string(), z.number().transform(String)])
  .refine((value) => value.trim().length > 0, { message: "must not be empty" })
  .refine((value) => value.length <= 1024, { message: "must be at most 1024 characters" });

const record = z.record(z.string(), z.unknown());

const address = z.looseObject({
  city: z.string().optional(),
  country: z.string().optional(),
  postalCode: z.union([z.string(), z.number()]).optional(),
  state: z.string().optional(),
  street: z.string().optional(),
});

export const reservedTraits = z.looseObject({
  address: address.optional(),
  age: z.number().optional(),
  avatar: z.string().optional(),
  birthday: z.string().optional(),
  company: record.optional(),
  createdAt: z.union([z.string(), z.number()]).optional(),
  description: z.string().optional(),
  email: z.string().optional(),
  firstName: z.string().optional(),
  gender: z.string().optional(),
  id: z.union([z.string(), z.number()]).optional(),
  lastName: z.string().optional(),
  name: z.string().optional(),
  phone: z.union([z.string(), z.number()]).optional(),
  title: z.string().optional(),
  username: z.string().optional(),
  website: z.string().optional(),
});

export const reservedProperties = z.looseObject({
  revenue: z.number().optional(),
  currency: z.string().optional(),
  value: z.number().optional(),
});

const pageProperties = reservedProperties.extend({
  name: z.string().optional(),
  path: z.string().optional(),
  referrer: z.string().optional(),
  search: z.string().optional(),
  title: z.string().optional(),
  url: z.string().optional(),
  keywords: z.array(z.string()).optional(),
});

export const consentSchema = z.looseObject({
  categoryPreferences: z.record(z.string(), z.boolean({ message: "must be true or false" })).optional(),
});

export const contextSchema = z.looseObject({
  active: z.boolean().optional(),
  ip: z.string().optional(),
  locale: z.string().optional(),
  timezone: z.string().optional(),
  userAgent: z.string().optional(),
  groupId: z.string().optional(),
  library: z.looseObject({ name: z.string().optional(), version: z.string().optional() }).optional(),
  traits: reservedTraits.optional(),
  consent: consentSchema.optional(),
  externalIds: z
    .array(
      z.looseObject({
        id: id,
        type: z.string().min(1),
        collection: z.string().optional(),
        encoding: z.string().optional(),
      }),
    )
    .optional(),
  app: record.optional(),
  campaign: record.optional(),
  device: record.optional(),
  location: record.optional(),
  network: record.optional(),
  os: record.optional(),
  page: record.optional(),
  referrer: record.optional(),
  screen: record.optional(),
});

const common = {
  messageId: z.string().min(1).max(512).optional(),
  userId: id.optional(),
  anonymousId: id.optional(),
  timestamp: timestamp.optional(),
  sentAt: timestamp.optional(),
  originalTimestamp: timestamp.optional(),
  context: contextSchema.optional(),
  integrations: record.optional(),
  version: z.union([z.number(), z.string()]).optional(),
};

const identified = <T extends z.ZodRawShape>(shape: T) => z.object({ ...common, ...shape });

export const identifySchema = identified({ type: z.literal("identify"), traits: reservedTraits.optional() });
export const trackSchema = identified({
  type: z.literal("track"),
  event: z.string({ message: "is required for track" }).min(1, "must not be empty").max(512),
  properties: reservedProperties.optional(),
});
export const pageSchema = identified({
  type: z.literal("page"),
  name: z.string().optional(),
  category: z.string().optional(),
  properties: pageProperties.optional(),
});
export const screenSchema = identified({
  type: z.literal("screen"),
  name: z.string().optional(),
  category: z.string().optional(),
  properties: reservedProperties.optional(),
});
export const groupSchema = identified({
  type: z.literal("group"),
  groupId: id,
  traits: reservedTraits.optional(),
});
export const aliasSchema = identified({
  type: z.literal("alias"),
  userId: id,
  previousId: id,
});

export const MESSAGE_TYPES = ["identify", "track", "page", "screen", "group", "alias"] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

const schemas = {
  identify: identifySchema,
  track: trackSchema,
  page: pageSchema,
  screen: screenSchema,
  group: groupSchema,
  alias: aliasSchema,
} as const;

/** Every message but alias (which needs userId itself) must carry userId or anonymousId. */
export const MISSING_IDENTITY = { path: ["userId"], message: "userId or anonymousId is required" } as const;
export function lacksIdentity(message: { type?: unknown; userId?: unknown; anonymousId?: unknown }): boolean {
  return message.type !== "alias" && (message.userId === undefined || message.userId === null) && (message.anonymousId === undefined || message.anonymousId === null);
}

export const messageSchema = z
  .discriminatedUnion("type", [identifySchema, trackSchema, pageSchema, screenSchema, groupSchema, aliasSchema])
  .superRefine((message, ctx) => {
    if (lacksIdentity(message)) ctx.addIssue({ code: "custom", ...MISSING_IDENTITY, path: [...MISSING_IDENTITY.path] });
  });

export type IncomingMessage = z.infer<typeof messageSchema>;

export const schemaFor = (type: MessageType) => schemas[type];

/** The batch envelope. Items are validated one by one so that one bad item does not sink the rest. */
export const batchEnvelopeSchema = z.looseObject({
  batch: z.array(z.unknown(), { message: "batch must be an array of messages" }),
  context: record.optional(),
  integrations: record.optional(),
  sentAt: timestamp.optional(),
  writeKey: z.string().optional(),
});
