import type { QueuedEvent } from "../intake/envelope";
import { eventTime } from "./traits";

/** How long the Profile API's `/events` keeps an event, counted from its timestamp. Documented in docs/profiles.md. */
export const EVENT_RETENTION_DAYS = 90;

/** An event as the Profile API returns it: Segment's snake_case envelope, without `integrations`. */
export interface EventRecord {
  type: QueuedEvent["type"];
  message_id: string;
  source_id: string | null;
  timestamp: string;
  received_at: string;
  event?: string;
  name?: string;
  category?: string;
  properties?: Record<string, unknown>;
  traits?: Record<string, unknown>;
  user_id?: string;
  anonymous_id?: string;
  group_id?: string;
  previous_id?: string;
  context: Record<string, unknown>;
}

const FIELDS: [keyof EventRecord, string][] = [
  ["event", "event"],
  ["name", "name"],
  ["category", "category"],
  ["properties", "properties"],
  ["traits", "traits"],
  ["user_id", "userId"],
  ["anonymous_id", "anonymousId"],
  ["group_id", "groupId"],
  ["previous_id", "previousId"],
];

export function eventRecord(event: QueuedEvent, sourceId: string | null): EventRecord {
  const record: EventRecord = {
    type: event.type,
    message_id: event.messageId,
    source_id: sourceId,
    timestamp: new Date(eventTime(event)).toISOString(),
    received_at: event.receivedAt,
    context: event.context,
  };
  const raw = event as Record<string, unknown>;
  for (const [to, from] of FIELDS) if (raw[from] !== undefined && raw[from] !== null) (record as unknown as Record<string, unknown>)[to] = raw[from];
  return record;
}

/** The name an `include` / `exclude` filter matches: the event name of a track, the page or screen name otherwise. */
export const eventName = (record: Pick<EventRecord, "type" | "event" | "name">): string | null => record.event ?? record.name ?? null;
