import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import type { AppEnv } from "../context";
import type { MergeRecord, ReviewItem } from "../identity/graph";
import { resilientStub } from "../lib/durable-object-retry";
import { ApiError } from "../lib/problem";
import { existingWorkspace } from "./auth";
import { graphShardCount } from "../env";
import { ShardedDecisions } from "../identity/sharding/decisions";
import { IdentifierIndex } from "../identity/sharding/identifier-index";
import { ShardedReads } from "../identity/sharding/reads";
import { problemSchema } from "./schemas";

/**
 * What the identity admin routes share: reaching a workspace's identity graph,
 * and turning the graph's records (epoch-millisecond times, `type:value` keys)
 * into the documented response shapes.
 */

/**
 * The workspace a request acts on and its `IdentityGraphShard`. A workspace
 * token is confined to its own workspace by `targetWorkspace`; the root token
 * may name any, but only an existing one: a Durable Object would otherwise be
 * created for a workspace that does not exist.
 *
 * The stub retries the reads in `IDENTITY_READS` on a retryable error and
 * sends everything else once: an unmerge, an approval or a settings change
 * that may already have been applied must not be sent again blindly. An
 * overloaded object answers 503 with Retry-After, reads and writes alike.
 */
export async function identityGraphFor(c: Context<AppEnv>, requested: string | undefined) {
  const workspaceId = await existingWorkspace(c, requested);
  const graph = resilientStub(() => c.env.IDENTITY.getByName(workspaceId), {
    object: `IDENTITY:${workspaceId}`,
    idempotent: IDENTITY_READS,
  });
  return { workspaceId, graph };
}

/**
 * The reads that follow a workspace's graph shards: by identifier or profile
 * id to the shard the identifier index places it on, the listing over all.
 */
export function identityReadsFor(c: Context<AppEnv>, workspaceId: string) {
  return new ShardedReads(c.env.IDENTITY, new IdentifierIndex(c.env.IDENTIFIER_INDEX, workspaceId), workspaceId, graphShardCount(c.env));
}

/**
 * The review queue and the decisions on it (approve, reject, unmerge, split)
 * for the workspace a request acts on, over its graph shards: each decision is
 * made on the shard holding everyone it names (see decisions.ts).
 */
export async function identityDecisionsFor(c: Context<AppEnv>, requested: string | undefined) {
  const workspaceId = await existingWorkspace(c, requested);
  const index = new IdentifierIndex(c.env.IDENTIFIER_INDEX, workspaceId);
  return { workspaceId, decisions: new ShardedDecisions(c.env.IDENTITY, index, workspaceId, graphShardCount(c.env)) };
}

/** The identity object's methods that only read: safe to send twice. */
const IDENTITY_READS = [
  "getSettings",
  "reviews",
  "merge",
  "lookup",
  "listProfiles",
  "profile",
  "profileByKey",
  "profileEvents",
  "account",
  "accountMembers",
  "listAudiences",
  "previewAudience",
  "audienceMembers",
  "personForPrivacy",
] as const satisfies readonly (keyof DurableObjectStub<IdentityGraphShard>)[];

/** A refused decision from the graph (`{ ok: false, code, detail }`) as the matching problem document. */
export function refusal(result: { ok: false; code: "NOT_FOUND" | "CONFLICT"; detail: string }): never {
  throw new ApiError(result.code, result.detail);
}

export const conflictResponse = (description: string) => ({ description, content: { "application/problem+json": { schema: problemSchema } } });

/** Graph times are epoch milliseconds; a time that is not a number (an event without a parsable timestamp) is null. */
export const isoTime = (ms: number | undefined) => (typeof ms === "number" && Number.isFinite(ms) ? new Date(ms).toISOString() : null);

/** Splits an identifier key at its first colon: type names cannot contain one, values can. */
export function splitKey(key: string): { type: string; value: string } {
  const colon = key.indexOf(":");
  return colon < 0 ? { type: key, value: "" } : { type: key.slice(0, colon), value: key.slice(colon + 1) };
}

export const profileIdParam = z.object({
  profileId: z.string().min(1).openapi({ param: { name: "profileId", in: "path" }, example: "prof_00000a", description: "Profile id (an absorbed profile's id resolves to the profile that absorbed it)" }),
});

