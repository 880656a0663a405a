import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { App } from "../context";
import { tokens } from "../db/schema";
import { forgetCredential } from "../config/keys-store";
import { displayPrefix, generateId, generateSecret, sha256Hex } from "../lib/keys";
import { ApiError } from "../lib/problem";
import { auditInsert } from "./audit";
import { existingWorkspace, requireScope, SCOPES, targetWorkspace } from "./auth";
import { idParam, isoDate, json, problemResponses, workspaceQuery } from "./schemas";

const tokenSchema = z
  .object({
    id: z.string(),
    workspaceId: z.string(),
    name: z.string(),
    tokenPrefix: z.string(),
    scopes: z.array(z.enum(SCOPES)),
    createdAt: z.string().nullable(),
    expiresAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
  })
  .openapi("AccessToken");

const toToken = (row: typeof tokens.$inferSelect) => ({
  id: row.id,
  workspaceId: row.workspaceId,
  name: row.name,
  tokenPrefix: row.tokenPrefix,
  scopes: row.scopes as (typeof SCOPES)[number][],
  createdAt: isoDate(row.createdAt),
  expiresAt: isoDate(row.expiresAt),
  revokedAt: isoDate(row.revokedAt),
});

const createBody = z.object({
  workspaceId: z.string().optional(),
  name: z.string().min(1).max(200).openapi({ example: "Personalization service" }),
  scopes: z
    .array(z.enum(SCOPES))
    .min(1)
    .openapi({ description: "profiles:read reads the Profile API; admin manages configuration; privacy runs exports and deletions." }),
  expiresAt: z.iso.datetime({ offset: true }).optional().openapi({ description: "Optional expiry; the token stops working then." }),
});

export function registerTokenRoutes(app: App) {
  app.use("/admin/v1/tokens", requireScope("admin"));
  app.use("/admin/v1/tokens/*", requireScope("admin"));

  app.openapi(
    createRoute({
      method: "get",
      path: "/admin/v1/tokens",
      tags: ["Tokens"],
      summary: "List a workspace's access tokens",
      request: { query: workspaceQuery },
      responses: { 200: json(z.object({ data: z.array(tokenSchema) }), "Tokens"), ...problemResponses },
    }),
    async (c) => {
      const workspaceId = targetWorkspace(c.get("admin")!, c.req.valid("query").workspaceId);
      const rows = await c.get("db").select().from(tokens).where(eq(tokens.workspaceId, workspaceId)).all();
      return c.json({ data: rows.map(toToken) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/admin/v1/tokens",
      tags: ["Tokens"],
      summary: "Create a scoped access token; the response carries the secret, shown this once",
      request: { body: { required: true, content: { "application/json": { schema: createBody } } } },
      responses: { 201: json(z.object({ token: tokenSchema, secret: z.string() }), "Created"), ...problemResponses },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const admin = c.get("admin")!;
      const escalation = body.scopes.filter((scope) => !admin.scopes.includes(scope));
      if (escalation.length > 0) throw new ApiError("FORBIDDEN", `a token cannot grant scopes it lacks: ${escalation.join(", ")}`);
      if (body.expiresAt && Date.parse(body.expiresAt) <= Date.now()) {
        throw new ApiError("VALIDATION_FAILED", "expiresAt is in the past", { errors: [{ path: "expiresAt", message: "must be in the future" }] });
      }
      const workspaceId = await existingWorkspace(c, body.workspaceId);
      const db = c.get("db");
      const secret = generateSecret("at");
      const id = generateId("tok");
      const [rows] = await db.batch([
        db
          .insert(tokens)
          .values({
            id,
            workspaceId,
            name: body.name,
            scopes: body.scopes,
            tokenHash: await sha256Hex(secret),
            tokenPrefix: displayPrefix(secret),
            expiresAt: body.expiresAt ? new Date(body.expiresAt) : null,
          })
          .returning(),
        auditInsert(c, { workspaceId, action: "token.create", target: id, details: { name: body.name, scopes: body.scopes } }),
      ]);
      return c.json({ token: toToken(rows[0]!), secret }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/admin/v1/tokens/{id}",
      tags: ["Tokens"],
      summary: "Revoke an access token (takes effect everywhere within 30 s)",
      request: { params: idParam("Token", "tok_123") },
      responses: { 200: json(tokenSchema, "The revoked token"), ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const admin = c.get("admin")!;
      const db = c.get("db");
      const row = await db.select().from(tokens).where(eq(tokens.id, id)).get();
      if (!row || (admin.workspaceId !== null && row.workspaceId !== admin.workspaceId)) throw new ApiError("NOT_FOUND", `token '${id}' not found`);
      const [updated] = await db.batch([
        db.update(tokens).set({ revokedAt: row.revokedAt ?? new Date() }).where(eq(tokens.id, id)).returning(),
        auditInsert(c, { workspaceId: row.workspaceId, action: "token.revoke", target: id }),
      ]);
      await forgetCredential(row.tokenHash);
      return c.json(toToken(updated[0]!), 200);
    },
  );
}
