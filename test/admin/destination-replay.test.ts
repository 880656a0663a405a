import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { destinationSchema } from "../../workers/activation/destination";
import { newlySubscribed } from "../../workers/admin/destinations";
import { jobMessage, jobMessageSchema } from "../../workers/jobs/backfill";
import { admin, json, unique } from "../helpers";

/**
 * The jobs queue's message kinds, and the admin routes that start the
 * destination jobs: audience syncs on create / update (`syncJobs`) and
 * `POST /admin/v1/destinations/{id}/replay`. The jobs' effect end to end is in
 * test/e2e/destination-sync.test.ts.
 */

interface Job {
  id: string;
  kind: string;
  target: string;
  status: string;
}
interface Problem {
  code: string;
  errors?: { path: string; message: string }[];
}

const PATH = "/admin/v1/destinations";
const webhook = { type: "webhook", settings: { url: "https://hooks.example.com/cdp" }, secrets: { signingSecret: "whsec_s3cret_value_0001" } };

async function createDestination(body: Record<string, unknown> = {}) {
  const response = await admin(PATH, { method: "POST", json: { workspaceId: "default", name: `Replay ${unique()}`, ...webhook, ...body } });
  expect(response.status).toBe(201);
  return json<{ destination: { id: string }; syncJobs: Job[] }>(response);
}

async function createSegment() {
  const response = await admin("/admin/v1/segments", {
    method: "POST",
    json: { workspaceId: "default", key: `sync_${unique()}`, name: "Sync", definition: { kind: "trait", trait: `plan_${unique()}`, op: "exists" } },
  });
  expect(response.status).toBe(201);
  return (await json<{ segment: { id: string } }>(response)).segment.id;
}

describe("job messages", () => {
  const base = { v: 1, jobId: "job_1", workspaceId: "default", after: null };

  it("keeps backfill messages as they were", () => {
    expect(jobMessageSchema.safeParse({ ...base, kind: "backfill" }).success).toBe(true);
    expect(jobMessageSchema.safeParse({ ...base, kind: "backfill", after: "prf_1" }).success).toBe(true);
    expect(jobMessageSchema.safeParse({ ...base, kind: "backfill", destinationId: "dst_1" }).success).toBe(false);
  });

  it("discriminates the destination kinds by `kind`", () => {
    expect(jobMessageSchema.safeParse({ ...base, kind: "audience-sync", destinationId: "dst_1", audienceId: "seg_1" }).success).toBe(true);
    expect(jobMessageSchema.safeParse({ ...base, kind: "audience-sync", destinationId: "dst_1" }).success).toBe(false);
    const replay = { ...base, kind: "archive-replay", destinationId: "dst_1", from: "2025-01-01T00:00:00.000Z", to: "2025-01-02T00:00:00.000Z" };
    expect(jobMessageSchema.safeParse(replay).success).toBe(true);
    expect(jobMessageSchema.safeParse({ ...replay, from: "yesterday" }).success).toBe(false);
    expect(jobMessageSchema.safeParse({ ...base, kind: "export" }).success).toBe(false);
  });

  it("rebuilds each kind's message from the job row", () => {
    const row = { id: "job_1", workspaceId: "default" };
    expect(jobMessage({ ...row, kind: "backfill", target: "seg_1" }, null)).toEqual({ ...base, kind: "backfill" });
    expect(jobMessage({ ...row, kind: "audience-sync", target: "dst_1/seg_1" }, "prf_9")).toEqual({ ...base, after: "prf_9", kind: "audience-sync", destinationId: "dst_1", audienceId: "seg_1" });
    expect(jobMessage({ ...row, kind: "archive-replay", target: "dst_1/2025-01-01T00:00:00.000Z/2025-01-02T00:00:00.000Z" }, null)).toEqual({
      ...base,
      kind: "archive-replay",
      destinationId: "dst_1",
      from: "2025-01-01T00:00:00.000Z",
      to: "2025-01-02T00:00:00.000Z",
    });
    expect(() => jobMessage({ ...row, kind: "audience-sync", target: "dst_1" }, null)).toThrow();
  });

  it("starts a sync for each id a destination did not subscribe to before, when enabled", () => {
    const destination = (audiences: string[], enabled = true) =>
      destinationSchema.parse({ id: "dst_1", name: "d", ...webhook, enabled, subscriptions: { events: [], audiences, computedTraits: [] } });
    expect(newlySubscribed(null, destination(["seg_a", "seg_b"]))).toEqual(["seg_a", "seg_b"]);
    expect(newlySubscribed(destination(["seg_a"]), destination(["seg_a", "seg_b"]))).toEqual(["seg_b"]);
    expect(newlySubscribed(destination(["seg_a"]), destination(["seg_a"]))).toEqual([]);
    expect(newlySubscribed(null, destination(["seg_a"], false))).toEqual([]);
    expect(newlySubscribed(destination(["seg_a"], false), destination(["seg_a"]))).toEqual(["seg_a"]);
  });
});

