import { Analytics, type GroupParams, type IdentifyParams, type PageParams, type TrackParams } from "@segment/analytics-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalServer } from "../../scripts/local-server.mjs";
import { basicAuth, startE2eServer } from "./server";

/**
 * Segment compatibility of the Profile API: what the real `@segment/analytics-node`
 * sends comes back from `/v1/spaces/{space}/collections/{collection}/profiles/{type}:{value}/…`
 * exactly as sent, whichever identifier the profile is looked up by.
 */

// Unique per run, so a rerun against persisted state never sees an earlier run's people.
const RUN = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
const USER_ID = `pa-user-${RUN}`;
const ANONYMOUS_ID = `pa-anon-${RUN}`;
// Not example.com: reserved and role addresses are refused as identifiers (workers/identity/blocked.ts).
const EMAIL = `pat.jones.${RUN}@northwind-traders.io`;
const CRM_ID = `crm-${RUN}`;
const GROUP_ID = `pa-account-${RUN}`;
const SOURCE_ID = "src_default"; // the seeded source of the dev write key
const mid = (name: string) => `pa-${RUN}-${name}`;

/** Every lookup that must find the one profile: each identifier it holds, email in any case. */
const LOOKUPS: [label: string, type: string, value: string][] = [
  ["user_id", "user_id", USER_ID],
  ["email", "email", EMAIL],
  ["email in upper case", "email", EMAIL.toUpperCase()],
  ["email in mixed case", "email", `Pat.Jones.${RUN}@Northwind-Traders.IO`],
  ["anonymous_id", "anonymous_id", ANONYMOUS_ID],
  ["crm_id (a custom external id)", "crm_id", CRM_ID],
];

/** Explicit timestamps a minute apart, two hours ago: the order is the sender's, not the arrival's. */
const T0 = Math.floor((Date.now() - 2 * 3_600_000) / 1000) * 1000;
const at = (minute: number) => new Date(T0 + minute * 60_000);

const FIRST_TRAITS = {
  email: EMAIL,
  first_name: "Pat",
  last_name: "Jones",
  plan: "free",
  logins: 3,
  address: { street: "1 Main Street", city: "Springfield", postalCode: "12345", country: "US" },
};
const SECOND_TRAITS = { plan: "pro", logins: 4 };
const FINAL_TRAITS = { ...FIRST_TRAITS, ...SECOND_TRAITS };
const GROUP_TRAITS = { name: "Acme Inc", plan: "enterprise", employees: 250, industry: "Manufacturing" };
const EXTERNAL_IDS = [{ id: CRM_ID, type: "crm_id", collection: "users", encoding: "none" }];

type Call =
  | { type: "identify"; params: IdentifyParams & { messageId: string; timestamp: Date } }
  | { type: "track"; params: TrackParams & { messageId: string; timestamp: Date } }
  | { type: "page"; params: PageParams & { messageId: string; timestamp: Date } }
  | { type: "group"; params: GroupParams & { messageId: string; timestamp: Date } };

const PHASE_1: Call[] = [
  { type: "identify", params: { messageId: mid("identify-1"), userId: USER_ID, anonymousId: ANONYMOUS_ID, traits: FIRST_TRAITS, timestamp: at(0) } },
  // Before sign-in, by the anonymous id alone: it belongs to the same person through the identify.
  {
    type: "page",
    params: { messageId: mid("page-pricing"), anonymousId: ANONYMOUS_ID, name: "Pricing", properties: { path: "/pricing", url: "https://shop.example/pricing", title: "Pricing" }, timestamp: at(1) },
  },
  {
    type: "track",
    params: { messageId: mid("viewed-1"), userId: USER_ID, event: "Product Viewed", properties: { product_id: "sku-1", price: 19.99, currency: "EUR" }, timestamp: at(2) },
  },
  {
    type: "track",
    params: {
      messageId: mid("order"),
      userId: USER_ID,
      event: "Order Completed",
      properties: { order_id: `o-${RUN}`, revenue: 42.5, currency: "EUR", products: [{ product_id: "sku-1", quantity: 2 }] },
      context: { externalIds: EXTERNAL_IDS },
      timestamp: at(3),
    },
  },
  { type: "group", params: { messageId: mid("group"), userId: USER_ID, groupId: GROUP_ID, traits: GROUP_TRAITS, timestamp: at(4) } },
  {
    type: "track",
    params: { messageId: mid("viewed-2"), userId: USER_ID, event: "Product Viewed", properties: { product_id: "sku-2", price: 5, currency: "EUR" }, timestamp: at(5) },
  },
];
const PHASE_2: Call[] = [{ type: "identify", params: { messageId: mid("identify-2"), userId: USER_ID, traits: SECOND_TRAITS, timestamp: at(6) } }];
const ALL_CALLS = [...PHASE_1, ...PHASE_2];
/** Message ids newest first, by the timestamps sent. */
const NEWEST_FIRST = [...ALL_CALLS].sort((a, b) => b.params.timestamp.getTime() - a.params.timestamp.getTime()).map((c) => c.params.messageId);

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;
/**
 * `timestamp` is corrected for clock skew by `receivedAt - sentAt` (as Segment does),
 * so it may differ from the sent one by the request's latency; the calls are a minute apart.
 */
