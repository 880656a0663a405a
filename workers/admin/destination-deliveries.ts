import { createRoute, z } from "@hono/zod-openapi";
import { and, type AnyColumn, asc, desc, eq, gte, isNotNull, lt, or, type SQL, sql } from "drizzle-orm";
import type { App } from "../context";
import { deliveries, destinationCounters } from "../db/schema";
import { ApiError } from "../lib/problem";
import { destinationIdParam, findDestination } from "./destinations";
import { json, problemResponses, workspaceQuery } from "./schemas";

/**
 * A destination's delivery overview and log (`/admin/v1/destinations/{id}/deliveries`):
 * what was routed to it and what became of it over the last days, from the
 * per-day counters, and the delivery log (one row per batch, updated by each
 * attempt), newest first. Behind the admin scope check that destinations.ts
 * puts on `/admin/v1/destinations/*`, so it is registered after those routes.
 */

export const DELIVERY_STATUSES = ["delivered", "retrying", "failed", "dead_lettered"] as const;

type DeliveryRow = typeof deliveries.$inferSelect;

const DAY_MS = 86_400_000;

export const deliveryViewSchema = z
  .object({
    id: z.string().openapi({ example: "dlv_0f3a5c7e9b1d2f4a6c8e0a2b4d6f8a1c" }),
    destinationId: z.string(),
    status: z.enum(DELIVERY_STATUSES).openapi({
      description: "delivered; retrying: an attempt failed and another is queued; failed: refused for good (a permanent error); dead_lettered: out of retries, kept in R2 for a replay.",
    }),
    messageIds: z.array(z.string()).openapi({ description: "The messages of the last attempt: those not yet delivered, or refused, by an earlier one." }),
    profileIds: z.array(z.string()).openapi({ description: "The profiles the messages are about." }),
    attempts: z.number().int(),
    lastError: z.string().nullable(),
    latencyMs: z.number().int().nullable().openapi({ description: "How long the last attempt took." }),
    firstAttemptAt: z.string().nullable(),
    updatedAt: z.string().nullable(),
  })
  .openapi("Delivery");

const iso = (ms: number | null) => (typeof ms === "number" && Number.isFinite(ms) ? new Date(ms).toISOString() : null);

const strings = (text: string): string[] => {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.map(String) : [];
  } catch {
    return [];
  }
};

export const toDelivery = (row: DeliveryRow) => ({
  id: row.id,
  destinationId: row.destinationId,
  status: (DELIVERY_STATUSES as readonly string[]).includes(row.status) ? (row.status as (typeof DELIVERY_STATUSES)[number]) : "failed",
  messageIds: strings(row.messageIds),
  profileIds: strings(row.profileIds),
  attempts: row.attempts,
  lastError: row.lastError,
  latencyMs: row.latencyMs,
  firstAttemptAt: iso(row.firstAttemptAt),
  updatedAt: iso(row.updatedAt),
});

/** Pages newest first are cut after `{time}:{id}` of the last row shown. */
export const pageCursor = (time: number, id: string) => `${time}:${id}`;

export function parseCursor(cursor: string): { time: number; id: string } {
  const colon = cursor.indexOf(":");
  const time = Number(cursor.slice(0, colon));
  if (colon < 1 || !Number.isSafeInteger(time) || colon === cursor.length - 1) {
    throw new ApiError("VALIDATION_FAILED", "the cursor is not one this API returned", { errors: [{ path: "cursor", message: "must be the `next` of the previous page" }] });
  }
  return { time, id: cursor.slice(colon + 1) };
}

const overviewSchema = z
  .object({
    received: z.number().int().openapi({ description: "Messages routed to the destination that it subscribes to." }),
    filteredConsent: z.number().int().openapi({ description: "Of those, withheld because consent for one of its categories was not given." }),
    filteredIntegrations: z.number().int().openapi({ description: "Of those, withheld by the message's `integrations` object." }),
    notSubscribed: z.number().int().openapi({ description: "Messages it does not subscribe to (not in `received`)." }),
    delivered: z.number().int(),
    retried: z.number().int().openapi({ description: "Messages whose attempt failed and was queued again; a message retried twice counts twice." }),
    failed: z.number().int().openapi({ description: "Messages refused for good." }),
    deadLettered: z.number().int().openapi({ description: "Messages out of retries, kept for a replay (`/admin/v1/dead-letters`)." }),
    p95LatencyMs: z.number().int().nullable().openapi({ description: "95th percentile of the delivered batches' last attempt; null when none was delivered in the period." }),
  })
  .openapi("DeliveryOverview");