describe("audience sync jobs", () => {
  it("starts one on create and on an update that subscribes to a new audience, for defined audiences only", async () => {
    const first = await createSegment();
    const second = await createSegment();
    const created = await createDestination({ subscriptions: { events: [], audiences: [first, "seg_unknown"], computedTraits: [] } });
    expect(created.syncJobs).toEqual([expect.objectContaining({ kind: "audience-sync", target: `${created.destination.id}/${first}` })]);

    const id = created.destination.id;
    const same = await admin(`${PATH}/${id}?workspaceId=default`, { method: "PATCH", json: { name: `Renamed ${unique()}` } });
    expect((await json<{ syncJobs: Job[] }>(same)).syncJobs).toEqual([]);

    const added = await admin(`${PATH}/${id}?workspaceId=default`, { method: "PATCH", json: { subscriptions: { events: [], audiences: [first, second], computedTraits: [] } } });
    expect(added.status).toBe(200);
    const { syncJobs } = await json<{ syncJobs: Job[] }>(added);
    expect(syncJobs).toEqual([expect.objectContaining({ kind: "audience-sync", target: `${id}/${second}` })]);
    const job = await json<Job>(await admin(`/admin/v1/jobs/${syncJobs[0]!.id}`));
    expect(job.kind).toBe("audience-sync");
  });

  it("starts none for a destination without audience subscriptions", async () => {
    expect((await createDestination()).syncJobs).toEqual([]);
  });
});

describe("POST /admin/v1/destinations/{id}/replay", () => {
  const replay = (id: string, body: unknown) => admin(`${PATH}/${id}/replay`, { method: "POST", json: body });

  it("validates the range, naming each path", async () => {
    const { destination } = await createDestination();
    const cases: [unknown, string][] = [
      [{ to: "2025-01-02T00:00:00Z" }, "from"],
      [{ from: "2025-01-01", to: "2025-01-02T00:00:00Z" }, "from"],
      [{ from: "2025-01-01T00:00:00Z", to: "tomorrow" }, "to"],
      [{ from: "2025-01-02T00:00:00Z", to: "2025-01-01T00:00:00Z" }, "to"],
      [{ from: "2025-01-01T00:00:00Z", to: "2025-02-01T00:00:01Z" }, "to"],
    ];
    for (const [body, path] of cases) {
      const response = await replay(destination.id, { workspaceId: "default", ...(body as object) });
      expect(response.status, JSON.stringify(body)).toBe(400);
      const problem = await json<Problem>(response);
      expect(problem.code).toBe("VALIDATION_FAILED");
      expect(problem.errors?.map((e) => e.path)).toContain(path);
    }
  });

  it("is a 404 for an unknown destination and a 409 for a disabled one", async () => {
    expect((await replay("dst_missing", { from: "2025-01-01T00:00:00Z", to: "2025-01-02T00:00:00Z" })).status).toBe(404);
    const { destination } = await createDestination({ enabled: false });
    expect((await replay(destination.id, { from: "2025-01-01T00:00:00Z", to: "2025-01-02T00:00:00Z" })).status).toBe(409);
  });

  it("starts an archive-replay job, 31 days at most, and audit-logs it", async () => {
    const { destination } = await createDestination();
    const response = await replay(destination.id, { workspaceId: "default", from: "2025-01-01T00:00:00+01:00", to: "2025-02-01T00:00:00+01:00" });
    expect(response.status).toBe(202);
    const { job } = await json<{ job: Job }>(response);
    expect(job).toMatchObject({ kind: "archive-replay", target: `${destination.id}/2024-12-31T23:00:00.000Z/2025-01-31T23:00:00.000Z` });
    const audit = await env.DB.prepare("SELECT details FROM audit_log WHERE action = 'destination.replay' AND target = ?").bind(destination.id).first<{ details: string }>();
    expect(JSON.parse(audit!.details)).toEqual({ from: "2024-12-31T23:00:00.000Z", to: "2025-01-31T23:00:00.000Z", jobId: job.id });
  });
});