const SKEW_TOLERANCE_MS = 20_000;
const DEADLINE_MS = 20_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Retries `check` (assertions included) until it passes or the deadline passes,
 * then rethrows its last failure: writes reach the Profile API asynchronously.
 */
async function eventually<T>(check: () => Promise<T>, timeoutMs = DEADLINE_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(Math.min(100 * 2 ** attempt, 500));
    }
  }
}

/** Sends calls through a fresh client and waits until every batch was accepted. */
async function send(server: LocalServer, calls: Call[]) {
  const analytics = new Analytics({ writeKey: server.writeKey, host: server.url, path: "/v1/batch", flushInterval: 200 });
  const errors: unknown[] = [];
  const statuses: number[] = [];
  analytics.on("error", (error) => errors.push(error));
  analytics.on("http_response", (response) => statuses.push(response.status));
  for (const call of calls) {
    switch (call.type) {
      case "identify":
        analytics.identify(call.params);
        break;
      case "track":
        analytics.track(call.params);
        break;
      case "page":
        analytics.page(call.params);
        break;
      case "group":
        analytics.group(call.params);
        break;
    }
  }
  await analytics.closeAndFlush({ timeout: 30_000 });
  expect(errors).toEqual([]);
  expect(statuses.length).toBeGreaterThan(0);
  expect(statuses.filter((s) => s !== 200)).toEqual([]);
}

type Json = Record<string, any>;
interface Reply {
  status: number;
  contentType: string;
  body: Json;
  /** The request's path and query, as `cursor.url` should give it back. */
  path: string;
}

const profilePath = (collection: "users" | "accounts", type: string, value: string, resource: string, query = "") =>
  `/v1/spaces/default/collections/${collection}/profiles/${type}:${encodeURIComponent(value)}/${resource}${query ? `?${query}` : ""}`;

