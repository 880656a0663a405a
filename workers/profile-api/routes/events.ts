import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../../context";
import { json, problemResponses } from "../../admin/schemas";
import { ApiError } from "../../lib/problem";
import { EVENT_RETENTION_DAYS, type EventRecord, eventName } from "../../profiles/event-record";
import { consistencyQuery, cursorOf, cursorSchema, decodeCursor, encodeCursor, limitQuery, listParam, requireUser, userPathParams } from "../schemas";

const time = z.iso.datetime({ offset: true }).optional().openapi({ description: "ISO 8601 time (inclusive)." });

const query = consistencyQuery.extend({
  include: listParam.openapi({ type: "string", description: "Comma-separated event names (track `event`, page or screen `name`): only these." }),
  exclude: listParam.openapi({ type: "string", description: "Comma-separated event names to leave out." }),
  start: time,
  end: time,
  sort: z.enum(["asc", "desc"]).default("desc").openapi({ description: "By timestamp; newest first by default." }),
  limit: limitQuery(10, 100),
  next: z.string().optional().openapi({ description: "The `cursor.next` of the previous page." }),
});

const afterSchema = z.object({ at: z.number(), messageId: z.string() });

/** How many stored events a filtered page may scan per requested event before it gives up on filling the page. */
const FILTER_SCAN_FACTOR = 20;

export function registerEventsRoute(app: App) {
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/spaces/{space}/collections/{collection}/profiles/{externalId}/events",
      tags: ["Profile API"],
      summary: "A profile's recent events",
      description: `Events of the profile (every profile merged into it included), newest first, paged. Kept for ${EVENT_RETENTION_DAYS} days from their timestamp.`,
      request: { params: userPathParams, query },
      responses: { 200: json(z.object({ data: z.array(z.record(z.string(), z.unknown())), cursor: cursorSchema }), "The events page"), ...problemResponses },
    }),
    async (c) => {
      const { externalId } = c.req.valid("param");
      const q = c.req.valid("query");
      const since = q.start === undefined ? undefined : Date.parse(q.start);
      const until = q.end === undefined ? undefined : Date.parse(q.end);
      if (since !== undefined && until !== undefined && since > until) {
        throw new ApiError("VALIDATION_FAILED", "start is after end", { errors: [{ path: "start", message: "must not be after end" }] });
      }
      const profile = await requireUser(c, externalId);
      const reader = c.get("profiles")!.reader;
      const include = q.include ? new Set(q.include) : null;
      const exclude = new Set(q.exclude ?? []);
      const keep = (name: string | null) => (!include || (name !== null && include.has(name))) && !(name !== null && exclude.has(name));
      // Name filters apply to pages read in order; a page ends full, at the end of the events, or at the scan cap.
      let position = decodeCursor(q.next, afterSchema);
      const matched: EventRecord[] = [];
      let exhausted = false;
      for (let scanned = 0; matched.length <= q.limit && !exhausted && scanned < q.limit * FILTER_SCAN_FACTOR; ) {
        const batch = await reader.events(profile.profileId, { since, until, order: q.sort, after: position, limit: q.limit + 1 });
        scanned += batch.length;
        exhausted = batch.length <= q.limit;
        for (const event of batch) {
          if (keep(eventName(event))) matched.push(event);
          if (matched.length > q.limit) break;
          position = { at: Date.parse(event.timestamp), messageId: event.message_id };
        }
      }
      const page = matched.slice(0, q.limit);
      const next = matched.length > q.limit ? position : exhausted ? undefined : position;
      return c.json({ data: page as unknown as Record<string, unknown>[], cursor: cursorOf(c, next ? encodeCursor(next) : null) }, 200);
    },
  );
}
