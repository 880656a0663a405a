import { createMiddleware } from "hono/factory";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import { isRootToken, resolveToken } from "../config/keys-store";
import type { AppEnv } from "../context";
import { graphShardCount } from "../env";
import { normalizeIdentifier } from "../identity/extract";
import { IdentifierIndex } from "../identity/sharding/identifier-index";
import { ShardedProfileReads } from "../identity/sharding/profile-reads";
import type { IdentitySettings } from "../identity/settings";
import { credentialFromHeader } from "../lib/credentials";
import { resilientStub } from "../lib/durable-object-retry";
import { ApiError } from "../lib/problem";
import { D1ProfileReader } from "./d1-reader";
import type { ProfileReader } from "./reader";
import { StrongProfileReader } from "./strong-reader";

/** Request and response header carrying a D1 Sessions API bookmark, for read-your-writes across requests. */
export const BOOKMARK_HEADER = "x-d1-bookmark";

export interface ProfileApiContext {
  workspaceId: string;
  reader: ProfileReader;
  /** Normalizes a `type:value` lookup exactly as identifiers are stored. */
  normalize(type: string, value: string): { type: string; value: string };
}

/**
 * Authenticates a Profile API request (an access token with `profiles:read`,
 * as Basic username or Bearer), confines it to its own space (another space is
 * a 404, so a token cannot learn that it exists), and builds the request's
 * reader: D1 through a session, or the identity object for `consistency=strong`.
 */
export const profileApi = createMiddleware<AppEnv>(async (c, next) => {
  const secret = credentialFromHeader(c.req.header("authorization"));
  if (!secret) throw new ApiError("UNAUTHORIZED", "send an access token as the HTTP Basic username (empty password) or as a Bearer token", { headers: { "www-authenticate": 'Basic realm="profiles"' } });
  const space = c.req.param("space") ?? "";
  if (!(await isRootToken(secret, c.env.ADMIN_TOKEN))) {
    const token = await resolveToken(c.get("db"), secret);
    if (!token) throw new ApiError("UNAUTHORIZED", "the access token is not valid, has expired or has been revoked");
    if (!token.scopes.includes("profiles:read")) throw new ApiError("FORBIDDEN", `the Profile API needs the 'profiles:read' scope; the token has: ${token.scopes.join(", ") || "none"}`);
    if (token.workspaceId !== space) throw new ApiError("NOT_FOUND", `space '${space}' not found`);
  }
  const consistency = c.req.query("consistency") ?? "eventual";
  if (consistency !== "eventual" && consistency !== "strong") {
    throw new ApiError("VALIDATION_FAILED", "consistency must be 'eventual' (the default) or 'strong'", { errors: [{ path: "consistency", message: "must be eventual or strong" }] });
  }
  // Every call the Profile API makes to the identity object is a read, so all are retried; an overloaded object is a 503.
  const graph = resilientStub(() => c.env.IDENTITY.getByName(space), {
    object: `IDENTITY:${space}`,
    idempotent: ["getSettings", "profileByKey", "profileEvents", "account", "accountMembers"],
  });
  const reader = consistency === "strong" ? new StrongProfileReader(strongGraph(c.env, space, graph)) : new D1ProfileReader(c.env.DB.withSession(c.req.header(BOOKMARK_HEADER) || "first-unconstrained"), space);
  // Shard 0 (the workspace's object) keeps the identity settings, and every other shard the same copy.
  const settings = await identitySettings(space, () => graph.getSettings() as Promise<IdentitySettings>);
  c.set("profiles", {
    workspaceId: space,
    reader,
    normalize(type, value) {
      if (type === "profile_id" || type === "group_id") return { type, value };
      const normalized = normalizeIdentifier(type, value, settings);
      if (!normalized.ok) throw new ApiError("VALIDATION_FAILED", `externalId: ${normalized.reason}`, { errors: [{ path: "externalId", message: normalized.reason }] });
      return normalized.identifier;
    },
  });
  await next();
  const bookmark = reader.bookmark();
  if (bookmark) c.header(BOOKMARK_HEADER, bookmark);
});

/** Strong reads go to the workspace's object; with several graph shards, to the shard holding each person (and every shard for an account). */
function strongGraph(env: Env, space: string, graph: DurableObjectStub<IdentityGraphShard>) {
  const count = graphShardCount(env);
  return count > 1 ? new ShardedProfileReads(env.IDENTITY, new IdentifierIndex(env.IDENTIFIER_INDEX, space), space, count) : graph;
}

/** Identity settings decide how a lookup value is normalized; they change rarely, so each isolate keeps them for 30 s. */
const SETTINGS_TTL_MS = 30_000;
const settingsCache = new Map<string, { settings: IdentitySettings; expires: number }>();

async function identitySettings(workspaceId: string, load: () => Promise<IdentitySettings>): Promise<IdentitySettings> {
  const now = Date.now();
  const hit = settingsCache.get(workspaceId);
  if (hit && hit.expires > now) return hit.settings;
  const settings = await load();
  if (settingsCache.size > 1_000) settingsCache.clear();
  settingsCache.set(workspaceId, { settings, expires: now + SETTINGS_TTL_MS });
  return settings;
}
