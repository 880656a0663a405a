import { z } from "zod";
import { listAll, rewriteObject } from "./objects";
import { isTheirEvent, mentions, needlesOf, type Person, redact, textMentions } from "./subject";

/**
 * Dead letters are copies of messages in transit, kept for a replay:
 * - `dead-letters/activations/{ws}/{destination}/{delivery}.json`: a delivery
 *   that ran out of retries (workers/consumers/activation.ts), its pending
 *   messages and the reason;
 * - `dead-letters/{queue}/{day}/{id}.json`: a queue message that exhausted the
 *   queue's retries (workers/consumers/dead-letters.ts) with its body: an
 *   events envelope, a delivery, an audience change or a job chunk.
 * Their messages are removed when they are theirs by the archive's rule or
 * mention any of their values, message ids or profile ids anywhere; what is
 * left of a delivery or an envelope stays replayable, and an object left with
 * nothing is deleted.
 */

export interface DeadLetterReport {
  objectsRewritten: number;
  objectsDeleted: number;
  messagesRemoved: number;
}

const messageSchema = z.looseObject({ messageId: z.string() });
const deliverySchema = z.looseObject({
  kind: z.literal("deliver"),
  workspaceId: z.string(),
  messages: z.array(messageSchema),
  profileIds: z.array(z.string()),
  reason: z.string().optional(),
});
/** An audience or computed-trait change: all of it is about one profile. */
const changeSchema = z.looseObject({ workspaceId: z.string(), profileId: z.string(), messages: z.array(messageSchema) });
const envelopeSchema = z.looseObject({ workspaceId: z.string(), events: z.array(z.looseObject({})) });
const queuedSchema = z.looseObject({ body: z.unknown() });
const workspaceSchema = z.looseObject({ workspaceId: z.string() });

interface Scrubbed {
  /** null: nothing may be kept; the same value: nothing of theirs. */
  value: unknown;
  removed: number;
}

function scrub(value: unknown, workspaceId: string, person: Person, needles: string[]): Scrubbed {
  const owner = workspaceSchema.safeParse(value);
  if (owner.success && owner.data.workspaceId !== workspaceId) return { value, removed: 0 };
  const theirs = (message: Record<string, unknown>) => isTheirEvent(person, message) || mentions(message, needles);

  const delivery = deliverySchema.safeParse(value);
  if (delivery.success) {
    const { messages, profileIds, reason } = delivery.data;
    // The log cannot tell whose each message is, but a delivery only about them is all theirs.
    const onlyTheirs = profileIds.length > 0 && profileIds.every((id) => person.profileIds.has(id));
    const kept = onlyTheirs ? [] : messages.filter((message) => !theirs(message));
    if (!kept.length) return { value: null, removed: messages.length };
    const gone = messages.filter((message) => !kept.includes(message)).map((message) => message.messageId.toLowerCase());
    const others = profileIds.filter((id) => !person.profileIds.has(id));
    // A reason quotes what the destination answered, which can echo the payload.
    const redacted = reason === undefined ? undefined : redact(reason, [...needles, ...gone]);
    if (kept.length === messages.length && others.length === profileIds.length && redacted === reason) return { value, removed: 0 };
    return { value: { ...delivery.data, messages: kept, profileIds: others, ...(redacted === undefined ? {} : { reason: redacted }) }, removed: gone.length };
  }
  const change = changeSchema.safeParse(value);
  if (change.success) {
    const { profileId, messages } = change.data;
    return person.profileIds.has(profileId) || messages.some(theirs) ? { value: null, removed: messages.length } : { value, removed: 0 };
  }
  const envelope = envelopeSchema.safeParse(value);
  if (envelope.success) {
    const { events } = envelope.data;
    const kept = events.filter((event) => !theirs(event));
    if (kept.length === events.length) return { value, removed: 0 };
    return { value: kept.length ? { ...envelope.data, events: kept } : null, removed: events.length - kept.length };
  }
  return mentions(value, needles) ? { value: null, removed: 1 } : { value, removed: 0 };
}

