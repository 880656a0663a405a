import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../workers/index";
import { audiencesFor } from "../../workers/identity/sharding/audiences";
import { graphShardName } from "../../workers/identity/sharding/graph-shards";
import { admin, json, track, unique, until } from "../helpers";
import { shardedWorkspace } from "./sharded-workspace";

/**
 * Segments and computed traits with IDENTITY_GRAPH_SHARDS = 3 (this project's
 * binding), through the admin API and the real events and jobs queues. People
 * are put on chosen shards by claiming their user ids in the identifier index
 * before their first event.
 */

const SEGMENTS = "/admin/v1/segments";

interface Job {
  id: string;
  status: string;
  processed: number;
  total: number | null;
  error: string | null;
}

const shard = (workspaceId: string, n: number) => env.IDENTITY.getByName(graphShardName(workspaceId, n));
const sorted = (ids: string[]) => [...ids].sort();
const runCron = () => worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "*/5 * * * *" }), env, {} as ExecutionContext);

interface Person {
  userId: string;
  shard: number;
  profileId: string;
  traits: Record<string, unknown>;
}

/**
 * A workspace of its own with one person per entry of `traits`, person i on
 * shard i % 3, sent through the events queue in one batch; answers once every
 * one is resolved on their shard.
 */
async function crowd(traits: Record<string, unknown>[]) {
  const { workspaceId, writeKey, index } = await shardedWorkspace("shard-aud", "Sharded audiences");
  const planned = traits.map((t, i) => ({ userId: `person-${i}-${unique()}`, shard: i % 3, traits: t }));
  await Promise.all([0, 1, 2].map((n) => index.claim(planned.filter((p) => p.shard === n).map((p) => `user_id:${p.userId}`), n)));
  const batch = planned.map((p) => ({ type: "identify", userId: p.userId, traits: p.traits }));
  expect((await track("/v1/batch", { batch }, writeKey)).status).toBe(200);
  await until("every person resolved on their shard", async () => {
    const totals = await Promise.all([0, 1, 2].map(async (n) => (await shard(workspaceId, n).listProfiles(null, 1)).total));
    return totals.every((total, n) => total === planned.filter((p) => p.shard === n).length) ? true : undefined;
  });
  const people: Person[] = [];
  for (const p of planned) people.push({ ...p, profileId: (await shard(workspaceId, p.shard).lookup(`user_id:${p.userId}`))!.profileId });
  return { workspaceId, writeKey, index, people };
}

async function create(workspaceId: string, key: string, definition: unknown): Promise<{ segment: { id: string }; job: Job }> {
  const response = await admin(SEGMENTS, { method: "POST", json: { workspaceId, key, name: key, definition } });
  if (response.status !== 201) throw new Error(`create failed: ${response.status} ${await response.text()}`);
  return json(response);
}

async function finished(jobId: string, timeoutMs = 30_000): Promise<Job> {
  return until(`job ${jobId} to end`, async () => {
    const job = await json<Job>(await admin(`/admin/v1/jobs/${jobId}`));
    return job.status === "succeeded" || job.status === "failed" ? job : undefined;
  }, timeoutMs);
}

/** Every member, page by page through the API's cursor; each page at most `limit`. */
async function members(segmentId: string, limit: number): Promise<string[]> {
  const all: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { data: { profileId: string }[]; next: string | null } = await json(await admin(`${SEGMENTS}/${segmentId}/members?limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`));
    expect(page.data.length).toBeLessThanOrEqual(limit);
    all.push(...page.data.map((m) => m.profileId));
    cursor = page.next;
  } while (cursor);
  return all;
}

const heldBy = async (workspaceId: string, segmentId: string) =>
  Promise.all([0, 1, 2].map(async (n) => ((await shard(workspaceId, n).listAudiences()) as unknown as { id: string }[]).some((a) => a.id === segmentId)));

const even = { kind: "trait", trait: "cohort", op: "equals", value: "even" };

