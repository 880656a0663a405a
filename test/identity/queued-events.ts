import type { QueuedEvent } from "../../workers/intake/envelope";

/**
 * Queued events as the events consumer hands them to the identity object:
 * messageIds `{prefix}-1`, `{prefix}-2`… and timestamps a second apart, so
 * each test file's events are its own and in order.
 */
export function queuedEvents(prefix: string) {
  let n = 0;
  return (fields: Partial<QueuedEvent> & Record<string, unknown>): QueuedEvent => {
    n += 1;
    return {
      type: "identify",
      messageId: `${prefix}-${n}`,
      receivedAt: "2026-11-22T10:00:00.000Z",
      timestamp: new Date(Date.UTC(2026, 10, 22, 10, 0, n)).toISOString(),
      context: {},
      integrations: {},
      ...fields,
    };
  };
}
