import { Analytics } from "@segment/analytics-node";
import { parquetReadObjects } from "hyparquet";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalServer } from "../../scripts/local-server.mjs";
import { behaviours, expectedSignature, type Receiver, startReceiver } from "./receivers";
import { adminCall, basicAuth, type Json, startE2eServer, waitForArchive } from "./server";

/**
 * A person's deletion, end to end against the deploy bundle. The person is
 * collected with the real `@segment/analytics-node` (identify, track, an alias
 * merging two profiles, a group), reaches two destinations (a webhook and a
 * Braze-compatible receiver on 127.0.0.1), is exported to the warehouse and
 * through an access request. After the deletion finishes, every store is
 * searched for the person's identifiers and traits — every table of every
 * Durable Object's SQLite file, every D1 table, the bytes of every R2 object
 * (gunzipped, Parquet decoded) — and nothing is found, while a bystander's data
 * is all still there. The receivers got their deletion calls, and late events
 * for the person are suppressed.
 */

const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const WORKSPACE = "default";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const person = {
  userId: `zelda-${RUN}`,
  anonymousId: `anon-zelda-${RUN}`,
  secondAnonymousId: `anon2-zelda-${RUN}`,
  email: `zelda.${RUN}@quixote-mail.com`,
  phone: "+14155550123",
  crmId: `crm-zelda-${RUN}`,
  firstName: `Zeldaname${RUN}`,
  favouriteColour: `ultraviolet-${RUN}`,
};
const bystander = { userId: `bystander-${RUN}`, email: `bystander.${RUN}@acme-shop.com`, firstName: `Bysname${RUN}` };

/** Strings that must not survive anywhere (the phone in its E.164 form is distinctive enough with the others). */
const PERSON_NEEDLES = [person.userId, person.anonymousId, person.secondAnonymousId, person.email, person.crmId, person.firstName, person.favouriteColour, RUN + "-zelda-only"];
const BYSTANDER_NEEDLES = [bystander.userId, bystander.email, bystander.firstName];

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

/** Every text a store holds, as `{ where, text }`, for the searches below. */
type Found = { where: string; text: string };

async function d1Texts(server: LocalServer): Promise<Found[]> {
  const db = await server.mf.getD1Database("DB");
  const tables = (await db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'").all<{ name: string }>()).results;
  const out: Found[] = [];
  for (const { name } of tables) {
    const rows = (await db.prepare(`SELECT * FROM "${name}"`).all()).results;
    for (const row of rows) out.push({ where: `d1:${name}`, text: JSON.stringify(row) });
  }
  return out;
}

async function r2Texts(server: LocalServer): Promise<Found[]> {
  const bucket = await server.mf.getR2Bucket("ARCHIVE");
  const out: Found[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ ...(cursor ? { cursor } : {}) });
    for (const object of page.objects) {
      const body = await bucket.get(object.key);
      if (!body) continue;
      const bytes = Buffer.from(await body.arrayBuffer());
      out.push({ where: `r2:${object.key}`, text: bytes.toString("latin1") });
      if (object.key.endsWith(".gz")) out.push({ where: `r2:${object.key} (gunzipped)`, text: gunzipSync(bytes).toString("utf8") });
      if (object.key.endsWith(".parquet")) {
        const rows = await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer });
        out.push({ where: `r2:${object.key} (parquet rows)`, text: JSON.stringify(rows, (_k, v) => (typeof v === "bigint" ? String(v) : v)) });
      }
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return out;
}

/** Every row of every table of every Durable Object's SQLite database the local runtime keeps on disk. */
async function durableObjectTexts(server: LocalServer): Promise<Found[]> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.name.endsWith(".sqlite") && full.includes(`${path.sep}do${path.sep}`)) files.push(full);
    }
  };
  await walk(server.persistRoot);
  const out: Found[] = [];
  for (const file of files) {
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[];
      for (const { name } of tables) {
        const rows = db.prepare(`SELECT * FROM "${name}"`);
        rows.setReadBigInts(true); // workerd's own tables hold 64-bit integers
        for (const row of rows.all()) out.push({ where: `do:${path.basename(path.dirname(file))}/${path.basename(file)}:${name}`, text: JSON.stringify(row, (_k, v) => (typeof v === "bigint" ? String(v) : v)) });
      }
    } finally {
      db.close();
    }
  }
  return out;
}

const hits = (texts: Found[], needles: string[]) =>
  texts.flatMap(({ where, text }) => needles.filter((needle) => text.toLowerCase().includes(needle.toLowerCase())).map((needle) => `${needle} in ${where}`));