describe("Profile API against the deploy bundle, fed by @segment/analytics-node", () => {
  let server: LocalServer;

  async function get(path: string, authorization = basicAuth(server.accessToken)): Promise<Reply> {
    const response = await fetch(`${server.url}${path}`, { headers: { authorization } });
    const text = await response.text();
    let body: Json;
    try {
      body = JSON.parse(text) as Json;
    } catch {
      body = { unparsed: text };
    }
    return { status: response.status, contentType: response.headers.get("content-type") ?? "", body, path };
  }

  /** A 200 reply, or a failure naming the request and the whole response. */
  async function ok(path: string): Promise<Reply> {
    const reply = await get(path);
    if (reply.status !== 200) throw new Error(`GET ${path} → ${reply.status} ${reply.contentType}: ${JSON.stringify(reply.body)}`);
    return reply;
  }

  const user = (type: string, value: string, resource: string, query?: string) => ok(profilePath("users", type, value, resource, query));

  /** Every page of a paged resource, following `cursor.next`; checks each page's cursor on the way. */
  async function allPages(type: string, value: string, resource: string, query: string, pageSize: number): Promise<Json[]> {
    const pages: Json[] = [];
    let next = "";
    for (let i = 0; i < 50; i++) {
      const reply = await user(type, value, resource, `${query}${next ? `&next=${encodeURIComponent(next)}` : ""}`);
      const { cursor } = reply.body;
      expect(cursor).toEqual({ url: reply.path, has_more: expect.any(Boolean), next: expect.any(String) });
      const size = Array.isArray(reply.body.data) ? reply.body.data.length : Object.keys(reply.body.traits ?? {}).length;
      expect(size).toBeLessThanOrEqual(pageSize);
      pages.push(reply.body);
      if (!cursor.has_more) {
        expect(cursor.next).toBe("");
        return pages;
      }
      expect(cursor.next).not.toBe("");
      next = cursor.next;
    }
    throw new Error(`${resource}?${query} did not end within 50 pages`);
  }

  beforeAll(async () => {
    server = await startE2eServer();
    expect(server.accessToken).toBe("dev-access-token");
    expect(server.writeKey).toBe("dev-write-key");

    await send(server, PHASE_1);
    // The first identify's traits, before the second one exists.
    await eventually(async () => {
      const { body } = await user("user_id", USER_ID, "traits");
      expect(body.traits).toEqual(FIRST_TRAITS);
      const events = await user("user_id", USER_ID, "events", "limit=100");
      expect(events.body.data.map((e: Json) => e.message_id).sort()).toEqual(PHASE_1.map((c) => c.params.messageId).sort());
    });

    await send(server, PHASE_2);
    await eventually(async () => {
      const { body } = await user("user_id", USER_ID, "traits");
      expect(body.traits).toEqual(FINAL_TRAITS);
    });
  });

  afterAll(async () => {
    await server?.dispose();
  });

  describe.each(LOOKUPS)("a user looked up by %s", (_label, type, value) => {
    it("/traits: the merged latest traits, the later identify winning", async () => {
      await eventually(async () => {
        const reply = await user(type, value, "traits");
        expect(reply.body).toEqual({ traits: FINAL_TRAITS, cursor: { url: reply.path, has_more: false, next: "" } });
      });
    });

    it("/events: every message sent, newest first, in Segment's fields", async () => {
      await eventually(async () => {
        const reply = await user(type, value, "events", "limit=100");
        expect(reply.body.cursor).toEqual({ url: reply.path, has_more: false, next: "" });
        const data = reply.body.data as Json[];
        expect(data.map((e) => e.message_id)).toEqual(NEWEST_FIRST);
        for (const item of data) expectEventAsSent(item);
        const times = data.map((e) => Date.parse(e.timestamp));
        expect(times).toEqual([...times].sort((a, b) => b - a));
      });
    });

    it("/external_ids: user_id, anonymous_id, email and the custom crm_id", async () => {
      await eventually(async () => {
        const reply = await user(type, value, "external_ids");
        expect(reply.body.cursor).toEqual({ url: reply.path, has_more: false, next: "" });
        const data = reply.body.data as Json[];
        const entry = (id: string, idType: string) => ({ id, type: idType, source_id: SOURCE_ID, collection: "users", created_at: expect.stringMatching(ISO), encoding: "none" });
        expect(data).toEqual(
          expect.arrayContaining([entry(USER_ID, "user_id"), entry(ANONYMOUS_ID, "anonymous_id"), entry(EMAIL, "email"), entry(CRM_ID, "crm_id")]),
        );
        expect(data).toHaveLength(4);
      });
    });

    it("/links: the account it was grouped into", async () => {
      await eventually(async () => {
        const reply = await user(type, value, "links");
        expect(reply.body).toEqual({
          data: [
            {
              to_collection: "accounts",
              external_ids: [{ id: GROUP_ID, type: "group_id", source_id: SOURCE_ID, collection: "accounts", created_at: expect.stringMatching(ISO), encoding: "none" }],
            },
          ],
          cursor: { url: reply.path, has_more: false, next: "" },
        });
      });
    });

    it("/metadata: first and last message, the newest event's id and source", async () => {
      await eventually(async () => {
        const [{ body }, canonical, asc] = await Promise.all([
          user(type, value, "metadata"),
          user("user_id", USER_ID, "metadata"),
          user("user_id", USER_ID, "events", "limit=100&sort=asc"),
        ]);
        const events = asc.body.data as Json[];
        expect(events).toHaveLength(ALL_CALLS.length);
        expect(body).toEqual({
          metadata: {
            profile_id: expect.any(String),
            created_at: expect.stringMatching(ISO),
            updated_at: expect.stringMatching(ISO),
            expires_at: null,
            first_message_at: events[0]!.timestamp,
            last_message_at: events.at(-1)!.timestamp,
            last_source_id: SOURCE_ID,
            last_message_id: mid("identify-2"),
          },
        });
        expect(body.metadata.profile_id).not.toBe("");
        // The same profile, whichever identifier named it.
        expect(body.metadata.profile_id).toBe(canonical.body.metadata.profile_id);
        expect(Math.abs(Date.parse(body.metadata.first_message_at) - at(0).getTime())).toBeLessThan(SKEW_TOLERANCE_MS);
        expect(Math.abs(Date.parse(body.metadata.last_message_at) - at(6).getTime())).toBeLessThan(SKEW_TOLERANCE_MS);
      });
    });
  });

  describe("/traits options", () => {
    it("?include=plan,email narrows to those traits", async () => {
      await eventually(async () => {
        const reply = await user("email", EMAIL.toUpperCase(), "traits", "include=plan,email");
        expect(reply.body).toEqual({ traits: { email: EMAIL, plan: "pro" }, cursor: { url: reply.path, has_more: false, next: "" } });
      });
    });

    it("?limit=2 pages through every trait with next and has_more", async () => {
      await eventually(async () => {
        const pages = await allPages("anonymous_id", ANONYMOUS_ID, "traits", "limit=2", 2);
        const keys = Object.keys(FINAL_TRAITS).length;
        expect(pages).toHaveLength(Math.ceil(keys / 2));
        for (const page of pages.slice(0, -1)) {
          expect(Object.keys(page.traits)).toHaveLength(2);
          expect(page.cursor.has_more).toBe(true);
        }
        const merged = Object.assign({}, ...pages.map((p) => p.traits));
        expect(merged).toEqual(FINAL_TRAITS);
        // Pages do not overlap.
        expect(pages.flatMap((p) => Object.keys(p.traits))).toHaveLength(keys);
      });
    });
  });

  describe("/events options", () => {
    it("?limit=2 pages through every event with next, newest first", async () => {
      await eventually(async () => {
        const pages = await allPages("crm_id", CRM_ID, "events", "limit=2", 2);
        expect(pages).toHaveLength(Math.ceil(ALL_CALLS.length / 2));
        for (const page of pages.slice(0, -1)) {
          expect(page.data).toHaveLength(2);
          expect(page.cursor.has_more).toBe(true);
        }
        expect(pages.flatMap((p) => p.data.map((e: Json) => e.message_id))).toEqual(NEWEST_FIRST);
      });
    });

    it("?include=<event name> keeps only those events (track event, page name)", async () => {
      await eventually(async () => {
        const viewed = await user("user_id", USER_ID, "events", `include=${encodeURIComponent("Product Viewed")}`);
        expect(viewed.body.data.map((e: Json) => e.message_id)).toEqual([mid("viewed-2"), mid("viewed-1")]);
        expect(viewed.body.cursor).toEqual({ url: viewed.path, has_more: false, next: "" });
        for (const item of viewed.body.data) expectEventAsSent(item);

        const two = await user("user_id", USER_ID, "events", `include=${encodeURIComponent("Order Completed,Pricing")}`);
        expect(two.body.data.map((e: Json) => e.message_id)).toEqual([mid("order"), mid("page-pricing")]);

        const paged = await allPages("user_id", USER_ID, "events", `include=${encodeURIComponent("Product Viewed")}&limit=1`, 1);
        expect(paged.map((p) => p.data.map((e: Json) => e.message_id))).toEqual([[mid("viewed-2")], [mid("viewed-1")]]);
      });
    });

    it("?sort=asc returns the oldest first", async () => {
      await eventually(async () => {
        const reply = await user("email", EMAIL, "events", "sort=asc&limit=100");
        expect(reply.body.data.map((e: Json) => e.message_id)).toEqual([...NEWEST_FIRST].reverse());
        const paged = await allPages("email", EMAIL, "events", "sort=asc&limit=2", 2);
        expect(paged.flatMap((p) => p.data.map((e: Json) => e.message_id))).toEqual([...NEWEST_FIRST].reverse());
      });
    });
  });

  describe("the accounts collection", () => {
    it("/traits: the group's traits", async () => {
      await eventually(async () => {
        const reply = await ok(profilePath("accounts", "group_id", GROUP_ID, "traits"));
        expect(reply.body).toEqual({ traits: GROUP_TRAITS, cursor: { url: reply.path, has_more: false, next: "" } });
      });
    });

    it("/links: the user in it, by user_id", async () => {
      await eventually(async () => {
        const reply = await ok(profilePath("accounts", "group_id", GROUP_ID, "links"));
        expect(reply.body).toEqual({
          data: [
            {
              to_collection: "users",
              external_ids: [{ id: USER_ID, type: "user_id", source_id: SOURCE_ID, collection: "users", created_at: expect.stringMatching(ISO), encoding: "none" }],
            },
          ],
          cursor: { url: reply.path, has_more: false, next: "" },
        });
      });
    });
  });

  describe("errors", () => {
    it("an unknown identifier is a 404 problem document", async () => {
      const unknown = [
        profilePath("users", "user_id", `pa-nobody-${RUN}`, "traits"),
        profilePath("users", "email", `someone.else.${RUN}@northwind-traders.io`, "events"),
        profilePath("users", "anonymous_id", `pa-nobody-${RUN}`, "external_ids"),
        profilePath("users", "crm_id", `nobody-${RUN}`, "metadata"),
        profilePath("users", "user_id", `pa-nobody-${RUN}`, "links"),
        profilePath("accounts", "group_id", `pa-nobody-${RUN}`, "traits"),
      ];
      for (const path of unknown) {
        const reply = await get(path);
        expect({ path, status: reply.status, contentType: reply.contentType }).toEqual({ path, status: 404, contentType: expect.stringMatching(/^application\/problem\+json\b/) });
        expect(reply.body).toMatchObject({ type: expect.any(String), title: expect.any(String), status: 404, detail: expect.any(String) });
        expect(reply.body.type).not.toBe("");
        expect(reply.body.detail).not.toBe("");
      }
    });

    it("no or a wrong access token is a 401 problem document", async () => {
      const path = profilePath("users", "user_id", USER_ID, "traits");
      for (const authorization of ["", basicAuth("not-a-token")]) {
        const reply = await get(path, authorization);
        expect({ status: reply.status, contentType: reply.contentType }).toEqual({ status: 401, contentType: expect.stringMatching(/^application\/problem\+json\b/) });
        expect(reply.body).toMatchObject({ type: expect.any(String), title: expect.any(String), status: 401, detail: expect.any(String) });
      }
    });
  });
});

