import { createExecutionContext, createMessageBatch, getQueueResult, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEDUP_RETENTION_MS, DedupShard, dedupShardName } from "../../durable-objects/dedup-shard";
import { identifierHash, readArchiveObject } from "../../workers/archive/writer";
import type { EventEnvelope } from "../../workers/intake/envelope";
import worker from "../../workers/index";

const WORKSPACE = "ws-consumer";

function envelope(ids: string[], receivedAt = "2026-11-22T10:15:00.000Z"): EventEnvelope {
  return {
    v: 1,
    workspaceId: WORKSPACE,
    sourceId: "src_test",
    events: ids.map((id) => ({
      type: "track",
      event: "Viewed",
      messageId: id,
      userId: `user-of-${id}`,
      anonymousId: `anon-of-${id}`,
      receivedAt,
      timestamp: receivedAt,
      context: {},
      integrations: {},
    })),
  };
}

async function deliver(queue: string, messages: { id: string; body: unknown; attempts?: number }[]) {
  const batch = createMessageBatch(queue, messages.map((m) => ({ id: m.id, timestamp: new Date(), attempts: m.attempts ?? 1, body: m.body })));
  const ctx = createExecutionContext();
  await worker.queue(batch as MessageBatch<unknown>, env, ctx);
  return getQueueResult(batch, ctx);
}

async function archiveContents(prefix: string) {
  const listed = await env.ARCHIVE.list({ prefix });
  const objects = await Promise.all(listed.objects.map(async (o) => ({ key: o.key, events: (await readArchiveObject(env.ARCHIVE, o.key)) ?? [] })));
  return objects;
}

describe("events consumer", () => {
  it("writes one gzip NDJSON object per batch under the workspace's hour partition, and indexes its people", async () => {
    const result = await deliver("cdp-events", [
      { id: "q-1", body: envelope(["e1", "e2"]) },
      { id: "q-2", body: envelope(["e3"]) },
    ]);
    expect(result.ackAll).toBe(true);
    const objects = await archiveContents(`events/${WORKSPACE}/2026/11/22/10/`);
    expect(objects).toHaveLength(1);
    expect(objects[0]!.key).toMatch(/^events\/ws-consumer\/2026\/11\/22\/10\/[0-9a-f]{32}\.ndjson\.gz$/);
    expect(objects[0]!.events.map((e) => e.messageId)).toEqual(["e1", "e2", "e3"]);

    const hash = await identifierHash(WORKSPACE, "user-of-e2");
    const indexed = await env.DB.prepare("SELECT object_key FROM archive_index WHERE workspace_id = ? AND identifier_hash = ?").bind(WORKSPACE, hash).all();
    expect(indexed.results).toEqual([{ object_key: objects[0]!.key }]);
    const listed = await env.DB.prepare("SELECT event_count FROM archive_objects WHERE key = ?").bind(objects[0]!.key).first();
    expect(listed).toEqual({ event_count: 3 });
  });

  it("changes nothing when the same batch is redelivered", async () => {
    const messages = [{ id: "q-10", body: envelope(["r1", "r2"], "2026-11-22T11:00:00.000Z") }];
    await deliver("cdp-events", messages);
    const before = await archiveContents(`events/${WORKSPACE}/2026/11/22/11/`);
    await deliver("cdp-events", messages.map((m) => ({ ...m, attempts: 2 })));
    const after = await archiveContents(`events/${WORKSPACE}/2026/11/22/11/`);
    expect(after).toEqual(before);
    expect(after.flatMap((o) => o.events)).toHaveLength(2);
  });

  it("does not archive twice a message redelivered in a different batch after its first write", async () => {
    await deliver("cdp-events", [{ id: "q-20", body: envelope(["s1"], "2026-11-22T12:00:00.000Z") }]);
    // The queue redelivers q-20 alongside a newer message: a different batch, so a different batch key.
    await deliver("cdp-events", [
      { id: "q-20", body: envelope(["s1"], "2026-11-22T12:00:00.000Z"), attempts: 2 },
      { id: "q-21", body: envelope(["s2"], "2026-11-22T12:00:00.000Z") },
    ]);
    const events = (await archiveContents(`events/${WORKSPACE}/2026/11/22/12/`)).flatMap((o) => o.events.map((e) => e.messageId));
    expect(events.sort()).toEqual(["s1", "s2"]);
  });

  it("after a crash between the archive write and its record, archives the event once: in the earlier object if it exists, else now", async () => {
    const hour = "2026-11-22T15";
    const receivedAt = "2026-11-22T15:30:00.000Z";
    const earlierKey = "0".repeat(32);
    // Attempt 1 claimed both events under an earlier batch key; only c1's object reached R2 before the crash.
    await env.DEDUP.getByName(dedupShardName(WORKSPACE, "c1")).claim([{ messageId: "c1", claimant: "q-60", batchKey: earlierKey }]);
    await env.DEDUP.getByName(dedupShardName(WORKSPACE, "c2")).claim([{ messageId: "c2", claimant: "q-61", batchKey: "f".repeat(32) }]);
    const { writeArchiveObject } = await import("../../workers/archive/writer");
    await writeArchiveObject(env, WORKSPACE, hour, earlierKey, envelope(["c1"], receivedAt).events);

    await deliver("cdp-events", [
      { id: "q-60", body: envelope(["c1"], receivedAt), attempts: 2 },
      { id: "q-61", body: envelope(["c2"], receivedAt), attempts: 2 },
    ]);
    const objects = await archiveContents(`events/${WORKSPACE}/2026/11/22/15/`);
    expect(objects.flatMap((o) => o.events.map((e) => e.messageId)).sort()).toEqual(["c1", "c2"]);
    expect(objects.find((o) => o.key.includes(earlierKey))!.events.map((e) => e.messageId)).toEqual(["c1"]);
  });

  it("keeps every event of its object when a batch returns after only some of its events were marked archived", async () => {
    const messages = [{ id: "q-70", body: envelope(["p1", "p2"], "2026-11-22T16:00:00.000Z") }];
    await deliver("cdp-events", messages);
    // The first attempt failed after marking p1 but before marking p2 (they live on different shards).
    const p2Shard = env.DEDUP.getByName(dedupShardName(WORKSPACE, "p2"));
    await runInDurableObject(p2Shard, (_instance: DedupShard, state) => {
      state.storage.sql.exec("UPDATE seen SET archived = 0 WHERE message_id = 'p2'");
    });
    await deliver("cdp-events", messages.map((m) => ({ ...m, attempts: 2 })));
    const objects = await archiveContents(`events/${WORKSPACE}/2026/11/22/16/`);
    expect(objects).toHaveLength(1);
    expect(objects[0]!.events.map((e) => e.messageId).sort()).toEqual(["p1", "p2"]);
  });

  it("drops a client retry: the same messageId in another queue message", async () => {
    await deliver("cdp-events", [{ id: "q-30", body: envelope(["dup-1"], "2026-11-22T13:00:00.000Z") }]);
    await deliver("cdp-events", [{ id: "q-31", body: envelope(["dup-1", "dup-2"], "2026-11-22T13:00:00.000Z") }]);
    const events = (await archiveContents(`events/${WORKSPACE}/2026/11/22/13/`)).flatMap((o) => o.events.map((e) => e.messageId));
    expect(events.sort()).toEqual(["dup-1", "dup-2"]);
  });

  it("quarantines a malformed queue message and still archives the rest of the batch", async () => {
    const result = await deliver("cdp-events", [
      { id: "q-40", body: { v: 1, workspaceId: WORKSPACE, events: "nope" } },
      { id: "q-41", body: envelope(["ok-1"], "2026-11-22T14:00:00.000Z") },
    ]);
    expect(result.ackAll).toBe(true);
    const quarantined = await env.ARCHIVE.get("quarantine/events/q-40.json");
    expect(JSON.parse(await quarantined!.text())).toMatchObject({ id: "q-40", body: { events: "nope" } });
    const events = (await archiveContents(`events/${WORKSPACE}/2026/11/22/14/`)).flatMap((o) => o.events.map((e) => e.messageId));
    expect(events).toEqual(["ok-1"]);
  });

  it("keeps dead-lettered messages in R2 for replay", async () => {
    const body = envelope(["dead-1"]);
    const result = await deliver("cdp-events-dlq", [{ id: "q-50", body, attempts: 11 }]);
    expect(result.ackAll).toBe(true);
    const listed = await env.ARCHIVE.list({ prefix: "dead-letters/cdp-events-dlq/" });
    expect(listed.objects.map((o) => o.key.split("/").at(-1))).toEqual(["q-50.json"]);
    const stored = JSON.parse(await (await env.ARCHIVE.get(listed.objects[0]!.key))!.text());
    expect(stored).toMatchObject({ id: "q-50", attempts: 11, body });
  });
});

