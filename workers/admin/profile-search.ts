import type { IdentifierRow } from "../profiles/write-through";

/** Columns with their own index: a prefix search on these reads an index range, the rest scan the workspace's traits. */
const INDEXED: Record<string, { column: string; lower?: boolean }> = {
  user_id: { column: "user_id" },
  userId: { column: "user_id" },
  email: { column: "email", lower: true },
  phone: { column: "phone" },
  first_name: { column: "first_name" },
  firstName: { column: "first_name" },
  last_name: { column: "last_name" },
  lastName: { column: "last_name" },
};

export interface TraitSearchHit {
  profileId: string;
  traits: Record<string, unknown>;
  identifiers: IdentifierRow[];
}

/**
 * Live profiles whose trait `key` starts with `prefix` (case-sensitive, except
 * emails, which are stored lowercased), in profile id order after `after`.
 */
export async function searchByTraitPrefix(db: D1Database, workspaceId: string, key: string, prefix: string, after: string | undefined, limit: number): Promise<{ hits: TraitSearchHit[]; more: boolean }> {
  const indexed = INDEXED[key];
  const value = indexed?.lower ? prefix.toLowerCase() : prefix;
  // A range rather than LIKE: it uses the column's index and treats % and _ in the prefix literally.
  const target = indexed ? indexed.column : `json_extract(traits, '$.' || json_quote(?5))`;
  const { results } = await db
    .prepare(
      `SELECT profile_id, traits FROM profiles WHERE workspace_id = ?1 AND canonical_id IS NULL AND ${target} >= ?2 AND ${target} < ?2 || char(1114111)
       AND profile_id > ?3 AND ?5 IS NOT NULL ORDER BY profile_id LIMIT ?4`,
    )
    .bind(workspaceId, value, after ?? "", limit + 1, key)
    .all<{ profile_id: string; traits: string }>();
  const page = results.slice(0, limit);
  const identifiers = new Map<string, IdentifierRow[]>();
  if (page.length) {
    const rows = await db
      .prepare(
        `SELECT profile_id, type, value, source_id, first_seen_at, last_seen_at FROM profile_identifiers
         WHERE workspace_id = ? AND profile_id IN (SELECT value FROM json_each(?)) ORDER BY first_seen_at, type, value`,
      )
      .bind(workspaceId, JSON.stringify(page.map((r) => r.profile_id)))
      .all<{ profile_id: string; type: string; value: string; source_id: string | null; first_seen_at: number; last_seen_at: number }>();
    for (const r of rows.results) {
      identifiers.set(r.profile_id, [...(identifiers.get(r.profile_id) ?? []), { type: r.type, value: r.value, sourceId: r.source_id, firstSeen: r.first_seen_at, lastSeen: r.last_seen_at }]);
    }
  }
  return {
    hits: page.map((r) => ({ profileId: r.profile_id, traits: JSON.parse(r.traits) as Record<string, unknown>, identifiers: identifiers.get(r.profile_id) ?? [] })),
    more: results.length > limit,
  };
}
