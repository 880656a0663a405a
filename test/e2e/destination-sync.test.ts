import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalServer } from "../../scripts/local-server.mjs";
import { behaviours, type Receiver, startReceiver } from "./receivers";
import { adminCall, basicAuth, type Json, startE2eServer, waitForArchive } from "./server";

/**
 * A destination's initial audience sync and archive replay, end to end against
 * the deploy bundle, with real HTTP receivers:
 * (a) people tracked with `?sync=true`, a segment over them (its backfill
 *     waited for), then a webhook subscribed to the segment: each current member's
 *     `identify` with the audience key true arrives exactly once, and a re-run
 *     (unsubscribe, subscribe again) sends nothing twice;
 * (b) events sent before any destination exists and archived, then a
 *     destination and a replay of the time range: each archived event arrives
 *     exactly once, and a second replay sends nothing again.
 */

const RUN = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
const WORKSPACE = "default";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));


async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

/** Waits until the receiver has had no new request for `quietMs`. */
async function settle(receiver: Receiver, quietMs = 4_000) {
  let seen = receiver.requests.length;
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    await sleep(100);
    if (receiver.requests.length !== seen) {
      seen = receiver.requests.length;
      since = Date.now();
    }
  }
}

describe("destination jobs: initial audience sync and archive replay", () => {
  let server: LocalServer;
  let syncReceiver: Receiver;
  let replayReceiver: Receiver;

  const call = (method: string, path: string, body?: unknown) => adminCall(server, method, path, body);
  async function ok(method: string, path: string, expected: number, body?: unknown): Promise<Json> {
    const reply = await call(method, path, body);
    if (reply.status !== expected) throw new Error(`${method} ${path} → ${reply.status} (expected ${expected}): ${JSON.stringify(reply.body)}`);
    return reply.body;
  }
  const jobDone = (jobId: string) =>
    waitFor(`job ${jobId} to succeed`, async () => {
      const job = await ok("GET", `/jobs/${jobId}?workspaceId=${WORKSPACE}`, 200);
      if (job.status === "failed") throw new Error(`job ${jobId} failed: ${job.error}`);
      return job.status === "succeeded" ? job : undefined;
    });
  async function track(body: Json) {
    const response = await fetch(`${server.url}/v1/track?sync=true`, {
      method: "POST",
      headers: { authorization: basicAuth(server.writeKey), "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(response.status, await response.clone().text()).toBe(200);
  }
  const webhook = (name: string, receiver: Receiver, subscriptions: Json) => ({
    workspaceId: WORKSPACE,
    name,
    type: "webhook",
    settings: { url: receiver.url },
    secrets: { signingSecret: `whsec-${name}-0123456789abcdef` },
    batchSize: 10,
    subscriptions,
  });

  beforeAll(async () => {
    [server, syncReceiver, replayReceiver] = await Promise.all([startE2eServer(), startReceiver(behaviours.healthy()), startReceiver(behaviours.healthy())]);
  });

  afterAll(async () => {
    await Promise.all([syncReceiver?.close(), replayReceiver?.close()]);
    await server?.dispose();
  });

  it("sends a new destination each current member of a segment it subscribes to, once, and nothing twice on a re-run", async () => {
    const members = Array.from({ length: 4 }, (_, i) => `sync-member-${RUN}-${i}`);
    const others = [`sync-other-${RUN}`];
    for (const userId of members) await track({ userId, event: "Sync Signup", messageId: `sync-${userId}`, properties: { plan: "pro" } });
    for (const userId of others) await track({ userId, event: "Sync Browse", messageId: `sync-${userId}`, properties: {} });

    const key = `sync_signups_${RUN.replaceAll("-", "_")}`;
    const created = await ok("POST", "/segments", 201, {
      workspaceId: WORKSPACE,
      key,
      name: "Sync signups",
      definition: { kind: "event", event: "Sync Signup", count: { op: "gte", value: 1 } },
    });
    const segmentId = created.segment.id as string;
    await jobDone(created.job.id);
    // The backfill's own entries go to the activation queue with no destination subscribed yet: let them pass first.
    await sleep(4_000);

    const { destination, syncJobs } = await ok("POST", "/destinations", 201, webhook("SyncHook", syncReceiver, { events: [], audiences: [segmentId], computedTraits: [] }));
    expect(syncJobs).toEqual([expect.objectContaining({ kind: "audience-sync", target: `${destination.id}/${segmentId}` })]);
    const job = await jobDone(syncJobs[0].id);
    expect(job).toMatchObject({ processed: members.length, total: members.length });

    const identifies = () =>
      syncReceiver.requests.filter((r) => r.status !== undefined && r.status < 300).flatMap((r) => (r.payload?.batch ?? []).filter((m) => m.type === "identify"));
    await waitFor("every member's identify", async () => (members.every((userId) => identifies().some((m) => m.userId === userId)) ? true : undefined));
    await settle(syncReceiver);
    const first = identifies();
    for (const userId of members) {
      const mine = first.filter((m) => m.userId === userId);
      expect(mine, userId).toHaveLength(1);
      expect(mine[0]).toMatchObject({ traits: { [key]: true }, context: { personas: { computation_class: "audience", computation_id: segmentId, computation_key: key } } });
      expect(String(mine[0]!.messageId)).toMatch(new RegExp(`^personas_${segmentId}_.+_0_identify$`));
    }
    expect(first.filter((m) => others.includes(String(m.userId)))).toEqual([]);
    const requestsBefore = syncReceiver.requests.length;

    // Re-run: unsubscribe (no job), subscribe again (a new job that finds every message already delivered).
    const off = await ok("PATCH", `/destinations/${destination.id}?workspaceId=${WORKSPACE}`, 200, { subscriptions: { events: [], audiences: [], computedTraits: [] } });
    expect(off.syncJobs).toEqual([]);
    const on = await ok("PATCH", `/destinations/${destination.id}?workspaceId=${WORKSPACE}`, 200, { subscriptions: { events: [], audiences: [segmentId], computedTraits: [] } });
    expect(on.syncJobs).toHaveLength(1);
    await jobDone(on.syncJobs[0].id);
    await settle(syncReceiver);
    expect(syncReceiver.requests.length).toBe(requestsBefore);
    expect(identifies()).toHaveLength(first.length);
  }, 180_000);

  it("replays archived events into a destination created after them, once, and a second replay sends nothing", async () => {
    const from = new Date(Date.now() - 60_000).toISOString();
    const ids = Array.from({ length: 6 }, (_, i) => `replay-${RUN}-${i}`);
    for (const [i, messageId] of ids.entries()) await track({ userId: `replay-user-${RUN}-${i % 3}`, event: "Replay Test", messageId, properties: { i } });
    await waitForArchive(server, `replay-${RUN}-`, ids.length);

    const { destination } = await ok("POST", "/destinations", 201, webhook("ReplayHook", replayReceiver, { events: [{ event: "Replay Test" }], audiences: [], computedTraits: [] }));
    const to = new Date(Date.now() + 60_000).toISOString();
    const replay = async () => {
      const { job } = await ok("POST", `/destinations/${destination.id}/replay`, 202, { workspaceId: WORKSPACE, from, to });
      expect(job).toMatchObject({ kind: "archive-replay", status: expect.stringMatching(/^(queued|running|succeeded)$/) });
      return jobDone(job.id);
    };

    const done = await replay();
    expect(done.processed).toBeGreaterThanOrEqual(ids.length);
    await waitFor("every archived event at the receiver", async () => (ids.every((id) => replayReceiver.accepted().has(id)) ? true : undefined));
    await settle(replayReceiver);
    const counts = replayReceiver.accepted();
    expect([...counts].filter(([, n]) => n !== 1)).toEqual([]);
    expect([...counts.keys()].sort()).toEqual([...ids].sort());
    const requestsBefore = replayReceiver.requests.length;

    await replay();
    await settle(replayReceiver);
    expect(replayReceiver.requests.length).toBe(requestsBefore);

    const audit = await ok("GET", `/audit-log?workspaceId=${WORKSPACE}`, 200);
    expect((audit.data as Json[]).filter((entry) => entry.action === "destination.replay" && entry.target === destination.id)).toHaveLength(2);
  }, 180_000);
});
