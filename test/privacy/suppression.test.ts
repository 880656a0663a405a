import { createExecutionContext, createMessageBatch, getQueueResult, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { dedupShardName } from "../../durable-objects/dedup-shard";
import type { EventEnvelope } from "../../workers/intake/envelope";
import worker from "../../workers/index";
import { identifierKeyHash } from "../../workers/privacy/identifiers";
import { suppress } from "../../workers/privacy/suppression-store";
import { admin, archivedEvents, createSource, type Json, track, unique, until, waitForArchived } from "../helpers";

/**
 * Suppressed identifiers at intake, through the real tracking API, events
 * queue, consumer, archive and identity object: what is dropped, what still
 * gets through beside it, and what the drop counters say.
 */

async function suppressViaApi(identifiers: { type: string; value: string }[]): Promise<string[]> {
  const response = await admin("/admin/v1/privacy/suppressions", { method: "POST", json: { workspaceId: "default", identifiers } });
  expect(response.status).toBe(201);
  return ((await response.json()) as Json).data.map((s: Json) => s.id);
}

const profileOf = (workspaceId: string, type: string, value: string) =>
  env.DB.prepare("SELECT profile_id FROM profile_identifiers WHERE workspace_id = ? AND type = ? AND value = ?").bind(workspaceId, type, value).first<{ profile_id: string }>();

const dropsToday = async (workspaceId: string, reason: string) =>
  (
    await env.DB.prepare("SELECT count FROM intake_drops WHERE workspace_id = ? AND day = ? AND reason = ?")
      .bind(workspaceId, new Date().toISOString().slice(0, 10), reason)
      .first<{ count: number }>()
  )?.count ?? 0;

/** Whether the events consumer ever saw the message: it claims every messageId before it checks anything else. */
const reachedConsumer = (workspaceId: string, messageId: string) =>
  runInDurableObject(env.DEDUP.getByName(dedupShardName(workspaceId, messageId)), (_, state) =>
    state.storage.sql.exec("SELECT 1 FROM seen WHERE message_id = ?", messageId).toArray().length > 0,
  );

const archivedIds = async (workspaceId = "default") => new Set((await archivedEvents(workspaceId)).map((e) => String(e.messageId)));

describe("suppression at the edge", () => {
  it("drops a batch's event carrying a suppressed email, counts it, and delivers the bystander beside it", async () => {
    const id = unique();
    const { writeKey } = await createSource(`suppression ${id}`);
    await suppressViaApi([{ type: "email", value: `Gone.${id}@Acme-Mail.io` }]);
    const before = await dropsToday("default", "suppressed");

    const response = await track(
      "/v1/batch",
      {
        batch: [
          // A +tag variant of the suppressed address, in the context traits of a track call.
          { type: "track", userId: `gone-${id}`, event: "Viewed", context: { traits: { email: `gone.${id}+shop@acme-mail.io` } }, messageId: `sup-${id}-gone` },
          { type: "identify", userId: `stays-${id}`, traits: { email: `stays.${id}@acme-mail.io` }, messageId: `sup-${id}-stays` },
        ],
      },
      writeKey,
    );
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ success: true, accepted: 2, rejected: [] });

    // Both travelled in one queue message: once the bystander is archived and resolved, the other would have been too.
    expect(await waitForArchived(`sup-${id}-`, 1)).toHaveLength(1);
    await until("the bystander's profile", async () => (await profileOf("default", "user_id", `stays-${id}`)) ?? undefined);
    expect((await archivedIds()).has(`sup-${id}-gone`)).toBe(false);
    expect(await profileOf("default", "user_id", `gone-${id}`)).toBeNull();
    expect(await reachedConsumer("default", `sup-${id}-gone`)).toBe(false);
    await until("the drop to be counted", async () => ((await dropsToday("default", "suppressed")) > before ? true : undefined));
  });

  it("drops single calls too, and answers a synchronous one with no profile", async () => {
    const id = unique();
    const { writeKey } = await createSource(`suppression single ${id}`);
    await suppressViaApi([{ type: "user_id", value: `single-${id}` }]);

    const plain = await track("/v1/track", { userId: `single-${id}`, event: "Viewed", messageId: `sup1-${id}-a` }, writeKey);
    expect(await plain.json()).toEqual({ success: true });
    const sync = await track("/v1/identify?sync=true", { userId: `single-${id}`, traits: { plan: "pro" }, messageId: `sup1-${id}-b` }, writeKey);
    expect(sync.status).toBe(200);
    expect(await sync.json()).toEqual({ success: true, profile: null });
    // An alias whose previous id is the suppressed user id is dropped as well.
    await track("/v1/alias", { userId: `new-${id}`, previousId: `single-${id}`, messageId: `sup1-${id}-c` }, writeKey);

    await track("/v1/track", { userId: `other-${id}`, event: "Viewed", messageId: `sup1-${id}-d` }, writeKey);
    expect((await waitForArchived(`sup1-${id}-`, 1)).map((e) => e.messageId)).toEqual([`sup1-${id}-d`]);
    expect(await profileOf("default", "user_id", `single-${id}`)).toBeNull();
    for (const dropped of ["a", "b", "c"]) expect(await reachedConsumer("default", `sup1-${id}-${dropped}`)).toBe(false);
  });

  it("answers a synchronous call with no profile when the edge's cached suppressions are stale", async () => {
    const id = unique();
    const { writeKey } = await createSource(`suppression stale ${id}`);
    // This isolate's edge cache is loaded now; the suppression then arrives the way another isolate's write would, unseen by it.
    await track("/v1/track", { userId: `warm-${id}`, event: "Viewed", messageId: `sup3-${id}-warm` }, writeKey);
    const hash = identifierKeyHash("default", `user_id:stale-${id}`);
    await env.DB.prepare("INSERT INTO suppressions (workspace_id, key_hash, id, hint, reason, created_by, created_at) VALUES ('default', ?1, ?2, 'user_id:st***', 'manual', 'root', ?3)")
      .bind(hash, `sup_${id}`, Date.now())
      .run();

    const sync = await track("/v1/identify?sync=true", { userId: `stale-${id}`, traits: { plan: "pro" }, messageId: `sup3-${id}-sync` }, writeKey);
    expect(await sync.json()).toEqual({ success: true, profile: null });
    await track("/v1/track", { userId: `after-${id}`, event: "Viewed", messageId: `sup3-${id}-after` }, writeKey);
    await waitForArchived(`sup3-${id}-after`, 1);
    expect(await profileOf("default", "user_id", `stale-${id}`)).toBeNull();
    expect(await archivedIds()).not.toContain(`sup3-${id}-sync`);
  });

  it("lets the identifier's events through again once the suppression is lifted", async () => {
    const id = unique();
    const { writeKey } = await createSource(`suppression lifted ${id}`);
    const [suppressionId] = await suppressViaApi([{ type: "anonymous_id", value: `anon-${id}` }]);

    await track("/v1/page", { anonymousId: `anon-${id}`, name: "Home", messageId: `sup2-${id}-while` }, writeKey);
    expect((await admin(`/admin/v1/privacy/suppressions/${suppressionId}`, { method: "DELETE" })).status).toBe(200);
    await track("/v1/page", { anonymousId: `anon-${id}`, name: "Home", messageId: `sup2-${id}-after` }, writeKey);

    expect((await waitForArchived(`sup2-${id}-`, 1)).map((e) => e.messageId)).toEqual([`sup2-${id}-after`]);
    await until("the profile of the lifted identifier", async () => (await profileOf("default", "anonymous_id", `anon-${id}`)) ?? undefined);
  });
});

