import { chunk } from "../lib/chunks";
import { ISO_DATE } from "../segments/definition";
import type { DestinationOf } from "./destination";
import { type DeletionResult, type FormatResult, type HttpRequest, isRecord, joinUrl, JSON_CONTENT, messageIdOf, type PersonToDelete, type SkippedMessage } from "./request";

/**
 * Braze's REST API, as Segment's Braze destination maps to it:
 *
 * - identify → an attributes object: reserved traits renamed to Braze's
 *   standard attributes (below), every other trait a custom attribute;
 * - track (including `Audience Entered` / `Trait Computed`) → an event
 *   `{ name, time, properties }`;
 * - group → the custom attribute `ab_segment_group_<groupId>: true`;
 * - page, screen and alias are not sent (skipped with a reason).
 *
 * A person is named by `external_id` (the userId) or, when anonymous, by the
 * alias `{ alias_name: anonymousId, alias_label: "anonymous_id" }`. Braze only
 * creates an alias-only profile from an attributes object with
 * `_update_existing_only: false`, so an anonymous event brings one along.
 *
 * `/users/track` takes at most 75 attributes objects and 75 events per request,
 * and `/users/delete` at most 50 identifiers, so batches are split to fit.
 */

export const BRAZE_TRACK_LIMIT = 75;
export const BRAZE_DELETE_LIMIT = 50;
export const ANONYMOUS_ALIAS_LABEL = "anonymous_id";

type Braze = DestinationOf<"braze">;
type Identifier = { external_id: string } | { user_alias: { alias_name: string; alias_label: string } };

function identifierOf(message: Record<string, unknown>): Identifier | undefined {
  const { userId, anonymousId } = message;
  if (typeof userId === "string" && userId !== "") return { external_id: userId };
  if (typeof anonymousId === "string" && anonymousId !== "") return { user_alias: { alias_name: anonymousId, alias_label: ANONYMOUS_ALIAS_LABEL } };
  return undefined;
}

const GENDERS: Record<string, string> = { m: "M", male: "M", man: "M", f: "F", female: "F", woman: "F", o: "O", other: "O", n: "N", "not applicable": "N", p: "P", "prefer not to say": "P" };

/** Trait → standard attribute. Values Braze would reject (an unknown gender, a malformed date) are left out, not sent. */
const STANDARD: [string[], string, (value: unknown) => unknown][] = [
  [["email"], "email", (v) => v],
  [["firstName", "first_name"], "first_name", (v) => v],
  [["lastName", "last_name"], "last_name", (v) => v],
  [["phone"], "phone", (v) => v],
  [["gender"], "gender", (v) => (typeof v === "string" ? GENDERS[v.trim().toLowerCase()] : v === null ? null : undefined)],
  [["birthday"], "dob", (v) => (typeof v === "string" && ISO_DATE.test(v) ? v.slice(0, 10) : v === null ? null : undefined)],
  [["avatar"], "image_url", (v) => v],
];

export function brazeAttributes(traits: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const used = new Set<string>();
  for (const [names, attribute, convert] of STANDARD) {
    const name = names.find((candidate) => traits[candidate] !== undefined);
    if (name === undefined) continue;
    names.forEach((each) => used.add(each));
    const value = convert(traits[name]);
    if (value !== undefined) out[attribute] = value;
  }
  if (isRecord(traits.address)) {
    used.add("address");
    if (typeof traits.address.city === "string") out.home_city = traits.address.city;
    if (typeof traits.address.country === "string") out.country = traits.address.country;
  }
  for (const [key, value] of Object.entries(traits)) if (!used.has(key) && value !== undefined) out[key] = value;
  return out;
}

interface Item {
  messageId: string;
  attributes: Record<string, unknown>[];
  events: Record<string, unknown>[];
}

