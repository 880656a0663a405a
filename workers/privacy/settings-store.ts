import { DEFAULT_PRIVACY_SETTINGS, type PrivacySettings, privacySettingsSchema } from "./settings";

/**
 * Privacy settings are read on every tracking request that has to check
 * consent at collection, so they are cached per isolate: a change reaches
 * every edge within SETTINGS_TTL_MS.
 */
export const SETTINGS_TTL_MS = 10_000;

const cache = new Map<string, { settings: PrivacySettings; expires: number }>();

/** The workspace's settings, or the defaults when it has none. Stored JSON is parsed, never trusted. */
export async function loadPrivacySettings(db: D1Database, workspaceId: string, now = Date.now()): Promise<PrivacySettings> {
  const hit = cache.get(workspaceId);
  if (hit && hit.expires > now) return hit.settings;
  const row = await db.prepare("SELECT settings FROM privacy_settings WHERE workspace_id = ?1").bind(workspaceId).first<{ settings: string }>();
  const settings = row ? privacySettingsSchema.parse(JSON.parse(row.settings)) : DEFAULT_PRIVACY_SETTINGS;
  if (cache.size > 10_000) cache.clear();
  cache.set(workspaceId, { settings, expires: now + SETTINGS_TTL_MS });
  return settings;
}

/** Stores validated settings and drops this isolate's cached copy. */
export async function savePrivacySettings(db: D1Database, workspaceId: string, settings: PrivacySettings, now = Date.now()): Promise<void> {
  await db
    .prepare("INSERT INTO privacy_settings (workspace_id, settings, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT(workspace_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at")
    .bind(workspaceId, JSON.stringify(settings), now)
    .run();
  cache.delete(workspaceId);
}