type Outcome = "kept" | "rewritten" | "deleted";

/** One dead-letter object: the message itself (`wrapped` false) or the queue consumer's record around its `body`. */
async function scrubObject(bucket: R2Bucket, key: string, wrapped: boolean, workspaceId: string, person: Person, needles: string[]) {
  return rewriteObject<{ outcome: Outcome; removed: number }>(bucket, key, async (object) => {
    const raw = await object.text();
    let stored: unknown;
    try {
      stored = JSON.parse(raw);
    } catch {
      return textMentions(raw, needles) ? { delete: true, result: { outcome: "deleted", removed: 1 } } : { result: { outcome: "kept", removed: 0 } };
    }
    const record = wrapped ? queuedSchema.safeParse(stored) : null;
    const target = record?.success ? record.data.body : stored;
    const { value, removed } = scrub(target, workspaceId, person, needles);
    if (value === target) return { result: { outcome: "kept", removed: 0 } };
    const next = value === null ? null : record?.success ? { ...record.data, body: value } : value;
    // Whatever else the object carries must not name them either.
    if (next === null || mentions(next, needles)) return { delete: true, result: { outcome: "deleted", removed } };
    return {
      put: JSON.stringify(next),
      options: { httpMetadata: object.httpMetadata, customMetadata: object.customMetadata },
      result: { outcome: "rewritten", removed },
    };
  });
}

async function queuePrefixes(bucket: R2Bucket): Promise<string[]> {
  const prefixes: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: "dead-letters/", delimiter: "/", cursor });
    prefixes.push(...page.delimitedPrefixes);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return prefixes.filter((prefix) => prefix !== "dead-letters/activations/");
}

export async function eraseDeadLetters(bucket: R2Bucket, workspaceId: string, person: Person): Promise<DeadLetterReport> {
  const report: DeadLetterReport = { objectsRewritten: 0, objectsDeleted: 0, messagesRemoved: 0 };
  const needles = needlesOf(person);
  const targets: { key: string; wrapped: boolean }[] = (await listAll(bucket, `dead-letters/activations/${workspaceId}/`)).map(({ key }) => ({ key, wrapped: false }));
  // The queues' dead letters are not kept per workspace: each is read, and one of another workspace left alone.
  for (const prefix of await queuePrefixes(bucket)) targets.push(...(await listAll(bucket, prefix)).map(({ key }) => ({ key, wrapped: true })));
  for (const { key, wrapped } of targets) {
    const result = await scrubObject(bucket, key, wrapped, workspaceId, person, needles);
    if (!result || result.outcome === "kept") continue;
    report[result.outcome === "deleted" ? "objectsDeleted" : "objectsRewritten"]++;
    report.messagesRemoved += result.removed;
  }
  return report;
}

export interface QuarantineReport {
  objectsDeleted: number;
}

const quarantinedSchema = z.looseObject({ body: workspaceSchema });

/**
 * Quarantined messages (`quarantine/events/`, `quarantine/activations/`)
 * failed their schema, so nothing in them can be trusted to be where a rule
 * would look: one whose text mentions them anywhere is deleted whole. One
 * that names another workspace is left alone.
 */
export async function eraseQuarantine(bucket: R2Bucket, workspaceId: string, person: Person): Promise<QuarantineReport> {
  const report: QuarantineReport = { objectsDeleted: 0 };
  const needles = needlesOf(person);
  for (const { key } of await listAll(bucket, "quarantine/")) {
    const deleted = await rewriteObject(bucket, key, async (object) => {
      const raw = await object.text();
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(raw);
      } catch {
        // Not JSON: searched as text.
      }
      const owner = quarantinedSchema.safeParse(parsed);
      if (owner.success && owner.data.body.workspaceId !== workspaceId) return { result: false };
      return textMentions(raw, needles) ? { delete: true, result: true } : { result: false };
    });
    if (deleted) report.objectsDeleted++;
  }
  return report;
}