function itemFor(destination: Braze, message: Record<string, unknown>): Item | SkippedMessage {
  const messageId = messageIdOf(message);
  const identifier = identifierOf(message);
  if (!identifier) return { messageId, reason: "no userId or anonymousId to name the Braze user" };
  const creates = "user_alias" in identifier ? { _update_existing_only: false } : {};
  switch (message.type) {
    case "identify":
      return { messageId, attributes: [{ ...identifier, ...creates, ...brazeAttributes(isRecord(message.traits) ? message.traits : {}) }], events: [] };
    case "group": {
      const groupId = message.groupId;
      if ((typeof groupId !== "string" && typeof groupId !== "number") || String(groupId) === "") return { messageId, reason: "group call without a groupId" };
      return { messageId, attributes: [{ ...identifier, ...creates, [`ab_segment_group_${groupId}`]: true }], events: [] };
    }
    case "track": {
      if (typeof message.event !== "string" || message.event === "") return { messageId, reason: "track call without an event name" };
      const event: Record<string, unknown> = { ...identifier, name: message.event, time: message.timestamp };
      if (destination.settings.appId) event.app_id = destination.settings.appId;
      if (isRecord(message.properties) && Object.keys(message.properties).length > 0) event.properties = message.properties;
      return { messageId, attributes: "user_alias" in identifier ? [{ ...identifier, ...creates }] : [], events: [event] };
    }
    default:
      return { messageId, reason: `Braze receives identify, track and group calls, not ${String(message.type)}` };
  }
}

const headersFor = (destination: Braze) => ({ ...JSON_CONTENT, Authorization: `Bearer ${destination.secrets.apiKey}` });

function request(destination: Braze, items: Item[]): HttpRequest {
  const attributes = items.flatMap((item) => item.attributes);
  const events = items.flatMap((item) => item.events);
  const body = { ...(attributes.length ? { attributes } : {}), ...(events.length ? { events } : {}) };
  return { method: "POST", url: joinUrl(destination.settings.instanceUrl, "/users/track"), headers: headersFor(destination), body: JSON.stringify(body), messageIds: items.map((item) => item.messageId) };
}

export function formatBraze(destination: Braze, messages: Record<string, unknown>[]): FormatResult {
  const requests: HttpRequest[] = [];
  const skipped: SkippedMessage[] = [];
  let current: Item[] = [];
  let counts = { attributes: 0, events: 0 };
  for (const message of messages) {
    const item = itemFor(destination, message);
    if (!("attributes" in item)) {
      skipped.push(item);
      continue;
    }
    if (counts.attributes + item.attributes.length > BRAZE_TRACK_LIMIT || counts.events + item.events.length > BRAZE_TRACK_LIMIT) {
      requests.push(request(destination, current));
      current = [];
      counts = { attributes: 0, events: 0 };
    }
    current.push(item);
    counts.attributes += item.attributes.length;
    counts.events += item.events.length;
  }
  if (current.length) requests.push(request(destination, current));
  return { requests, skipped };
}

/** `POST /users/delete` by external id and anonymous alias; Braze deletes every profile they name. */
export function brazeDeletion(destination: Braze, person: PersonToDelete): DeletionResult {
  const identifiers: Identifier[] = [
    ...(person.userId ? [{ external_id: person.userId }] : []),
    ...(person.anonymousIds ?? []).map((alias_name) => ({ user_alias: { alias_name, alias_label: ANONYMOUS_ALIAS_LABEL } })),
  ];
  if (identifiers.length === 0) return { requests: [], unsupported: "the person has no userId or anonymousId Braze knows them by" };
  const requests = chunk(identifiers, BRAZE_DELETE_LIMIT).map((part): HttpRequest => {
    const external_ids = part.flatMap((id) => ("external_id" in id ? [id.external_id] : []));
    const user_aliases = part.flatMap((id) => ("user_alias" in id ? [id.user_alias] : []));
    const body = { ...(external_ids.length ? { external_ids } : {}), ...(user_aliases.length ? { user_aliases } : {}) };
    return { method: "POST", url: joinUrl(destination.settings.instanceUrl, "/users/delete"), headers: headersFor(destination), body: JSON.stringify(body), messageIds: [person.requestId] };
  });
  return { requests };
}
