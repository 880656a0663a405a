import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { App, AppEnv } from "../../context";
import { json, problemResponses } from "../../admin/schemas";
import { consistencyQuery, cursorOf, cursorSchema, decodeCursor, encodeCursor, iso, limitQuery, listParam, profilePathParams, requireAccount, requireUser } from "../schemas";

const query = consistencyQuery.extend({
  include: listParam.openapi({ type: "string", description: "Comma-separated identifier types: only these." }),
  limit: limitQuery(25, 100),
  next: z.string().optional().openapi({ description: "The `cursor.next` of the previous page." }),
});

const externalIdSchema = z
  .object({
    id: z.string(),
    type: z.string(),
    source_id: z.string().nullable(),
    collection: z.enum(["users", "accounts"]),
    created_at: z.string().nullable(),
    encoding: z.literal("none"),
  })
  .openapi("ExternalId");

export function registerExternalIdsRoute(app: App) {
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/spaces/{space}/collections/{collection}/profiles/{externalId}/external_ids",
      tags: ["Profile API"],
      summary: "A profile's identifiers",
      description: "Every identifier the profile holds (those of profiles merged into it included), oldest first. An account has its `group_id`.",
      request: { params: profilePathParams, query },
      responses: { 200: json(z.object({ data: z.array(externalIdSchema), cursor: cursorSchema }), "The identifiers page"), ...problemResponses },
    }),
    async (c) => {
      const { collection, externalId } = c.req.valid("param");
      const q = c.req.valid("query");
      const all = await externalIdsOf(c, collection, externalId);
      const wanted = q.include ? new Set(q.include) : null;
      const offset = decodeCursor(q.next, z.object({ offset: z.number().int().min(0) }))?.offset ?? 0;
      const matching = all.filter((i) => !wanted || wanted.has(i.type));
      const page = matching.slice(offset, offset + q.limit);
      const more = offset + q.limit < matching.length;
      return c.json({ data: page, cursor: cursorOf(c, more ? encodeCursor({ offset: offset + q.limit }) : null) }, 200);
    },
  );
}

type ExternalId = z.infer<typeof externalIdSchema>;

async function externalIdsOf(c: Context<AppEnv>, collection: "users" | "accounts", externalId: string): Promise<ExternalId[]> {
  if (collection === "accounts") {
    const account = await requireAccount(c, externalId);
    return [{ id: account.groupId, type: "group_id", source_id: account.lastSourceId, collection, created_at: iso(account.createdAt), encoding: "none" }];
  }
  const profile = await requireUser(c, externalId);
  const identifiers = await c.get("profiles")!.reader.identifiers(profile.profileId);
  // Oldest first, then by type and value: the same order whichever store answered.
  identifiers.sort((a, b) => a.firstSeen - b.firstSeen || a.type.localeCompare(b.type) || a.value.localeCompare(b.value));
  return identifiers.map((i) => ({ id: i.value, type: i.type, source_id: i.sourceId, collection, created_at: iso(i.firstSeen), encoding: "none" as const }));
}
