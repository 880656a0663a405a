import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AudienceSyncPage, IdentityGraphShard } from "../../durable-objects/identity-graph";
import { StrongProfileReader } from "../../workers/profile-api/strong-reader";
import { CONSENT_EVENT } from "../../workers/privacy/settings";
import type { ProfileConsent } from "../../workers/profiles/consent";
import type { ProfileRow } from "../../workers/profiles/write-through";
import { admin } from "../helpers";
import { unique } from "../profiles/helpers";
import { queued } from "./object-helpers";

const stated = (who: Record<string, string>, preferences: Record<string, boolean>, minutesAgo: number) =>
  queued({ event: CONSENT_EVENT, ...who, context: { consent: { categoryPreferences: preferences } } }, minutesAgo);

const consentOf = async (stub: DurableObjectStub<IdentityGraphShard>, key: string) => ((await stub.profileByKey(key)) as ProfileRow | null)?.consent;

/** A visitor consents on the website; the same person, signed in on the app, refuses analytics; an identify then joins the two. */
async function visitorAndMember(stub: DurableObjectStub<IdentityGraphShard>) {
  const anonymousId = unique("consent-anon");
  const userId = unique("consent-user");
  const events = [
    stated({ anonymousId }, { analytics: true, advertising: true }, 50),
    queued({ type: "identify", userId, traits: { email: `${userId}@acme-shop.com` } }, 40),
    stated({ userId }, { analytics: false, functional: true }, 30),
    queued({ type: "identify", userId, anonymousId }, 20),
  ];
  const assignments = await stub.resolveEvents(events);
  return { anonymousId, userId, events, mergeId: assignments[3]!.mergeId! };
}

describe("consent in the identity object", () => {
  it("refuses a category two merged profiles stated differently, everywhere the profile is read, until the person states it again", async () => {
    const stub = env.IDENTITY.getByName("default");
    const { userId, events, mergeId } = await visitorAndMember(stub);
    expect(mergeId).toBeDefined();
    const conflicted: ProfileConsent = {
      analytics: { consented: false, at: Date.parse(events[2]!.timestamp), messageId: events[2]!.messageId, conflict: true },
      advertising: { consented: true, at: Date.parse(events[0]!.timestamp), messageId: events[0]!.messageId },
      functional: { consented: true, at: Date.parse(events[2]!.timestamp), messageId: events[2]!.messageId },
    };
    expect(await consentOf(stub, `user_id:${userId}`)).toEqual(conflicted);

    const strong = await new StrongProfileReader(stub).findUser("user_id", userId);
    expect(strong!.consent).toEqual(conflicted);
    await stub.flush();
    const row = await env.DB.prepare("SELECT profile_id, consent FROM profiles WHERE workspace_id = 'default' AND user_id = ?").bind(userId).first<{ profile_id: string; consent: string }>();
    expect(JSON.parse(row!.consent)).toEqual(conflicted);
    const graph = (await (await admin(`/admin/v1/profiles/${row!.profile_id}/graph?workspaceId=default`)).json()) as { consent: Record<string, unknown> };
    expect(graph.consent.analytics).toEqual({ consented: false, updatedAt: events[2]!.timestamp, messageId: events[2]!.messageId, conflict: true });
    expect(graph.consent.advertising).toMatchObject({ consented: true, conflict: false });

    // A statement older than both conflicting ones, arriving late, does not settle it.
    await stub.resolveEvents([stated({ userId }, { analytics: true }, 35)]);
    expect((await consentOf(stub, `user_id:${userId}`))!.analytics).toEqual(conflicted.analytics);
    const restated = stated({ userId }, { analytics: true }, 5);
    await stub.resolveEvents([restated]);
    expect(await consentOf(stub, `user_id:${userId}`)).toEqual({ ...conflicted, analytics: { consented: true, at: Date.parse(restated.timestamp), messageId: restated.messageId } });
  });

  it("gives each part of an unmerge the consent of its own statements again", async () => {
    const stub = env.IDENTITY.getByName("default");
    const { anonymousId, userId, events, mergeId } = await visitorAndMember(stub);
    const result = await stub.unmerge(mergeId);
    expect(result.ok).toBe(true);

    expect(await consentOf(stub, `anonymous_id:${anonymousId}`)).toEqual({
      analytics: { consented: true, at: Date.parse(events[0]!.timestamp), messageId: events[0]!.messageId },
      advertising: { consented: true, at: Date.parse(events[0]!.timestamp), messageId: events[0]!.messageId },
    });
    expect(await consentOf(stub, `user_id:${userId}`)).toEqual({
      analytics: { consented: false, at: Date.parse(events[2]!.timestamp), messageId: events[2]!.messageId },
      functional: { consented: true, at: Date.parse(events[2]!.timestamp), messageId: events[2]!.messageId },
    });
    await stub.flush();
    const rows = await env.DB.prepare("SELECT consent FROM profiles WHERE workspace_id = 'default' AND user_id = ?").bind(userId).all<{ consent: string }>();
    expect(rows.results.map((r) => JSON.parse(r.consent))).toEqual([{ analytics: expect.objectContaining({ consented: false }), functional: expect.objectContaining({ consented: true }) }]);
  });

  it("sends an audience sync with the member's consent, so a destination in a refused category does not receive it", async () => {
    const stub = env.IDENTITY.getByName(unique("consent-sync"));
    const customers = { id: "seg_customers", kind: "segment", key: "customers", name: "Have an email", version: 1, definition: { kind: "trait", trait: "email", op: "exists" } };
    expect((await stub.putAudience(customers)).ok).toBe(true);
    const { userId } = await visitorAndMember(stub);
    const silent = unique("no-consent");
    await stub.resolveEvents([queued({ type: "identify", userId: silent, traits: { email: `${silent}@acme-shop.com` } }, 10)]);

    const page = (await stub.audienceSyncPage("seg_customers", null, 10)) as unknown as AudienceSyncPage;
    const byUser = new Map(page.envelopes.map((e) => [e.messages[0]!.userId, e]));
    for (const message of byUser.get(userId)!.messages) expect(message.context).toMatchObject({ consent: { categoryPreferences: { analytics: false, advertising: true, functional: true } } });
    for (const message of byUser.get(silent)!.messages) expect(message.context).not.toHaveProperty("consent");
  });
});
