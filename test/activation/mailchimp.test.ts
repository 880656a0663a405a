import { describe, expect, it } from "vitest";
import { formatBatch, formatDeletion } from "../../workers/activation/formatters";
import { md5Hex, subscriberHash } from "../../workers/activation/md5";
import { routeActivation } from "../../workers/activation/routing";
import { audienceChange, bodyOf, computedTraitChange, destination, event, NOW } from "./helpers";

const mailchimp = destination("mailchimp");
const format = async (messages: Record<string, unknown>[], dest = mailchimp) => formatBatch(dest, messages, { now: NOW });
const auth = `Basic ${btoa("edge-cdp:0123456789abcdef0123456789abcdef-us6")}`;
/** The subscriber hash Mailchimp's own documentation gives for this address. */
const URIST = "62eeb292278cc15f5817cb78f7790b08";
const memberUrl = `https://us6.api.mailchimp.com/3.0/lists/abc123/members/${URIST}`;

describe("the subscriber hash", () => {
  it("is the MD5 of the lowercased email, matching Mailchimp's documented example", () => {
    expect(subscriberHash("Urist.McVankab@freddiesjokes.com ")).toBe(URIST);
  });

  it("uses a correct MD5: RFC 1321's test suite, multi-block input and UTF-8", () => {
    expect(md5Hex("")).toBe("d41d8cd98f00b204e9800998ecf8427e");
    expect(md5Hex("a")).toBe("0cc175b9c0f1b6a831c399e269772661");
    expect(md5Hex("abc")).toBe("900150983cd24fb0d6963f7d28e17f72");
    expect(md5Hex("message digest")).toBe("f96b697d7cb7938d525a2f31aaf161d0");
    expect(md5Hex("abcdefghijklmnopqrstuvwxyz")).toBe("c3fcd3d76192e4007dfb496cca67e13b");
    expect(md5Hex("12345678901234567890123456789012345678901234567890123456789012345678901234567890")).toBe("57edf4a22be3c955ac49da2e2107b67a");
    expect(md5Hex("x".repeat(1000))).toBe("398533d48111e9f664b1f64cb10c4b63");
    expect(subscriberHash("Ünïcødé@Example.com")).toBe("389df17771096c746bbfdddcd33df4c8");
  });

  it("agrees with workerd's own MD5 at every padding boundary", async () => {
    for (let length = 0; length <= 130; length++) {
      const bytes = Uint8Array.from({ length }, (_, index) => (index * 31 + length) & 0xff);
      const digest = await crypto.subtle.digest("MD5", bytes);
      expect(md5Hex(bytes), `length ${length}`).toBe(Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join(""));
    }
  });
});

describe("Mailchimp member requests", () => {
  it("upsert an identified person with PUT …/members/{hash}, new members pending, names in merge fields", async () => {
    const identify = event({ type: "identify", traits: { email: "urist.mcvankab@freddiesjokes.com", firstName: "Urist", last_name: "McVankab", plan: "pro" } });
    expect(await format([identify])).toEqual({
      requests: [
        {
          method: "PUT",
          url: memberUrl,
          headers: { "Content-Type": "application/json", Authorization: auth },
          body: JSON.stringify({ email_address: "urist.mcvankab@freddiesjokes.com", status_if_new: "pending", merge_fields: { FNAME: "Urist", LNAME: "McVankab" } }),
          messageIds: ["m-1"],
        },
      ],
      skipped: [],
    });
  });

  it("write configured traits and computed traits to their merge fields, and the chosen status for new members", async () => {
    const dest = destination("mailchimp", { settings: { listId: "abc123", statusIfNew: "subscribed", mergeFields: { plan: "PLAN", lifetime_value: "LTV" } } });
    const [plan] = (await format([event({ type: "identify", traits: { email: "u@example.com", plan: "pro" } })], dest)).requests;
    expect(bodyOf(plan!)).toEqual({ email_address: "u@example.com", status_if_new: "subscribed", merge_fields: { PLAN: "pro" } });
    const change = computedTraitChange(99).messages.map((message) => ({ ...message, context: { ...(message.context as object), traits: { email: "u@example.com" } } }));
    expect(bodyOf((await format(change, dest)).requests[0]!)).toEqual({ email_address: "u@example.com", status_if_new: "subscribed", merge_fields: { LTV: 99 } });
  });

  it("tag a member active on audience entry, after upserting them, once even when both calls arrive", async () => {
    const dest = destination("mailchimp", { subscriptions: { audiences: ["aud_vip"] }, audienceSync: { mode: "both" } });
    const withEmail = (message: Record<string, unknown>) => ({ ...message, context: { ...(message.context as object), traits: { email: "Urist.McVankab@freddiesjokes.com" } } });
    const messages = routeActivation(dest, audienceChange(true)).map(({ message }) => withEmail(message));
    const { requests, skipped } = await format(messages, dest);
    expect(requests.map(({ method, url }) => `${method} ${url}`)).toEqual([`PUT ${memberUrl}`, `POST ${memberUrl}/tags`]);
    expect(bodyOf(requests[0]!)).toEqual({ email_address: "Urist.McVankab@freddiesjokes.com", status_if_new: "pending" });
    expect(bodyOf(requests[1]!)).toEqual({ tags: [{ name: "vip_customers", status: "active" }] });
    expect(skipped).toEqual([{ messageId: "personas_aud_vip_prof_1_7_track", reason: "same audience change as personas_aud_vip_prof_1_7_identify" }]);
  });

  it("tag a member inactive on audience exit, from the Audience Exited track alone", async () => {
    const [, track] = audienceChange(false).messages;
    const { requests } = await format([{ ...track!, context: { ...(track!.context as object), traits: { email: "a@example.com" } } }]);
    expect(bodyOf(requests[1]!)).toEqual({ tags: [{ name: "vip_customers", status: "inactive" }] });
  });

  it("skip messages without an email, and calls that are not identify or an audience change", async () => {
    const { requests, skipped } = await format([...audienceChange(true).messages.slice(0, 1), event({ messageId: "t" })]);
    expect(requests).toEqual([]);
    expect(skipped).toEqual([
      { messageId: "personas_aud_vip_prof_1_7_identify", reason: "no email to find the Mailchimp member by" },
      { messageId: "t", reason: "Mailchimp receives identify calls and audience changes, not track" },
    ]);
  });
});

describe("Mailchimp deletion", () => {
  it("POST …/members/{hash}/actions/delete-permanent, with no body, for each email", async () => {
    const { requests } = await formatDeletion(mailchimp, { requestId: "del_1", emails: ["Urist.McVankab@freddiesjokes.com", "urist.mcvankab@freddiesjokes.com"] }, { now: NOW });
    expect(requests).toEqual([{ method: "POST", url: `${memberUrl}/actions/delete-permanent`, headers: { Authorization: auth }, body: null, messageIds: ["del_1"] }]);
  });

  it("cannot find a person without an email", async () => {
    expect((await formatDeletion(mailchimp, { requestId: "d", userId: "u1" }, { now: NOW })).unsupported).toMatch(/by email/);
  });
});