describe("suppression in the events consumer", () => {
  const WORKSPACE = "ws-suppression-consumer";

  function envelope(id: string, receivedAt: string): EventEnvelope {
    const base = { type: "track" as const, event: "Viewed", receivedAt, timestamp: receivedAt, context: {}, integrations: {} };
    return {
      v: 1,
      workspaceId: WORKSPACE,
      sourceId: "src_test",
      events: [
        { ...base, messageId: `q-${id}-gone`, userId: `queued-${id}`, context: { device: { id: `device-${id}` } } },
        { ...base, messageId: `q-${id}-stays`, userId: `bystander-${id}` },
      ],
    };
  }

  async function deliver(messages: { id: string; body: unknown }[]) {
    const batch = createMessageBatch("cdp-events", messages.map((m) => ({ id: m.id, timestamp: new Date(), attempts: 1, body: m.body })));
    const ctx = createExecutionContext();
    await worker.queue(batch as MessageBatch<unknown>, env, ctx);
    return getQueueResult(batch, ctx);
  }

  it("drops an event queued before its identifier was suppressed, before the archive and identity, and counts it", async () => {
    const id = unique();
    // Accepted at the edge while nothing was suppressed; the deletion lands while it waits in the queue.
    const queued = envelope(id, new Date().toISOString());
    await suppress(env.DB, WORKSPACE, [`device_id:device-${id}`], { reason: "deletion", requestId: `req-${id}`, actor: "test" });
    const before = await dropsToday(WORKSPACE, "suppressed");

    expect((await deliver([{ id: `msg-${id}`, body: queued }])).ackAll).toBe(true);

    const archived = await archivedIds(WORKSPACE);
    expect(archived.has(`q-${id}-stays`)).toBe(true);
    expect(archived.has(`q-${id}-gone`)).toBe(false);
    await until("the bystander's profile", async () => (await profileOf(WORKSPACE, "user_id", `bystander-${id}`)) ?? undefined);
    expect(await profileOf(WORKSPACE, "user_id", `queued-${id}`)).toBeNull();
    expect(await dropsToday(WORKSPACE, "suppressed")).toBe(before + 1);
  });

  it("drops a retried delivery of a suppressed event just the same", async () => {
    const id = unique();
    const queued = envelope(id, new Date().toISOString());
    expect((await deliver([{ id: `msg-${id}`, body: { ...queued, events: [queued.events[1]!] } }])).ackAll).toBe(true);
    await suppress(env.DB, WORKSPACE, [`user_id:queued-${id}`], { reason: "manual", actor: "test" });
    // The client retried the whole request: a new queue message with both events.
    expect((await deliver([{ id: `msg-${id}-retry`, body: queued }])).ackAll).toBe(true);
    expect((await archivedIds(WORKSPACE)).has(`q-${id}-gone`)).toBe(false);
  });

  it("drops an event intake stamped as checked when its suppression is newer than the stamp, and only looks that far back", async () => {
    const id = unique();
    const stampedAt = Date.now() - 120_000; // the edge's cached set was loaded two minutes ago
    await suppress(env.DB, WORKSPACE, [`user_id:queued-${id}`], { reason: "deletion", requestId: `req-${id}`, actor: "test" });
    const stale = { ...envelope(id, new Date().toISOString()), suppressionsAsOf: stampedAt };
    expect((await deliver([{ id: `msg-${id}`, body: stale }])).ackAll).toBe(true);
    const archived = await archivedIds(WORKSPACE);
    expect(archived.has(`q-${id}-gone`)).toBe(false);
    expect(archived.has(`q-${id}-stays`)).toBe(true);

    // A suppression older than a fresh stamp was intake's to check; but a message without a stamp in
    // the same batch makes the workspace's check a full one, which finds it.
    const other = unique();
    await suppress(env.DB, WORKSPACE, [`user_id:queued-${other}`], { reason: "manual", actor: "test", now: 0 });
    const fresh = { ...envelope(other, new Date().toISOString()), suppressionsAsOf: Date.now() };
    const unstamped = { ...envelope(`${other}b`, new Date().toISOString()) };
    expect((await deliver([{ id: `msg-${other}`, body: fresh }, { id: `msg-${other}b`, body: unstamped }])).ackAll).toBe(true);
    expect((await archivedIds(WORKSPACE)).has(`q-${other}-gone`)).toBe(false);
  });
});
