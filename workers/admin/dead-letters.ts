import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt, or, type SQL } from "drizzle-orm";
import type { Context } from "hono";
import { deadLetterKey } from "../consumers/activation";
import type { App, AppEnv } from "../context";
import { deliveries, destinations } from "../db/schema";
import { type Delivery, deliverySchema } from "../delivery/messages";
import { ApiError } from "../lib/problem";
import { auditInsert } from "./audit";
import { requireScope, targetWorkspace } from "./auth";
import { conflictResponse } from "./identity-common";
import { deliveryViewSchema, pageCursor, parseCursor, toDelivery } from "./destination-deliveries";
import { json, problemResponses, workspaceQuery } from "./schemas";

/**
 * Dead letters (`/admin/v1/dead-letters`): deliveries that ran out of retries.
 * The delivery log marks them `dead_lettered` with the reason; the messages
 * still to send are kept in R2 under `deadLetterKey`. A replay queues them again
 * as a first attempt with a fresh retry budget, and leaves the R2 object where
 * it is, so a replay that dead-letters again overwrites it.
 */

const PATH = "/admin/v1/dead-letters";
const TAG = "Destinations";

type DeliveryRow = typeof deliveries.$inferSelect;

const deadLetterSchema = z
  .object({
    id: z.string().openapi({ description: "The delivery id.", example: "dlv_0f3a5c7e9b1d2f4a6c8e0a2b4d6f8a1c" }),
    destinationId: z.string(),
    messageIds: z.array(z.string()).openapi({ description: "The messages of the last attempt: those a replay sends." }),
    profileIds: z.array(z.string()),
    attempts: z.number().int(),
    reason: z.string().nullable().openapi({ description: "Why it was dead-lettered, with the last error." }),
    firstAttemptAt: z.string().nullable(),
    deadLetteredAt: z.string().nullable(),
  })
  .openapi("DeadLetter");

const toDeadLetter = (row: DeliveryRow) => {
  const view = toDelivery(row);
  return {
    id: view.id,
    destinationId: view.destinationId,
    messageIds: view.messageIds,
    profileIds: view.profileIds,
    attempts: view.attempts,
    reason: view.lastError,
    firstAttemptAt: view.firstAttemptAt,
    deadLetteredAt: view.updatedAt,
  };
};

const deliveryIdParam = z.object({
  deliveryId: z.string().min(1).openapi({ param: { name: "deliveryId", in: "path" }, example: "dlv_0f3a5c7e9b1d2f4a6c8e0a2b4d6f8a1c", description: "Delivery id" }),
});

/** The delivery by id, as the token may see it: another workspace's (or one not in the workspace named) is a 404. */
async function findDelivery(c: Context<AppEnv>, id: string, requested: string | undefined): Promise<DeliveryRow> {
  const admin = c.get("admin")!;
  const row = await c.get("db").select().from(deliveries).where(eq(deliveries.id, id)).get();
  const visible = row && (admin.workspaceId === null || admin.workspaceId === row.workspaceId) && (requested === undefined || requested === row.workspaceId);
  if (!visible) throw new ApiError("NOT_FOUND", `delivery '${id}' not found`);
  return row;
}

/** The stored dead letter as the delivery to queue: a first attempt again, with a fresh retry budget. */
async function storedDelivery(env: Env, row: DeliveryRow): Promise<Delivery> {
  const object = await env.ARCHIVE.get(deadLetterKey({ workspaceId: row.workspaceId, destinationId: row.destinationId, deliveryId: row.id }));
  if (!object) throw new ApiError("NOT_FOUND", `the messages of delivery '${row.id}' are no longer stored; it cannot be replayed`);
  let stored: unknown;
  try {
    stored = await object.json();
  } catch {
    stored = null;
  }
  const parsed = deliverySchema.safeParse(typeof stored === "object" && stored !== null ? { ...stored, attempt: 1, firstAttemptAt: null } : stored);
  const delivery = parsed.success ? parsed.data : null;
  if (!delivery || delivery.deliveryId !== row.id || delivery.workspaceId !== row.workspaceId || delivery.destinationId !== row.destinationId) {
    throw new ApiError("CONFLICT", `the stored messages of delivery '${row.id}' are not a delivery this version can send; it cannot be replayed`);
  }
  return delivery;
}

