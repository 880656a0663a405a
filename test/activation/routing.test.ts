import { describe, expect, it } from "vitest";
import { routeActivation, routeEvent } from "../../workers/activation/routing";
import { audienceChange, computedTraitChange, consent, destination, event } from "./helpers";

const reasonOf = (dest: Parameters<typeof routeEvent>[0], fields: Record<string, unknown>) => routeEvent(dest, event(fields)).reason;

describe("consent decides first", () => {
  const ads = destination("braze", { consentCategories: ["Advertising"] });
  const adsAndAnalytics = destination("braze", { consentCategories: ["Advertising", "Analytics"] });
  const uncategorised = destination("braze", { consentCategories: [] });

  it("delivers an event with no consent object, whatever the destination's categories", () => {
    expect(reasonOf(ads, { context: {} })).toBe("delivered");
    expect(reasonOf(adsAndAnalytics, { context: { ip: "1.2.3.4" } })).toBe("delivered");
  });

  it("delivers to a destination in one category when that category is true", () => {
    expect(reasonOf(ads, { context: consent({ Advertising: true }) })).toBe("delivered");
  });

  it("filters a destination in one category when that category is false or missing", () => {
    expect(routeEvent(ads, event({ context: consent({ Advertising: false }) }))).toEqual({ reason: "filtered_consent", deliver: false, detail: "consent not granted for Advertising" });
    expect(reasonOf(ads, { context: consent({ Analytics: true }) })).toBe("filtered_consent");
    expect(reasonOf(ads, { context: { consent: {} } })).toBe("filtered_consent");
  });

  it("needs every one of several categories to be true", () => {
    expect(reasonOf(adsAndAnalytics, { context: consent({ Advertising: true, Analytics: true }) })).toBe("delivered");
    expect(routeEvent(adsAndAnalytics, event({ context: consent({ Advertising: true, Analytics: false }) })).detail).toBe("consent not granted for Analytics");
    expect(reasonOf(adsAndAnalytics, { context: consent({ Advertising: true }) })).toBe("filtered_consent");
  });

  it("always lets consent through to a destination mapped to no category", () => {
    expect(reasonOf(uncategorised, { context: consent({ Advertising: false, Analytics: false }) })).toBe("delivered");
  });

  it("is not overridden by the integrations object", () => {
    expect(reasonOf(ads, { context: consent({ Advertising: false }), integrations: { "My braze": true } })).toBe("filtered_consent");
  });
});

describe("then the integrations object", () => {
  const braze = destination("braze");

  it("delivers by default and with All: true", () => {
    expect(reasonOf(braze, { integrations: {} })).toBe("delivered");
    expect(reasonOf(braze, { integrations: { All: true } })).toBe("delivered");
  });

  it("turns everything off with All: false, unless the destination's name is true", () => {
    expect(routeEvent(braze, event({ integrations: { All: false } }))).toEqual({ reason: "filtered_integrations", deliver: false, detail: "integrations.All is false" });
    expect(reasonOf(braze, { integrations: { All: false, "My braze": true } })).toBe("delivered");
  });

  it("turns a destination off when its name is false", () => {
    expect(routeEvent(braze, event({ integrations: { "My braze": false } })).detail).toBe("integrations.My braze is false");
    expect(reasonOf(braze, { integrations: { All: true, "My braze": false } })).toBe("filtered_integrations");
  });

  it("counts an object of options as enabled, as Segment passes them to the destination", () => {
    expect(reasonOf(braze, { integrations: { All: false, "My braze": { appId: "x" } } })).toBe("delivered");
  });

  it("also knows a destination by its catalog name, its own name winning", () => {
    expect(reasonOf(braze, { integrations: { Braze: false } })).toBe("filtered_integrations");
    expect(reasonOf(braze, { integrations: { All: false, Braze: true } })).toBe("delivered");
    expect(reasonOf(braze, { integrations: { "My braze": true, Braze: false } })).toBe("delivered");
  });

  it("ignores entries that are neither a boolean nor an object", () => {
    expect(reasonOf(braze, { integrations: { All: false, "My braze": "yes" } })).toBe("filtered_integrations");
  });
});

