import { describe, expect, it } from "vitest";
import { missingConsent } from "../../workers/activation/routing";
import type { QueuedEvent } from "../../workers/intake/envelope";
import { CONSENT_EVENT } from "../../workers/privacy/settings";
import { applyStatement, type ConsentStatement, categoryPreferences, consentFrom, consentStatementOf, mergeConsent } from "../../workers/profiles/consent";
import { activationEnvelope } from "../../workers/segments/activation";

const T0 = Date.UTC(2026, 10, 1, 12);
const statement = (messageId: string, minute: number, categoryPreferences: Record<string, boolean>): ConsentStatement => ({ messageId, at: T0 + minute * 60_000, categoryPreferences });

const consentEvent = (fields: Record<string, unknown>): QueuedEvent =>
  ({ type: "track", event: CONSENT_EVENT, messageId: "m1", receivedAt: new Date(T0).toISOString(), timestamp: new Date(T0).toISOString(), context: {}, integrations: {}, ...fields }) as QueuedEvent;

describe("a profile's consent", () => {
  it("is stated only by the consent event's categoryPreferences", () => {
    expect(consentStatementOf(consentEvent({ context: { consent: { categoryPreferences: { analytics: true, advertising: false } } } }))).toEqual({
      messageId: "m1",
      at: T0,
      categoryPreferences: { analytics: true, advertising: false },
    });
    expect(consentStatementOf(consentEvent({ event: "Order Completed", context: { consent: { categoryPreferences: { analytics: true } } } }))).toBeNull();
    expect(consentStatementOf(consentEvent({ context: {} }))).toBeNull();
    expect(consentStatementOf(consentEvent({ type: "identify", context: { consent: { categoryPreferences: { analytics: true } } } }))).toBeNull();
  });

  it("takes the latest statement per category, whatever order they arrive in", () => {
    const statements = [statement("a", 1, { analytics: true, advertising: true }), statement("b", 5, { advertising: false }), statement("c", 3, { analytics: false })];
    const expected = {
      analytics: { consented: false, at: T0 + 3 * 60_000, messageId: "c" },
      advertising: { consented: false, at: T0 + 5 * 60_000, messageId: "b" },
    };
    expect(consentFrom(statements)).toEqual(expected);
    expect(consentFrom([...statements].reverse())).toEqual(expected);
    expect(consentFrom([statements[1]!, statements[0]!, statements[2]!])).toEqual(expected);
  });

  it("breaks a tie in time by the larger messageId, so every replay agrees", () => {
    const tie = [statement("m-a", 1, { analytics: false }), statement("m-b", 1, { analytics: true })];
    expect(consentFrom(tie).analytics!.consented).toBe(true);
    expect(consentFrom([...tie].reverse()).analytics!.consented).toBe(true);
  });

  it("refuses a category two merged profiles stated differently and marks the conflict, keeping the rest", () => {
    const pat = consentFrom([statement("p", 1, { analytics: true, advertising: true, functional: true })]);
    const device = consentFrom([statement("d", 2, { analytics: false, advertising: true, personalization: false })]);
    const merged = mergeConsent(pat, device);
    expect(merged).toEqual({
      analytics: { consented: false, at: T0 + 2 * 60_000, messageId: "d", conflict: true },
      advertising: { consented: true, at: T0 + 2 * 60_000, messageId: "d" },
      functional: { consented: true, at: T0 + 60_000, messageId: "p" },
      personalization: { consented: false, at: T0 + 2 * 60_000, messageId: "d" },
    });
    expect(mergeConsent(device, pat)).toEqual(merged);
  });

  it("keeps a conflict through a further merge, even with a side that consented", () => {
    const conflicted = mergeConsent(consentFrom([statement("p", 1, { analytics: true })]), consentFrom([statement("d", 2, { analytics: false })]));
    const third = consentFrom([statement("t", 9, { analytics: true })]);
    expect(mergeConsent(conflicted, third).analytics).toMatchObject({ consented: false, conflict: true });
  });

  it("clears a conflict for the categories a later statement names, and only those", () => {
    const conflicted = mergeConsent(consentFrom([statement("p", 1, { analytics: true, advertising: true })]), consentFrom([statement("d", 2, { analytics: false, advertising: false })]));
    const earlier = applyStatement(conflicted, statement("old", 0, { analytics: true }));
    expect(earlier.analytics).toMatchObject({ conflict: true, consented: false });
    const later = applyStatement(conflicted, statement("new", 10, { analytics: true }));
    expect(later.analytics).toEqual({ consented: true, at: T0 + 10 * 60_000, messageId: "new" });
    expect(later.advertising).toMatchObject({ consented: false, conflict: true });
  });
});

describe("audience activations", () => {
  const change = { audience: { id: "seg_1", key: "big_spenders", kind: "segment" as const }, profileId: "prof_1", at: T0, seq: 3, entered: true };

  it("carry the profile's consent, so delivery withholds them from destinations in a refused category", () => {
    const consent = mergeConsent(consentFrom([statement("p", 1, { analytics: true, advertising: true })]), consentFrom([statement("d", 2, { advertising: false })]));
    const envelope = activationEnvelope("ws_1", change, { userId: "u1", anonymousId: null, categoryPreferences: categoryPreferences(consent) });
    expect(envelope.messages).toHaveLength(2);
    for (const message of envelope.messages) {
      expect(message.context).toMatchObject({ consent: { categoryPreferences: { analytics: true, advertising: false } } });
      expect(missingConsent(["advertising"], message.context)).toEqual(["advertising"]);
      expect(missingConsent(["analytics"], message.context)).toEqual([]);
    }
  });

  it("carry no consent for a profile that never stated any, as an event without consent", () => {
    const envelope = activationEnvelope("ws_1", change, { userId: "u1", anonymousId: null, categoryPreferences: {} });
    expect(envelope.messages.every((m) => !("consent" in (m.context as object)))).toBe(true);
    expect(missingConsent(["advertising"], envelope.messages[0]!.context)).toEqual([]);
  });
});
