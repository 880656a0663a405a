import { describe, expect, it } from "vitest";
import { archivedEvents, createSource, track, waitForArchived } from "../helpers";

describe("batch endpoint", () => {
  it("accepts the valid messages of a batch and reports the invalid ones by index", async () => {
    const run = crypto.randomUUID();
    const response = await track("/v1/batch", {
      batch: [
        { type: "track", userId: "u1", event: "Good", messageId: `partial-${run}-0` },
        { type: "track", userId: "u1", messageId: `partial-${run}-1` },
        { type: "identify", anonymousId: "a1", traits: { email: "x@example.com" }, messageId: `partial-${run}-2` },
        { type: "page", messageId: `partial-${run}-3` },
        "not an object",
      ],
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { success: boolean; accepted: number; rejected: { index: number; messageId?: string; errors: { path: string }[] }[] };
    expect(body.success).toBe(true);
    expect(body.accepted).toBe(2);
    expect(body.rejected.map((r) => [r.index, r.errors[0]!.path])).toEqual([
      [1, "batch.1.event"],
      [3, "batch.3.userId"],
      [4, "batch.4"],
    ]);
    expect(body.rejected[0]!.messageId).toBe(`partial-${run}-1`);
    const archived = await waitForArchived(`partial-${run}`, 2);
    expect(archived.map((e) => e.messageId).sort()).toEqual([`partial-${run}-0`, `partial-${run}-2`]);
  });

  it("answers 400 with every error when no message in the batch is valid, and archives nothing", async () => {
    const run = crypto.randomUUID();
    const response = await track("/v1/b", { batch: [{ type: "track", messageId: `none-${run}` }, { type: "alias", userId: "u" }] });
    expect(response.status).toBe(400);
    const problem = (await response.json()) as { errors: { path: string }[]; rejected: unknown[] };
    expect(problem.errors.map((e) => e.path)).toEqual(["batch.0.event", "batch.0.userId", "batch.1.previousId"]);
    expect(problem.rejected).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await archivedEvents()).filter((e) => String(e.messageId).includes(run))).toEqual([]);
  });

  it("rejects a batch over 500 KB naming the limit", async () => {
    const item = { type: "track", userId: "u", event: "E", properties: { pad: "x".repeat(20_000) } };
    const response = await track("/v1/batch", { batch: Array.from({ length: 30 }, () => item) });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { detail: string }).detail).toContain("500 KB per-batch limit");
  });

  it("rejects a batch of more than 2,500 messages naming the limit", async () => {
    const response = await track("/v1/batch", { batch: Array.from({ length: 2_501 }, () => ({ type: "track", userId: "u", event: "E" })) });
    expect(response.status).toBe(413);
    const problem = (await response.json()) as { detail: string; errors: { path: string }[] };
    expect(problem.detail).toContain("2,500-messages per-batch limit");
    expect(problem.errors[0]!.path).toBe("batch");
  });

  it("rejects one message over 32 KB inside a batch and keeps the rest", async () => {
    const run = crypto.randomUUID();
    const response = await track("/v1/batch", {
      batch: [
        { type: "track", userId: "u", event: "Big", properties: { pad: "x".repeat(40_000) }, messageId: `big-${run}-0` },
        { type: "track", userId: "u", event: "Small", messageId: `big-${run}-1` },
      ],
    });
    const body = (await response.json()) as { accepted: number; rejected: { index: number; errors: { message: string }[] }[] };
    expect(body.accepted).toBe(1);
    expect(body.rejected[0]!.index).toBe(0);
    expect(body.rejected[0]!.errors[0]!.message).toContain("32 KB per-message limit");
    expect((await waitForArchived(`big-${run}`, 1)).map((e) => e.messageId)).toEqual([`big-${run}-1`]);
  });

  it("merges batch-level context and integrations into every item, the item's own values winning", async () => {
    const run = crypto.randomUUID();
    await track("/v1/batch", {
      context: { library: { name: "analytics-python", version: "2.3.0" }, locale: "fr-FR" },
      integrations: { All: false, Mixpanel: true },
      batch: [
        { type: "track", userId: "u", event: "A", messageId: `ctx-${run}-0` },
        { type: "track", userId: "u", event: "B", messageId: `ctx-${run}-1`, context: { locale: "de-DE" }, integrations: { Mixpanel: false } },
      ],
    });
    const archived = await waitForArchived(`ctx-${run}`, 2);
    const byId = Object.fromEntries(archived.map((e) => [e.messageId, e as { context: Record<string, unknown>; integrations: unknown }]));
    expect(byId[`ctx-${run}-0`]!.context).toMatchObject({ library: { name: "analytics-python" }, locale: "fr-FR" });
    expect(byId[`ctx-${run}-1`]!.context).toMatchObject({ library: { name: "analytics-python" }, locale: "de-DE" });
    expect(byId[`ctx-${run}-1`]!.integrations).toEqual({ All: false, Mixpanel: false });
  });

  it("accepts a gzip-compressed batch", async () => {
    const run = crypto.randomUUID();
    const json = JSON.stringify({ batch: [{ type: "track", userId: "u", event: "Zipped", messageId: `gzip-${run}` }] });
    const body = await new Response(new Blob([json]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer();
    const source = await createSource("gzip");
    const { call, basic } = await import("../helpers");
    const response = await call("/v1/batch", { method: "POST", body, headers: { "content-encoding": "gzip", authorization: basic(source.writeKey) } });
    expect(response.status).toBe(200);
    expect(await waitForArchived(`gzip-${run}`, 1)).toHaveLength(1);
  });

  it("acknowledges a retried batch and archives each message once", async () => {
    const run = crypto.randomUUID();
    const batch = { batch: Array.from({ length: 20 }, (_, i) => ({ type: "track", userId: `u${i}`, event: "Retried", messageId: `retry-${run}-${i}` })) };
    expect((await track("/v1/batch", batch)).status).toBe(200);
    await waitForArchived(`retry-${run}`, 20);
    expect((await track("/v1/batch", batch)).status).toBe(200);
    expect((await track("/v1/batch", batch)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2500));
    const archived = await waitForArchived(`retry-${run}`, 20);
    expect(archived).toHaveLength(20);
    expect(new Set(archived.map((e) => e.messageId)).size).toBe(20);
  });
});
