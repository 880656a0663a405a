import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../context";
import { ApiError } from "../lib/problem";
import type { ProfileCore } from "./reader";

export const COLLECTIONS = ["users", "accounts"] as const;

export const profilePathParams = z.object({
  space: z.string().min(1).openapi({ param: { name: "space", in: "path" }, example: "default", description: "The workspace id." }),
  collection: z.enum(COLLECTIONS).openapi({ param: { name: "collection", in: "path" }, example: "users", description: "`users`, or `accounts` for group profiles." }),
  externalId: z
    .string()
    .min(1)
    .openapi({
      param: { name: "externalId", in: "path" },
      example: "user_id:u-123",
      description: "`type:value`, split at the first colon: `user_id`, `email`, `anonymous_id`, `phone`, any custom external id type, or `profile_id`; `group_id` for accounts. Values are normalised as stored.",
    }),
});

export const userPathParams = profilePathParams.extend({
  collection: z.literal("users").openapi({ param: { name: "collection", in: "path" }, example: "users", description: "Only `users` has this resource." }),
});

export const consistencyQuery = z.object({
  consistency: z
    .enum(["eventual", "strong"])
    .optional()
    .openapi({ description: "`strong` reads the workspace's identity object instead of D1: slower, but it includes events not yet written through." }),
});

export const limitQuery = (fallback: number, max: number) =>
  z.coerce
    .number()
    .int()
    .min(1)
    .max(max)
    .default(fallback)
    .openapi({ description: `Items per page, 1 to ${max} (default ${fallback}).` });

export const listParam = z
  .string()
  .optional()
  .transform((raw) => (raw ? raw.split(",").map((s) => s.trim()).filter(Boolean) : undefined));

export const booleanParam = z
  .enum(["true", "false"])
  .optional()
  .transform((raw) => raw === "true");

export const cursorSchema = z
  .object({
    url: z.string().openapi({ description: "This request's path and query." }),
    has_more: z.boolean(),
    next: z.string().openapi({ description: "Pass as `next` for the following page; empty on the last page." }),
  })
  .openapi("ProfileCursor");

export function cursorOf(c: Context<AppEnv>, next: string | null) {
  const url = new URL(c.req.url);
  return { url: `${url.pathname}${url.search}`, has_more: next !== null, next: next ?? "" };
}

/** Opaque paging cursors: base64url JSON, validated when they come back. */
export function encodeCursor(value: unknown): string {
  return btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

export function decodeCursor<T>(raw: string | undefined, schema: z.ZodType<T>): T | undefined {
  if (!raw) return undefined;
  try {
    const json = atob(raw.replaceAll("-", "+").replaceAll("_", "/"));
    const parsed = schema.safeParse(JSON.parse(json));
    if (parsed.success) return parsed.data;
  } catch {
    // fall through to the problem below
  }
  throw new ApiError("VALIDATION_FAILED", "next is not a cursor this endpoint returned", { errors: [{ path: "next", message: "invalid cursor" }] });
}

export function splitExternalId(raw: string): { type: string; value: string } {
  const colon = raw.indexOf(":");
  const type = colon > 0 ? raw.slice(0, colon).trim().toLowerCase() : "";
  const value = colon > 0 ? raw.slice(colon + 1) : "";
  if (!type || value.trim() === "") {
    throw new ApiError("VALIDATION_FAILED", "the profile must be named as type:value, like user_id:u-123 or email:pat@example.com", { errors: [{ path: "externalId", message: "must be type:value" }] });
  }
  return { type, value };
}

/** The user profile a request names, or a 404 problem document. */
export async function requireUser(c: Context<AppEnv>, externalId: string): Promise<ProfileCore> {
  const profiles = c.get("profiles")!;
  const named = splitExternalId(externalId);
  const { type, value } = profiles.normalize(named.type, named.value);
  const profile = await profiles.reader.findUser(type, value);
  if (!profile) throw new ApiError("NOT_FOUND", `no user profile with ${type} '${value}' in space '${profiles.workspaceId}'`);
  return profile;
}

/** The account a request names (`group_id:…`), or a 404 problem document. */
export async function requireAccount(c: Context<AppEnv>, externalId: string) {
  const profiles = c.get("profiles")!;
  const { type, value } = splitExternalId(externalId);
  if (type !== "group_id") throw new ApiError("VALIDATION_FAILED", "accounts are named as group_id:{groupId}", { errors: [{ path: "externalId", message: "must be group_id:value" }] });
  const account = await profiles.reader.findAccount(value.trim());
  if (!account) throw new ApiError("NOT_FOUND", `no account with group_id '${value}' in space '${profiles.workspaceId}'`);
  return account;
}

export const iso = (ms: number | null | undefined) => (typeof ms === "number" && Number.isFinite(ms) ? new Date(ms).toISOString() : null);
