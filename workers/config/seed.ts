/**
 * The local `default` workspace with the design's development keys. Used by
 * `npm start` (rendered to SQL for `wrangler d1 execute`) and by the tests.
 * Self-contained so that Node can import it directly.
 */
export interface SeedKeys {
  writeKey: string;
  accessToken: string;
}

export const DEFAULT_WORKSPACE_ID = "default";
export const DEFAULT_SOURCE_ID = "src_default";
export const DEFAULT_TOKEN_ID = "tok_default";

async function sha256Hex(value: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const quote = (value: string) => `'${value.replaceAll("'", "''")}'`;

/** Idempotent: re-running replaces the dev keys with the current ones and changes nothing else. */
export async function seedStatements(keys: SeedKeys): Promise<string[]> {
  const [writeKeyHash, tokenHash] = await Promise.all([sha256Hex(keys.writeKey), sha256Hex(keys.accessToken)]);
  return [
    `INSERT OR IGNORE INTO workspaces (id, name) VALUES (${quote(DEFAULT_WORKSPACE_ID)}, 'Default workspace')`,
    `INSERT INTO sources (id, workspace_id, name, write_key_hash, write_key_prefix) VALUES (${quote(DEFAULT_SOURCE_ID)}, ${quote(DEFAULT_WORKSPACE_ID)}, 'Local development', ${quote(writeKeyHash)}, ${quote(keys.writeKey.slice(0, 12))}) ON CONFLICT(id) DO UPDATE SET write_key_hash = excluded.write_key_hash, write_key_prefix = excluded.write_key_prefix, revoked_at = NULL`,
    `INSERT INTO tokens (id, workspace_id, name, token_hash, token_prefix, scopes) VALUES (${quote(DEFAULT_TOKEN_ID)}, ${quote(DEFAULT_WORKSPACE_ID)}, 'Local development', ${quote(tokenHash)}, ${quote(keys.accessToken.slice(0, 12))}, '["profiles:read"]') ON CONFLICT(id) DO UPDATE SET token_hash = excluded.token_hash, token_prefix = excluded.token_prefix, revoked_at = NULL`,
  ];
}
