import { Analytics } from "@segment/analytics-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalServer } from "../../scripts/local-server.mjs";
import { type ArchivedEvent, basicAuth, startE2eServer, waitForArchive } from "./server";

type Sent = { type: "identify" | "track" | "page" | "screen" | "group" | "alias"; messageId: string } & Record<string, unknown>;

const TYPES = ["identify", "track", "page", "screen", "group", "alias"] as const;

/** Message `i` of a run: every type in turn, half by userId and half by anonymousId, each with fields to check. */
function message(prefix: string, i: number): Sent {
  const type = TYPES[i % TYPES.length]!;
  const messageId = `${prefix}${String(i).padStart(4, "0")}`;
  const identity = i % 2 === 0 ? { userId: `user-${i % 97}` } : { anonymousId: `anon-${i % 89}` };
  switch (type) {
    case "identify":
      return { type, messageId, ...identity, traits: { email: `person${i}@example.com`, plan: i % 3 === 0 ? "pro" : "free", logins: i } };
    case "track":
      return { type, messageId, ...identity, event: "Order Completed", properties: { orderId: `o-${i}`, revenue: i + 0.5, currency: "EUR", items: [{ sku: `sku-${i}` }] } };
    case "page":
      return { type, messageId, ...identity, category: "Docs", name: `Page ${i}`, properties: { url: `https://shop.example/p/${i}`, title: `Page ${i}` } };
    case "screen":
      return { type, messageId, ...identity, name: `Screen ${i}`, properties: { variant: i % 2 ? "a" : "b" } };
    case "group":
      return { type, messageId, ...identity, groupId: `org-${i % 13}`, traits: { name: `Org ${i % 13}`, employees: i } };
    case "alias":
      return { type, messageId, userId: `user-${i}`, previousId: `anon-${i}` };
  }
}

/** The fields each archived event must carry exactly as sent. */
function expectedFields(sent: Sent): Record<string, unknown> {
  const { type, messageId, ...rest } = sent;
  return { type, messageId, workspaceId: "default", ...rest };
}

function expectEachArchivedOnce(archived: ArchivedEvent[], sent: Sent[]) {
  const byId = new Map<string, ArchivedEvent[]>();
  for (const event of archived) byId.set(event.messageId, [...(byId.get(event.messageId) ?? []), event]);
  const missing = sent.filter((m) => !byId.has(m.messageId)).map((m) => m.messageId);
  const duplicated = [...byId].filter(([, copies]) => copies.length > 1).map(([id, copies]) => `${id}×${copies.length}`);
  const unexpected = [...byId.keys()].filter((id) => !sent.some((m) => m.messageId === id));
  expect({ missing, duplicated, unexpected }).toEqual({ missing: [], duplicated: [], unexpected: [] });
  expect(archived).toHaveLength(sent.length);
  for (const m of sent) expect(byId.get(m.messageId)![0]).toMatchObject(expectedFields(m));
}

describe("end to end against the deploy bundle", () => {
  let server: LocalServer;
  beforeAll(async () => {
    server = await startE2eServer();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it("archives each of 1,000 mixed messages from @segment/analytics-node exactly once, as sent", async () => {
    const prefix = `e2e-node-${Date.now()}-`;
    const sent = Array.from({ length: 1_000 }, (_, i) => message(prefix, i));

    const analytics = new Analytics({ writeKey: server.writeKey, host: server.url });
    const errors: unknown[] = [];
    const statuses: number[] = [];
    let requests = 0;
    analytics.on("error", (error) => errors.push(error));
    analytics.on("http_request", () => requests++);
    analytics.on("http_response", (response) => statuses.push(response.status));

    for (const m of sent) {
      const { type, ...params } = m;
      // The SDK's overloads take the same params per type; each call enqueues one message.
      (analytics[type] as unknown as (params: Record<string, unknown>) => void).call(analytics, params);
    }
    await analytics.closeAndFlush({ timeout: 60_000 });

    expect(errors).toEqual([]);
    expect(requests).toBeGreaterThan(0);
    expect(statuses).toHaveLength(requests);
    expect(statuses.filter((s) => s !== 200)).toEqual([]); // not even a retried one

    const archived = await waitForArchive(server, prefix, sent.length);
    expectEachArchivedOnce(archived, sent);
  });

  it("archives a batch that a client retried, at once and after it was archived, once", async () => {
    const prefix = `e2e-retry-${Date.now()}-`;
    const sent = Array.from({ length: 120 }, (_, i) => message(prefix, i));
    const body = JSON.stringify({ batch: sent, sentAt: new Date().toISOString(), context: { library: { name: "e2e-retry", version: "1" } } });
    const post = () =>
      fetch(`${server.url}/v1/batch`, { method: "POST", headers: { authorization: basicAuth(server.writeKey), "content-type": "application/json" }, body });

    const first = await post();
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ success: true, accepted: sent.length, rejected: [] });
    const retry = await post();
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual({ success: true, accepted: sent.length, rejected: [] });

    expectEachArchivedOnce(await waitForArchive(server, prefix, sent.length), sent);

    // A late retry, after the first copy went all the way through, is absorbed as well.
    const late = await post();
    expect(late.status).toBe(200);
    const archived = await waitForArchive(server, prefix, sent.length);
    expectEachArchivedOnce(archived, sent);
    // Batch-level context is merged into each item.
    expect(archived[0]).toMatchObject({ context: { library: { name: "e2e-retry", version: "1" } } });
  });
});
