import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { deadLetterKey } from "../../workers/consumers/activation";
import { admin, bearer, call, json, type Problem, sleep, unique } from "../helpers";

/**
 * Destinations, their delivery overview and log, and dead-letter replay through
 * the admin API, with real bindings: delivery rows and counters are written to
 * D1 directly, dead letters are put in the real R2 bucket, and a replay is
 * followed through the activation consumer. Storage is shared by the tests of
 * this file, so each one uses its own destinations.
 */

interface Destination {
  id: string;
  workspaceId: string;
  name: string;
  type: string;
  enabled: boolean;
  batchSize: number;
  settings: Record<string, unknown>;
  subscriptions: { events: unknown[]; audiences: string[]; computedTraits: string[] };
  consentCategories: string[];
  audienceSync: { mode: string; traitComputedEvent: string };
  secretsSet: string[];
  createdAt: string | null;
  updatedAt: string | null;
}
interface DeliveryView {
  id: string;
  destinationId: string;
  status: string;
  messageIds: string[];
  profileIds: string[];
  attempts: number;
  lastError: string | null;
  latencyMs: number | null;
  firstAttemptAt: string | null;
  updatedAt: string | null;
}


const PATH = "/admin/v1/destinations";
const DAY_MS = 86_400_000;
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

const SECRETS = {
  webhook: { signingSecret: "whsec_s3cret_value_0001" },
  segment: { writeKey: "wk_s3cret_value_0002" },
  braze: { apiKey: "braze_s3cret_value_0003" },
  mailchimp: { apiKey: "mc_s3cret_value_0004-us6" },
};
const VALID = {
  webhook: { type: "webhook", settings: { url: "https://hooks.example.com/cdp" }, secrets: SECRETS.webhook },
  segment: { type: "segment", settings: { url: "https://api.segment.io" }, secrets: SECRETS.segment },
  braze: { type: "braze", settings: { instanceUrl: "https://rest.iad-01.braze.com", appId: "app-1" }, secrets: SECRETS.braze },
  mailchimp: { type: "mailchimp", settings: { listId: "abc123" }, secrets: SECRETS.mailchimp },
} as const;
const SECRET_VALUES = Object.values(SECRETS).flatMap((s) => Object.values(s));

async function create(body: Record<string, unknown>): Promise<Destination> {
  const response = await admin(PATH, { method: "POST", json: { workspaceId: "default", name: `Dest ${unique()}`, ...body } });
  if (response.status !== 201) throw new Error(`create failed: ${response.status} ${await response.text()}`);
  return (await json<{ destination: Destination }>(response)).destination;
}

const patch = (id: string, body: unknown) => admin(`${PATH}/${id}`, { method: "PATCH", json: body });

/** The field paths of a 400. */
async function errorPaths(response: Response): Promise<string[]> {
  expect(response.status).toBe(400);
  const problem = await json<Problem>(response);
  expect(problem.code).toBe("VALIDATION_FAILED");
  return (problem.errors ?? []).map((e) => e.path).sort();
}

const storedConfig = async (id: string) => JSON.parse((await env.DB.prepare("SELECT config FROM destinations WHERE id = ?").bind(id).first<{ config: string }>())!.config) as Record<string, unknown>;

async function auditFor(target: string) {
  const { data } = await json<{ data: { action: string; target: string; details: Record<string, unknown> | null }[] }>(await admin("/admin/v1/audit-log?workspaceId=default&limit=200"));
  return data.filter((entry) => entry.target === target);
}

interface Row {
  id?: string;
  destinationId: string;
  workspaceId?: string;
  status: string;
  messageIds?: string[];
  profileIds?: string[];
  attempts?: number;
  lastError?: string | null;
  latencyMs?: number | null;
  firstAttemptAt?: number;
  createdAt: number;
  updatedAt?: number;
}

