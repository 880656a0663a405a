import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { extractIdentifiers } from "../../workers/identity/extract";
import { IdentityGraph } from "../../workers/identity/graph";
import { applyEvent } from "../../workers/identity/resolve";
import { DEFAULT_IDENTITY_SETTINGS } from "../../workers/identity/settings";
import type { QueuedEvent } from "../../workers/intake/envelope";
import { admin, track } from "../helpers";
import { shuffle, smallPopulationMessages } from "./small-population";

const partitionOf = (clusters: string[][]) => clusters.map((keys) => [...keys].sort().join(",")).sort();

describe("identity under concurrency", () => {
  it("ends in the same clusters as applying the same events one at a time, whatever the arrival order", async () => {
    const workspaceId = `conc-${crypto.randomUUID().slice(0, 8)}`;
    await admin("/admin/v1/workspaces", { method: "POST", json: { id: workspaceId, name: "Concurrency" } });
    const { writeKey } = (await (await admin("/admin/v1/sources", { method: "POST", json: { workspaceId, name: "load" } })).json()) as { writeKey: string };

    const events = smallPopulationMessages(11);
    const batches: Record<string, unknown>[][] = [];
    const shuffled = shuffle(events, 5);
    for (let i = 0; i < shuffled.length; i += 10) batches.push(shuffled.slice(i, i + 10));
    const responses = await Promise.all(batches.map((batch) => track("/v1/batch", { batch }, writeKey)));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    // A client retry of a third of the batches, at the same time: deduplicated, so it changes nothing.
    await Promise.all(batches.filter((_, i) => i % 3 === 0).map((batch) => track("/v1/batch", { batch }, writeKey)));

    const stub = env.IDENTITY.getByName(workspaceId);
    const deadline = Date.now() + 20_000;
    while ((await stub.appliedEvents()) < events.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await stub.appliedEvents()).toBe(events.length);
    const { profiles } = await stub.listProfiles(null, 1_000);

    const reference = new IdentityGraph();
    for (const [n, message] of events.entries()) {
      const event = { ...message, timestamp: new Date(0).toISOString(), receivedAt: "", context: {}, integrations: {} } as unknown as QueuedEvent;
      applyEvent(reference, DEFAULT_IDENTITY_SETTINGS, { messageId: event.messageId, at: n, identifiers: extractIdentifiers(event, DEFAULT_IDENTITY_SETTINGS).identifiers });
    }
    const expected = partitionOf(reference.liveClusters().map((c) => [...c.identifiers.keys()]));
    expect(partitionOf(profiles.map((p) => p.identifiers.map((i) => `${i.type}:${i.value}`)))).toEqual(expected);
    expect(expected.length).toBeGreaterThanOrEqual(40);
  });
});
