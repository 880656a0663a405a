import type { QueuedEvent } from "../intake/envelope";

/**
 * What the events consumer hands deduplicated events to, after they are
 * archived. Processors must be idempotent per messageId: a queue redelivery
 * hands the same events over again.
 */
export interface EventProcessor {
  readonly name: string;
  /** `sources` maps each event's messageId to the source that sent it. */
  process(workspaceId: string, events: QueuedEvent[], sources: Record<string, string>): Promise<void>;
}
