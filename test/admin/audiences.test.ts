import { createExecutionContext, createMessageBatch, createScheduledController, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../workers/index";
import { admin, bearer, call, json, type Problem, sleep, track, unique } from "../helpers";
import { waitForProfile } from "../profiles/helpers";

/**
 * Segments, computed traits and their backfill jobs through the admin API, with
 * real bindings: events are sent with `?sync=true` so the people exist before a
 * definition is saved, backfills run through the real jobs queue, and the
 * Profile API reads the memberships written through to D1. Storage is shared by
 * the tests of this file, so each one uses its own people, trait values and event names.
 */

interface Job {
  id: string;
  workspaceId: string;
  kind: string;
  target: string;
  status: "queued" | "running" | "succeeded" | "failed";
  processed: number;
  total: number | null;
  error: string | null;
  createdAt: string | null;
  updatedAt: string | null;
  finishedAt: string | null;
}
interface Audience {
  id: string;
  workspaceId: string;
  key: string;
  name: string;
  definition: unknown;
  version: number;
}
interface Member {
  profileId: string;
  value?: unknown;
  since: string;
}

/** Lowercase letters and digits: fit for keys, trait names and event names alike. */

const SEGMENTS = "/admin/v1/segments";
const COMPUTED = "/admin/v1/computed-traits";

async function identify(userId: string, traits: Record<string, unknown>) {
  const response = await track("/v1/identify?sync=true", { userId, traits });
  expect(response.status).toBe(200);
}

async function trackEvent(userId: string, event: string, properties: Record<string, unknown> = {}) {
  const response = await track("/v1/track?sync=true", { userId, event, properties });
  expect(response.status).toBe(200);
}

async function profileIdOf(userId: string): Promise<string> {
  const found = await json<{ data: { profileId: string }[] }>(await admin(`/admin/v1/profiles?workspaceId=default&identifier=user_id:${userId}`));
  if (!found.data[0]) throw new Error(`no profile for user ${userId}`);
  return found.data[0].profileId;
}

async function create<T = { segment: Audience; job: Job }>(path: string, body: Record<string, unknown>): Promise<T> {
  const response = await admin(path, { method: "POST", json: { workspaceId: "default", ...body } });
  if (response.status !== 201) throw new Error(`create failed: ${response.status} ${await response.text()}`);
  return json<T>(response);
}

/** Polls the job until it has finished, with a deadline: chunks travel through the real jobs queue. */
async function finished(jobId: string, timeoutMs = 20_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await admin(`/admin/v1/jobs/${jobId}`);
    expect(response.status).toBe(200);
    const job = await json<Job>(response);
    if (job.status === "succeeded" || job.status === "failed") return job;
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${job.status} after ${timeoutMs} ms: ${JSON.stringify(job)}`);
    await sleep(100);
  }
}

/** Every member, read page by page through the cursor. */
async function members(path: string, id: string, limit = 2): Promise<Member[]> {
  const all: Member[] = [];
  let cursor: string | null = null;
  do {
    const response = await admin(`${path}/${id}/members?limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`);
    expect(response.status).toBe(200);
    const page: { data: Member[]; next: string | null } = await json(response);
    expect(page.data.length).toBeLessThanOrEqual(limit);
    all.push(...page.data);
    cursor = page.next;
  } while (cursor);
  return all;
}

const memberIds = async (path: string, id: string) => (await members(path, id)).map((m) => m.profileId);
const sorted = (ids: string[]) => [...ids].sort();

/** The segment keys the Profile API shows on a person, once write-through has caught up with `ready`. */
async function profileSegments(userId: string, ready: (keys: string[]) => boolean): Promise<string[]> {
  const body = await waitForProfile<{ data: { key: string }[] }>(`users/profiles/user_id:${userId}/segments`, (b) => ready(b.data.map((s) => s.key)));
  return body.data.map((s) => s.key);
}

async function auditActions() {
  return (await json<{ data: { action: string; target: string; details: Record<string, unknown> | null }[] }>(await admin("/admin/v1/audit-log?workspaceId=default&limit=200"))).data;
}

const runCron = () => worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "*/5 * * * *" }), env, {} as ExecutionContext);

/** Four people in one cohort: two repeat buyers on the pro plan, one single buyer, one who never bought. */
async function cohort() {
  const id = unique();
  const users = { ana: `ana-${id}`, ben: `ben-${id}`, cat: `cat-${id}`, dan: `dan-${id}` };
  await identify(users.ana, { cohort: id, plan: "pro" });
  await identify(users.ben, { cohort: id, plan: "free" });
  await identify(users.cat, { cohort: id, plan: "pro" });
  await identify(users.dan, { cohort: id, plan: "free" });
  for (const userId of [users.ana, users.ana, users.dan, users.dan, users.dan, users.ben]) await trackEvent(userId, "Order Completed", { revenue: 10 });
  const profiles = Object.fromEntries(await Promise.all(Object.entries(users).map(async ([name, userId]) => [name, await profileIdOf(userId)] as const))) as Record<keyof typeof users, string>;
  return { id, users, profiles };
}

const repeatBuyers = (cohortId: string) => ({
  kind: "and",
  conditions: [
    { kind: "trait", trait: "cohort", op: "equals", value: cohortId },
    { kind: "event", event: "Order Completed", count: { op: "gte", value: 2 } },
  ],
});

describe("segments", () => {
  it("backfills a new segment over existing profiles through the jobs queue, and lists exactly its members", async () => {
    const { id, users, profiles } = await cohort();
    const key = `repeat_${id}`;

    const preview = await admin(`${SEGMENTS}/preview`, { method: "POST", json: { workspaceId: "default", definition: repeatBuyers(id), sample: 5 } });
    expect(preview.status).toBe(200);
    const previewed = await json<{ size: number; total: number; sample: { profileId: string; value: unknown }[] }>(preview);
    expect(previewed.size).toBe(2);
    expect(previewed.total).toBeGreaterThanOrEqual(4);
    expect(sorted(previewed.sample.map((s) => s.profileId))).toEqual(sorted([profiles.ana, profiles.dan]));
    expect(previewed.sample.every((s) => s.value === true)).toBe(true);
    // A preview saves nothing.
    expect((await json<{ data: Audience[] }>(await admin(`${SEGMENTS}?workspaceId=default&limit=200`))).data.map((s) => s.key)).not.toContain(key);

    const { segment, job } = await create(SEGMENTS, { key, name: "Repeat buyers", definition: repeatBuyers(id) });
    expect(segment).toMatchObject({ id: expect.stringMatching(/^seg_/), workspaceId: "default", key, name: "Repeat buyers", definition: repeatBuyers(id), version: 1 });
    expect(job).toMatchObject({ id: expect.stringMatching(/^job_/), kind: "backfill", target: segment.id, status: expect.stringMatching(/^(queued|running|succeeded)$/) });

    const done = await finished(job.id);
    expect(done).toMatchObject({ status: "succeeded", error: null, finishedAt: expect.any(String) });
    expect(done.total).toBeGreaterThanOrEqual(4);
    expect(done.processed).toBe(done.total);

    expect(sorted(await memberIds(SEGMENTS, segment.id))).toEqual(sorted([profiles.ana, profiles.dan]));
    expect(await profileSegments(users.ana, (keys) => keys.includes(key))).toContain(key);
    expect(await profileSegments(users.dan, (keys) => keys.includes(key))).toContain(key);
    expect(await profileSegments(users.ben, () => true)).not.toContain(key);
    expect(await profileSegments(users.cat, () => true)).not.toContain(key);

    expect(await json<Audience>(await admin(`${SEGMENTS}/${segment.id}`))).toMatchObject({ id: segment.id, key, version: 1 });
    expect((await json<{ data: Audience[] }>(await admin(`${SEGMENTS}?workspaceId=default&limit=200`))).data.map((s) => s.id)).toContain(segment.id);
    expect(await auditActions()).toContainEqual(expect.objectContaining({ action: "segment.create", target: segment.id, details: expect.objectContaining({ key }) }));
  });

  it("evaluates a saved segment on new events at once, before any backfill", async () => {
    const { id, users, profiles } = await cohort();
    const { segment, job } = await create(SEGMENTS, { key: `repeat_${id}`, name: "Repeat buyers", definition: repeatBuyers(id) });
    await finished(job.id);
    await trackEvent(users.ben, "Order Completed", { revenue: 5 });
    expect(sorted(await memberIds(SEGMENTS, segment.id))).toEqual(sorted([profiles.ana, profiles.ben, profiles.dan]));
  });

  it("pages the list in key order with a cursor", async () => {
    const id = unique();
    for (const suffix of ["a", "b", "c"]) await create(SEGMENTS, { key: `page_${id}_${suffix}`, name: suffix, definition: { kind: "trait", trait: "cohort", op: "equals", value: id } });
    const keys: string[] = [];
    let cursor: string | null = `page_${id}`;
    do {
      const page: { data: Audience[]; next: string | null } = await json(await admin(`${SEGMENTS}?workspaceId=default&limit=2&cursor=${cursor}`));
      keys.push(...page.data.map((s) => s.key));
      cursor = page.next;
    } while (cursor);
    expect(keys.filter((k) => k.startsWith(`page_${id}`))).toEqual([`page_${id}_a`, `page_${id}_b`, `page_${id}_c`]);
  });

  it("refuses an invalid definition with 400 naming each mistake's path under definition, and saves nothing", async () => {
    const key = `bad_${unique()}`;
    const cases: [unknown, string][] = [
      [{ kind: "and", conditions: [{ kind: "trait", trait: "plan", op: "gt", value: "many" }] }, "definition.conditions.0.value"],
      [{ kind: "event", event: "Order Completed", count: { op: "gte", value: -1 } }, "definition.count.value"],
      [{ kind: "sometimes" }, "definition.kind"],
      [undefined, "definition"],
    ];
    for (const [definition, path] of cases) {
      const response = await admin(SEGMENTS, { method: "POST", json: { workspaceId: "default", key, name: "Bad", definition } });
      expect(response.status, path).toBe(400);
      const problem = await json<Problem>(response);
      expect(problem.code).toBe("VALIDATION_FAILED");
      expect(problem.errors!.map((e) => e.path), path).toContain(path);
    }
    const both = await admin(SEGMENTS, { method: "POST", json: { workspaceId: "default", key: "Not A Key", name: "", definition: { kind: "sometimes" } } });
    expect(both.status).toBe(400);
    expect(sorted((await json<Problem>(both)).errors!.map((e) => e.path))).toEqual(["definition.kind", "key", "name"]);

    const preview = await admin(`${SEGMENTS}/preview`, { method: "POST", json: { workspaceId: "default", definition: { kind: "not", condition: { kind: "trait", trait: "a..b", op: "exists" } } } });
    expect(preview.status).toBe(400);
    expect((await json<Problem>(preview)).errors!.map((e) => e.path)).toContain("definition.condition.trait");

    expect((await json<{ data: Audience[] }>(await admin(`${SEGMENTS}?workspaceId=default&limit=200`))).data.map((s) => s.key)).not.toContain(key);
    expect((await admin(SEGMENTS, { method: "POST", json: { key, name: "No workspace", definition: { kind: "trait", trait: "a", op: "exists" } } })).status).toBe(400);
  });

  it("refuses a key already used in the workspace, by a segment or a computed trait, with 409", async () => {
    const key = `taken_${unique()}`;
    const { segment } = await create(SEGMENTS, { key, name: "First", definition: { kind: "trait", trait: "plan", op: "exists" } });
    const again = await admin(SEGMENTS, { method: "POST", json: { workspaceId: "default", key, name: "Second", definition: { kind: "trait", trait: "plan", op: "exists" } } });
    expect(again.status).toBe(409);
    const problem = await json<Problem>(again);
    expect(problem).toMatchObject({ code: "CONFLICT", errors: [{ path: "key", message: "already taken" }] });
    expect(problem.detail).toContain(segment.id);
    const computed = await admin(COMPUTED, { method: "POST", json: { workspaceId: "default", key, name: "Clash", definition: { function: "count", event: "Order Completed" } } });
    expect(computed.status).toBe(409);
  });

  it("re-runs the backfill when the definition is edited, and membership follows; a new name alone changes nothing else", async () => {
    const { id, users, profiles } = await cohort();
    const key = `plan_${id}`;
    const onPlan = (plan: string) => ({ kind: "and", conditions: [{ kind: "trait", trait: "cohort", op: "equals", value: id }, { kind: "trait", trait: "plan", op: "equals", value: plan }] });
    const { segment, job } = await create(SEGMENTS, { key, name: "Pro", definition: onPlan("pro") });
    await finished(job.id);
    expect(sorted(await memberIds(SEGMENTS, segment.id))).toEqual(sorted([profiles.ana, profiles.cat]));
    await profileSegments(users.ana, (keys) => keys.includes(key));

    const edited = await admin(`${SEGMENTS}/${segment.id}`, { method: "PATCH", json: { definition: onPlan("free") } });
    expect(edited.status).toBe(200);
    const { segment: v2, job: rerun } = await json<{ segment: Audience; job: Job }>(edited);
    expect(v2).toMatchObject({ id: segment.id, key, name: "Pro", version: 2, definition: onPlan("free") });
    expect(rerun.id).not.toBe(job.id);
    expect(rerun.target).toBe(segment.id);
    expect(await finished(rerun.id)).toMatchObject({ status: "succeeded" });
    expect(sorted(await memberIds(SEGMENTS, segment.id))).toEqual(sorted([profiles.ben, profiles.dan]));
    expect(await profileSegments(users.ana, (keys) => !keys.includes(key))).not.toContain(key);
    expect(await profileSegments(users.ben, (keys) => keys.includes(key))).toContain(key);

    const renamed = await json<{ segment: Audience; job: Job | null }>(await admin(`${SEGMENTS}/${segment.id}`, { method: "PATCH", json: { name: "Free plan" } }));
    expect(renamed).toMatchObject({ segment: { name: "Free plan", version: 2 }, job: null });
    const members = await json<{ data: Member[] }>(await admin(`${SEGMENTS}/${segment.id}/members`));
    expect(sorted(members.data.map((m) => m.profileId))).toEqual(sorted([profiles.ben, profiles.dan]));
    const bodyless = await admin(`${SEGMENTS}/${segment.id}`, { method: "PATCH", json: {} });
    expect(bodyless.status).toBe(400);
    const invalid = await admin(`${SEGMENTS}/${segment.id}`, { method: "PATCH", json: { definition: { kind: "or", conditions: [] } } });
    expect(invalid.status).toBe(400);
    expect((await json<Problem>(invalid)).errors!.map((e) => e.path)).toContain("definition.conditions");
    expect((await json<Audience>(await admin(`${SEGMENTS}/${segment.id}`))).version).toBe(2);

    const audit = await auditActions();
    expect(audit).toContainEqual(expect.objectContaining({ action: "segment.update", target: segment.id, details: { definition: onPlan("free") } }));
    expect(audit).toContainEqual(expect.objectContaining({ action: "segment.update", target: segment.id, details: { name: "Free plan" } }));
  });

  it("removes every membership when a segment is deleted", async () => {
    const { id, users, profiles } = await cohort();
    const key = `gone_${id}`;
    const { segment, job } = await create(SEGMENTS, { key, name: "Doomed", definition: repeatBuyers(id) });
    await finished(job.id);
    expect(sorted(await memberIds(SEGMENTS, segment.id))).toEqual(sorted([profiles.ana, profiles.dan]));
    await profileSegments(users.ana, (keys) => keys.includes(key));

    const deleted = await admin(`${SEGMENTS}/${segment.id}`, { method: "DELETE" });
    expect(deleted.status).toBe(204);
    expect((await admin(`${SEGMENTS}/${segment.id}`)).status).toBe(404);
    expect((await admin(`${SEGMENTS}/${segment.id}/members`)).status).toBe(404);
    expect((await admin(`${SEGMENTS}/${segment.id}`, { method: "DELETE" })).status).toBe(404);
    expect(await profileSegments(users.ana, (keys) => !keys.includes(key))).not.toContain(key);
    expect(await profileSegments(users.dan, (keys) => !keys.includes(key))).not.toContain(key);
    expect(((await env.IDENTITY.getByName("default").listAudiences()) as { id: string }[]).map((a) => a.id)).not.toContain(segment.id);
    // The key is free again.
    await create(SEGMENTS, { key, name: "Reborn", definition: repeatBuyers(id) });
    expect(await auditActions()).toContainEqual(expect.objectContaining({ action: "segment.delete", target: segment.id, details: { key, name: "Doomed" } }));
  });
});

describe("computed traits", () => {
  it("are created, backfilled, listed with each profile's value, edited and deleted", async () => {
    const id = unique();
    const event = `Order Completed ${id}`;
    const [ana, ben, cat] = [`ana-${id}`, `ben-${id}`, `cat-${id}`];
    for (const userId of [ana, ben, cat]) await identify(userId, { cohort: id });
    for (const [userId, revenue] of [[ana, 30], [ana, 12.5], [ben, 7]] as const) await trackEvent(userId, event, { revenue });
    const profiles = { ana: await profileIdOf(ana), ben: await profileIdOf(ben) };
    const key = `revenue_${id}`;
    // An average is null for a person without such events (a count or a sum would be 0 for everyone), so the members are exactly the buyers.
    const definition = { function: "average", event, property: "revenue" };

    const preview = await json<{ size: number; sample: { profileId: string; value: unknown }[] }>(
      await admin(`${COMPUTED}/preview`, { method: "POST", json: { workspaceId: "default", definition } }),
    );
    expect(preview.size).toBe(2);
    expect(sorted(preview.sample.map((s) => `${s.profileId}=${s.value}`))).toEqual(sorted([`${profiles.ana}=21.25`, `${profiles.ben}=7`]));

    const { computedTrait, job } = await create<{ computedTrait: Audience; job: Job }>(COMPUTED, { key, name: "Revenue", definition });
    expect(computedTrait).toMatchObject({ id: expect.stringMatching(/^ctr_/), key, version: 1, definition });
    expect(await finished(job.id)).toMatchObject({ status: "succeeded" });
    const valued = await members(COMPUTED, computedTrait.id);
    expect(sorted(valued.map((m) => `${m.profileId}=${m.value}`))).toEqual(sorted([`${profiles.ana}=21.25`, `${profiles.ben}=7`]));
    expect(valued.every((m) => !Number.isNaN(Date.parse(m.since)))).toBe(true);
    const computed = await waitForProfile<{ data: { key: string; value: unknown }[] }>(`users/profiles/user_id:${ana}/computed`, (b) => b.data.some((t) => t.key === key));
    expect(computed.data).toContainEqual({ key, value: 21.25 });
    // A computed trait is not a segment.
    expect((await admin(`${SEGMENTS}/${computedTrait.id}`)).status).toBe(404);

    const edited = await json<{ computedTrait: Audience; job: Job }>(await admin(`${COMPUTED}/${computedTrait.id}`, { method: "PATCH", json: { definition: { function: "max", event, property: "revenue" } } }));
    expect(edited.computedTrait.version).toBe(2);
    await finished(edited.job.id);
    expect(sorted((await members(COMPUTED, computedTrait.id)).map((m) => `${m.profileId}=${m.value}`))).toEqual(sorted([`${profiles.ana}=30`, `${profiles.ben}=7`]));

    const invalid = await admin(`${COMPUTED}/${computedTrait.id}`, { method: "PATCH", json: { definition: { function: "sum", event } } });
    expect(invalid.status).toBe(400);
    expect((await json<Problem>(invalid)).errors!.map((e) => e.path)).toContain("definition.property");

    expect((await admin(`${COMPUTED}/${computedTrait.id}`, { method: "DELETE" })).status).toBe(204);
    expect((await admin(`${COMPUTED}/${computedTrait.id}`)).status).toBe(404);
    await waitForProfile<{ data: { key: string }[] }>(`users/profiles/user_id:${ana}/computed`, (b) => !b.data.some((t) => t.key === key));
    const audit = (await auditActions()).filter((e) => e.target === computedTrait.id).map((e) => e.action);
    expect(audit).toEqual(["computed_trait.delete", "computed_trait.update", "computed_trait.create"]);
  });
});

describe("workspace statistics", () => {
  it("puts the average and median of a trait on the cron, and segments comparing with them follow", async () => {
    const id = unique();
    const trait = `ltv_${id}`;
    const people = [`low-${id}`, `mid-${id}`, `high-${id}`];
    // A number written as a string counts, as the segment language reads it.
    for (const [userId, value] of [[people[0]!, 10], [people[1]!, "20"], [people[2]!, 60]] as const) await identify(userId, { cohort: id, [trait]: value });
    const [low, mid, high] = await Promise.all(people.map(profileIdOf));
    const above = (statistic: string, op: string) => ({
      kind: "and",
      conditions: [
        { kind: "trait", trait: "cohort", op: "equals", value: id },
        { kind: "compare", left: { trait }, op, right: { statistic, of: { trait } } },
      ],
    });
    const { segment: aboveAverage, job } = await create(SEGMENTS, { key: `above_avg_${id}`, name: "Above average", definition: above("average", "gt") });
    const { segment: atLeastMedian, job: second } = await create(SEGMENTS, { key: `at_median_${id}`, name: "At least the median", definition: above("median", "gte") });
    await finished(job.id);
    await finished(second.id);
    // No statistic yet: the comparisons are false.
    expect(await memberIds(SEGMENTS, aboveAverage.id)).toEqual([]);

    await runCron();
    // Average 30: only the 60; median 20: the "20" and the 60.
    expect(await memberIds(SEGMENTS, aboveAverage.id)).toEqual([high]);
    expect(sorted(await memberIds(SEGMENTS, atLeastMedian.id))).toEqual(sorted([mid!, high!]));
    expect(await memberIds(SEGMENTS, aboveAverage.id)).not.toContain(low);

    // The statistic moves with the data on the next run: a 300 raises the average to 97.5.
    await identify(`top-${id}`, { cohort: id, [trait]: 300 });
    await runCron();
    expect(await memberIds(SEGMENTS, aboveAverage.id)).toEqual([await profileIdOf(`top-${id}`)]);
  });
});

describe("repairs by the maintenance cron", () => {
  it("puts back a definition the identity object lost, with a backfill", async () => {
    const { id, profiles } = await cohort();
    const { segment, job } = await create(SEGMENTS, { key: `lost_${id}`, name: "Lost", definition: repeatBuyers(id) });
    await finished(job.id);
    const graph = env.IDENTITY.getByName("default");
    expect(await graph.removeAudience(segment.id)).toBe(true);
    expect(await memberIds(SEGMENTS, segment.id)).toEqual([]);

    await runCron();
    expect(((await graph.listAudiences()) as { id: string }[]).map((a) => a.id)).toContain(segment.id);
    const repair = await env.DB.prepare("SELECT id FROM jobs WHERE target = ? AND id != ? ORDER BY created_at DESC").bind(segment.id, job.id).first<{ id: string }>();
    expect(repair).not.toBeNull();
    expect(await finished(repair!.id)).toMatchObject({ status: "succeeded" });
    expect(sorted(await memberIds(SEGMENTS, segment.id))).toEqual(sorted([profiles.ana, profiles.dan]));
  });
});

describe("the jobs queue", () => {
  /** A workspace of its own with `count` people, half of them in cohort "even", sent through the events queue in one batch. */
  async function crowd(count: number) {
    const workspaceId = `crowd-${unique()}`;
    expect((await admin("/admin/v1/workspaces", { method: "POST", json: { id: workspaceId, name: "Crowd" } })).status).toBe(201);
    const { writeKey } = await json<{ writeKey: string }>(await admin("/admin/v1/sources", { method: "POST", json: { workspaceId, name: "Bulk" } }));
    const batch = Array.from({ length: count }, (_, i) => ({ type: "identify", userId: `person-${i}`, traits: { cohort: i % 2 ? "odd" : "even" } }));
    expect((await track("/v1/batch", { batch }, writeKey)).status).toBe(200);
    const graph = env.IDENTITY.getByName(workspaceId);
    const deadline = Date.now() + 20_000;
    while ((await graph.listProfiles(null, 1)).total < count) {
      if (Date.now() > deadline) throw new Error(`the ${count} people did not arrive`);
      await sleep(100);
    }
    return workspaceId;
  }

  async function deliver(...messages: { body: unknown; attempts?: number }[]) {
    const batch = createMessageBatch(
      "cdp-jobs",
      messages.map((m, i) => ({ id: `msg-${unique()}-${i}`, timestamp: new Date(), attempts: m.attempts ?? 1, body: m.body })),
    );
    const ctx = createExecutionContext();
    await worker.queue(batch as MessageBatch<unknown>, env, ctx);
    return { ids: batch.messages.map((m) => m.id), result: await getQueueResult(batch, ctx) };
  }

  const jobRow = (id: string) => env.DB.prepare("SELECT status, processed, total, cursor FROM jobs WHERE id = ?").bind(id).first<{ status: string; processed: number; total: number | null; cursor: string | null }>();

  it("walks a backfill over more than one chunk, and counts every profile once", async () => {
    const workspaceId = await crowd(450);
    const { segment, job } = await create(SEGMENTS, { workspaceId, key: "even", name: "Even", definition: { kind: "trait", trait: "cohort", op: "equals", value: "even" } });
    expect(await finished(job.id)).toMatchObject({ status: "succeeded", processed: 450, total: 450 });
    const all = await json<{ data: Member[]; next: string | null }>(await admin(`${SEGMENTS}/${segment.id}/members?limit=1000`));
    expect(all.data).toHaveLength(225);
    expect(all.next).toBeNull();
    expect((await members(SEGMENTS, segment.id, 100)).map((m) => m.profileId)).toEqual(all.data.map((m) => m.profileId));
  });

  it("drops a chunk already recorded, holds back one ahead of the recorded progress, and drops a malformed message", async () => {
    const workspaceId = await crowd(250);
    const jobId = `job_${unique()}`;
    await env.DB.prepare("INSERT INTO jobs (id, workspace_id, kind, target, status) VALUES (?, ?, 'backfill', 'seg_test', 'queued')").bind(jobId, workspaceId).run();
    const message = (after: string | null) => ({ body: { v: 1, jobId, workspaceId, kind: "backfill", after } });

    // Ahead: the chunk before it has not been recorded yet, so it waits for a retry instead of being lost.
    const ahead = await deliver(message("prof_zzzzzz"));
    expect(ahead.result.retryMessages.map((m) => m.msgId)).toEqual(ahead.ids);
    expect(await jobRow(jobId)).toMatchObject({ status: "queued", processed: 0, cursor: null });

    // The first chunk, delivered twice in one batch, counts once; its successor goes to the real queue and finishes the job.
    const first = await deliver(message(null), message(null));
    expect(first.result.explicitAcks.sort()).toEqual([...first.ids].sort());
    const recorded = await jobRow(jobId);
    // The successor may already have run by now: the first chunk's progress is in either way.
    expect(recorded).toMatchObject({ total: 250, cursor: expect.any(String) });
    expect([200, 250]).toContain(recorded!.processed);
    expect(await finished(jobId)).toMatchObject({ status: "succeeded", processed: 250, total: 250 });

    // A late copy of a recorded chunk changes nothing.
    const late = await deliver(message(null), message(recorded!.cursor));
    expect(late.result.explicitAcks.sort()).toEqual([...late.ids].sort());
    expect(await jobRow(jobId)).toMatchObject({ status: "succeeded", processed: 250, total: 250 });

    const malformed = await deliver({ body: { v: 2, jobId } }, { body: "not even an object" });
    expect(malformed.result.explicitAcks.sort()).toEqual([...malformed.ids].sort());
    expect(malformed.result.retryMessages).toEqual([]);
  });
});

describe("access", () => {
  it("confines a workspace token to its own workspace: another's segments, computed traits and jobs are 404", async () => {
    const id = unique();
    const { segment, job } = await create(SEGMENTS, { key: `mine_${id}`, name: "Mine", definition: { kind: "trait", trait: "cohort", op: "equals", value: id } });
    const { computedTrait } = await create<{ computedTrait: Audience }>(COMPUTED, { key: `count_${id}`, name: "Count", definition: { function: "count", event: `E ${id}` } });
    const tenant = `aud-${id}`;
    expect((await admin("/admin/v1/workspaces", { method: "POST", json: { id: tenant, name: "Tenant" } })).status).toBe(201);
    const { secret } = await json<{ secret: string }>(await admin("/admin/v1/tokens", { method: "POST", json: { workspaceId: tenant, name: "ops", scopes: ["admin"] } }));
    const send = (method: string, path: string, body?: unknown) => call(path, { method, headers: { authorization: bearer(secret), "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });

    for (const [method, path, body] of [
      ["GET", `${SEGMENTS}/${segment.id}`],
      ["GET", `${SEGMENTS}/${segment.id}?workspaceId=default`],
      ["PATCH", `${SEGMENTS}/${segment.id}`, { name: "Theirs" }],
      ["DELETE", `${SEGMENTS}/${segment.id}`],
      ["GET", `${SEGMENTS}/${segment.id}/members`],
      ["GET", `${SEGMENTS}?workspaceId=default`],
      ["POST", SEGMENTS, { workspaceId: "default", key: `x_${id}`, name: "X", definition: { kind: "trait", trait: "a", op: "exists" } }],
      ["POST", `${SEGMENTS}/preview`, { workspaceId: "default", definition: { kind: "trait", trait: "a", op: "exists" } }],
      ["GET", `${COMPUTED}/${computedTrait.id}`],
      ["GET", `${COMPUTED}/${computedTrait.id}/members`],
      ["GET", `/admin/v1/jobs/${job.id}`],
    ] as [string, string, unknown?][]) {
      expect((await send(method, path, body)).status, `${method} ${path}`).toBe(404);
    }
    // Still there for its own workspace; the tenant sees only its own, and creates there without naming it.
    expect((await admin(`${SEGMENTS}/${segment.id}`)).status).toBe(200);
    expect((await admin(`${SEGMENTS}/${segment.id}?workspaceId=${tenant}`)).status).toBe(404);
    expect(await json(await send("GET", SEGMENTS))).toEqual({ data: [], next: null });
    const own = await send("POST", SEGMENTS, { key: `mine_${id}`, name: "Same key, other workspace", definition: { kind: "trait", trait: "a", op: "exists" } });
    expect(own.status).toBe(201);
    const created = await json<{ segment: Audience; job: Job }>(own);
    expect(created.segment.workspaceId).toBe(tenant);
    expect(await finished(created.job.id)).toMatchObject({ status: "succeeded", processed: 0, total: 0 });
    expect((await send("GET", `${SEGMENTS}/${created.segment.id}`)).status).toBe(200);
  });

  it("turns away a token without the admin scope, and answers 404 for unknown ids", async () => {
    for (const path of [SEGMENTS + "?workspaceId=default", `${COMPUTED}?workspaceId=default`, "/admin/v1/jobs/job_x"]) {
      expect((await call(path, { headers: { authorization: bearer("dev-access-token") } })).status, path).toBe(403);
    }
    expect((await admin("/admin/v1/jobs/job_missing")).status).toBe(404);
    expect((await admin(`${SEGMENTS}/seg_missing`)).status).toBe(404);
    expect((await admin(`${COMPUTED}/ctr_missing/members`)).status).toBe(404);
    expect((await admin(`${SEGMENTS}?workspaceId=nowhere`)).status).toBe(404);
  });

  it("describes the routes in /openapi.json", async () => {
    const doc = await json<{ paths: Record<string, Record<string, unknown>> }>(await call("/openapi.json"));
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([SEGMENTS, `${SEGMENTS}/preview`, `${SEGMENTS}/{id}`, `${SEGMENTS}/{id}/members`, COMPUTED, `${COMPUTED}/preview`, `${COMPUTED}/{id}`, `${COMPUTED}/{id}/members`, "/admin/v1/jobs/{id}"]),
    );
    expect(Object.keys(doc.paths[`${SEGMENTS}/{id}`]!).sort()).toEqual(["delete", "get", "patch"]);
  });
});