describe("privacy: a deletion reaches every store and every destination", () => {
  let server: LocalServer;
  let webhook: Receiver;
  let braze: Receiver;
  let refuser: Receiver;
  let accessExportId = "";
  const destinations = {} as { webhook: Json; braze: Json; refuser: Json };
  const call = (method: string, p: string, body?: unknown) => adminCall(server, method, p, body);
  async function ok(method: string, p: string, expected: number, body?: unknown): Promise<Json> {
    const reply = await call(method, p, body);
    if (reply.status !== expected) throw new Error(`${method} ${p} → ${reply.status} (expected ${expected}): ${JSON.stringify(reply.body)}`);
    return reply.body;
  }
  const track = (body: Json) =>
    fetch(`${server.url}/v1/batch`, { method: "POST", headers: { authorization: basicAuth(server.writeKey), "content-type": "application/json" }, body: JSON.stringify({ batch: [body] }) });

  beforeAll(async () => {
    server = await startE2eServer();
    webhook = await startReceiver(behaviours.healthy());
    // Braze answers the deletion 500 once, then accepts it: the deletion retries.
    let brazeDeletes = 0;
    braze = await startReceiver((request) => (request.path.endsWith("/users/delete") && brazeDeletes++ === 0 ? { status: 500 } : { status: 201 }), { path: "" });
    // Accepts everything but the bystander's deletion, which it refuses for good (a 400).
    refuser = await startReceiver((request) => (request.rawBody.includes('"type":"delete"') && request.rawBody.includes(bystander.userId) ? { status: 400 } : { status: 200 }));
    const every = { events: [{}], audiences: [], computedTraits: [] };
    destinations.webhook = (await ok("POST", "/destinations", 201, { workspaceId: WORKSPACE, type: "webhook", name: `Privacy Hook ${RUN}`, settings: { url: webhook.url }, secrets: { signingSecret: "privacy-hook-secret" }, subscriptions: every })).destination;
    destinations.refuser = (await ok("POST", "/destinations", 201, { workspaceId: WORKSPACE, type: "webhook", name: `Refusing Hook ${RUN}`, settings: { url: refuser.url }, secrets: { signingSecret: "refusing-hook-secret" }, subscriptions: every })).destination;
    destinations.braze = (await ok("POST", "/destinations", 201, { workspaceId: WORKSPACE, type: "braze", name: `Privacy Braze ${RUN}`, settings: { instanceUrl: `http://127.0.0.1:${braze.port}` }, secrets: { apiKey: "braze-key" }, subscriptions: every })).destination;

    const analytics = new Analytics({ writeKey: server.writeKey, host: server.url, flushAt: 20, flushInterval: 200, maxRetries: 3 });
    // Two profiles (the anonymous browsing, and the identified user) that the alias merges.
    analytics.track({ anonymousId: person.secondAnonymousId, event: "Viewed Pricing", properties: { note: `${RUN}-zelda-only` }, messageId: `pd-${RUN}-1` });
    analytics.identify({
      userId: person.userId,
      anonymousId: person.anonymousId,
      traits: { email: person.email, phone: person.phone, firstName: person.firstName, favouriteColour: person.favouriteColour },
      context: { externalIds: [{ id: person.crmId, type: "crm_id", collection: "users", encoding: "none" }] },
      messageId: `pd-${RUN}-2`,
    });
    analytics.alias({ userId: person.userId, previousId: person.secondAnonymousId, messageId: `pd-${RUN}-3` });
    analytics.track({ userId: person.userId, event: "Order Completed", properties: { total: 42, shipTo: person.favouriteColour }, messageId: `pd-${RUN}-4` });
    analytics.group({ userId: person.userId, groupId: `acct-${RUN}`, traits: { name: `Account ${RUN}` }, messageId: `pd-${RUN}-5` });
    analytics.identify({ userId: bystander.userId, traits: { email: bystander.email, firstName: bystander.firstName }, messageId: `pd-${RUN}-6` });
    analytics.track({ userId: bystander.userId, event: "Order Completed", properties: { total: 7 }, messageId: `pd-${RUN}-7` });
    await analytics.closeAndFlush();
    await waitForArchive(server, `pd-${RUN}-`, 7);
    await waitFor("both destinations to receive the person's events", async () =>
      [webhook, braze, refuser].every((r) => r.requests.some((q) => q.status !== undefined && q.status < 300 && q.rawBody.includes(person.userId))) ? true : undefined,
    );
    // Copies elsewhere: the warehouse export of the hour and today's profiles, and an access export of the person.
    const hour = new Date().toISOString().slice(0, 13);
    await ok("POST", "/exports", 200, { workspaceId: WORKSPACE, kind: "events", hour });
    await waitFor("the person's profile row in D1", async () => {
      const db = await server.mf.getD1Database("DB");
      return (await db.prepare("SELECT 1 FROM profiles WHERE workspace_id = ?1 AND user_id = ?2").bind(WORKSPACE, person.userId).first()) ? true : undefined;
    });
    await ok("POST", "/exports", 200, { workspaceId: WORKSPACE, kind: "profiles" });
    const access = await ok("POST", "/privacy/exports", 202, { workspaceId: WORKSPACE, identifier: { type: "user_id", value: person.userId } });
    accessExportId = access.request.id;
    await waitFor("the access export", async () => ((await ok("GET", `/privacy/exports/${access.request.id}?workspaceId=${WORKSPACE}`, 200)).status === "finished" ? true : undefined));
  }, 240_000);

  afterAll(async () => {
    await webhook?.close();
    await braze?.close();
    await refuser?.close();
    await server?.dispose();
  });

  it("finds the person in every store before the deletion (the searches can see them)", async () => {
    const all = [...(await d1Texts(server)), ...(await r2Texts(server)), ...(await durableObjectTexts(server))];
    for (const needle of [person.userId, person.email, person.favouriteColour]) {
      for (const store of ["d1:", "r2:", "do:"]) expect(hits(all.filter((t) => t.where.startsWith(store)), [needle]).length, `${needle} in ${store}`).toBeGreaterThan(0);
    }
  });

  it("exported the person's deliveries and archived events in their access request", async () => {
    const response = await fetch(`${server.url}/admin/v1/privacy/exports/${accessExportId}/download?workspaceId=${WORKSPACE}`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    expect(response.status).toBe(200);
    const document = (await response.json()) as Json;
    const delivered = new Set((document.deliveries as Json[]).filter((d) => d.status === "delivered").map((d) => d.destination_id));
    expect([...delivered].sort()).toEqual([destinations.webhook.id, destinations.braze.id, destinations.refuser.id].sort());
    expect((document.events.archive.events as Json[]).map((e) => e.messageId).sort()).toEqual([1, 2, 3, 4, 5].map((n) => `pd-${RUN}-${n}`));
    expect(JSON.stringify(document.profile.current)).toContain(person.favouriteColour);
    expect(JSON.stringify(document)).not.toContain(bystander.userId);
  });

  it("erases the person everywhere, tells every destination, and keeps the bystander", async () => {
    // The delivery log may have been pruned by retention since: the deletion still finds every destination.
    const db = await server.mf.getD1Database("DB");
    await db.prepare("DELETE FROM deliveries WHERE workspace_id = ?1").bind(WORKSPACE).run();
    // By their email in another case: any identifier reaches the whole person.
    const created = await ok("POST", "/privacy/deletions", 202, { workspaceId: WORKSPACE, identifier: { type: "email", value: person.email.toUpperCase() } });
    expect(created.request).toMatchObject({ kind: "deletion", status: "initialized", subject: expect.stringMatching(/^email:z\*\*\*@quixote-mail\.com$/) });
    expect(created.request.profileIds.length).toBeGreaterThanOrEqual(2); // the merged profile and the one it absorbed
    expect(Object.keys(created.request.destinations).sort()).toEqual([destinations.webhook.id, destinations.braze.id, destinations.refuser.id].sort());

    const done = await waitFor(
      "the deletion to finish",
      async () => {
        const request = await ok("GET", `/privacy/deletions/${created.request.id}?workspaceId=${WORKSPACE}`, 200);
        if (request.status === "failed") throw new Error(`deletion failed: ${request.error}`);
        return request.status === "finished" ? request : undefined;
      },
      120_000,
    );
    expect(done.stores).toMatchObject({ r2: { status: "done" }, identity: { status: "done" }, d1: { status: "done" } });
    expect(done.stores.r2.counts.archiveEventsRemoved).toBeGreaterThanOrEqual(5);
    expect(done.destinations[destinations.webhook.id]).toMatchObject({ status: "finished", attempts: 1 });
    expect(done.destinations[destinations.braze.id]).toMatchObject({ status: "finished", attempts: 2 });
    expect(done.destinations[destinations.refuser.id]).toMatchObject({ status: "finished", attempts: 1 });
    const job = await ok("GET", `/jobs/${done.jobId}?workspaceId=${WORKSPACE}`, 200);
    expect(job).toMatchObject({ kind: "privacy-deletion", status: "succeeded" });

    // The webhook got a signed delete event naming the person; Braze its users/delete by external id and alias.
    const deleteCall = webhook.requests.find((r) => r.payload?.batch.some((m) => m.type === "delete"));
    expect(deleteCall).toBeDefined();
    expect(deleteCall!.headers["x-signature"]).toBe(expectedSignature("privacy-hook-secret", deleteCall!.rawBody));
    expect(deleteCall!.payload!.batch[0]).toMatchObject({ type: "delete", userId: person.userId, messageId: created.request.id });
    const brazeDeletes = braze.requests.filter((r) => r.path.endsWith("/users/delete"));
    expect(brazeDeletes.map((r) => r.status)).toEqual([500, 201]);
    expect(JSON.parse(brazeDeletes[1]!.rawBody).external_ids).toEqual([person.userId]);

    const [d1, r2, objects] = [await d1Texts(server), await r2Texts(server), await durableObjectTexts(server)];
    expect(hits(d1, PERSON_NEEDLES)).toEqual([]);
    expect(hits(r2, PERSON_NEEDLES)).toEqual([]);
    expect(hits(objects, PERSON_NEEDLES)).toEqual([]);
    for (const needle of BYSTANDER_NEEDLES) {
      expect(hits(d1, [needle]).length, `${needle} in D1`).toBeGreaterThan(0);
      expect(hits(r2, [needle]).length, `${needle} in R2`).toBeGreaterThan(0);
      expect(hits(objects, [needle]).length, `${needle} in Durable Objects`).toBeGreaterThan(0);
    }
    const bystanderProfile = await ok("GET", `/profiles?workspaceId=${WORKSPACE}&identifier=${encodeURIComponent(`user_id:${bystander.userId}`)}`, 200);
    expect(bystanderProfile.data).toHaveLength(1);
    // The earlier access export went with the person.
    const exports = await ok("GET", `/privacy/exports?workspaceId=${WORKSPACE}`, 200);
    expect(exports.data[0]).toMatchObject({ download: null, error: expect.stringContaining(created.request.id) });
  }, 180_000);

  it("suppresses late events for the deleted person while the bystander's still arrive", async () => {
    const late = [
      { type: "track", userId: person.userId, event: "Late Event", messageId: `pd-${RUN}-late-1` },
      { type: "identify", anonymousId: `fresh-${RUN}`, traits: { email: person.email.replace("@", "+later@") }, messageId: `pd-${RUN}-late-2` },
      { type: "track", userId: bystander.userId, event: "Late Event", messageId: `pd-${RUN}-late-3` },
    ];
    for (const message of late) expect((await track(message)).status).toBe(200);
    const archived = await waitForArchive(server, `pd-${RUN}-late-`, 1);
    expect(archived.map((e) => e.messageId)).toEqual([`pd-${RUN}-late-3`]);
    const profile = await ok("GET", `/profiles?workspaceId=${WORKSPACE}&identifier=${encodeURIComponent(`user_id:${person.userId}`)}`, 200);
    expect(profile.data).toEqual([]);
    const drops = await ok("GET", `/privacy/collection?workspaceId=${WORKSPACE}&days=1`, 200);
    expect(JSON.stringify(drops)).toMatch(/suppressed/);
  }, 120_000);

  it("ends in partial success, naming the destination, when one refuses the deletion for good", async () => {
    const created = await ok("POST", "/privacy/deletions", 202, { workspaceId: WORKSPACE, identifier: { type: "user_id", value: bystander.userId } });
    const done = await waitFor("the bystander's deletion to end", async () => {
      const request = await ok("GET", `/privacy/deletions/${created.request.id}?workspaceId=${WORKSPACE}`, 200);
      return ["finished", "partial_success", "failed"].includes(request.status) ? request : undefined;
    });
    expect(done.status).toBe("partial_success");
    expect(done.destinations[destinations.refuser.id]).toMatchObject({ status: "failed", attempts: 1, lastError: expect.stringContaining("400") });
    expect(done.destinations[destinations.webhook.id]).toMatchObject({ status: "finished" });
    expect(done.error).toContain(`Refusing Hook ${RUN}`);
    // Every store is clean of them all the same.
    expect(hits([...(await d1Texts(server)), ...(await r2Texts(server)), ...(await durableObjectTexts(server))], BYSTANDER_NEEDLES)).toEqual([]);
  }, 120_000);
});
