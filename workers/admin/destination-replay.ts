import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../context";
import { jobs } from "../db/schema";
import { replayTarget } from "../jobs/backfill";
import { generateId } from "../lib/keys";
import { ApiError } from "../lib/problem";
import { auditInsert } from "./audit";
import { destinationIdParam, findDestination, startJobs, workspaceField } from "./destinations";
import { jobSchema, toJob } from "./jobs";
import { json, problemResponses } from "./schemas";

/** `POST /admin/v1/destinations/{id}/replay`: archived events sent again to one destination, as a job. */

const PATH = "/admin/v1/destinations";

const REPLAY_MAX_MS = 31 * 86_400_000;

const replayBody = z
  .object({
    workspaceId: workspaceField,
    from: z.iso.datetime({ offset: true }).openapi({ description: "Start of the range (inclusive), by the time events were received.", example: "2025-01-01T00:00:00Z" }),
    to: z.iso.datetime({ offset: true }).openapi({ description: "End of the range (exclusive); at most 31 days after `from`.", example: "2025-01-02T00:00:00Z" }),
  })
  .superRefine((body, ctx) => {
    const from = Date.parse(body.from);
    const to = Date.parse(body.to);
    if (Number.isNaN(from) || Number.isNaN(to)) return;
    if (!(to > from)) ctx.addIssue({ code: "custom", path: ["to"], message: "must be after `from`" });
    else if (to - from > REPLAY_MAX_MS) ctx.addIssue({ code: "custom", path: ["to"], message: "must be at most 31 days after `from`" });
  })
  .openapi("DestinationReplay");

/** Registered after the destination routes: their scope check on `/admin/v1/destinations/*` guards this one. */
export function registerDestinationReplayRoute(app: App) {
  app.openapi(
    createRoute({
      method: "post",
      path: `${PATH}/{id}/replay`,
      tags: ["Destinations"],
      summary: "Replay archived events into a destination",
      description:
        "Starts an `archive-replay` job that reads the workspace's archived events received from `from` (inclusive) to `to` (exclusive), at most 31 days apart, " +
        "hour by hour, routes each to this destination as the live stream would (subscriptions, consent, `integrations`), and queues the deliveries for it alone. " +
        "Events the delivery log already shows for the destination are not sent again, nor are those of a replay run before (deliveries have deterministic ids). " +
        "Poll the job at `/admin/v1/jobs/{id}`. A disabled destination is a 409. Audit-logged as `destination.replay`.",
      request: { params: destinationIdParam, body: { required: true, content: { "application/json": { schema: replayBody } } } },
      responses: { 202: json(z.object({ job: jobSchema }), "Started"), ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const body = c.req.valid("json");
      const row = await findDestination(c, id, body.workspaceId);
      if (!row.enabled) throw new ApiError("CONFLICT", `destination '${id}' is disabled; enable it before replaying into it`);
      const from = new Date(body.from).toISOString();
      const to = new Date(body.to).toISOString();
      const db = c.get("db");
      const jobId = generateId("job");
      const [jobRows] = await db.batch([
        db.insert(jobs).values({ id: jobId, workspaceId: row.workspaceId, kind: "archive-replay", target: replayTarget(id, from, to), status: "queued" }).returning(),
        auditInsert(c, { workspaceId: row.workspaceId, action: "destination.replay", target: id, details: { from, to, jobId } }),
      ]);
      const [job] = await startJobs(c, [jobRows[0]!]);
      return c.json({ job: toJob(job!) }, 202);
    },
  );

}