describe("then the destination's subscriptions", () => {
  const bigOrders = destination("webhook", { subscriptions: { events: [{ type: ["track"], event: "Order Completed", where: [{ property: "revenue", op: "gte", value: 100 }] }] } });

  it("delivers an event that matches a filter, by type, name and properties", () => {
    expect(reasonOf(bigOrders, { properties: { revenue: 150 } })).toBe("delivered");
    expect(routeEvent(bigOrders, event({ properties: { revenue: 20 } }))).toEqual({ reason: "not_subscribed", deliver: false, detail: "no event subscription matches" });
    expect(reasonOf(bigOrders, { event: "Product Viewed", properties: { revenue: 150 } })).toBe("not_subscribed");
    expect(reasonOf(bigOrders, { type: "page", name: "Order Completed", properties: { revenue: 150 } })).toBe("not_subscribed");
  });

  it("tests an identify's traits with where", () => {
    const withEmail = destination("webhook", { subscriptions: { events: [{ type: ["identify"], where: [{ property: "email", op: "exists" }] }] } });
    expect(reasonOf(withEmail, { type: "identify", traits: { email: "a@example.com" } })).toBe("delivered");
    expect(reasonOf(withEmail, { type: "identify", traits: { plan: "pro" } })).toBe("not_subscribed");
  });

  it("receives no events with no event subscription, and nothing at all when disabled", () => {
    expect(reasonOf(destination("webhook", { subscriptions: {} }), {})).toBe("not_subscribed");
    expect(routeEvent(destination("webhook", { enabled: false }), event()).detail).toBe("destination is disabled");
  });
});

describe("audience and computed-trait changes", () => {
  const decisions = (dest: Parameters<typeof routeActivation>[0], envelope: Parameters<typeof routeActivation>[1]) =>
    routeActivation(dest, envelope).map(({ message, decision }) => [message.type, (message as { event?: string }).event ?? null, decision.reason, decision.detail]);

  it("sends only the identify in identify mode", () => {
    const dest = destination("braze", { subscriptions: { audiences: ["aud_vip"] } });
    expect(decisions(dest, audienceChange(true))).toEqual([
      ["identify", null, "delivered", "delivered"],
      ["track", "Audience Entered", "not_subscribed", "audience sync mode is identify"],
    ]);
  });

  it("sends both calls in both mode, and only the track in track mode", () => {
    const both = destination("braze", { subscriptions: { audiences: ["aud_vip"] }, audienceSync: { mode: "both" } });
    expect(decisions(both, audienceChange(false)).map((row) => row[2])).toEqual(["delivered", "delivered"]);
    const track = destination("braze", { subscriptions: { audiences: ["aud_vip"] }, audienceSync: { mode: "track" } });
    expect(decisions(track, audienceChange(false)).map((row) => row.slice(0, 3))).toEqual([
      ["identify", null, "not_subscribed"],
      ["track", "Audience Exited", "delivered"],
    ]);
  });

  it("only sends changes of subscribed audiences, listed under their own kind", () => {
    expect(decisions(destination("braze"), audienceChange(true))[0]?.slice(2)).toEqual(["not_subscribed", "not subscribed to audience aud_vip"]);
    expect(decisions(destination("braze", { subscriptions: { computedTraits: ["aud_vip"] } }), audienceChange(true))[0]?.[2]).toBe("not_subscribed");
  });

  it("adds Segment's Trait Computed track for a computed trait in track mode", () => {
    const dest = destination("braze", { subscriptions: { computedTraits: ["ct_ltv"] }, audienceSync: { mode: "track" } });
    const routed = routeActivation(dest, computedTraitChange(1234.5));
    expect(routed.map(({ decision }) => decision.reason)).toEqual(["not_subscribed", "delivered"]);
    expect(routed[1]?.message).toEqual({
      type: "track",
      messageId: "personas_ct_ltv_prof_1_8_track",
      timestamp: "2026-11-22T10:00:00.000Z",
      userId: "u1",
      event: "Trait Computed",
      properties: { trait_key: "lifetime_value", lifetime_value: 1234.5 },
      context: { personas: { computation_class: "computed_trait", computation_id: "ct_ltv", computation_key: "lifetime_value", space_id: "ws_1" } },
    });
  });

  it("uses the destination's own name for the computed-trait event", () => {
    const dest = destination("braze", { subscriptions: { computedTraits: ["ct_ltv"] }, audienceSync: { mode: "both", traitComputedEvent: "LTV Changed" } });
    expect(decisions(dest, computedTraitChange(1)).map((row) => row.slice(0, 3))).toEqual([
      ["identify", null, "delivered"],
      ["track", "LTV Changed", "delivered"],
    ]);
  });
});