describe("DedupShard", () => {
  it("tells a first sighting, a redelivery and a client retry apart", async () => {
    const stub = env.DEDUP.getByName("unit:0");
    const first = await stub.claim([{ messageId: "m", claimant: "q-a", batchKey: "b1" }]);
    const again = await stub.claim([{ messageId: "m", claimant: "q-a", batchKey: "b2" }]);
    const retry = await stub.claim([{ messageId: "m", claimant: "q-b", batchKey: "b3" }]);
    expect([first[0]!.status, again[0]!.status, retry[0]!.status]).toEqual(["new", "mine", "duplicate"]);
    expect(again[0]!.batchKey).toBe("b1");
  });

  it("forgets messageIds only after the retention period, on its alarm", async () => {
    const stub = env.DEDUP.getByName("unit:1");
    const now = Date.now();
    await stub.claim([{ messageId: "old", claimant: "q", batchKey: "b" }], now - DEDUP_RETENTION_MS - 1_000);
    await stub.claim([{ messageId: "fresh", claimant: "q", batchKey: "b" }], now);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const remaining = await runInDurableObject(stub, (instance: DedupShard) => instance.size());
    expect(remaining).toBe(1);
    const retried = await stub.claim([{ messageId: "fresh", claimant: "other", batchKey: "b" }]);
    expect(retried[0]!.status).toBe("duplicate");
  });

  it("spreads a workspace's messageIds over its shards", () => {
    const shards = new Set(Array.from({ length: 500 }, (_, i) => dedupShardName("w", `msg-${i}`)));
    expect(shards.size).toBe(16);
    expect([...shards].every((name) => name.startsWith("w:"))).toBe(true);
  });
});
