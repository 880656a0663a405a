import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../../context";
import { json, problemResponses } from "../../admin/schemas";
import { consistencyQuery, cursorOf, cursorSchema, requireUser, userPathParams } from "../schemas";

const segmentSchema = z.object({ id: z.string(), key: z.string(), name: z.string().nullable(), entered_at: z.string().nullable() }).openapi("SegmentMembership");
const computedSchema = z.object({ key: z.string(), value: z.unknown() }).openapi("ComputedTraitValue");

/** Our additions beside Segment's resources: segment memberships and computed trait values, as lists. */
export function registerMembershipRoutes(app: App) {
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/spaces/{space}/collections/{collection}/profiles/{externalId}/segments",
      tags: ["Profile API"],
      summary: "The segments a profile is in",
      request: { params: userPathParams, query: consistencyQuery },
      responses: { 200: json(z.object({ data: z.array(segmentSchema), cursor: cursorSchema }), "Memberships"), ...problemResponses },
    }),
    async (c) => {
      const profile = await requireUser(c, c.req.valid("param").externalId);
      const data = profile.segments.map((s) => ({ id: s.id, key: s.key, name: s.name ?? null, entered_at: s.enteredAt ?? null }));
      return c.json({ data, cursor: cursorOf(c, null) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/spaces/{space}/collections/{collection}/profiles/{externalId}/computed",
      tags: ["Profile API"],
      summary: "A profile's computed trait values",
      request: { params: userPathParams, query: consistencyQuery },
      responses: { 200: json(z.object({ data: z.array(computedSchema), cursor: cursorSchema }), "Computed traits"), ...problemResponses },
    }),
    async (c) => {
      const profile = await requireUser(c, c.req.valid("param").externalId);
      const data = Object.entries(profile.computedTraits)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([key, value]) => ({ key, value }));
      return c.json({ data, cursor: cursorOf(c, null) }, 200);
    },
  );
}
