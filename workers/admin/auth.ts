import { eq } from "drizzle-orm";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { isRootToken, resolveToken } from "../config/keys-store";
import type { AppEnv } from "../context";
import { workspaces } from "../db/schema";
import { credentialFromHeader } from "../lib/credentials";
import { ApiError } from "../lib/problem";

export const SCOPES = ["profiles:read", "admin", "privacy"] as const;
export type Scope = (typeof SCOPES)[number];

/**
 * Admin routes accept the deployment's root admin token (every workspace, every
 * scope) or a workspace token carrying one of the route's scopes.
 */
export const requireScope = (...accepted: [Scope, ...Scope[]]) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const secret = credentialFromHeader(c.req.header("authorization"));
    if (!secret) throw new ApiError("UNAUTHORIZED", "send the admin token as a Bearer token or as the HTTP Basic username");
    if (await isRootToken(secret, c.env.ADMIN_TOKEN)) {
      c.set("admin", { workspaceId: null, scopes: [...SCOPES], actor: "root" });
      return next();
    }
    const token = await resolveToken(c.get("db"), secret);
    if (!token) throw new ApiError("UNAUTHORIZED", "the token is not valid, has expired or has been revoked");
    if (!accepted.some((scope) => token.scopes.includes(scope))) {
      const needed = accepted.map((scope) => `'${scope}'`).join(" or ");
      throw new ApiError("FORBIDDEN", `this route needs the ${needed} scope; the token has: ${token.scopes.join(", ") || "none"}`);
    }
    c.set("admin", { workspaceId: token.workspaceId, scopes: token.scopes, actor: `token:${token.tokenId}` });
    return next();
  });

/**
 * The workspace an admin request acts on. A workspace token is confined to its
 * own workspace: naming another one is a 404, so it cannot even learn it exists.
 */
export function targetWorkspace(admin: NonNullable<AppEnv["Variables"]["admin"]>, requested: string | undefined, field = "workspaceId"): string {
  if (admin.workspaceId === null) {
    if (!requested) throw new ApiError("VALIDATION_FAILED", `${field} is required with the root admin token`, { errors: [{ path: field, message: "required" }] });
    return requested;
  }
  if (requested && requested !== admin.workspaceId) throw new ApiError("NOT_FOUND", `workspace '${requested}' not found`);
  return admin.workspaceId;
}

/**
 * `targetWorkspace` for a route that creates or reads something in the
 * workspace: the root token may name only a workspace that exists (a
 * workspace token's own always does, its tokens go with it), so nothing is
 * created for, or reported about, a workspace that is not there.
 */
export async function existingWorkspace(c: Context<AppEnv>, requested: string | undefined): Promise<string> {
  const admin = c.get("admin")!;
  const workspaceId = targetWorkspace(admin, requested);
  if (admin.workspaceId === null) {
    const row = await c.get("db").select({ id: workspaces.id }).from(workspaces).where(eq(workspaces.id, workspaceId)).get();
    if (!row) throw new ApiError("NOT_FOUND", `workspace '${workspaceId}' not found`, { errors: [{ path: "workspaceId", message: "no such workspace" }] });
  }
  return workspaceId;
}
