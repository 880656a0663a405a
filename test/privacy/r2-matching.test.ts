import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { describe, expect, it } from "vitest";
import { writeArchiveObject } from "../../workers/archive/writer";
import { exportEventsHour } from "../../workers/export/events";
import { exportProfilesSnapshot } from "../../workers/export/profiles";
import worker from "../../workers/index";
import type { QueuedEvent } from "../../workers/intake/envelope";
import { eraseDeadLetters, eraseQuarantine } from "../../workers/privacy/r2/dead-letters";
import { encodeLike } from "../../workers/privacy/r2/parquet";
import { isTheirEvent, mentions, needlesOf, personOf, redact } from "../../workers/privacy/r2/subject";

const RUN = `r2m-${Date.now().toString(36)}`;

describe("whose an event is", () => {
  const person = personOf([`${RUN}-ada`, `Ada@Example.com`, ""], [`${RUN}-m1`]);

  it("is theirs by message id, by a value as userId, anonymousId or previousId, or by their email trait in any case", () => {
    expect(isTheirEvent(person, { messageId: `${RUN}-m1` })).toBe(true);
    for (const field of ["userId", "anonymousId", "previousId"]) expect(isTheirEvent(person, { messageId: "x", [field]: `${RUN}-ada` })).toBe(true);
    expect(isTheirEvent(person, { messageId: "x", traits: { email: "ADA@example.COM" } })).toBe(true);
    expect(isTheirEvent(person, { messageId: "x", context: { traits: { email: "ada@example.com" } } })).toBe(true);
  });

  it("is not theirs when it only mentions them, or when a field is merely empty like an empty value", () => {
    expect(isTheirEvent(person, { messageId: "x", userId: "someone", properties: { friend: "ada@example.com" } })).toBe(false);
    expect(isTheirEvent(person, { messageId: "x", userId: "", traits: { email: "ada@example.org" } })).toBe(false);
  });
});

describe("mentions, for copies of messages in transit", () => {
  it("finds a value inside any string, in any case, but not glued to other letters or digits", () => {
    expect(mentions({ a: [{ b: "reach me at ADA@example.com." }] }, ["ada@example.com"])).toBe(true);
    expect(mentions({ id: "user-42" }, ["42"])).toBe(true);
    expect(mentions({ id: "1425" }, ["42"])).toBe(false);
  });

  it("does not take numbers for values: a user id 12 is not a delivery's attempt 12", () => {
    expect(mentions({ attempt: 12, firstAttemptAt: 1_700_000_000_012 }, ["12"])).toBe(false);
  });

  it("redacts every occurrence from an error message, whatever its case", () => {
    expect(redact("400: invalid email ADA@example.com (ada@example.com)", ["ada@example.com"])).toBe("400: invalid email [erased] ([erased])");
  });
});

describe("rewriting a warehouse file", () => {
  it("gives back the very same bytes when it re-encodes a file's own rows, so only removed rows change", async () => {
    const ws = `${RUN}-parquet`;
    const events = [
      { type: "identify", messageId: `${RUN}-1`, userId: "u1", traits: { email: "u1@example.com", seats: 3 }, sentAt: "2026-01-05T10:00:01.000Z" },
      { type: "track", messageId: `${RUN}-2`, anonymousId: "a1", event: "Order Completed", properties: { revenue: 42.5, items: [{ sku: "a" }] } },
    ].map((e, i) => ({ receivedAt: `2026-01-05T10:0${i}:00.000Z`, timestamp: `2026-01-05T10:0${i}:00.000Z`, context: { ip: "192.0.2.1" }, integrations: {}, ...e }) as QueuedEvent);
    await writeArchiveObject(env, ws, "2026-01-05T10", "batch", events);
    await env.DB.prepare(
      "INSERT INTO profiles (workspace_id, profile_id, user_id, email, traits, created_at, updated_at, last_seen_at, version) VALUES (?1, 'p1', 'u1', 'u1@example.com', ?2, 1767000000000, 1767000000001, NULL, 1)",
    )
      .bind(ws, JSON.stringify({ plan: "pro", nested: { a: [1, 2.5, null] } }))
      .run();
    const written = [...(await exportEventsHour(env, ws, "2026-01-05T10")).files, ...(await exportProfilesSnapshot(env, ws, "2026-01-05")).files];
    expect(written).toHaveLength(2);
    for (const { key } of written) {
      const original = new Uint8Array(await (await env.ARCHIVE.get(key))!.arrayBuffer());
      const rows = (await parquetReadObjects({ file: original.buffer as ArrayBuffer })) as Record<string, unknown>[];
      expect(rows.length).toBeGreaterThan(0);
      expect(encodeLike(parquetMetadata(original.buffer as ArrayBuffer), rows)).toEqual(original);
    }
  });
});

describe("messages of another workspace", () => {
  async function deliver(queue: string, id: string, body: unknown) {
    const batch = createMessageBatch(queue, [{ id, timestamp: new Date(), attempts: 11, body }]);
    const ctx = createExecutionContext();
    await worker.queue(batch as MessageBatch<unknown>, env, ctx);
    await getQueueResult(batch, ctx);
  }

  it("are left alone in dead letters and quarantine even when they mention the same value", async () => {
    const email = `shared.${RUN}@example.com`;
    const elsewhere = { v: 1, workspaceId: `${RUN}-other`, sourceId: "src", events: [{ type: "identify", messageId: `${RUN}-o1`, userId: email, receivedAt: "2026-01-05T10:00:00.000Z", timestamp: "2026-01-05T10:00:00.000Z", context: {}, integrations: {} }] };
    await deliver("cdp-events-dlq", `${RUN}-other-dlq`, elsewhere);
    await deliver("cdp-events", `${RUN}-other-bad`, { ...elsewhere, sourceId: undefined });
    const person = personOf([email], []);
    expect(needlesOf(person)).toEqual([email]);
    expect(await eraseDeadLetters(env.ARCHIVE, `${RUN}-mine`, person)).toEqual({ objectsRewritten: 0, objectsDeleted: 0, messagesRemoved: 0 });
    expect(await eraseQuarantine(env.ARCHIVE, `${RUN}-mine`, person)).toEqual({ objectsDeleted: 0 });
    expect(await env.ARCHIVE.head(`quarantine/events/${RUN}-other-bad.json`)).not.toBeNull();

    // The same messages are erased when the workspace is theirs.
    expect(await eraseDeadLetters(env.ARCHIVE, `${RUN}-other`, person)).toEqual({ objectsRewritten: 0, objectsDeleted: 1, messagesRemoved: 1 });
    expect(await eraseQuarantine(env.ARCHIVE, `${RUN}-other`, person)).toEqual({ objectsDeleted: 1 });
  });
});
