import { z } from "@hono/zod-openapi";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import type { AudienceRow } from "../audiences/apply";
import { computedTraitSchema, segmentDefinitionSchema } from "../segments/definition";
import { isoDate } from "./schemas";

/** The two audience resources and what their routes share. */

export interface Resource {
  kind: "segment" | "computed_trait";
  path: "/admin/v1/segments" | "/admin/v1/computed-traits";
  tag: string;
  idPrefix: "seg" | "ctr";
  /** In sentences: "segment", "computed trait". */
  noun: string;
  /** The property the created resource is under in a create or update response. */
  field: "segment" | "computedTrait";
  component: string;
  definition: z.ZodType;
  definitionDescription: string;
  definitionExample: unknown;
  exampleKey: string;
  memberDescription: string;
}

export const SEGMENTS: Resource = {
  kind: "segment",
  path: "/admin/v1/segments",
  tag: "Segments",
  idPrefix: "seg",
  noun: "segment",
  field: "segment",
  component: "Segment",
  definition: segmentDefinitionSchema,
  definitionDescription:
    "One condition of the segment language: `and` / `or` / `not`; `trait` and `computed_trait` tests; `event` (performed N times in a window); `since_last`; `sequence`; " +
    "`compare` (two operands: traits, computed traits, inline aggregates, workspace statistics such as the average of a trait, constants); `segment` (membership of another segment, by id). " +
    "An invalid definition is a 400 whose `errors` name each mistake by its path, like `definition.conditions.1.count.value`.",
  definitionExample: {
    kind: "and",
    conditions: [
      { kind: "trait", trait: "plan", op: "equals", value: "pro" },
      { kind: "event", event: "Order Completed", window: { within: { days: 30 } }, count: { op: "gte", value: 2 } },
    ],
  },
  exampleKey: "repeat_buyers",
  memberDescription: "The profile's membership, since `since`.",
};

export const COMPUTED_TRAITS: Resource = {
  kind: "computed_trait",
  path: "/admin/v1/computed-traits",
  tag: "Computed traits",
  idPrefix: "ctr",
  noun: "computed trait",
  field: "computedTrait",
  component: "ComputedTrait",
  definition: computedTraitSchema,
  definitionDescription:
    "One function (`count`, `sum`, `average`, `min`, `max`, `most_frequent`, `first`, `last`, `unique_count`, `unique_list`) over the person's matching events (`event`, `type`, `where`) in a `window` (absent: ever). " +
    "Its value appears on profiles under the key. An invalid definition is a 400 whose `errors` name each mistake by its path, like `definition.property`.",
  definitionExample: { function: "sum", event: "Order Completed", property: "revenue", window: { within: { days: 30 } } },
  exampleKey: "revenue_30d",
  memberDescription: "The profile's value, held since `since`.",
};

/** Validates against the definition language, reporting each mistake at its path under `definition`, with the body's other errors. */
export const definitionField = (resource: Resource) =>
  z
    .unknown()
    .superRefine((value, ctx) => {
      const parsed = resource.definition.safeParse(value);
      if (!parsed.success) for (const issue of parsed.error.issues) ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
    })
    .openapi({ description: resource.definitionDescription, example: resource.definitionExample });

export const nameField = z.string().trim().min(1).max(200);

export type MembersResult = Awaited<ReturnType<IdentityGraphShard["audienceMembers"]>>;
export type PreviewResult = Awaited<ReturnType<IdentityGraphShard["previewAudience"]>>;

export const toAudience = (row: AudienceRow) => ({
  id: row.id,
  workspaceId: row.workspaceId,
  key: row.key,
  name: row.name,
  definition: row.definition,
  version: row.version,
  createdAt: isoDate(row.createdAt),
  updatedAt: isoDate(row.updatedAt),
});

export const previewSchema = z
  .object({
    size: z.number().int().openapi({ description: "How many live profiles the definition holds now (segments: members; computed traits: profiles with a value)." }),
    total: z.number().int().openapi({ description: "Live profiles in the workspace." }),
    sample: z.array(z.object({ profileId: z.string(), value: z.unknown().openapi({ description: "`true` for a segment; the computed value for a computed trait." }) })),
  })
  .openapi("AudiencePreview");

export const isUniqueViolation = (error: unknown) => error instanceof Error && /UNIQUE constraint failed/i.test(`${error.message} ${String((error as { cause?: unknown }).cause ?? "")}`);

