import { describe, expect, it } from "vitest";
import { formatBatch, formatDeletion } from "../../workers/activation/formatters";
import { routeActivation } from "../../workers/activation/routing";
import { audienceChange, bodyOf, computedTraitChange, destination, event, NOW } from "./helpers";

const braze = destination("braze");
const format = async (messages: Record<string, unknown>[], dest = braze) => formatBatch(dest, messages, { now: NOW });
const headers = { "Content-Type": "application/json", Authorization: "Bearer braze-key" };

describe("Braze /users/track requests", () => {
  it("turn an identify into an attributes object, reserved traits renamed to Braze's standard attributes", async () => {
    const identify = event({
      type: "identify",
      traits: {
        email: "ada@example.com",
        firstName: "Ada",
        last_name: "Lovelace",
        phone: "+447700900000",
        gender: "Female",
        birthday: "1990-04-01T00:00:00.000Z",
        avatar: "https://example.com/ada.png",
        address: { city: "London", country: "GB" },
        plan: "pro",
        logins: 3,
      },
    });
    expect(await format([identify])).toEqual({
      requests: [
        {
          method: "POST",
          url: "https://rest.iad-01.braze.com/users/track",
          headers,
          body: JSON.stringify({
            attributes: [
              {
                external_id: "u1",
                email: "ada@example.com",
                first_name: "Ada",
                last_name: "Lovelace",
                phone: "+447700900000",
                gender: "F",
                dob: "1990-04-01",
                image_url: "https://example.com/ada.png",
                home_city: "London",
                country: "GB",
                plan: "pro",
                logins: 3,
              },
            ],
          }),
          messageIds: ["m-1"],
        },
      ],
      skipped: [],
    });
  });

  it("turn a track into an event with its name, time and properties, and the app id when set", async () => {
    const withApp = destination("braze", { settings: { instanceUrl: "https://rest.fra-01.braze.eu", appId: "app-1" } });
    const { requests } = await format([event()], withApp);
    expect(requests[0]!.url).toBe("https://rest.fra-01.braze.eu/users/track");
    expect(bodyOf(requests[0]!)).toEqual({ events: [{ external_id: "u1", name: "Order Completed", time: "2026-11-22T09:59:58.000Z", app_id: "app-1", properties: { revenue: 42.5 } }] });
  });

  it("name an anonymous person by an alias, and create that alias-only profile alongside the event", async () => {
    const { requests } = await format([event({ userId: undefined, anonymousId: "anon-1" })]);
    const alias = { alias_name: "anon-1", alias_label: "anonymous_id" };
    expect(bodyOf(requests[0]!)).toEqual({
      attributes: [{ user_alias: alias, _update_existing_only: false }],
      events: [{ user_alias: alias, name: "Order Completed", time: "2026-11-22T09:59:58.000Z", properties: { revenue: 42.5 } }],
    });
  });

  it("record a group as the custom attribute ab_segment_group_<groupId>, as Segment does", async () => {
    const { requests } = await format([event({ type: "group", groupId: "acme", traits: { name: "Acme" } })]);
    expect(bodyOf(requests[0]!)).toEqual({ attributes: [{ external_id: "u1", ab_segment_group_acme: true }] });
  });

  it("skip what Braze cannot take, with the reason", async () => {
    const { requests, skipped } = await format([event({ messageId: "p", type: "page", name: "Home" }), event({ messageId: "n", userId: undefined })]);
    expect(requests).toEqual([]);
    expect(skipped).toEqual([
      { messageId: "p", reason: "Braze receives identify, track and group calls, not page" },
      { messageId: "n", reason: "no userId or anonymousId to name the Braze user" },
    ]);
  });

  it("send an audience entry as a true custom attribute and an Audience Entered event", async () => {
    const dest = destination("braze", { subscriptions: { audiences: ["aud_vip"] }, audienceSync: { mode: "both" } });
    const messages = routeActivation(dest, audienceChange(true)).filter(({ decision }) => decision.deliver).map(({ message }) => message);
    const { requests } = await format(messages, dest);
    expect(requests).toHaveLength(1);
    expect(bodyOf(requests[0]!)).toEqual({
      attributes: [{ external_id: "u1", vip_customers: true }],
      events: [{ external_id: "u1", name: "Audience Entered", time: "2026-11-22T10:00:00.000Z", properties: { audience_key: "vip_customers", vip_customers: true } }],
    });
    expect(requests[0]!.messageIds).toEqual(["personas_aud_vip_prof_1_7_identify", "personas_aud_vip_prof_1_7_track"]);
  });

  it("send a computed trait as a custom attribute with its new value", async () => {
    const { requests } = await format(computedTraitChange(1234.5).messages);
    expect(bodyOf(requests[0]!)).toEqual({ attributes: [{ external_id: "u1", lifetime_value: 1234.5 }] });
  });

  it("split at Braze's limit of 75 events (or attributes) per request", async () => {
    const { requests } = await format(Array.from({ length: 80 }, (_, index) => event({ messageId: `m${index}` })));
    expect(requests.map((request) => (bodyOf(request).events as unknown[]).length)).toEqual([75, 5]);
    expect(requests[1]!.messageIds).toEqual(["m75", "m76", "m77", "m78", "m79"]);
  });
});

describe("Braze deletion", () => {
  it("POST /users/delete with the external id and every anonymous alias", async () => {
    const { requests } = await formatDeletion(braze, { requestId: "del_1", userId: "u1", anonymousIds: ["anon-1"] }, { now: NOW });
    expect(requests).toEqual([
      {
        method: "POST",
        url: "https://rest.iad-01.braze.com/users/delete",
        headers,
        body: JSON.stringify({ external_ids: ["u1"], user_aliases: [{ alias_name: "anon-1", alias_label: "anonymous_id" }] }),
        messageIds: ["del_1"],
      },
    ]);
  });

  it("splits at 50 identifiers per request, and says when there is nothing to delete by", async () => {
    const many = await formatDeletion(braze, { requestId: "d", userId: "u1", anonymousIds: Array.from({ length: 60 }, (_, index) => `a${index}`) }, { now: NOW });
    expect(many.requests.map((request) => JSON.stringify(bodyOf(request)).match(/alias_name|"u1"/g)?.length)).toEqual([50, 11]);
    expect((await formatDeletion(braze, { requestId: "d", emails: ["a@example.com"] }, { now: NOW })).unsupported).toMatch(/no userId or anonymousId/);
  });
});
