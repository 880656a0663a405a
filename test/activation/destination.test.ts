import { describe, expect, it } from "vitest";
import { z } from "zod";
import { destinationSchema, mailchimpDataCenter, parseDestinationWrite, publicDestination } from "../../workers/activation/destination";
import { destination, SIGNING_SECRET } from "./helpers";

/** Each issue as "path: message", the way an admin would read it. */
function problems(input: unknown): string[] {
  const result = destinationSchema.safeParse(input);
  expect(result.success).toBe(false);
  return result.error!.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
}

const webhook = { id: "d1", name: "Hook", type: "webhook", settings: { url: "https://hooks.example.com/in" }, secrets: { signingSecret: SIGNING_SECRET } };

describe("a destination configuration", () => {
  it("fills in defaults: enabled, 100 per batch, nothing subscribed, no consent categories, identify audience sync", () => {
    expect(destinationSchema.parse(webhook)).toEqual({
      ...webhook,
      settings: { url: "https://hooks.example.com/in", headers: {} },
      enabled: true,
      batchSize: 100,
      subscriptions: { events: [], audiences: [], computedTraits: [] },
      consentCategories: [],
      audienceSync: { mode: "identify", traitComputedEvent: "Trait Computed" },
    });
  });

  it("accepts every type with its own settings and secrets", () => {
    for (const type of ["webhook", "segment", "braze", "mailchimp"] as const) expect(destination(type).type).toBe(type);
  });

  it("reuses the segment language's event filters for subscriptions", () => {
    const parsed = destination("webhook", {
      subscriptions: { events: [{ type: ["track"], event: ["Order Completed"], where: [{ property: "revenue", op: "gt", value: 100 }] }], audiences: ["aud_1"], computedTraits: ["ct_1"] },
    });
    expect(parsed.subscriptions.events[0]?.where).toEqual([{ property: "revenue", op: "gt", value: 100 }]);
  });

  it("names the exact place and reason of each mistake", () => {
    expect(problems({ ...webhook, batchSize: 501 })).toEqual(["batchSize: Too big: expected number to be <=500"]);
    expect(problems({ ...webhook, batchSize: 0 })).toEqual(["batchSize: Too small: expected number to be >=1"]);
    expect(problems({ ...webhook, settings: { url: "http://hooks.example.com/in" } })).toEqual(["settings.url: must use https (http only for localhost)"]);
    expect(problems({ ...webhook, settings: { url: "https://user:pw@hooks.example.com/in" } })).toEqual(["settings.url: must not contain credentials; put them in secrets"]);
    expect(problems({ ...webhook, settings: { url: "https://hooks.example.com", headers: { "X-Signature": "forged" } } })).toEqual([
      "settings.headers.X-Signature: is set by the sender and cannot be overridden",
    ]);
    expect(problems({ ...webhook, secrets: { signingSecret: "short" } })).toEqual(["secrets.signingSecret: Too small: expected string to have >=16 characters"]);
    expect(problems({ ...webhook, consentCategories: ["ads", "ads"] })).toEqual(["consentCategories: must not repeat a category"]);
    expect(problems({ ...webhook, subscriptions: { events: [{ where: [{ property: "a..b", op: "exists" }] }] } })).toEqual([
      'subscriptions.events.0.where.0.property: must be dot-separated names, each optionally followed by [] to look inside an array, like "products[].category"',
    ]);
    expect(problems({ ...webhook, audienceSync: { mode: "email" } })[0]).toMatch(/^audienceSync\.mode: /);
  });

  it("only sends a Braze key to a Braze REST host, and a Mailchimp key that names its data center", () => {
    expect(problems({ ...webhook, type: "braze", settings: { instanceUrl: "https://evil.example.com" }, secrets: { apiKey: "k" } })).toEqual([
      "settings.instanceUrl: must be a Braze REST endpoint, like https://rest.iad-01.braze.com",
    ]);
    expect(problems({ ...webhook, type: "mailchimp", settings: { listId: "abc" }, secrets: { apiKey: "nodatacenter" } })).toEqual(["secrets.apiKey: must end with the data center, like -us6"]);
    expect(mailchimpDataCenter("0123-us21")).toBe("us21");
  });

  it("allows plain http only to a local endpoint", () => {
    expect(destination("segment", { settings: { url: "http://127.0.0.1:8787" } }).settings.url).toBe("http://127.0.0.1:8787");
  });

  it("refuses settings that belong to another type", () => {
    expect(problems({ ...webhook, type: "segment" })).toEqual(["secrets.writeKey: Invalid input: expected string, received undefined", 'secrets: Unrecognized key: "signingSecret"']);
    expect(problems({ ...webhook, type: "braze", secrets: { apiKey: "k" } })).toEqual(["settings.instanceUrl: Invalid input: expected string, received undefined", 'settings: Unrecognized key: "url"']);
  });
});

describe("secrets are write-only", () => {
  it("are marked writeOnly in the JSON schema an API document is generated from", () => {
    const json = JSON.stringify(z.toJSONSchema(destinationSchema, { io: "input" }));
    expect(json.match(/"writeOnly":true/g)?.length).toBe(4);
  });

  it("never appear in what an API returns, only the names of those that are set", () => {
    const shown = publicDestination(destination("braze"));
    expect(JSON.stringify(shown)).not.toContain("braze-key");
    expect(shown.secretsSet).toEqual(["apiKey"]);
  });

  it("are kept when an update leaves them out, and replaced when it sends them", () => {
    const stored = destination("webhook");
    const { secrets: _secrets, ...withoutSecrets } = stored;
    const kept = parseDestinationWrite({ ...withoutSecrets, name: "Renamed" }, stored);
    expect(kept.data?.name).toBe("Renamed");
    expect(kept.data?.secrets).toEqual({ signingSecret: SIGNING_SECRET });
    const replaced = parseDestinationWrite({ ...withoutSecrets, secrets: { signingSecret: "a-brand-new-secret-value" } }, stored);
    expect(replaced.data?.secrets).toEqual({ signingSecret: "a-brand-new-secret-value" });
  });

  it("must all be supplied on create and when the type changes", () => {
    const created = parseDestinationWrite({ id: "d", name: "n", type: "segment", settings: { url: "https://api.segment.io" } });
    expect(created.error?.issues.map((issue) => issue.path.join("."))).toEqual(["secrets"]);
    const retyped = parseDestinationWrite({ id: "d", name: "n", type: "segment", settings: { url: "https://api.segment.io" }, secrets: {} }, destination("webhook"));
    expect(retyped.error?.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`)).toEqual(["secrets.writeKey: Invalid input: expected string, received undefined"]);
  });
});
