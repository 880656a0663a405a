import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../context";
import { ApiError } from "../lib/problem";
import { auditInsert } from "./audit";
import { requireScope } from "./auth";
import { conflictResponse, identityDecisionsFor, mergeSchema, refusal, toMerge } from "./identity-common";
import { idParam, json, problemResponses, workspaceQuery } from "./schemas";

const mergeRequest = { params: idParam("Merge", "mrg_00000c"), query: workspaceQuery };

const unmergeSchema = z
  .object({
    mergeId: z.string(),
    keptProfileId: z.string().openapi({ description: "The profile that keeps its id: the part holding the oldest identifier." }),
    newProfileIds: z.array(z.string()).openapi({ description: "The profiles created for the other parts, each with its identifiers and events." }),
  })
  .openapi("IdentityUnmerge");

export function registerIdentityMergeRoutes(app: App) {
  app.use("/admin/v1/identity/merges/*", requireScope("admin"));

  app.openapi(
    createRoute({
      method: "get",
      path: "/admin/v1/identity/merges/{id}",
      tags: ["Identity"],
      summary: "Read a merge with its evidence",
      description:
        "Which event caused the merge, under which rule, and which of its identifiers matched which profile; `retracted` is set once it has been unmerged. Merge ids appear in the profile graph (`GET /admin/v1/profiles/{profileId}/graph`).",
      request: mergeRequest,
      responses: { 200: json(mergeSchema, "The merge"), ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { decisions } = await identityDecisionsFor(c, c.req.valid("query").workspaceId);
      const merge = await decisions.merge(id);
      if (!merge) throw new ApiError("NOT_FOUND", `merge '${id}' not found`);
      return c.json(toMerge(merge), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/admin/v1/identity/merges/{id}/unmerge",
      tags: ["Identity"],
      summary: "Unmerge: retract a merge and split the profile",
      description:
        "The merge's evidence event stops linking (it is tombstoned, so a replay cannot merge again), and the profile is recomputed as the connected components of its remaining links: " +
        "the part holding the oldest identifier keeps the profile id, every other part becomes a new profile with its identifiers and events. " +
        "The identifiers that matched each side become never-merge pairs: a later event that would join the parts again drops the joining identifier and records a `never-merge` conflict. " +
        "When other events also link the two sides, they stay one profile and `newProfileIds` is empty. Audit-logged as `identity.merge.unmerge`.",
      request: mergeRequest,
      responses: { 200: json(unmergeSchema, "The split"), 409: conflictResponse("The merge was already unmerged"), ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { workspaceId, decisions } = await identityDecisionsFor(c, c.req.valid("query").workspaceId);
      const result = await decisions.unmerge(id);
      if (!result.ok) refusal(result);
      await auditInsert(c, { workspaceId, action: "identity.merge.unmerge", target: id, details: { keptProfileId: result.kept, newProfileIds: result.restored } });
      return c.json({ mergeId: id, keptProfileId: result.kept, newProfileIds: result.restored }, 200);
    },
  );
}
