import { chunk } from "../lib/chunks";
import { LIMITS } from "../tracking/limits";
import { brazeDeletion, formatBraze } from "./braze";
import type { Destination, DestinationOf } from "./destination";
import { formatMailchimp, mailchimpDeletion } from "./mailchimp";
import {
  basicAuth,
  byteLength,
  type DeletionResult,
  type FormatOptions,
  type FormatResult,
  type HttpRequest,
  JSON_CONTENT,
  joinUrl,
  messageIdOf,
  type PersonToDelete,
  type SkippedMessage,
} from "./request";
import { SIGNATURE_HEADER, signatureFor, TIMESTAMP_HEADER } from "./webhook";

/**
 * Turns routed messages (events after intake, activation messages) into the
 * exact HTTP requests each destination type expects, and a privacy request
 * into its deletion requests. Nothing is sent here; see request.ts for the
 * shapes, braze.ts and mailchimp.ts for those APIs, webhook.ts for signatures.
 */

export type { DeletionResult, FormatOptions, FormatResult, HttpRequest, PersonToDelete, SkippedMessage } from "./request";

type Message = Record<string, unknown>;

/** The formatted requests for one batch; split further where the type's API has smaller limits. */
export async function formatBatch(destination: Destination, messages: Message[], options: FormatOptions): Promise<FormatResult> {
  switch (destination.type) {
    case "webhook":
      return formatWebhook(destination, messages, options);
    case "segment":
      return formatSegment(destination, messages);
    case "braze":
      return formatBraze(destination, messages);
    case "mailchimp":
      return formatMailchimp(destination, messages);
  }
}

/** The requests that delete a person at the destination, or why its API cannot. */
export async function formatDeletion(destination: Destination, person: PersonToDelete, options: FormatOptions): Promise<DeletionResult> {
  switch (destination.type) {
    case "webhook": {
      const message: Message = {
        type: "delete",
        messageId: person.requestId,
        timestamp: new Date(options.now).toISOString(),
        ...(person.userId ? { userId: person.userId } : {}),
        ...(person.anonymousIds?.length ? { anonymousIds: person.anonymousIds } : {}),
        ...(person.emails?.length ? { emails: person.emails } : {}),
      };
      return { requests: [await signedRequest(destination, [message], options.now)] };
    }
    case "segment":
      return { requests: [], unsupported: "Segment's tracking API has no deletion call; delete in the receiving workspace (Segment: a Public API regulation)" };
    case "braze":
      return brazeDeletion(destination, person);
    case "mailchimp":
      return mailchimpDeletion(destination, person);
  }
}

/**
 * Webhook: `{ batch, sentAt }`, signed. `batch` holds the messages exactly as
 * routed, `batchSize` at a time. The body is serialised once and those very
 * bytes are both signed and sent.
 */
async function formatWebhook(destination: DestinationOf<"webhook">, messages: Message[], options: FormatOptions): Promise<FormatResult> {
  const requests = await Promise.all(chunk(messages, destination.batchSize).map((part) => signedRequest(destination, part, options.now)));
  return { requests, skipped: [] };
}

async function signedRequest(destination: DestinationOf<"webhook">, batch: Message[], now: number): Promise<HttpRequest> {
  const sentAt = new Date(now).toISOString();
  const body = JSON.stringify({ batch, sentAt });
  return {
    method: "POST",
    url: destination.settings.url,
    headers: { ...destination.settings.headers, ...JSON_CONTENT, [TIMESTAMP_HEADER]: sentAt, [SIGNATURE_HEADER]: await signatureFor(destination.secrets.signingSecret, body) },
    body,
    messageIds: batch.map(messageIdOf),
  };
}

/**
 * Fields of our own hop, left out when forwarding: the receiver stamps its own
 * `receivedAt`, and with no `sentAt` it takes `timestamp` (already corrected for
 * clock skew at our intake) as it is instead of correcting it a second time.
 */
const HOP_FIELDS = new Set(["receivedAt", "sentAt", "originalTimestamp"]);

const forwarded = (message: Message): Message => Object.fromEntries(Object.entries(message).filter(([key]) => !HOP_FIELDS.has(key)));

/** Bytes of the `{"batch":[]}` around the messages; each message after the first adds a comma. */
const ENVELOPE_BYTES = byteLength(JSON.stringify({ batch: [] }));

/**
 * Segment: `POST {url}/v1/batch` with `{ batch }` and the write key as the
 * Basic user name, in batches within Segment's limits (32 KB a message, 500 KB
 * a request; a larger message would be refused, so it is skipped instead).
 */
function formatSegment(destination: DestinationOf<"segment">, messages: Message[]): FormatResult {
  const requests: HttpRequest[] = [];
  const skipped: SkippedMessage[] = [];
  const headers = { ...JSON_CONTENT, Authorization: basicAuth(destination.secrets.writeKey, "") };
  let texts: string[] = [];
  let ids: string[] = [];
  let size = ENVELOPE_BYTES;
  const flush = () => {
    if (texts.length) requests.push({ method: "POST", url: joinUrl(destination.settings.url, "/v1/batch"), headers, body: `{"batch":[${texts.join(",")}]}`, messageIds: ids });
    texts = [];
    ids = [];
    size = ENVELOPE_BYTES;
  };
  for (const message of messages) {
    const text = JSON.stringify(forwarded(message));
    const bytes = byteLength(text);
    if (bytes > LIMITS.messageBytes) {
      skipped.push({ messageId: messageIdOf(message), reason: `message is ${bytes} bytes, over Segment's ${LIMITS.messageBytes}-byte limit` });
      continue;
    }
    if (texts.length === destination.batchSize || size + 1 + bytes > LIMITS.batchBytes) flush();
    size += (texts.length ? 1 : 0) + bytes;
    texts.push(text);
    ids.push(messageIdOf(message));
  }
  flush();
  return { requests, skipped };
}
