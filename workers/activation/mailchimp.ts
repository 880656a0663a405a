import { type DestinationOf, mailchimpDataCenter } from "./destination";
import { subscriberHash } from "./md5";
import { basicAuth, type DeletionResult, emailOf, type FormatResult, type HttpRequest, isRecord, JSON_CONTENT, messageIdOf, type PersonToDelete, type SkippedMessage } from "./request";
import { personasOf } from "./routing";

/**
 * Mailchimp's Marketing API, for one audience (list). Members are addressed
 * by the MD5 of their lowercased email, so every message needs an email: an
 * identify's `traits.email`, else `context.traits.email` (activation messages
 * carry none of their own; the sender adds the profile's email there, as
 * Segment's Engage enriches payloads with the destination's required keys).
 *
 * - identify → `PUT …/members/{hash}`: an idempotent upsert, new members
 *   getting `statusIfNew`, mapped traits written to merge fields;
 * - an audience change (its identify or its Audience Entered / Exited track)
 *   → the same upsert, then `POST …/members/{hash}/tags` setting a tag named
 *   after the audience key `active` or `inactive`; the upsert first, because
 *   tagging someone who is not a member is a 404;
 * - other calls are not sent: Mailchimp stores members, not behaviour.
 *
 * The API key goes as the Basic auth password; Mailchimp ignores the user name.
 */

type Mailchimp = DestinationOf<"mailchimp">;

const DEFAULT_MERGE_FIELDS: Record<string, string> = { firstName: "FNAME", first_name: "FNAME", lastName: "LNAME", last_name: "LNAME", phone: "PHONE" };

const memberUrl = (destination: Mailchimp, hash: string) =>
  `https://${mailchimpDataCenter(destination.secrets.apiKey)}.api.mailchimp.com/3.0/lists/${encodeURIComponent(destination.settings.listId)}/members/${hash}`;

const headersFor = (destination: Mailchimp) => ({ ...JSON_CONTENT, Authorization: basicAuth("edge-cdp", destination.secrets.apiKey) });

/** Text merge fields take strings and numbers; null or "" clears one; lists and objects cannot be written to a single field. */
function mergeValue(value: unknown): string | number | undefined {
  if (value === null) return "";
  if (typeof value === "string" || typeof value === "number") return value;
  if (typeof value === "boolean") return String(value);
  return undefined;
}

export function mergeFields(destination: Mailchimp, traits: Record<string, unknown>): Record<string, string | number> {
  const mapping = { ...DEFAULT_MERGE_FIELDS, ...destination.settings.mergeFields };
  const out: Record<string, string | number> = {};
  for (const [trait, tag] of Object.entries(mapping)) {
    const value = mergeValue(traits[trait]);
    if (value !== undefined && out[tag] === undefined) out[tag] = value;
  }
  return out;
}

function upsert(destination: Mailchimp, email: string, traits: Record<string, unknown>, messageId: string): HttpRequest {
  const merge = mergeFields(destination, traits);
  const body = { email_address: email, status_if_new: destination.settings.statusIfNew, ...(Object.keys(merge).length ? { merge_fields: merge } : {}) };
  return { method: "PUT", url: memberUrl(destination, subscriberHash(email)), headers: headersFor(destination), body: JSON.stringify(body), messageIds: [messageId] };
}

/** Whether an audience message says the person entered: the identify's trait, else the track's property. */
function entered(message: Record<string, unknown>, key: string): boolean | undefined {
  const fields = message.type === "identify" ? message.traits : message.properties;
  const value = isRecord(fields) ? fields[key] : undefined;
  return typeof value === "boolean" ? value : undefined;
}

export function formatMailchimp(destination: Mailchimp, messages: Record<string, unknown>[]): FormatResult {
  const requests: HttpRequest[] = [];
  const skipped: SkippedMessage[] = [];
  // In "both" mode a change arrives as an identify and a track; one upsert and tag is enough.
  const tagged = new Map<string, string>();
  for (const message of messages) {
    const messageId = messageIdOf(message);
    const personas = personasOf(message);
    const audience = personas?.computation_class === "audience" ? personas : undefined;
    if (message.type !== "identify" && !(audience && message.type === "track")) {
      skipped.push({ messageId, reason: `Mailchimp receives identify calls and audience changes, not ${String(message.type)}` });
      continue;
    }
    const email = emailOf(message);
    if (!email) {
      skipped.push({ messageId, reason: "no email to find the Mailchimp member by" });
      continue;
    }
    const traits = message.type === "identify" && isRecord(message.traits) ? message.traits : {};
    if (!audience) {
      requests.push(upsert(destination, email, traits, messageId));
      continue;
    }
    const active = entered(message, audience.computation_key);
    if (active === undefined) {
      skipped.push({ messageId, reason: `audience change without a true or false ${audience.computation_key}` });
      continue;
    }
    const hash = subscriberHash(email);
    const key = `${hash} ${audience.computation_id} ${active}`;
    const first = tagged.get(key);
    if (first !== undefined) {
      skipped.push({ messageId, reason: `same audience change as ${first}` });
      continue;
    }
    tagged.set(key, messageId);
    requests.push(upsert(destination, email, traits, messageId));
    requests.push({
      method: "POST",
      url: `${memberUrl(destination, hash)}/tags`,
      headers: headersFor(destination),
      body: JSON.stringify({ tags: [{ name: audience.computation_key, status: active ? "active" : "inactive" }] }),
      messageIds: [messageId],
    });
  }
  return { requests, skipped };
}

/** Permanently deletes the member for each of the person's emails; Mailchimp will not re-add them by import afterwards. */
export function mailchimpDeletion(destination: Mailchimp, person: PersonToDelete): DeletionResult {
  const emails = [...new Set((person.emails ?? []).map((email) => email.trim().toLowerCase()).filter(Boolean))];
  if (emails.length === 0) return { requests: [], unsupported: "Mailchimp finds members by email, and the person has none" };
  const requests = emails.map(
    (email): HttpRequest => ({
      method: "POST",
      url: `${memberUrl(destination, subscriberHash(email))}/actions/delete-permanent`,
      headers: { Authorization: basicAuth("edge-cdp", destination.secrets.apiKey) },
      body: null,
      messageIds: [person.requestId],
    }),
  );
  return { requests };
}