export const identifierSchema = z
  .object({
    type: z.string().openapi({ example: "email" }),
    value: z.string().openapi({ example: "pat@acme-shop.com", description: "Normalized value." }),
    firstSeen: z.string().nullable(),
    lastSeen: z.string().nullable(),
  })
  .openapi("ProfileIdentifier");

export const toIdentifier = (identifier: { type: string; value: string; firstSeen: number; lastSeen: number }) => ({
  type: identifier.type,
  value: identifier.value,
  firstSeen: isoTime(identifier.firstSeen),
  lastSeen: isoTime(identifier.lastSeen),
});

export const mergeSchema = z
  .object({
    id: z.string().openapi({ example: "mrg_00000c" }),
    survivor: z.string().openapi({ description: "The profile that kept its id (the older one)." }),
    absorbed: z.array(z.string()).openapi({ description: "Profiles that were folded into the survivor; their ids forward to it." }),
    messageId: z
      .string()
      .openapi({ description: "The event that caused the merge; `review:{reviewId}` for a merge made by approving a review, `match:…` for a probabilistic auto-merge." }),
    rule: z.enum(["shared-identifier", "review-approved", "probabilistic"]),
    at: z.string().nullable(),
    evidence: z
      .array(
        z.object({
          identifier: z.string().openapi({ example: "email:pat@acme-shop.com" }),
          type: z.string(),
          value: z.string(),
          fromProfileId: z.string().nullable().openapi({ description: "The profile that held the identifier before the merge; null when the event brought it first." }),
        }),
      )
      .openapi({ description: "The event's identifiers that took part in the merge, each with the profile it matched." }),
    retracted: z
      .object({ at: z.string().nullable(), restored: z.array(z.string()).openapi({ description: "Profile ids created by the unmerge." }) })
      .nullable()
      .openapi({ description: "Set once the merge has been unmerged." }),
  })
  .openapi("IdentityMerge");

export const toMerge = (merge: MergeRecord) => ({
  id: merge.id,
  survivor: merge.survivor,
  absorbed: merge.absorbed,
  messageId: merge.messageId,
  rule: merge.rule,
  at: isoTime(merge.at),
  evidence: merge.evidence.map(({ key, clusterId }) => ({ identifier: key, ...splitKey(key), fromProfileId: clusterId === "event" ? null : clusterId })),
  retracted: merge.retracted ? { at: isoTime(merge.retracted.at), restored: merge.retracted.restored } : null,
});

export const REVIEW_STATUSES = ["open", "approved", "rejected"] as const;

export const reviewSchema = z
  .object({
    id: z.string().openapi({ example: "rev_00000f" }),
    kind: z.enum(["user-id-conflict", "cluster-cap", "quarantine", "probabilistic"]).openapi({
      description:
        "user-id-conflict: a strong identifier (email, external id) would join profiles holding different user ids; cluster-cap: a merge would exceed the cluster cap; quarantine: an identifier was seen with too many user ids and no longer links anyone; probabilistic: a scored match candidate.",
    }),
    status: z.enum(REVIEW_STATUSES),
    profiles: z.array(z.string()).openapi({ description: "The profiles the review would join, as they were when it was queued (absorbed ids forward to their survivor)." }),
    identifiers: z.array(z.string()).openapi({ description: "The identifiers in question, as `type:value`." }),
    messageId: z.string().nullable().openapi({ description: "The event that raised the review." }),
    detail: z.string(),
    score: z.number().nullable().openapi({ description: "Probabilistic candidates: the match probability." }),
    evidence: z
      .array(z.object({ field: z.string(), level: z.string(), weight: z.number() }))
      .nullable()
      .openapi({ description: "Probabilistic candidates: each field's comparison level and its weight in bits." }),
    at: z.string().nullable(),
  })
  .openapi("IdentityReview");

/** Probabilistic candidates carry a score and per-field evidence. */
type ScoredReview = ReviewItem & { score?: number; evidence?: { field: string; level: string; weight: number }[] };

export const toReview = (review: ScoredReview) => ({
  id: review.id,
  kind: review.kind,
  status: review.status,
  profiles: review.clusters,
  identifiers: review.identifiers,
  messageId: review.messageId ?? null,
  detail: review.detail,
  score: review.score ?? null,
  evidence: review.evidence ?? null,
  at: isoTime(review.at),
});
