import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../context";
import { IDENTIFIER_TYPE_PATTERN } from "../identity/settings";
import { BUILT_IN_TYPES } from "../identity/types";
import { ApiError } from "../lib/problem";
import { MAX_SUPPRESSIONS_PER_CALL, SUPPRESSION_REASONS, suppressionKeys } from "../privacy/suppression";
import {
  forgetEdgeSuppressions,
  listSuppressions,
  parseSuppressionCursor,
  planSuppressions,
  type Suppression,
  suppressionById,
  unsuppressStatement,
} from "../privacy/suppression-store";
import { auditInsert } from "./audit";
import { existingWorkspace, requireScope, targetWorkspace } from "./auth";
import { idParam, json, problemResponses, workspaceQuery } from "./schemas";

const PATH = "/admin/v1/privacy/suppressions";

const EFFECT =
  "An event carrying a suppressed identifier (as `userId`, `anonymousId`, alias `previousId`, an email or phone trait, an external id or a device id) is dropped at intake " +
  "and counted, while the sender still gets `200 {\"success\":true}`. The edge sees a change within 10 s; the events consumer checks every event against D1 before the archive, " +
  "so nothing suppressed is archived, resolved or forwarded meanwhile. An email is also suppressed without its `+tag` and, at Gmail, without dots.";

const suppressionSchema = z
  .object({
    id: z.string(),
    hint: z.string().openapi({ description: "The identifier masked, like `email:j***@example.com`; the value itself is never stored.", example: "email:j***@example.com" }),
    reason: z.enum(SUPPRESSION_REASONS).openapi({ description: "`deletion`: added by a deletion request; `manual`: added here." }),
    requestId: z.string().nullable().openapi({ description: "The deletion request that added it." }),
    createdBy: z.string(),
    createdAt: z.string(),
  })
  .openapi("Suppression");

const toSuppression = (s: Suppression) => ({ ...s, createdAt: new Date(s.createdAt).toISOString() });

const identifierSchema = z.object({
  type: z
    .string()
    .regex(IDENTIFIER_TYPE_PATTERN, { message: "must be an identifier type: a lowercase name (letters, digits, _ . -), starting with a letter" })
    .openapi({ description: `One of ${BUILT_IN_TYPES.join(", ")}, or a custom external-id type.`, example: "email" }),
  value: z.string().min(1, "must not be empty").max(512, "must be at most 512 characters").openapi({ example: "jane@example.com" }),
});

const createBody = z
  .object({
    workspaceId: z.string().min(1).optional().openapi({ description: "Required with the root admin token; a workspace token is confined to its own." }),
    identifiers: z
      .array(identifierSchema)
      .min(1, "must list at least one identifier")
      .max(MAX_SUPPRESSIONS_PER_CALL, `at most ${MAX_SUPPRESSIONS_PER_CALL.toLocaleString("en-US")} identifiers per call; send the rest in further calls`),
  })
  .openapi("SuppressionRequest");

const listQuery = workspaceQuery.extend({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  next: z
    .string()
    .refine((cursor) => parseSuppressionCursor(cursor) !== null, { message: "is not a cursor from a previous page" })
    .optional()
    .openapi({ description: "Cursor: the `next` value of the previous page." }),
});

/**
 * A Drizzle query as a plain D1 statement: the suppression store writes with
 * `json_each` in raw SQL, and the audit entry must share its D1 batch.
 */
const statementOf = (d1: D1Database, query: { toSQL(): { sql: string; params: unknown[] } }) => {
  const { sql, params } = query.toSQL();
  return d1.prepare(sql).bind(...params);
};

export function registerPrivacySuppressionRoutes(app: App) {
  app.use(PATH, requireScope("privacy"));
  app.use(`${PATH}/*`, requireScope("privacy"));

  app.openapi(
    createRoute({
      method: "get",
      path: PATH,
      tags: ["Privacy"],
      summary: "List a workspace's suppressed identifiers, newest first",
      description: `Each suppression shows a masked hint of its identifier, never the value. ${EFFECT}`,
      request: { query: listQuery },
      responses: { 200: json(z.object({ data: z.array(suppressionSchema), next: z.string().nullable() }), "A page of suppressions"), ...problemResponses },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const workspaceId = targetWorkspace(c.get("admin")!, query.workspaceId);
      const page = await listSuppressions(c.env.DB, workspaceId, query.next, query.limit);
      return c.json({ data: page.data.map(toSuppression), next: page.next }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: PATH,
      tags: ["Privacy"],
      summary: "Suppress identifiers: stop collecting events that carry them",
      description:
        `Values are normalised as identity resolution normalises them (emails lower-cased, phones to E.164 with US as the default country, advertising ids lower-cased). ` +
        `Idempotent: an identifier suppressed already keeps its suppression (\`created: false\`). Up to ${MAX_SUPPRESSIONS_PER_CALL.toLocaleString("en-US")} identifiers per call; ` +
        `an invalid one fails the whole call with a 400 problem naming it, like \`identifiers.2.value\`. ${EFFECT} Audit-logged as \`privacy.suppression.created\`, with the hint only.`,
      request: { body: { required: true, content: { "application/json": { schema: createBody } } } },
      responses: {
        201: json(z.object({ data: z.array(z.object({ id: z.string(), hint: z.string(), created: z.boolean() })) }), "The suppression of each distinct identifier, in order"),
        ...problemResponses,
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const admin = c.get("admin")!;
      const keys = suppressionKeys(body.identifiers);
      if (!keys.ok) throw new ApiError("VALIDATION_FAILED", `${keys.errors.length} of the identifiers cannot be suppressed; nothing was changed`, { errors: keys.errors });
      const workspaceId = await existingWorkspace(c, body.workspaceId);
      const plan = await planSuppressions(c.env.DB, workspaceId, keys.keys, { reason: "manual", actor: admin.actor });
      const audits = plan.suppressions
        .filter((s) => s.created)
        .map((s) => statementOf(c.env.DB, auditInsert(c, { workspaceId, action: "privacy.suppression.created", target: s.id, details: { hint: s.hint, reason: "manual" } })));
      if (plan.statements.length) await c.env.DB.batch([...plan.statements, ...audits]);
      forgetEdgeSuppressions(workspaceId);
      return c.json({ data: plan.suppressions }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: `${PATH}/{id}`,
      tags: ["Privacy"],
      summary: "Lift a suppression: events carrying its identifier are collected again",
      description:
        "Every edge collects them again within 10 s. Lifting a suppression a deletion added lets the deleted person be re-created by new events. " +
        "Audit-logged as `privacy.suppression.removed`, with the hint only.",
      request: { params: idParam("Suppression", "sup_123") },
      responses: { 200: json(suppressionSchema, "The suppression lifted"), ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const admin = c.get("admin")!;
      const found = await suppressionById(c.env.DB, id);
      if (!found || (admin.workspaceId !== null && found.workspaceId !== admin.workspaceId)) throw new ApiError("NOT_FOUND", `suppression '${id}' not found`);
      const { workspaceId, ...suppression } = found;
      await c.env.DB.batch([
        unsuppressStatement(c.env.DB, workspaceId, id),
        statementOf(c.env.DB, auditInsert(c, { workspaceId, action: "privacy.suppression.removed", target: id, details: { hint: suppression.hint, reason: suppression.reason } })),
      ]);
      forgetEdgeSuppressions(workspaceId);
      return c.json(toSuppression(suppression), 200);
    },
  );
}