export function registerDeadLetterRoutes(app: App) {
  app.use(PATH, requireScope("admin"));
  app.use(`${PATH}/*`, requireScope("admin"));

  app.openapi(
    createRoute({
      method: "get",
      path: PATH,
      tags: [TAG],
      summary: "List dead-lettered deliveries",
      description:
        "Deliveries that ran out of retries, with the reason, most recently dead-lettered first, optionally of one destination, paged with `limit` and `cursor` (the `next` of the previous page). " +
        "Replay one with `POST /admin/v1/dead-letters/{deliveryId}/replay`.",
      request: {
        query: workspaceQuery.extend({
          destinationId: z.string().min(1).optional(),
          limit: z.coerce.number().int().min(1).max(200).default(50),
          cursor: z.string().min(1).optional().openapi({ description: "The `next` of the previous page." }),
        }),
      },
      responses: { 200: json(z.object({ data: z.array(deadLetterSchema), next: z.string().nullable() }), "A page of dead letters"), ...problemResponses },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const workspaceId = targetWorkspace(c.get("admin")!, query.workspaceId);
      const filters: SQL[] = [eq(deliveries.workspaceId, workspaceId), eq(deliveries.status, "dead_lettered")];
      if (query.destinationId) filters.push(eq(deliveries.destinationId, query.destinationId));
      if (query.cursor) {
        const after = parseCursor(query.cursor);
        filters.push(or(lt(deliveries.updatedAt, after.time), and(eq(deliveries.updatedAt, after.time), lt(deliveries.id, after.id)))!);
      }
      const rows = await c
        .get("db")
        .select()
        .from(deliveries)
        .where(and(...filters))
        .orderBy(desc(deliveries.updatedAt), desc(deliveries.id))
        .limit(query.limit + 1)
        .all();
      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      return c.json({ data: page.map(toDeadLetter), next: rows.length > query.limit && last ? pageCursor(last.updatedAt, last.id) : null }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: `${PATH}/{deliveryId}/replay`,
      tags: [TAG],
      summary: "Replay a dead-lettered delivery",
      description:
        "Queues the messages kept in R2 again as a first attempt, with a fresh retry budget, and sets the delivery back to `retrying`; follow it in the destination's delivery log. " +
        "A delivery that is not dead-lettered (already replayed, say) is a 409, and so is one whose destination is gone or disabled, which would drop it. Audit-logged as `dead_letter.replay`.",
      request: { params: deliveryIdParam, query: workspaceQuery },
      responses: {
        202: json(z.object({ delivery: deliveryViewSchema }), "Queued"),
        409: conflictResponse("Not dead-lettered, or its destination is gone or disabled"),
        ...problemResponses,
      },
    }),
    async (c) => {
      const { deliveryId } = c.req.valid("param");
      const row = await findDelivery(c, deliveryId, c.req.valid("query").workspaceId);
      if (row.status !== "dead_lettered") throw new ApiError("CONFLICT", `delivery '${deliveryId}' is ${row.status}, not dead-lettered`);
      const db = c.get("db");
      const destination = await db
        .select({ enabled: destinations.enabled })
        .from(destinations)
        .where(and(eq(destinations.id, row.destinationId), eq(destinations.workspaceId, row.workspaceId)))
        .get();
      if (!destination) throw new ApiError("CONFLICT", `destination '${row.destinationId}' no longer exists; delivery '${deliveryId}' cannot be replayed`);
      if (!destination.enabled) throw new ApiError("CONFLICT", `destination '${row.destinationId}' is disabled; enable it to replay delivery '${deliveryId}'`);
      const delivery = await storedDelivery(c.env, row);

      // The row first: the consumer sends only a delivery whose row is `retrying` with fewer attempts than asked for.
      // Only a dead-lettered row changes, so of two replays at once one is refused.
      const claimed = await db
        .update(deliveries)
        .set({ status: "retrying", attempts: 0, messageIds: JSON.stringify(delivery.messages.map((m) => m.messageId)), updatedAt: Date.now() })
        .where(and(eq(deliveries.id, deliveryId), eq(deliveries.status, "dead_lettered")))
        .returning()
        .get();
      if (!claimed) throw new ApiError("CONFLICT", `delivery '${deliveryId}' is no longer dead-lettered`);
      try {
        await (c.env.ACTIVATION_QUEUE as Queue<Delivery>).send(delivery, { contentType: "json" });
      } catch (error) {
        // Not queued: put the row back as it was, so it can be replayed again.
        await db
          .update(deliveries)
          .set({ status: row.status, attempts: row.attempts, messageIds: row.messageIds, updatedAt: row.updatedAt })
          .where(and(eq(deliveries.id, deliveryId), eq(deliveries.status, "retrying"), eq(deliveries.attempts, 0)));
        c.get("logger").error("could not queue a dead-letter replay", { deliveryId, error: error instanceof Error ? error.message : String(error) });
        throw new ApiError("UNAVAILABLE", "the replay could not be queued; nothing changed, try again");
      }
      await auditInsert(c, {
        workspaceId: row.workspaceId,
        action: "dead_letter.replay",
        target: deliveryId,
        details: { destinationId: row.destinationId, messages: delivery.messages.length, reason: row.lastError },
      });
      return c.json({ delivery: toDelivery(claimed) }, 202);
    },
  );
}
