import type { QueuedEvent } from "../intake/envelope";

/**
 * Trait semantics, as pure functions. Each top-level trait is its own unit of
 * "last write wins": the write with the latest event `timestamp` wins, whatever
 * order events arrive in; equal timestamps are broken by the larger messageId,
 * so every replica and every replay picks the same winner. A nested object
 * (`address`) is replaced whole, as Segment does.
 */

export interface TraitWrite {
  key: string;
  /** JSON text of the value, so `null`, numbers and objects survive storage unchanged. */
  value: string;
  at: number;
  messageId: string;
  sourceId: string | null;
}

export type TraitState = Map<string, TraitWrite>;

/** True when `candidate` should replace `current`. */
export function wins(candidate: Pick<TraitWrite, "at" | "messageId">, current: Pick<TraitWrite, "at" | "messageId"> | undefined): boolean {
  if (!current) return true;
  return candidate.at > current.at || (candidate.at === current.at && candidate.messageId > current.messageId);
}

export function applyWrites(state: TraitState, writes: Iterable<TraitWrite>): TraitState {
  for (const write of writes) if (wins(write, state.get(write.key))) state.set(write.key, write);
  return state;
}

const asObject = (value: unknown): Record<string, unknown> | undefined =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;

/** The event's time for trait ordering: its corrected `timestamp`, else when we received it. */
export function eventTime(event: Pick<QueuedEvent, "timestamp" | "receivedAt">): number {
  const at = Date.parse(event.timestamp);
  return Number.isFinite(at) ? at : Date.parse(event.receivedAt) || 0;
}

/**
 * The user traits an event writes: `context.traits` on any event, and an
 * identify's own `traits`, which win over `context.traits` within the event.
 * A group call's `traits` describe the account, not the person.
 */
export function userTraitsOf(event: QueuedEvent): Record<string, unknown> {
  const context = asObject(asObject(event.context)?.traits) ?? {};
  const own = event.type === "identify" ? (asObject((event as Record<string, unknown>).traits) ?? {}) : {};
  return { ...context, ...own };
}

export function accountTraitsOf(event: QueuedEvent): Record<string, unknown> {
  return event.type === "group" ? (asObject((event as Record<string, unknown>).traits) ?? {}) : {};
}

export function groupIdOf(event: QueuedEvent): string | undefined {
  const groupId = (event as Record<string, unknown>).groupId;
  return event.type === "group" && (typeof groupId === "string" || typeof groupId === "number") && String(groupId) !== "" ? String(groupId) : undefined;
}

export function toWrites(traits: Record<string, unknown>, at: number, messageId: string, sourceId: string | null): TraitWrite[] {
  return Object.entries(traits)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => ({ key, value: JSON.stringify(value), at, messageId, sourceId }));
}

export function traitValues(state: Iterable<TraitWrite>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const write of state) out[write.key] = JSON.parse(write.value);
  return out;
}

export interface TraitMeta {
  updatedAt: string;
  messageId: string;
  sourceId: string | null;
}

export function traitMeta(state: Iterable<TraitWrite>): Record<string, TraitMeta> {
  const out: Record<string, TraitMeta> = {};
  for (const write of state) out[write.key] = { updatedAt: new Date(write.at).toISOString(), messageId: write.messageId, sourceId: write.sourceId };
  return out;
}

const text = (value: unknown): string | null => (typeof value === "string" && value.trim() !== "" ? value : typeof value === "number" ? String(value) : null);

/**
 * The typed columns of a profile row, from its traits and identifiers. Reserved
 * traits in either spelling Segment accepts (`first_name` / `firstName`); a
 * `name` alone is split at its first space.
 */
export function coreAttributes(traits: Record<string, unknown>, identifiers: { type: string; value: string; lastSeen: number }[]) {
  const latest = (type: string) =>
    identifiers
      .filter((i) => i.type === type)
      .sort((a, b) => b.lastSeen - a.lastSeen)[0]?.value ?? null;
  const name = text(traits.name);
  const [nameFirst, ...nameRest] = name ? name.trim().split(/\s+/) : [];
  return {
    userId: latest("user_id"),
    email: text(traits.email)?.trim().toLowerCase() ?? latest("email"),
    phone: latest("phone") ?? text(traits.phone),
    firstName: text(traits.first_name) ?? text(traits.firstName) ?? nameFirst ?? null,
    lastName: text(traits.last_name) ?? text(traits.lastName) ?? (nameRest.length ? nameRest.join(" ") : null),
  };
}
