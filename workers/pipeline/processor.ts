import type { QueuedEvent } from "../intake/envelope";

/**
 * What the events consumer hands deduplicated events to, after they are
 * archived. Processors must be idempotent per messageId: a queue redelivery
 * hands the same events over again.
 */
export interface EventProcessor {
  readonly name: string;
  process(workspaceId: string, events: QueuedEvent[], batch: BatchContext): Promise<void>;
}

/** What processors of one batch share: filled by earlier processors, read by later ones. */
export interface BatchContext {
  /** Each event's messageId → the source that sent it. */
  sources: Record<string, string>;
  /** Each event's messageId → the profile identity resolution put it in. */
  profiles: Map<string, string>;
}
