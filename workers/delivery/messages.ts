import { z } from "zod";

/**
 * What travels on the activation queue, parsed with zod on the way out, never
 * trusted: an audience or computed-trait change from an identity object (to be
 * fanned out to the destinations subscribed to it), or a batch of messages for
 * one destination (to be delivered).
 */

const messageSchema = z.looseObject({ messageId: z.string().min(1), type: z.string() });

export const audienceChangeSchema = z.object({
  v: z.literal(1),
  workspaceId: z.string().min(1),
  profileId: z.string().min(1),
  audienceId: z.string().min(1),
  messages: z.array(messageSchema).min(1),
});

export const deliverySchema = z.object({
  v: z.literal(1),
  kind: z.literal("deliver"),
  deliveryId: z.string().min(1),
  workspaceId: z.string().min(1),
  destinationId: z.string().min(1),
  messages: z.array(messageSchema).min(1),
  /** Profiles the messages are about: the delivery log's record of who received whose data. */
  profileIds: z.array(z.string()),
  /** The attempt this message asks for, from 1. */
  attempt: z.number().int().min(1),
  /** When the first attempt was made: the retry budget runs from it. Null before any. */
  firstAttemptAt: z.number().nullable(),
});

export const activationMessageSchema = z.union([deliverySchema, audienceChangeSchema]);
export type Delivery = z.infer<typeof deliverySchema>;
export type AudienceChangeMessage = z.infer<typeof audienceChangeSchema>;
