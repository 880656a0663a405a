import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../../context";
import { json, problemResponses } from "../../admin/schemas";
import { consistencyQuery, cursorOf, cursorSchema, iso, profilePathParams, requireAccount, requireUser } from "../schemas";

const linkSchema = z
  .object({
    to_collection: z.enum(["users", "accounts"]),
    external_ids: z.array(z.object({ id: z.string(), type: z.string(), source_id: z.string().nullable(), collection: z.enum(["users", "accounts"]), created_at: z.string().nullable(), encoding: z.literal("none") })),
  })
  .openapi("ProfileLink");

export function registerLinksRoute(app: App) {
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/spaces/{space}/collections/{collection}/profiles/{externalId}/links",
      tags: ["Profile API"],
      summary: "Accounts a user belongs to, or users of an account",
      description: "Links come from `group` calls. A user's links name its accounts by `group_id`; an account's name its users by `user_id` (or `profile_id` for a user without one).",
      request: { params: profilePathParams, query: consistencyQuery },
      responses: { 200: json(z.object({ data: z.array(linkSchema), cursor: cursorSchema }), "The links"), ...problemResponses },
    }),
    async (c) => {
      const { collection, externalId } = c.req.valid("param");
      const reader = c.get("profiles")!.reader;
      if (collection === "accounts") {
        const account = await requireAccount(c, externalId);
        const members = await reader.accountMembers(account.groupId);
        const data = members.map((m) => ({
          to_collection: "users" as const,
          external_ids: [{ id: m.userId ?? m.profileId, type: m.userId ? "user_id" : "profile_id", source_id: m.sourceId, collection: "users" as const, created_at: iso(m.linkedAt), encoding: "none" as const }],
        }));
        return c.json({ data, cursor: cursorOf(c, null) }, 200);
      }
      const profile = await requireUser(c, externalId);
      const links = await reader.links(profile.profileId);
      const data = links.map((l) => ({
        to_collection: "accounts" as const,
        external_ids: [{ id: l.groupId, type: "group_id", source_id: l.sourceId, collection: "accounts" as const, created_at: iso(l.at), encoding: "none" as const }],
      }));
      return c.json({ data, cursor: cursorOf(c, null) }, 200);
    },
  );
}
