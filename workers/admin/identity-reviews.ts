import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../context";
import { CURSOR_MESSAGE, CURSOR_PATTERN } from "../identity/sharding/review-cursor";
import { auditInsert } from "./audit";
import { requireScope } from "./auth";
import { conflictResponse, identityDecisionsFor, mergeSchema, REVIEW_STATUSES, refusal, reviewSchema, toMerge, toReview } from "./identity-common";
import { idParam, json, problemResponses, workspaceQuery } from "./schemas";

const listQuery = workspaceQuery.extend({
  status: z.enum(REVIEW_STATUSES).optional().openapi({ description: "Only reviews in this state; all of them when left out." }),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  next: z
    .string()
    .max(4096)
    .regex(CURSOR_PATTERN, CURSOR_MESSAGE)
    .optional()
    .openapi({ description: "Cursor: the `next` value of the previous page, opaque. A value this endpoint did not return is a 400 naming `next`." }),
});

const decisionRequest = { params: idParam("Review", "rev_00000f"), query: workspaceQuery };
const alreadyDecided = { 409: conflictResponse("The review was already approved or rejected: each review is decided once") };

export function registerIdentityReviewRoutes(app: App) {
  app.use("/admin/v1/identity/reviews", requireScope("admin"));
  app.use("/admin/v1/identity/reviews/*", requireScope("admin"));

  app.openapi(
    createRoute({
      method: "get",
      path: "/admin/v1/identity/reviews",
      tags: ["Identity"],
      summary: "List the identity review queue",
      description:
        "What the resolver would not decide on its own, with its evidence, in the order it was queued: merges that would join profiles holding different user ids through a strong identifier (email, external id), " +
        "merges that would exceed the cluster cap, and identifiers quarantined for bridging too many user ids. Conflicts the priority rule settles by itself (a shared device, a household phone) are recorded on the profiles, not queued. " +
        "When the workspace is spread over several graph shards, every shard's queue is listed, each in its own order, merged by the time a review was queued (`at`), then by id; a review naming people on two shards is listed once. " +
        "Paging with `next` neither skips nor repeats a review while others are queued or decided; a page may then hold fewer than `limit` reviews, and `next` is null on the last page.",
      request: { query: listQuery },
      responses: { 200: json(z.object({ data: z.array(reviewSchema), next: z.string().nullable() }), "A page of reviews"), ...problemResponses },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const { decisions } = await identityDecisionsFor(c, query.workspaceId);
      const page = await decisions.reviews(query.status, query.next, query.limit);
      return c.json({ data: page.reviews.map(toReview), next: page.next }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/admin/v1/identity/reviews/{id}/approve",
      tags: ["Identity"],
      summary: "Approve a review: merge what it names",
      description:
        "Merges the profiles the review names, whatever the guards said, and lifts any never-merge pairs between them; for a quarantine review, releases the identifier so that it links again. " +
        "The merge is recorded like any other (rule `review-approved`) and can be unmerged. Audit-logged as `identity.review.approve`.",
      request: decisionRequest,
      responses: {
        200: json(z.object({ review: reviewSchema, merge: mergeSchema.nullable().openapi({ description: "The merge made; null when the profiles were already one." }) }), "The approved review"),
        ...alreadyDecided,
        ...problemResponses,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { workspaceId, decisions } = await identityDecisionsFor(c, c.req.valid("query").workspaceId);
      const result = await decisions.approveReview(id);
      if (!result.ok) refusal(result);
      await auditInsert(c, { workspaceId, action: "identity.review.approve", target: id, details: { kind: result.review.kind, profiles: result.review.clusters, mergeId: result.merge?.id ?? null } });
      return c.json({ review: toReview(result.review), merge: result.merge ? toMerge(result.merge) : null }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/admin/v1/identity/reviews/{id}/reject",
      tags: ["Identity"],
      summary: "Reject a review: keep the profiles apart",
      description:
        "Leaves the profiles as they are and records never-merge pairs between the identifiers in question and the profiles the review names. Audit-logged as `identity.review.reject`.",
      request: decisionRequest,
      responses: { 200: json(z.object({ review: reviewSchema }), "The rejected review"), ...alreadyDecided, ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { workspaceId, decisions } = await identityDecisionsFor(c, c.req.valid("query").workspaceId);
      const result = await decisions.rejectReview(id);
      if (!result.ok) refusal(result);
      await auditInsert(c, { workspaceId, action: "identity.review.reject", target: id, details: { kind: result.review.kind, profiles: result.review.clusters } });
      return c.json({ review: toReview(result.review) }, 200);
    },
  );
}
