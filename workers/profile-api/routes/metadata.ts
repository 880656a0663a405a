import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../../context";
import { json, problemResponses } from "../../admin/schemas";
import { consistencyQuery, iso, profilePathParams, requireAccount, requireUser } from "../schemas";

const metadataSchema = z
  .object({
    profile_id: z.string().nullable().openapi({ description: "Our profile id (null for accounts)." }),
    created_at: z.string().nullable(),
    updated_at: z.string().nullable(),
    expires_at: z.null(),
    first_message_at: z.string().nullable(),
    last_message_at: z.string().nullable(),
    last_source_id: z.string().nullable(),
    last_message_id: z.string().nullable(),
  })
  .openapi("ProfileMetadata");

export function registerMetadataRoute(app: App) {
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/spaces/{space}/collections/{collection}/profiles/{externalId}/metadata",
      tags: ["Profile API"],
      summary: "When a profile was created, first and last seen, and by what",
      request: { params: profilePathParams, query: consistencyQuery },
      responses: { 200: json(z.object({ metadata: metadataSchema }), "The metadata"), ...problemResponses },
    }),
    async (c) => {
      const { collection, externalId } = c.req.valid("param");
      if (collection === "accounts") {
        const a = await requireAccount(c, externalId);
        const metadata = { profile_id: null, created_at: iso(a.createdAt), updated_at: iso(a.updatedAt), expires_at: null, first_message_at: iso(a.createdAt), last_message_at: iso(a.updatedAt), last_source_id: a.lastSourceId, last_message_id: a.lastMessageId };
        return c.json({ metadata }, 200);
      }
      const p = await requireUser(c, externalId);
      const metadata = {
        profile_id: p.profileId,
        created_at: iso(p.createdAt),
        updated_at: iso(p.updatedAt),
        expires_at: null,
        first_message_at: iso(p.firstSeenAt),
        last_message_at: iso(p.lastSeenAt),
        last_source_id: p.lastSourceId,
        last_message_id: p.lastMessageId,
      };
      return c.json({ metadata }, 200);
    },
  );
}
