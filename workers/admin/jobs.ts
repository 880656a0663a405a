import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { App } from "../context";
import { JOB_KINDS, JOB_STATUSES, jobs } from "../db/schema";
import { ApiError } from "../lib/problem";
import { requireScope } from "./auth";
import { idParam, isoDate, json, problemResponses, workspaceQuery } from "./schemas";

export const jobSchema = z
  .object({
    id: z.string().openapi({ example: "job_4f1c2a9e0b7d4c3a8e6f1a2b" }),
    workspaceId: z.string(),
    kind: z.enum(JOB_KINDS).openapi({
      description:
        "backfill: brings existing profiles up to date with the workspace's segments and computed traits after one was created or edited. " +
        "audience-sync: sends a destination the current members of an audience it started subscribing to. archive-replay: sends a destination the archived events of a time range. " +
        "privacy-export and privacy-deletion: the work of an access or deletion request (`/admin/v1/privacy/...`).",
    }),
    target: z.string().openapi({
      description: "What the job is for: a backfill's segment or computed trait; an audience sync's `{destinationId}/{audienceId}`; a replay's `{destinationId}/{from}/{to}`; a privacy job's request id.",
    }),
    status: z.enum(JOB_STATUSES),
    processed: z.number().int().openapi({ description: "So far: profiles evaluated (backfill), members sent (audience-sync), archived events read (archive-replay)." }),
    total: z.number().int().nullable().openapi({ description: "When the last chunk ran: live profiles in the workspace (backfill), the audience's members (audience-sync), archived events in the range's hours (archive-replay); null before the first chunk." }),
    error: z.string().nullable().openapi({ description: "The last failure: shown while a failing chunk is retried, kept when the job has failed." }),
    createdAt: z.string().nullable(),
    updatedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .openapi("Job");

export const toJob = (row: typeof jobs.$inferSelect) => ({
  id: row.id,
  workspaceId: row.workspaceId,
  kind: row.kind,
  target: row.target,
  status: row.status,
  processed: row.processed,
  total: row.total,
  error: row.error,
  createdAt: isoDate(row.createdAt),
  updatedAt: isoDate(row.updatedAt),
  finishedAt: isoDate(row.finishedAt),
});

export function registerJobRoutes(app: App) {
  // Privacy requests' jobs are followed with the privacy scope, every other job with admin.
  app.use("/admin/v1/jobs/*", requireScope("admin", "privacy"));

  app.openapi(
    createRoute({
      method: "get",
      path: "/admin/v1/jobs/{id}",
      tags: ["Jobs"],
      summary: "A job's status and progress",
      description:
        "Jobs (backfills, audience syncs, archive replays) run through the jobs queue in chunks; backfills in chunks of 200 profiles: `status` goes from `queued` to `running` (with `processed` of `total` growing) to `succeeded`, " +
        "or to `failed` once a chunk has failed on every retry (its `error` says why). Poll it after creating or editing a segment or computed trait.",
      request: { params: idParam("Job", "job_4f1c2a9e0b7d4c3a8e6f1a2b"), query: workspaceQuery },
      responses: { 200: json(jobSchema, "The job"), ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const requested = c.req.valid("query").workspaceId;
      const admin = c.get("admin")!;
      const row = await c.get("db").select().from(jobs).where(eq(jobs.id, id)).get();
      const privacyJob = row?.kind === "privacy-export" || row?.kind === "privacy-deletion";
      const scoped = admin.scopes.includes(privacyJob ? "privacy" : "admin");
      const visible = row && scoped && (admin.workspaceId === null || admin.workspaceId === row.workspaceId) && (requested === undefined || requested === row.workspaceId);
      if (!visible) throw new ApiError("NOT_FOUND", `job '${id}' not found`);
      return c.json(toJob(row), 200);
    },
  );
}