describe("audiences over three graph shards", () => {
  it("matches a segment defined once on people of every shard, backfills all of them, and pages its members without skipping or repeating", async () => {
    const { workspaceId, writeKey, index, people } = await crowd(Array.from({ length: 12 }, (_, i) => ({ cohort: i % 2 ? "odd" : "even" })));
    const expected = sorted(people.filter((p) => p.traits.cohort === "even").map((p) => p.profileId));
    // The members really are spread: some on each shard.
    expect(new Set(people.filter((p) => p.traits.cohort === "even").map((p) => p.shard))).toEqual(new Set([0, 1, 2]));

    const preview = await json<{ size: number; total: number; sample: { profileId: string }[] }>(
      await admin(`${SEGMENTS}/preview`, { method: "POST", json: { workspaceId, definition: even, sample: 4 } }),
    );
    expect(preview).toMatchObject({ size: 6, total: 12 });
    expect(preview.sample.map((s) => s.profileId)).toEqual(expected.slice(0, 4));

    const { segment, job } = await create(workspaceId, "even", even);
    expect(await finished(job.id)).toMatchObject({ status: "succeeded", processed: 12, total: 12 });
    expect(await heldBy(workspaceId, segment.id)).toEqual([true, true, true]);
    for (const limit of [1, 2, 5, 100]) expect(await members(segment.id, limit)).toEqual(expected);

    // A new person on shard 2, after the definition: their shard evaluates it on their first event.
    const late = `late-${unique()}`;
    await index.claim([`user_id:${late}`], 2);
    expect((await track("/v1/identify", { userId: late, traits: { cohort: "even" } }, writeKey)).status).toBe(200);
    const lateId = await until("the late person on shard 2", async () => (await shard(workspaceId, 2).lookup(`user_id:${late}`))?.profileId);
    expect(await members(segment.id, 3)).toEqual(sorted([...expected, lateId]));

    expect((await admin(`${SEGMENTS}/${segment.id}`, { method: "DELETE" })).status).toBe(204);
    expect(await heldBy(workspaceId, segment.id)).toEqual([false, false, false]);
  });

  it("walks a backfill over several chunks of every shard, counting every profile once", async () => {
    const { workspaceId, people } = await crowd(Array.from({ length: 450 }, (_, i) => ({ cohort: i % 2 ? "odd" : "even" })));
    const { segment, job } = await create(workspaceId, "even", even);
    expect(await finished(job.id, 60_000)).toMatchObject({ status: "succeeded", processed: 450, total: 450 });
    const expected = sorted(people.filter((p) => p.traits.cohort === "even").map((p) => p.profileId));
    expect(await members(segment.id, 1000)).toEqual(expected);
    expect(await members(segment.id, 100)).toEqual(expected);
  });

  it("merges every shard's sync pages in profile id order for a destination's initial sync", async () => {
    const { workspaceId, people } = await crowd(Array.from({ length: 9 }, (_, i) => ({ cohort: i % 3 ? "odd" : "even" })));
    const { segment, job } = await create(workspaceId, "odd", { kind: "trait", trait: "cohort", op: "equals", value: "odd" });
    await finished(job.id);
    const expected = sorted(people.filter((p) => p.traits.cohort === "odd").map((p) => p.profileId));
    const audiences = audiencesFor(env, workspaceId);
    const seen: string[] = [];
    for (let after: string | null = null, pages = 0; pages < 10; pages++) {
      const page = await audiences.audienceSyncPage(segment.id, after, 4);
      expect(page).not.toBeNull();
      expect(page!.total).toBe(expected.length);
      expect(page!.envelopes.length).toBeLessThanOrEqual(4);
      seen.push(...page!.envelopes.map((e) => e.profileId));
      if (!page!.next) break;
      after = page!.next;
    }
    expect(seen).toEqual(expected);
    expect(await audiences.audienceSyncPage("seg_unknown", null, 4)).toBeNull();
  });

  it("puts the cron's workspace statistics on every shard, and each shard's people follow them", async () => {
    // Average 35: only the 60 (shard 2) and the 50 (shard 0) are above it.
    const { workspaceId, people } = await crowd([{ ltv: 10 }, { ltv: 20 }, { ltv: 60 }, { ltv: 50 }]);
    const { segment, job } = await create(workspaceId, "above_average", { kind: "compare", left: { trait: "ltv" }, op: "gt", right: { statistic: "average", of: { trait: "ltv" } } });
    await finished(job.id);
    // The statistics are computed from D1: wait for every profile's row there.
    await until("every profile in D1", async () => {
      const row = await env.DB.prepare("SELECT count(*) AS n FROM profiles WHERE workspace_id = ?1 AND json_extract(traits, '$.ltv') IS NOT NULL").bind(workspaceId).first<{ n: number }>();
      return row!.n === people.length ? true : undefined;
    });
    expect(await members(segment.id, 10)).toEqual([]);
    await runCron();
    expect(await members(segment.id, 10)).toEqual(sorted([people[2]!.profileId, people[3]!.profileId]));
  });

  it("puts back a definition one shard lost, with a backfill that brings its people back", async () => {
    const { workspaceId, people } = await crowd(Array.from({ length: 6 }, () => ({ cohort: "even" })));
    const { segment, job } = await create(workspaceId, "even", even);
    await finished(job.id);
    expect(await shard(workspaceId, 2).removeAudience(segment.id)).toBe(true);
    expect(await heldBy(workspaceId, segment.id)).toEqual([true, true, false]);
    expect(await members(segment.id, 10)).toEqual(sorted(people.filter((p) => p.shard !== 2).map((p) => p.profileId)));

    await runCron();
    expect(await heldBy(workspaceId, segment.id)).toEqual([true, true, true]);
    const repair = await until("the repair's backfill", async () =>
      (await env.DB.prepare("SELECT id FROM jobs WHERE target = ?1 AND id != ?2").bind(segment.id, job.id).first<{ id: string }>()) ?? undefined,
    );
    expect(await finished(repair.id)).toMatchObject({ status: "succeeded", processed: 6 });
    expect(await members(segment.id, 10)).toEqual(sorted(people.map((p) => p.profileId)));
  });
});