/** One `/events` item against the call that sent it: Segment's snake_case envelope, values as sent. */
function expectEventAsSent(item: Json) {
  const call = ALL_CALLS.find((c) => c.params.messageId === item.message_id);
  expect(call, `an event nobody sent: ${JSON.stringify(item)}`).toBeDefined();
  const sent = call!.params as Json;
  expect(item).toMatchObject({ type: call!.type, message_id: sent.messageId, source_id: SOURCE_ID, timestamp: expect.stringMatching(ISO) });
  expect(Math.abs(Date.parse(item.timestamp) - sent.timestamp.getTime())).toBeLessThan(SKEW_TOLERANCE_MS);

  // Identity fields: as sent, and absent when not sent.
  for (const [field, from] of [
    ["user_id", "userId"],
    ["anonymous_id", "anonymousId"],
    ["group_id", "groupId"],
  ] as const) {
    if (sent[from] === undefined) expect(item, `${item.message_id} has ${field}`).not.toHaveProperty(field);
    else expect(item[field]).toBe(sent[from]);
  }

  switch (call!.type) {
    case "track":
      expect(item.event).toBe(sent.event);
      expect(item.properties).toEqual(sent.properties);
      break;
    case "page":
      expect(item.name).toBe(sent.name);
      expect(item.properties).toEqual(sent.properties);
      break;
    case "identify":
    case "group":
      expect(item.traits).toEqual(sent.traits);
      break;
  }

  // The context the SDK built: its library, and whatever the call added, unchanged.
  expect(item.context).toMatchObject({ library: { name: "@segment/analytics-node", version: expect.any(String) } });
  if (sent.context) expect(item.context).toMatchObject(sent.context);
  if (sent.context?.externalIds) expect(item.context.externalIds).toEqual(sent.context.externalIds);
}
