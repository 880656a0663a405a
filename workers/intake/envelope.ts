import { z } from "zod";

/**
 * The body of a message on the events queue: a chunk of accepted events from
 * one request. Parsed with zod on the consumer side, never trusted.
 */
export const queuedEventSchema = z.looseObject({
  type: z.enum(["identify", "track", "page", "screen", "group", "alias"]),
  messageId: z.string().min(1),
  receivedAt: z.string(),
  timestamp: z.string(),
  userId: z.string().optional(),
  anonymousId: z.string().optional(),
  previousId: z.string().optional(),
  context: z.record(z.string(), z.unknown()),
  integrations: z.record(z.string(), z.unknown()),
});
export type QueuedEvent = z.infer<typeof queuedEventSchema>;

export const eventEnvelopeSchema = z.object({
  v: z.literal(1),
  workspaceId: z.string().min(1),
  sourceId: z.string().min(1),
  events: z.array(queuedEventSchema).min(1),
  /**
   * Epoch ms: intake checked these events against every suppression created
   * before then, so the consumer need only look for newer ones. Absent: it
   * checks them all.
   */
  suppressionsAsOf: z.number().optional(),
});
export type EventEnvelope = z.infer<typeof eventEnvelopeSchema>;
