import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../context";
import { IDENTIFIER_TYPE_PATTERN } from "../identity/settings";
import { auditInsert } from "./audit";
import { requireScope } from "./auth";
import { conflictResponse, identityDecisionsFor, profileIdParam, refusal } from "./identity-common";
import { json, problemResponses, workspaceQuery } from "./schemas";

/** `type:value` with a valid type name: the form the profile graph lists identifiers in. */
const isIdentifierKey = (key: string) => {
  const colon = key.indexOf(":");
  return colon > 0 && colon < key.length - 1 && IDENTIFIER_TYPE_PATTERN.test(key.slice(0, colon));
};

const splitBody = z.object({
  identifiers: z
    .array(z.string().refine(isIdentifierKey, "must be type:value, as the profile graph lists it"))
    .min(1)
    .max(50)
    .openapi({ example: ["anonymous_id:family-tablet"], description: "Identifiers of the profile to split out, exactly as `GET …/graph` lists them." }),
});

const splitSchema = z
  .object({
    keptProfileId: z.string().openapi({ description: "The profile that keeps its id and the identifiers not named." }),
    newProfileIds: z.array(z.string()).openapi({ description: "The profiles now holding the named identifiers, with the events that carried only them." }),
  })
  .openapi("ProfileSplit");

export function registerProfileSplitRoute(app: App) {
  app.use("/admin/v1/profiles/:profileId/split", requireScope("admin"));
  app.openapi(
    createRoute({
      method: "post",
      path: "/admin/v1/profiles/{profileId}/split",
      tags: ["Identity"],
      summary: "Split chosen identifiers out of a profile",
      description:
        "For a wrong link no single merge explains (a shared tablet that joined a household, say): the named identifiers stop linking to the rest, never-merge pairs keep them apart from then on, " +
        "and the profile is recomputed. Events that carried only named identifiers move with them; events that carried both stay. Audit-logged as `identity.profile.split`.",
      request: { params: profileIdParam, query: workspaceQuery, body: { required: true, content: { "application/json": { schema: splitBody } } } },
      responses: { 200: json(splitSchema, "The split"), 409: conflictResponse("The profile does not hold an identifier, or nothing would remain"), ...problemResponses },
    }),
    async (c) => {
      const { profileId } = c.req.valid("param");
      const { identifiers } = c.req.valid("json");
      const { workspaceId, decisions } = await identityDecisionsFor(c, c.req.valid("query").workspaceId);
      const result = await decisions.split(profileId, identifiers);
      if (!result.ok) refusal(result);
      await auditInsert(c, { workspaceId, action: "identity.profile.split", target: profileId, details: { identifiers, keptProfileId: result.kept, newProfileIds: result.restored } });
      return c.json({ keptProfileId: result.kept, newProfileIds: result.restored }, 200);
    },
  );
}
