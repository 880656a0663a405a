import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { App } from "../context";
import { JOB_STATUSES, jobs } from "../db/schema";
import { ApiError } from "../lib/problem";
import { requireScope } from "./auth";
import { idParam, isoDate, json, problemResponses, workspaceQuery } from "./schemas";

export const jobSchema = z
  .object({
    id: z.string().openapi({ example: "job_4f1c2a9e0b7d4c3a8e6f1a2b" }),
    workspaceId: z.string(),
    kind: z.enum(["backfill"]).openapi({ description: "backfill: brings existing profiles up to date with the workspace's segments and computed traits after one was created or edited." }),
    target: z.string().openapi({ description: "The segment or computed trait whose change started the job." }),
    status: z.enum(JOB_STATUSES),
    processed: z.number().int().openapi({ description: "Profiles evaluated so far." }),
    total: z.number().int().nullable().openapi({ description: "Live profiles in the workspace when the last chunk ran; null before the first." }),
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
  app.use("/admin/v1/jobs/*", requireScope("admin"));

  app.openapi(
    createRoute({
      method: "get",
      path: "/admin/v1/jobs/{id}",
      tags: ["Jobs"],
      summary: "A job's status and progress",
      description:
        "Backfills run through the jobs queue in chunks of 200 profiles: `status` goes from `queued` to `running` (with `processed` of `total` growing) to `succeeded`, " +
        "or to `failed` once a chunk has failed on every retry (its `error` says why). Poll it after creating or editing a segment or computed trait.",
      request: { params: idParam("Job", "job_4f1c2a9e0b7d4c3a8e6f1a2b"), query: workspaceQuery },
      responses: { 200: json(jobSchema, "The job"), ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const requested = c.req.valid("query").workspaceId;
      const admin = c.get("admin")!;
      const row = await c.get("db").select().from(jobs).where(eq(jobs.id, id)).get();
      const visible = row && (admin.workspaceId === null || admin.workspaceId === row.workspaceId) && (requested === undefined || requested === row.workspaceId);
      if (!visible) throw new ApiError("NOT_FOUND", `job '${id}' not found`);
      return c.json(toJob(row), 200);
    },
  );
}
