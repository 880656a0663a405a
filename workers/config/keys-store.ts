import { and, eq, isNull } from "drizzle-orm";
import type { Db } from "../db/client";
import { sources, tokens } from "../db/schema";
import { sha256Hex, timingSafeEqualHex } from "../lib/keys";

export interface SourceAuth {
  sourceId: string;
  workspaceId: string;
}

export interface TokenAuth {
  tokenId: string;
  workspaceId: string;
  scopes: string[];
}

/**
 * Write keys are checked on every tracking request, so resolutions are cached
 * per isolate. A revoked key stops working within CACHE_TTL_MS on every edge;
 * unknown keys are cached briefly too, so a flood of bad keys never reaches D1.
 */
const CACHE_TTL_MS = 30_000;
const NEGATIVE_TTL_MS = 5_000;
const MAX_ENTRIES = 10_000;

class TtlCache<V> {
  private entries = new Map<string, { value: V | null; expires: number }>();
  get(key: string, now: number): V | null | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (hit.expires <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return hit.value;
  }
  set(key: string, value: V | null, now: number) {
    if (this.entries.size >= MAX_ENTRIES) {
      this.entries.clear();
      secretByHash.clear();
    }
    this.entries.set(key, { value, expires: now + (value ? CACHE_TTL_MS : NEGATIVE_TTL_MS) });
  }
  delete(key: string) {
    this.entries.delete(key);
  }
}

const sourceCache = new TtlCache<SourceAuth>();
const tokenCache = new TtlCache<TokenAuth>();

/**
 * The cache is keyed by the secret itself (it never leaves isolate memory), so a
 * hit costs no digest: hashing is the largest fixed cost of a tracking request.
 */
export async function resolveWriteKey(db: Db, writeKey: string, now = Date.now()): Promise<SourceAuth | null> {
  const cached = sourceCache.get(writeKey, now);
  if (cached !== undefined) return cached;
  const hash = await sha256Hex(writeKey);
  const row = await db
    .select({ id: sources.id, workspaceId: sources.workspaceId, hash: sources.writeKeyHash })
    .from(sources)
    .where(and(eq(sources.writeKeyHash, hash), isNull(sources.revokedAt)))
    .get();
  const auth = row && timingSafeEqualHex(row.hash, hash) ? { sourceId: row.id, workspaceId: row.workspaceId } : null;
  sourceCache.set(writeKey, auth, now);
  if (auth) secretByHash.set(hash, writeKey);
  return auth;
}

export async function resolveToken(db: Db, token: string, now = Date.now()): Promise<TokenAuth | null> {
  const cached = tokenCache.get(token, now);
  if (cached !== undefined) return cached;
  const hash = await sha256Hex(token);
  const row = await db.select().from(tokens).where(and(eq(tokens.tokenHash, hash), isNull(tokens.revokedAt))).get();
  const valid = row && timingSafeEqualHex(row.tokenHash, hash) && (!row.expiresAt || row.expiresAt.getTime() > now);
  const auth = valid ? { tokenId: row.id, workspaceId: row.workspaceId, scopes: row.scopes } : null;
  tokenCache.set(token, auth, now);
  if (auth) secretByHash.set(hash, token);
  return auth;
}

/** The root admin token's digest, computed once per isolate (and again only if the token changes). */
let root: { token: string; hash: Promise<string> } | null = null;

/** Whether `secret` is the deployment's root admin token, compared in constant time. */
export async function isRootToken(secret: string, adminToken: string | undefined): Promise<boolean> {
  if (!adminToken) return false;
  if (root?.token !== adminToken) root = { token: adminToken, hash: sha256Hex(adminToken) };
  const [given, expected] = await Promise.all([sha256Hex(secret), root.hash]);
  return timingSafeEqualHex(given, expected);
}

/** Lets a revocation, which knows only the stored hash, find the cached secret. */
const secretByHash = new Map<string, string>();

/** Revocation in this isolate takes effect at once; other isolates follow within the cache TTL. */
export async function forgetCredential(secretHash: string) {
  const secret = secretByHash.get(secretHash);
  if (secret === undefined) return;
  secretByHash.delete(secretHash);
  sourceCache.delete(secret);
  tokenCache.delete(secret);
}
