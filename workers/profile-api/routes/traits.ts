import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../../context";
import { json, problemResponses } from "../../admin/schemas";
import { booleanParam, consistencyQuery, cursorOf, cursorSchema, limitQuery, listParam, profilePathParams, requireAccount, requireUser } from "../schemas";

const query = consistencyQuery.extend({
  include: listParam.openapi({ type: "string", description: "Comma-separated trait names: only these are returned." }),
  class: z
    .enum(["trait", "computed_trait", "audience"])
    .optional()
    .openapi({ description: "Only plain traits, only computed traits, or only audience memberships (`{audience key}: true`)." }),
  limit: limitQuery(10, 200),
  next: z.string().optional().openapi({ description: "The `cursor.next` of the previous page: the trait name to continue after." }),
  verbose: booleanParam.openapi({ type: "string", description: "`true` returns each trait as `{ value, updated_at, source_id, message_id }`." }),
});

type Meta = { updatedAt?: string; sourceId?: string | null; messageId?: string };

/**
 * Segment's `/traits`: traits, computed traits and audience memberships of a
 * profile as one object, in name order, paged by name.
 */
export function registerTraitsRoute(app: App) {
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/spaces/{space}/collections/{collection}/profiles/{externalId}/traits",
      tags: ["Profile API"],
      summary: "A profile's traits",
      description: "Each trait holds its latest value by event timestamp (ties broken by messageId). For `accounts`, the group's traits.",
      request: { params: profilePathParams, query },
      responses: { 200: json(z.object({ traits: z.record(z.string(), z.unknown()), cursor: cursorSchema }), "The traits page"), ...problemResponses },
    }),
    async (c) => {
      const { collection, externalId } = c.req.valid("param");
      const q = c.req.valid("query");
      const entries: [string, unknown, Meta][] = [];
      if (collection === "accounts") {
        const account = await requireAccount(c, externalId);
        for (const [key, value] of Object.entries(account.traits)) entries.push([key, value, (account.traitMeta[key] ?? {}) as Meta]);
      } else {
        const profile = await requireUser(c, externalId);
        if (!q.class || q.class === "trait") for (const [key, value] of Object.entries(profile.traits)) entries.push([key, value, (profile.traitMeta[key] ?? {}) as Meta]);
        if (!q.class || q.class === "computed_trait") for (const [key, value] of Object.entries(profile.computedTraits)) entries.push([key, value, {}]);
        if (!q.class || q.class === "audience") for (const segment of profile.segments) entries.push([segment.key, true, { updatedAt: segment.enteredAt }]);
      }
      const wanted = q.include ? new Set(q.include) : null;
      const sorted = entries.filter(([key]) => (!wanted || wanted.has(key)) && (!q.next || key > q.next)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const page = sorted.slice(0, q.limit);
      const traits: Record<string, unknown> = {};
      for (const [key, value, meta] of page) {
        traits[key] = q.verbose ? { value, updated_at: meta.updatedAt ?? null, source_id: meta.sourceId ?? null, message_id: meta.messageId ?? null } : value;
      }
      return c.json({ traits, cursor: cursorOf(c, sorted.length > q.limit ? page.at(-1)![0] : null) }, 200);
    },
  );
}