async function insertDelivery(row: Row): Promise<string> {
  const id = row.id ?? `dlv_${unique()}`;
  await env.DB.prepare(
    `INSERT INTO deliveries (id, workspace_id, destination_id, status, message_ids, profile_ids, attempts, last_error, latency_ms, first_attempt_at, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  )
    .bind(
      id,
      row.workspaceId ?? "default",
      row.destinationId,
      row.status,
      JSON.stringify(row.messageIds ?? [`m-${id}`]),
      JSON.stringify(row.profileIds ?? ["prof_1"]),
      row.attempts ?? 1,
      row.lastError ?? null,
      row.latencyMs ?? null,
      row.firstAttemptAt ?? row.createdAt,
      row.createdAt,
      row.updatedAt ?? row.createdAt,
    )
    .run();
  return id;
}

async function insertCounters(destinationId: string, dayText: string, counts: Partial<Record<"received" | "filtered_consent" | "filtered_integrations" | "not_subscribed" | "delivered" | "retried" | "failed" | "dead_lettered", number>>) {
  const c = (key: keyof typeof counts) => counts[key] ?? 0;
  await env.DB.prepare(
    `INSERT INTO destination_counters (workspace_id, destination_id, day, received, filtered_consent, filtered_integrations, not_subscribed, delivered, retried, failed, dead_lettered)
     VALUES ('default', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  )
    .bind(destinationId, dayText, c("received"), c("filtered_consent"), c("filtered_integrations"), c("not_subscribed"), c("delivered"), c("retried"), c("failed"), c("dead_lettered"))
    .run();
}

const deliveryRow = (id: string) =>
  env.DB.prepare("SELECT status, attempts, message_ids AS messageIds, last_error AS lastError FROM deliveries WHERE id = ?").bind(id).first<{ status: string; attempts: number; messageIds: string; lastError: string | null }>();

/** A tenant workspace and an admin token confined to it. */
async function tenant() {
  const workspaceId = `dst-${unique()}`;
  expect((await admin("/admin/v1/workspaces", { method: "POST", json: { id: workspaceId, name: "Tenant" } })).status).toBe(201);
  const { secret } = await json<{ secret: string }>(await admin("/admin/v1/tokens", { method: "POST", json: { workspaceId, name: "ops", scopes: ["admin"] } }));
  const send = (method: string, path: string, body?: unknown) =>
    call(path, { method, headers: { authorization: bearer(secret), "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { workspaceId, send };
}

describe("destinations", () => {
  it("creates each type with its defaults, and never returns a secret", async () => {
    for (const type of ["webhook", "segment", "braze", "mailchimp"] as const) {
      const response = await admin(PATH, { method: "POST", json: { workspaceId: "default", name: `My ${type} ${unique()}`, ...VALID[type] } });
      expect(response.status, type).toBe(201);
      const text = await response.text();
      for (const value of SECRET_VALUES) expect(text).not.toContain(value);
      const { destination } = JSON.parse(text) as { destination: Destination & { secrets?: unknown } };
      expect(destination.id).toMatch(/^dst_[0-9a-f]{24}$/);
      expect(destination).toMatchObject({ workspaceId: "default", type, enabled: true, batchSize: 100, consentCategories: [], secretsSet: Object.keys(SECRETS[type]) });
      expect(destination.subscriptions).toEqual({ events: [], audiences: [], computedTraits: [] });
      expect(destination.secrets).toBeUndefined();
      // D1 keeps the whole destination, secrets included, for the delivery side.
      expect(await storedConfig(destination.id)).toMatchObject({ id: destination.id, type, secrets: SECRETS[type] });
    }
    const hook = await create({ ...VALID.webhook, subscriptions: { events: [{ type: ["track"], event: ["Order Completed"] }], audiences: ["seg_1"] } });
    expect(hook.settings).toEqual({ url: "https://hooks.example.com/cdp", headers: {} });
    expect(hook.subscriptions.events).toEqual([{ type: ["track"], event: ["Order Completed"] }]);
  });

  it("names every mistake by its path, for every type", async () => {
    const post = (body: Record<string, unknown>) => admin(PATH, { method: "POST", json: { workspaceId: "default", name: "Bad", ...body } });
    const cases: [Record<string, unknown>, string[]][] = [
      [{ settings: {}, secrets: {} }, ["type"]],
      [{ type: "ftp", settings: {}, secrets: {} }, ["type"]],
      [{ type: "webhook" }, ["secrets", "settings"]],
      [{ ...VALID.webhook, name: "  " }, ["name"]],
      [{ ...VALID.webhook, batchSize: 0 }, ["batchSize"]],
      [{ ...VALID.webhook, settings: { url: "http://hooks.example.com/cdp" } }, ["settings.url"]],
      [{ ...VALID.webhook, settings: { url: "https://u:p@hooks.example.com/cdp", headers: { "X-Signature": "forged", "bad header": "x" } } }, ["settings.headers.X-Signature", "settings.headers.bad header", "settings.url"]],
      [{ ...VALID.webhook, secrets: { signingSecret: "short" } }, ["secrets.signingSecret"]],
      [{ ...VALID.webhook, consentCategories: ["ads", "ads"], subscriptions: { events: [{ where: [{ property: "a..b", op: "exists" }] }] } }, ["consentCategories", "subscriptions.events.0.where.0.property"]],
      [{ ...VALID.webhook, audienceSync: { mode: "email" } }, ["audienceSync.mode"]],
      [{ ...VALID.segment, settings: {} }, ["settings.url"]],
      [{ ...VALID.segment, settings: { url: "not a url" }, secrets: { writeKey: "" } }, ["secrets.writeKey", "settings.url"]],
      [{ ...VALID.braze, settings: { instanceUrl: "https://evil.example.com" } }, ["settings.instanceUrl"]],
      [{ ...VALID.braze, secrets: {} }, ["secrets.apiKey"]],
      [{ ...VALID.mailchimp, settings: { listId: "not-a-list!", statusIfNew: "maybe" } }, ["settings.listId", "settings.statusIfNew"]],
      [{ ...VALID.mailchimp, settings: { listId: "abc123", mergeFields: { first_name: "first name" } }, secrets: { apiKey: "nodatacenter" } }, ["secrets.apiKey", "settings.mergeFields.first_name"]],
    ];
    for (const [body, paths] of cases) expect(await errorPaths(await post(body)), JSON.stringify(body)).toEqual(paths);
    // The id is assigned here; an unknown field is refused rather than ignored.
    const withId = await json<Problem>(await post({ ...VALID.webhook, id: "dst_mine" }));
    expect(withId.errors?.[0]?.message).toMatch(/id/);
    // The root token must name an existing workspace.
    expect(await errorPaths(await admin(PATH, { method: "POST", json: { name: "No workspace", ...VALID.webhook } }))).toEqual(["workspaceId"]);
    expect((await admin(PATH, { method: "POST", json: { workspaceId: "nowhere", name: "X", ...VALID.webhook } })).status).toBe(404);
  });

  it("reads, lists, updates and deletes, keeping the secrets an update leaves out", async () => {
    const hook = await create({ ...VALID.webhook, name: `Hook ${unique()}`, settings: { url: "https://hooks.example.com/a", headers: { "X-Team": "growth" } } });
    const read = await admin(`${PATH}/${hook.id}`);
    expect(read.status).toBe(200);
    expect(await json(read)).toEqual(hook);
    const list = await json<{ data: Destination[] }>(await admin(`${PATH}?workspaceId=default`));
    expect(list.data.find((d) => d.id === hook.id)).toEqual(hook);
    for (const value of SECRET_VALUES) expect(JSON.stringify(list)).not.toContain(value);

    // A field given replaces the stored one; the rest, secrets included, stay.
    const renamed = await patch(hook.id, { name: "Renamed", enabled: false, batchSize: 20 });
    expect(renamed.status).toBe(200);
    const { destination } = await json<{ destination: Destination }>(renamed);
    expect(destination).toMatchObject({ id: hook.id, name: "Renamed", enabled: false, batchSize: 20, secretsSet: ["signingSecret"], settings: { url: "https://hooks.example.com/a", headers: { "X-Team": "growth" } } });
    expect(await storedConfig(hook.id)).toMatchObject({ name: "Renamed", enabled: false, secrets: SECRETS.webhook });
    expect(await env.DB.prepare("SELECT name, enabled FROM destinations WHERE id = ?").bind(hook.id).first()).toEqual({ name: "Renamed", enabled: 0 });

    // A new secret replaces the stored one, and is not shown back or audit-logged.
    const rotated = await patch(hook.id, { secrets: { signingSecret: "whsec_rotated_value_0009" } });
    expect(rotated.status).toBe(200);
    expect(await rotated.text()).not.toContain("whsec_rotated_value_0009");
    expect(await storedConfig(hook.id)).toMatchObject({ secrets: { signingSecret: "whsec_rotated_value_0009" } });

    // The merged result is validated as a whole, with paths; a new type brings its own settings and secrets.
    expect(await errorPaths(await patch(hook.id, { settings: { url: "ftp://x" } }))).toEqual(["settings.url"]);
    expect(await errorPaths(await patch(hook.id, { type: "segment" }))).toEqual(["secrets.writeKey", "settings"]);
    expect(await errorPaths(await patch(hook.id, { type: "braze", settings: { instanceUrl: "https://rest.iad-01.braze.com" }, secrets: { signingSecret: "whsec_0123456789abcdef" } }))).toEqual(["secrets", "secrets.apiKey"]);
    expect(await errorPaths(await patch(hook.id, { secrets: { signingSecret: "short" } }))).toEqual(["secrets.signingSecret"]);
    expect(await errorPaths(await patch(hook.id, { secrets: "whsec_0123456789abcdef" }))).toEqual(["secrets"]);
    expect(await errorPaths(await patch(hook.id, { id: "dst_other" }))).toEqual(["id"]);
    expect(await errorPaths(await patch(hook.id, {}))).toEqual(["(root)"]);
    expect(await errorPaths(await patch(hook.id, { bogus: true }))).toEqual(["(root)"]);
    expect(await storedConfig(hook.id)).toMatchObject({ type: "webhook", name: "Renamed", secrets: { signingSecret: "whsec_rotated_value_0009" } });
    const retyped = await patch(hook.id, { type: "segment", settings: { url: "https://events.eu1.segmentapis.com" }, secrets: SECRETS.segment });
    expect(retyped.status).toBe(200);
    expect((await json<{ destination: Destination }>(retyped)).destination).toMatchObject({ type: "segment", name: "Renamed", batchSize: 20, secretsSet: ["writeKey"], settings: { url: "https://events.eu1.segmentapis.com" } });
    expect((await storedConfig(hook.id)).secrets).toEqual(SECRETS.segment);

    const deleted = await admin(`${PATH}/${hook.id}`, { method: "DELETE" });
    expect(deleted.status).toBe(204);
    expect((await admin(`${PATH}/${hook.id}`)).status).toBe(404);
    expect((await patch(hook.id, { name: "Gone" })).status).toBe(404);
    expect((await admin(`${PATH}/${hook.id}`, { method: "DELETE" })).status).toBe(404);

    const audit = await auditFor(hook.id);
    expect(audit.map((e) => e.action).sort()).toEqual(["destination.create", "destination.delete", "destination.update", "destination.update", "destination.update"]);
    expect(audit.find((e) => e.action === "destination.create")?.details).toMatchObject({ name: hook.name, type: "webhook", secretsSet: ["signingSecret"] });
    expect(audit.map((e) => e.details)).toContainEqual({ fields: [], secretsChanged: ["signingSecret"] });
    const auditText = JSON.stringify(audit);
    for (const value of [...SECRET_VALUES, "whsec_rotated_value_0009"]) expect(auditText).not.toContain(value);
  });
});

describe("the delivery overview and log", () => {
  it("sums the counters of the period, takes the p95 of delivered latencies, and pages the log newest first", async () => {
    const destination = await create(VALID.webhook);
    const other = await create(VALID.segment);
    const now = Date.now();
    await insertCounters(destination.id, day(now), { received: 10, filtered_consent: 1, filtered_integrations: 2, not_subscribed: 3, delivered: 5, retried: 4, failed: 1, dead_lettered: 1 });
    await insertCounters(destination.id, day(now - 2 * DAY_MS), { received: 100, filtered_consent: 10, filtered_integrations: 20, not_subscribed: 30, delivered: 50, retried: 40, failed: 10, dead_lettered: 10 });
    await insertCounters(destination.id, day(now - 10 * DAY_MS), { received: 1000, delivered: 1000 });
    await insertCounters(other.id, day(now), { received: 7, delivered: 7 });

    // Twenty delivered batches in the period (10 to 200 ms), one long ago, and others that are not delivered.
    const ids: string[] = [];
    for (let i = 1; i <= 20; i++) ids.push(await insertDelivery({ destinationId: destination.id, status: "delivered", latencyMs: i * 10, createdAt: now - 60_000 + i }));
    await insertDelivery({ destinationId: destination.id, status: "delivered", latencyMs: 9_999, createdAt: now - 30 * DAY_MS });
    const retrying = await insertDelivery({ destinationId: destination.id, status: "retrying", attempts: 2, lastError: "HTTP 503", latencyMs: 5_000, createdAt: now - 1000 });
    const failed = await insertDelivery({ destinationId: destination.id, status: "failed", lastError: "HTTP 400", latencyMs: 8_000, createdAt: now - 1000 });
    await insertDelivery({ destinationId: other.id, status: "delivered", latencyMs: 7_777, createdAt: now });

    const response = await admin(`${PATH}/${destination.id}/deliveries?limit=5`);
    expect(response.status).toBe(200);
    const body = await json<{ overview: Record<string, number | null>; data: DeliveryView[]; next: string | null }>(response);
    expect(body.overview).toEqual({ received: 110, filteredConsent: 11, filteredIntegrations: 22, notSubscribed: 33, delivered: 55, retried: 44, failed: 11, deadLettered: 11, p95LatencyMs: 190 });
    expect(body.data).toHaveLength(5);
    // Newest first: the retrying and failed batches, then the latest delivered one.
    expect(body.data.map((d) => d.status).slice(0, 3).sort()).toEqual(["delivered", "failed", "retrying"]);
    expect(body.data[2]).toEqual({
      id: ids[19],
      destinationId: destination.id,
      status: "delivered",
      messageIds: [`m-${ids[19]}`],
      profileIds: ["prof_1"],
      attempts: 1,
      lastError: null,
      latencyMs: 200,
      firstAttemptAt: new Date(now - 60_000 + 20).toISOString(),
      updatedAt: new Date(now - 60_000 + 20).toISOString(),
    });

    // days=1: today's counters only; a period with nothing delivered has no p95.
    const today = await json<{ overview: Record<string, number | null> }>(await admin(`${PATH}/${destination.id}/deliveries?days=1&limit=1`));
    expect(today.overview).toMatchObject({ received: 10, delivered: 5, deadLettered: 1, p95LatencyMs: 190 });
    const empty = await create(VALID.braze);
    expect((await json<{ overview: Record<string, number | null> }>(await admin(`${PATH}/${empty.id}/deliveries`))).overview).toEqual({
      received: 0,
      filteredConsent: 0,
      filteredIntegrations: 0,
      notSubscribed: 0,
      delivered: 0,
      retried: 0,
      failed: 0,
      deadLettered: 0,
      p95LatencyMs: null,
    });

    // Every page through the cursor: each row once, newest first (ties by id), other destinations' never.
    const seen: DeliveryView[] = [];
    let cursor: string | null = null;
    do {
      const page: { data: DeliveryView[]; next: string | null } = await json(await admin(`${PATH}/${destination.id}/deliveries?workspaceId=default&limit=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`));
      expect(page.data.length).toBeLessThanOrEqual(4);
      seen.push(...page.data);
      cursor = page.next;
    } while (cursor);
    expect(seen).toHaveLength(23);
    expect(new Set(seen.map((d) => d.id)).size).toBe(23);
    expect(seen.every((d) => d.destinationId === destination.id)).toBe(true);
    expect(seen.slice(0, 2).map((d) => d.id)).toEqual([retrying, failed].sort().reverse());
    expect(seen.slice(2, 22).map((d) => d.id)).toEqual([...ids].reverse());

    const onlyRetrying = await json<{ data: DeliveryView[] }>(await admin(`${PATH}/${destination.id}/deliveries?status=retrying`));
    expect(onlyRetrying.data).toEqual([expect.objectContaining({ id: retrying, status: "retrying", attempts: 2, lastError: "HTTP 503" })]);

    expect(await errorPaths(await admin(`${PATH}/${destination.id}/deliveries?cursor=nonsense`))).toEqual(["cursor"]);
    expect(await errorPaths(await admin(`${PATH}/${destination.id}/deliveries?days=0&status=lost`))).toEqual(["days", "status"]);
    expect((await admin(`${PATH}/dst_missing/deliveries`)).status).toBe(404);
  });
});

describe("dead letters", () => {

  /** A dead-lettered delivery: its row in the log, and its pending messages in R2 as the consumer leaves them. */
  async function deadLetter(destinationId: string, reason = "retry budget exhausted: HTTP 503") {
    const deliveryId = `dlv_${unique()}`;
    const messages = [
      { type: "track", messageId: `m-${deliveryId}-1`, event: "Order Completed", userId: "u1", timestamp: new Date().toISOString(), properties: { revenue: 1 } },
      { type: "track", messageId: `m-${deliveryId}-2`, event: "Order Completed", userId: "u2", timestamp: new Date().toISOString(), properties: { revenue: 2 } },
    ];
    const firstAttemptAt = Date.now() - 5 * 3_600_000;
    const stored = {
      v: 1,
      kind: "deliver",
      deliveryId,
      workspaceId: "default",
      destinationId,
      messages,
      profileIds: ["prof_1", "prof_2"],
      attempt: 12,
      firstAttemptAt,
      reason,
    };
    await env.ARCHIVE.put(deadLetterKey(stored), JSON.stringify(stored));
    await insertDelivery({
      id: deliveryId,
      destinationId,
      status: "dead_lettered",
      messageIds: [...messages.map((m) => m.messageId), `m-${deliveryId}-delivered-earlier`],
      profileIds: stored.profileIds,
      attempts: 12,
      lastError: reason,
      firstAttemptAt,
      createdAt: firstAttemptAt,
      updatedAt: Date.now(),
    });
    return { deliveryId, stored };
  }

  it("replays one through the real activation queue: the row goes back to the retry path and the consumer attempts it again", async () => {
    // Nothing listens on 127.0.0.1:9 (discard): the consumer's attempt is a real, refused connection.
    const destination = await create({ ...VALID.webhook, settings: { url: "http://127.0.0.1:9/hook" } });
    const { deliveryId, stored } = await deadLetter(destination.id);
    const response = await admin(`/admin/v1/dead-letters/${deliveryId}/replay`, { method: "POST" });
    expect(response.status).toBe(202);
    const { delivery } = await json<{ delivery: DeliveryView }>(response);
    expect(delivery).toMatchObject({ id: deliveryId, destinationId: destination.id, status: "retrying", attempts: 0, messageIds: stored.messages.map((m) => m.messageId) });
    expect(await env.ARCHIVE.head(deadLetterKey(stored))).not.toBeNull();
    expect((await auditFor(deliveryId)).map((e) => e.action)).toEqual(["dead_letter.replay"]);
    const listed = await json<{ data: { id: string }[] }>(await admin(`/admin/v1/dead-letters?workspaceId=default&destinationId=${destination.id}`));
    expect(listed.data.map((d) => d.id)).not.toContain(deliveryId);
    expect((await admin(`/admin/v1/dead-letters/${deliveryId}/replay`, { method: "POST" })).status).toBe(409);

    // The real consumer takes it from the queue as a first attempt of a fresh budget.
    const deadline = Date.now() + 20_000;
    while (((await deliveryRow(deliveryId)) as { attempts: number } | null)?.attempts !== 1 && Date.now() < deadline) await sleep(100);
    expect(await deliveryRow(deliveryId)).toMatchObject({ status: "retrying", attempts: 1, lastError: expect.stringMatching(/network|connect|refused/i) });
  });

  it("refuses what cannot be replayed: unknown, not dead-lettered, destination disabled or gone, messages no longer stored", async () => {
    const replay = (id: string) => admin(`/admin/v1/dead-letters/${id}/replay`, { method: "POST" });
    expect((await replay("dlv_missing")).status).toBe(404);

    const destination = await create(VALID.webhook);
    const delivered = await insertDelivery({ destinationId: destination.id, status: "delivered", createdAt: Date.now() });
    expect((await replay(delivered)).status).toBe(409);

    const disabled = await deadLetter(destination.id);
    expect((await patch(destination.id, { enabled: false })).status).toBe(200);
    expect((await replay(disabled.deliveryId)).status).toBe(409);
    expect(await deliveryRow(disabled.deliveryId)).toMatchObject({ status: "dead_lettered", attempts: 12 });

    const gone = await create(VALID.webhook);
    const orphan = await deadLetter(gone.id);
    expect((await admin(`${PATH}/${gone.id}`, { method: "DELETE" })).status).toBe(204);
    expect((await replay(orphan.deliveryId)).status).toBe(409);

    const live = await create(VALID.webhook);
    const lost = await deadLetter(live.id);
    await env.ARCHIVE.delete(deadLetterKey(lost.stored));
    expect((await replay(lost.deliveryId)).status).toBe(404);
    expect(await deliveryRow(lost.deliveryId)).toMatchObject({ status: "dead_lettered" });
  });
});

describe("access", () => {
  it("confines a workspace token to its own workspace: another's destinations, deliveries and dead letters are 404", async () => {
    const destination = await create(VALID.webhook);
    const { deliveryId } = await (async () => {
      const id = `dlv_${unique()}`;
      await insertDelivery({ id, destinationId: destination.id, status: "dead_lettered", lastError: "budget", createdAt: Date.now() });
      return { deliveryId: id };
    })();
    const { workspaceId, send } = await tenant();

    for (const [method, path, body] of [
      ["GET", `${PATH}/${destination.id}`],
      ["GET", `${PATH}/${destination.id}?workspaceId=default`],
      ["PATCH", `${PATH}/${destination.id}`, { name: "Theirs" }],
      ["DELETE", `${PATH}/${destination.id}`],
      ["GET", `${PATH}/${destination.id}/deliveries`],
      ["GET", `${PATH}?workspaceId=default`],
      ["POST", PATH, { workspaceId: "default", name: "X", ...VALID.webhook }],
      ["GET", "/admin/v1/dead-letters?workspaceId=default"],
      ["POST", `/admin/v1/dead-letters/${deliveryId}/replay`],
      ["POST", `/admin/v1/dead-letters/${deliveryId}/replay?workspaceId=default`],
    ] as [string, string, unknown?][]) {
      expect((await send(method, path, body)).status, `${method} ${path}`).toBe(404);
    }
    // Untouched, and the root token naming another workspace does not find it either.
    expect((await admin(`${PATH}/${destination.id}`)).status).toBe(200);
    expect((await admin(`${PATH}/${destination.id}?workspaceId=${workspaceId}`)).status).toBe(404);
    expect((await admin(`/admin/v1/dead-letters/${deliveryId}/replay?workspaceId=${workspaceId}`, { method: "POST" })).status).toBe(404);
    expect(await deliveryRow(deliveryId)).toMatchObject({ status: "dead_lettered" });

    // In its own workspace, without naming it.
    expect(await json(await send("GET", PATH))).toEqual({ data: [] });
    const own = await send("POST", PATH, { name: "Ours", ...VALID.segment });
    expect(own.status).toBe(201);
    const { destination: ours } = await json<{ destination: Destination }>(own);
    expect(ours.workspaceId).toBe(workspaceId);
    expect((await send("GET", `${PATH}/${ours.id}`)).status).toBe(200);
    expect((await send("GET", `${PATH}/${ours.id}/deliveries`)).status).toBe(200);
    expect(await json(await send("GET", "/admin/v1/dead-letters"))).toEqual({ data: [], next: null });
    expect((await send("DELETE", `${PATH}/${ours.id}`)).status).toBe(204);
  });

  it("turns away a token without the admin scope, and a request without a token", async () => {
    const destination = await create(VALID.webhook);
    const routes: [string, string][] = [
      ["GET", `${PATH}?workspaceId=default`],
      ["POST", PATH],
      ["GET", `${PATH}/${destination.id}`],
      ["PATCH", `${PATH}/${destination.id}`],
      ["DELETE", `${PATH}/${destination.id}`],
      ["GET", `${PATH}/${destination.id}/deliveries`],
      ["GET", "/admin/v1/dead-letters?workspaceId=default"],
      ["POST", "/admin/v1/dead-letters/dlv_x/replay"],
    ];
    for (const [method, path] of routes) {
      expect((await call(path, { method, headers: { authorization: bearer("dev-access-token") } })).status, `${method} ${path}`).toBe(403);
      expect((await call(path, { method })).status, `${method} ${path}`).toBe(401);
    }
    expect((await admin(`${PATH}/${destination.id}`)).status).toBe(200);
  });

  it("describes the routes in /openapi.json, with secrets write-only", async () => {
    const doc = await json<{ paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } }>(await call("/openapi.json"));
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining([PATH, `${PATH}/{id}`, `${PATH}/{id}/deliveries`, "/admin/v1/dead-letters", "/admin/v1/dead-letters/{deliveryId}/replay"]));
    expect(Object.keys(doc.paths[PATH]!).sort()).toEqual(["get", "post"]);
    expect(Object.keys(doc.paths[`${PATH}/{id}`]!).sort()).toEqual(["delete", "get", "patch"]);
    expect(JSON.stringify(doc.components.schemas.DestinationCreate)).toContain('"writeOnly":true');
    expect(Object.keys((doc.components.schemas.Destination as { properties: Record<string, unknown> }).properties)).not.toContain("secrets");
  });
});
