import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AudienceEngine } from "../../durable-objects/audience-engine";
import type { GraphStore } from "../../durable-objects/graph-store";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import type { ProfileStore } from "../../durable-objects/profile-store";
import { profileRow, profileRows } from "../../durable-objects/profile-views";
import type { QueuedEvent } from "../../workers/intake/envelope";
import { CONSENT_EVENT } from "../../workers/privacy/settings";
import { unique } from "./helpers";

const at = (minute: number) => new Date(Date.UTC(2026, 10, 1, 12, minute)).toISOString();
const event = (fields: Record<string, unknown>): QueuedEvent =>
  ({ type: "identify", receivedAt: at(0), timestamp: at(0), context: {}, integrations: {}, ...fields }) as QueuedEvent;

describe("profile rows read together", () => {
  it("gives each of many profiles only its own traits, latest event, account links and consent, and an absorbed one its survivor", async () => {
    const stub = env.IDENTITY.getByName(unique("rows-ws"));
    const [ada, bo, anon] = [unique("ada"), unique("bo"), unique("anon")];
    await runInDurableObject(stub, async (instance: IdentityGraphShard) => {
      const [adaFirst, , , boFirst, anonFirst] = instance.resolveEvents([
        event({ messageId: `${ada}-1`, userId: ada, timestamp: at(1), traits: { plan: "pro" } }),
        event({ messageId: `${ada}-2`, type: "group", userId: ada, groupId: "acme", timestamp: at(2), traits: { name: "Acme" } }),
        event({ messageId: `${ada}-3`, type: "track", event: CONSENT_EVENT, userId: ada, timestamp: at(3), context: { consent: { categoryPreferences: { analytics: false } } } }),
        event({ messageId: `${bo}-1`, userId: bo, timestamp: at(4), traits: { plan: "free", seats: 2 } }),
        event({ messageId: `${anon}-1`, type: "page", name: "Home", anonymousId: anon, timestamp: at(5) }),
      ]);
      // The anonymous visitor logs in as Ada: one of the two profiles is absorbed into the other.
      const [login] = instance.resolveEvents([event({ messageId: `${anon}-2`, userId: ada, anonymousId: anon, timestamp: at(6) })]);
      const { graphs, store, audiences } = instance as unknown as { graphs: GraphStore; store: ProfileStore; audiences: AudienceEngine };
      const graph = graphs.graph();
      const survivor = login!.profileId!;
      const absorbed = [adaFirst!.profileId!, anonFirst!.profileId!].find((id) => id !== survivor)!;
      const ids = [survivor, boFirst!.profileId!, absorbed, "prof_nobody"];

      const rows = profileRows(graph, store, audiences, ids, 1_000, new Set([survivor, boFirst!.profileId!]));

      expect(rows.map((r) => r.profileId)).toEqual([survivor, boFirst!.profileId, absorbed]);
      const [adaRow, boRow, absorbedRow] = rows;
      expect(adaRow).toMatchObject({ canonicalId: null, userId: ada, traits: { plan: "pro" }, lastMessageId: `${anon}-2`, links: [{ groupId: "acme", at: Date.parse(at(2)) }] });
      expect(adaRow!.consent).toMatchObject({ analytics: { consented: false, messageId: `${ada}-3` } });
      expect(boRow).toMatchObject({ userId: bo, traits: { plan: "free", seats: 2 }, lastMessageId: `${bo}-1`, links: [], consent: {} });
      expect(absorbedRow).toMatchObject({ canonicalId: survivor, traits: {}, identifiers: [], lastMessageId: null });
      // The same rows as reading each profile alone.
      for (const row of rows) expect(row).toEqual(profileRow(graph, store, audiences, row.profileId, 1_000));
    });
  });

  it("reads identifiers and account links only for profiles whose membership may have changed", async () => {
    const stub = env.IDENTITY.getByName(unique("rows-ws"));
    const userId = unique("cy");
    await runInDurableObject(stub, async (instance: IdentityGraphShard) => {
      const [assignment] = instance.resolveEvents([event({ messageId: `${userId}-1`, type: "group", userId, groupId: "acme", timestamp: at(1) })]);
      const { graphs, store, audiences } = instance as unknown as { graphs: GraphStore; store: ProfileStore; audiences: AudienceEngine };
      const id = assignment!.profileId!;
      const [without] = profileRows(graphs.graph(), store, audiences, [id], 1_000, new Set());
      const [withMembership] = profileRows(graphs.graph(), store, audiences, [id], 1_000, new Set([id]));
      expect(without).toMatchObject({ identifiers: null, links: null, lastMessageId: `${userId}-1` });
      expect(withMembership).toMatchObject({ identifiers: [{ type: "user_id", value: userId }], links: [{ groupId: "acme" }] });
    });
  });
});
