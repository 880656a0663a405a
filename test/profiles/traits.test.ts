import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../workers/intake/envelope";
import { accountTraitsOf, applyWrites, coreAttributes, groupIdOf, type TraitState, toWrites, traitValues, userTraitsOf, wins } from "../../workers/profiles/traits";

const event = (fields: Partial<QueuedEvent> & Record<string, unknown>): QueuedEvent =>
  ({ type: "identify", messageId: "m", receivedAt: "2026-01-01T00:00:00.000Z", timestamp: "2026-01-01T00:00:00.000Z", context: {}, integrations: {}, ...fields }) as QueuedEvent;

describe("trait last-write-wins", () => {
  it("keeps the write with the later timestamp whatever the arrival order", () => {
    const later = toWrites({ plan: "pro" }, 2_000, "m-a", "src");
    const earlier = toWrites({ plan: "free" }, 1_000, "m-b", "src");
    const inOrder = traitValues(applyWrites(new Map(), [...earlier, ...later]).values());
    const reversed = traitValues(applyWrites(new Map(), [...later, ...earlier]).values());
    expect(inOrder).toEqual({ plan: "pro" });
    expect(reversed).toEqual({ plan: "pro" });
  });

  it("breaks a timestamp tie by the larger messageId, so every replay picks the same winner", () => {
    expect(wins({ at: 5, messageId: "b" }, { at: 5, messageId: "a" })).toBe(true);
    expect(wins({ at: 5, messageId: "a" }, { at: 5, messageId: "b" })).toBe(false);
    const state: TraitState = new Map();
    applyWrites(state, toWrites({ tier: "gold" }, 5, "b", null));
    applyWrites(state, toWrites({ tier: "silver" }, 5, "a", null));
    expect(traitValues(state.values())).toEqual({ tier: "gold" });
  });

  it("treats each top-level trait on its own and replaces a nested object whole", () => {
    const state: TraitState = new Map();
    applyWrites(state, toWrites({ address: { city: "Paris", zip: "75001" }, plan: "free" }, 1, "m1", null));
    applyWrites(state, toWrites({ address: { city: "Lyon" } }, 2, "m2", null));
    expect(traitValues(state.values())).toEqual({ address: { city: "Lyon" }, plan: "free" });
  });

  it("keeps null as a written value and drops undefined", () => {
    expect(traitValues(applyWrites(new Map(), toWrites({ nickname: null, gone: undefined }, 1, "m", null)).values())).toEqual({ nickname: null });
  });
});

describe("which traits an event writes", () => {
  it("counts context.traits on any event and lets an identify's own traits win within the event", () => {
    expect(userTraitsOf(event({ traits: { plan: "pro", email: "a@x.io" }, context: { traits: { plan: "free", locale: "fr" } } }))).toEqual({ plan: "pro", email: "a@x.io", locale: "fr" });
    expect(userTraitsOf(event({ type: "track", event: "Signed In", context: { traits: { plan: "free" } } }))).toEqual({ plan: "free" });
  });

  it("reads a group call's traits as the account's, not the person's", () => {
    const group = event({ type: "group", groupId: "org-1", traits: { name: "Acme" }, context: { traits: { role: "admin" } } });
    expect(userTraitsOf(group)).toEqual({ role: "admin" });
    expect(accountTraitsOf(group)).toEqual({ name: "Acme" });
    expect(groupIdOf(group)).toBe("org-1");
    expect(groupIdOf(event({ type: "track", groupId: "org-1" }))).toBeUndefined();
  });
});

describe("typed profile columns", () => {
  it("takes reserved traits in either spelling and splits a lone name", () => {
    expect(coreAttributes({ firstName: "Ada", last_name: "Lovelace", email: " Ada@X.io " }, [])).toMatchObject({ firstName: "Ada", lastName: "Lovelace", email: "ada@x.io" });
    expect(coreAttributes({ name: "Grace Brewster Hopper" }, [])).toMatchObject({ firstName: "Grace", lastName: "Brewster Hopper" });
  });

  it("uses the most recently seen identifier when traits do not say", () => {
    const ids = [
      { type: "user_id", value: "old", lastSeen: 1 },
      { type: "user_id", value: "new", lastSeen: 2 },
      { type: "email", value: "a@x.io", lastSeen: 1 },
    ];
    expect(coreAttributes({}, ids)).toMatchObject({ userId: "new", email: "a@x.io", firstName: null, lastName: null });
  });
});