export function registerDestinationDeliveryRoutes(app: App) {
  app.openapi(
    createRoute({
      method: "get",
      path: "/admin/v1/destinations/{id}/deliveries",
      tags: ["Destinations"],
      summary: "A destination's delivery overview and log",
      description:
        "`overview` counts messages over the last `days` days (UTC, today included), from the per-day counters, with the 95th percentile latency of the batches delivered since. " +
        "`data` is the delivery log (one entry per batch, updated by each attempt), newest first, optionally of one `status`, paged with `limit` and `cursor` (the `next` of the previous page); " +
        "it is not limited to the period.",
      request: {
        params: destinationIdParam,
        query: workspaceQuery.extend({
          status: z.enum(DELIVERY_STATUSES).optional(),
          limit: z.coerce.number().int().min(1).max(200).default(50),
          cursor: z.string().min(1).optional().openapi({ description: "The `next` of the previous page." }),
          days: z.coerce.number().int().min(1).max(90).default(7).openapi({ description: "The overview's period, in days (1 to 90, default 7)." }),
        }),
      },
      responses: {
        200: json(z.object({ overview: overviewSchema, data: z.array(deliveryViewSchema), next: z.string().nullable() }), "The overview and a page of the log"),
        ...problemResponses,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const query = c.req.valid("query");
      const destination = await findDestination(c, id, query.workspaceId);
      const { workspaceId } = destination;
      const db = c.get("db");

      const firstDay = new Date(Date.now() - (query.days - 1) * DAY_MS).toISOString().slice(0, 10);
      const since = Date.parse(`${firstDay}T00:00:00.000Z`);
      const total = (column: AnyColumn) => sql<number>`coalesce(sum(${column}), 0)`.mapWith(Number);
      const delivered = and(
        eq(deliveries.workspaceId, workspaceId),
        eq(deliveries.destinationId, id),
        eq(deliveries.status, "delivered"),
        isNotNull(deliveries.latencyMs),
        gte(deliveries.updatedAt, since),
      );

      const filters: SQL[] = [eq(deliveries.workspaceId, workspaceId), eq(deliveries.destinationId, id)];
      if (query.status) filters.push(eq(deliveries.status, query.status));
      if (query.cursor) {
        const after = parseCursor(query.cursor);
        filters.push(or(lt(deliveries.createdAt, after.time), and(eq(deliveries.createdAt, after.time), lt(deliveries.id, after.id)))!);
      }

      const [counters, latencies, rows] = await db.batch([
        db
          .select({
            received: total(destinationCounters.received),
            filteredConsent: total(destinationCounters.filteredConsent),
            filteredIntegrations: total(destinationCounters.filteredIntegrations),
            notSubscribed: total(destinationCounters.notSubscribed),
            delivered: total(destinationCounters.delivered),
            retried: total(destinationCounters.retried),
            failed: total(destinationCounters.failed),
            deadLettered: total(destinationCounters.deadLettered),
          })
          .from(destinationCounters)
          .where(and(eq(destinationCounters.workspaceId, workspaceId), eq(destinationCounters.destinationId, id), gte(destinationCounters.day, firstDay))),
        db.select({ count: sql<number>`count(*)`.mapWith(Number) }).from(deliveries).where(delivered),
        db
          .select()
          .from(deliveries)
          .where(and(...filters))
          .orderBy(desc(deliveries.createdAt), desc(deliveries.id))
          .limit(query.limit + 1),
      ]);

      // Nearest rank: the smallest latency with at least 95% of the delivered batches at or below it.
      const count = latencies[0]?.count ?? 0;
      let p95LatencyMs: number | null = null;
      if (count > 0) {
        const rank = await db
          .select({ latencyMs: deliveries.latencyMs })
          .from(deliveries)
          .where(delivered)
          .orderBy(asc(deliveries.latencyMs))
          .limit(1)
          .offset(Math.ceil(0.95 * count) - 1)
          .get();
        p95LatencyMs = rank?.latencyMs ?? null;
      }

      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      return c.json(
        {
          overview: { ...counters[0]!, p95LatencyMs },
          data: page.map(toDelivery),
          next: rows.length > query.limit && last ? pageCursor(last.createdAt, last.id) : null,
        },
        200,
      );
    },
  );
}
