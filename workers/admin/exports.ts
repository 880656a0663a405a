import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt, type SQL } from "drizzle-orm";
import type { App } from "../context";
import { WAREHOUSE_EXPORT_KINDS, WAREHOUSE_EXPORT_STATUSES, warehouseExports } from "../db/schema";
import { exportEventsHour } from "../export/events";
import { dayOf, eventsPrefix, hourOf, hourStart, isDay, isHour, profilesPrefix } from "../export/layout";
import { exportProfilesSnapshot } from "../export/profiles";
import type { WarehouseExport } from "../export/registry";
import { ApiError } from "../lib/problem";
import { auditInsert } from "./audit";
import { existingWorkspace, requireScope, targetWorkspace } from "./auth";
import { isoDate, json, problemResponses } from "./schemas";

/** Files a profiles snapshot started here may write in the request; a larger one is finished by the cron. */
export const ADMIN_MAX_PROFILE_FILES = 25;

const exportSchema = z
  .object({
    workspaceId: z.string(),
    kind: z.enum(WAREHOUSE_EXPORT_KINDS),
    period: z.string().openapi({ description: "events: the hour `yyyy-mm-ddThh` (UTC, by `receivedAt`); profiles: the snapshot day `yyyy-mm-dd`." }),
    status: z.enum(WAREHOUSE_EXPORT_STATUSES).openapi({
      description: "done; running: a profiles snapshot that needs more than one run, continued by the cron; failed: see `error` (the cron retries up to 3 times).",
    }),
    prefix: z.string().openapi({ description: "The R2 prefix of the partition, in the `ARCHIVE` bucket." }),
    files: z.array(z.object({ key: z.string(), rows: z.number().int(), bytes: z.number().int() })),
    rows: z.number().int(),
    bytes: z.number().int(),
    attempts: z.number().int().openapi({ description: "Failed runs in a row." }),
    error: z.string().nullable(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .openapi("WarehouseExport");

const toExport = (row: WarehouseExport) => ({
  workspaceId: row.workspaceId,
  kind: row.kind,
  period: row.period,
  status: row.status,
  prefix: row.kind === "events" ? eventsPrefix(row.workspaceId, row.period) : profilesPrefix(row.workspaceId, row.period),
  files: row.files,
  rows: row.rowCount,
  bytes: row.bytes,
  attempts: row.attempts,
  error: row.error,
  startedAt: isoDate(row.startedAt),
  finishedAt: isoDate(row.finishedAt),
});

const workspaceField = z.string().min(1).optional().openapi({ description: "Required with the root admin token; a workspace token is confined to its own." });

const runBody = z
  .discriminatedUnion("kind", [
    z.strictObject({
      kind: z.literal("events"),
      workspaceId: workspaceField,
      hour: z
        .string()
        .refine(isHour, { message: "must be an hour yyyy-mm-ddThh (UTC), e.g. 2026-11-22T10" })
        .optional()
        .openapi({ example: "2026-11-22T10", description: "The hour to export (UTC, by `receivedAt`); default: the last completed hour." }),
    }),
    z.strictObject({
      kind: z.literal("profiles"),
      workspaceId: workspaceField,
      date: z
        .string()
        .refine(isDay, { message: "must be a day yyyy-mm-dd (UTC)" })
        .optional()
        .openapi({ example: "2026-11-22", description: "The snapshot's day; only today (UTC), the default, as profiles keep no history." }),
    }),
  ])
  .openapi("WarehouseExportRequest");

export function registerExportRoutes(app: App) {
  app.use("/admin/v1/exports", requireScope("admin"));

  app.openapi(
    createRoute({
      method: "post",
      path: "/admin/v1/exports",
      tags: ["Warehouse export"],
      summary: "Export an hour of events or today's profiles snapshot to R2 as Parquet, now",
      description:
        "Writes the same files the maintenance cron writes, overwriting the partition's files (idempotent). " +
        "`events` exports one hour of the archive (the current hour too, partially; the cron exports it again once it has ended if more events arrived). " +
        `\`profiles\` starts today's snapshot over; one larger than ${ADMIN_MAX_PROFILE_FILES} files is answered as \`running\` and finished by the cron.`,
      request: { body: { required: true, content: { "application/json": { schema: runBody } } } },
      responses: { 200: json(exportSchema, "The export, as recorded"), ...problemResponses },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const workspaceId = await existingWorkspace(c, body.workspaceId);
      const now = Date.now();
      let result: WarehouseExport;
      if (body.kind === "events") {
        const hour = body.hour ?? hourOf(now - 3_600_000);
        if (hourStart(hour) > now) throw new ApiError("VALIDATION_FAILED", `hour ${hour} has not started yet`, { errors: [{ path: "hour", message: "is in the future" }] });
        result = await exportEventsHour(c.env, workspaceId, hour);
      } else {
        const today = dayOf(now);
        const day = body.date ?? today;
        if (day !== today) {
          throw new ApiError("VALIDATION_FAILED", `profiles keep no history: a snapshot can only be taken of today (${today}, UTC)`, {
            errors: [{ path: "date", message: `must be today (${today}) or left out` }],
          });
        }
        result = await exportProfilesSnapshot(c.env, workspaceId, day, { restart: true, maxFiles: ADMIN_MAX_PROFILE_FILES });
      }
      await auditInsert(c, {
        workspaceId,
        action: "warehouse_export.run",
        target: `${result.kind}:${result.period}`,
        details: { status: result.status, rows: result.rowCount, files: result.files.length },
      });
      return c.json(toExport(result), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/admin/v1/exports",
      tags: ["Warehouse export"],
      summary: "What the warehouse export wrote: files, rows and bytes per partition, newest first",
      request: {
        query: z.object({
          workspaceId: workspaceField,
          kind: z.enum(WAREHOUSE_EXPORT_KINDS).optional(),
          limit: z.coerce.number().int().min(1).max(500).default(100),
          before: z.string().optional().openapi({ description: "Cursor: the `next` value of the previous page." }),
        }),
      },
      responses: { 200: json(z.object({ data: z.array(exportSchema), next: z.string().nullable() }), "Exports"), ...problemResponses },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const workspaceId = targetWorkspace(c.get("admin")!, query.workspaceId);
      const filters: SQL[] = [eq(warehouseExports.workspaceId, workspaceId)];
      if (query.kind) filters.push(eq(warehouseExports.kind, query.kind));
      // Hours (`…Thh`) and days never share a period, so the period alone is an exact cursor.
      if (query.before) filters.push(lt(warehouseExports.period, query.before));
      const rows = await c
        .get("db")
        .select()
        .from(warehouseExports)
        .where(and(...filters))
        .orderBy(desc(warehouseExports.period))
        .limit(query.limit + 1)
        .all();
      const page = rows.slice(0, query.limit);
      const next = rows.length > query.limit ? page.at(-1)!.period : null;
      return c.json({ data: page.map(toExport), next }, 200);
    },
  );
}
