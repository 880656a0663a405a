import type { ProfilesTableRow } from "../db/rows";
import type { EventRecord } from "../profiles/event-record";
import type { AccountRow, IdentifierRow } from "../profiles/write-through";
import type { EventQuery, ProfileCore, ProfileReader } from "./reader";

type ProfileDbRow = ProfilesTableRow;

/** Merges chain (A into B, B into C); a lookup follows at most this many forwards. */
const MAX_FORWARDS = 16;

/** Profile API reads from D1 through one session per request, so a bookmark carries read-your-writes across requests. */
export class D1ProfileReader implements ProfileReader {
  constructor(
    private readonly session: D1DatabaseSession,
    private readonly workspaceId: string,
  ) {}

  async findUser(type: string, value: string): Promise<ProfileCore | null> {
    let row =
      type === "profile_id"
        ? await this.session.prepare("SELECT * FROM profiles WHERE workspace_id = ? AND profile_id = ?").bind(this.workspaceId, value).first<ProfileDbRow>()
        : await this.session
            .prepare(
              `SELECT p.* FROM profile_identifiers i JOIN profiles p ON p.workspace_id = i.workspace_id AND p.profile_id = i.profile_id
               WHERE i.workspace_id = ? AND i.type = ? AND i.value = ?`,
            )
            .bind(this.workspaceId, type, value)
            .first<ProfileDbRow>();
    for (let hops = 0; row?.canonical_id && hops < MAX_FORWARDS; hops++) {
      row = await this.session.prepare("SELECT * FROM profiles WHERE workspace_id = ? AND profile_id = ?").bind(this.workspaceId, row.canonical_id).first<ProfileDbRow>();
    }
    return row && !row.canonical_id ? toCore(row) : null;
  }

  async identifiers(profileId: string): Promise<IdentifierRow[]> {
    const { results } = await this.session
      .prepare("SELECT type, value, source_id, first_seen_at, last_seen_at FROM profile_identifiers WHERE workspace_id = ? AND profile_id = ? ORDER BY first_seen_at, type, value")
      .bind(this.workspaceId, profileId)
      .all<{ type: string; value: string; source_id: string | null; first_seen_at: number; last_seen_at: number }>();
    return results.map((r) => ({ type: r.type, value: r.value, sourceId: r.source_id, firstSeen: r.first_seen_at, lastSeen: r.last_seen_at }));
  }

  async links(profileId: string) {
    const { results } = await this.session
      .prepare("SELECT group_id, source_id, linked_at FROM account_links WHERE workspace_id = ? AND profile_id = ? ORDER BY group_id")
      .bind(this.workspaceId, profileId)
      .all<{ group_id: string; source_id: string | null; linked_at: number }>();
    return results.map((r) => ({ groupId: r.group_id, sourceId: r.source_id, at: r.linked_at }));
  }

  async events(profileId: string, q: EventQuery): Promise<EventRecord[]> {
    const cmp = q.order === "desc" ? "<" : ">";
    const { results } = await this.session
      .prepare(
        `SELECT payload FROM profile_events WHERE workspace_id = ?1 AND profile_id = ?2 AND timestamp >= ?3 AND timestamp <= ?4
         AND (?5 IS NULL OR timestamp ${cmp} ?5 OR (timestamp = ?5 AND message_id ${cmp} ?6))
         ORDER BY timestamp ${q.order}, message_id ${q.order} LIMIT ?7`,
      )
      .bind(this.workspaceId, profileId, q.since ?? 0, q.until ?? Number.MAX_SAFE_INTEGER, q.after?.at ?? null, q.after?.messageId ?? null, q.limit)
      .all<{ payload: string }>();
    return results.map((r) => JSON.parse(r.payload) as EventRecord);
  }

  async findAccount(groupId: string): Promise<AccountRow | null> {
    const row = await this.session
      .prepare("SELECT * FROM accounts WHERE workspace_id = ? AND group_id = ?")
      .bind(this.workspaceId, groupId)
      .first<{ traits: string; trait_meta: string; created_at: number; updated_at: number; last_source_id: string | null; last_message_id: string | null }>();
    if (!row) return null;
    return {
      groupId,
      traits: JSON.parse(row.traits),
      traitMeta: JSON.parse(row.trait_meta),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      lastSourceId: row.last_source_id,
      lastMessageId: row.last_message_id,
    };
  }

  async accountMembers(groupId: string) {
    const { results } = await this.session
      .prepare(
        `SELECT l.profile_id, p.user_id, l.linked_at, l.source_id FROM account_links l LEFT JOIN profiles p ON p.workspace_id = l.workspace_id AND p.profile_id = l.profile_id
         WHERE l.workspace_id = ? AND l.group_id = ? ORDER BY l.linked_at, l.profile_id`,
      )
      .bind(this.workspaceId, groupId)
      .all<{ profile_id: string; user_id: string | null; linked_at: number; source_id: string | null }>();
    return results.map((r) => ({ profileId: r.profile_id, userId: r.user_id, linkedAt: r.linked_at, sourceId: r.source_id }));
  }

  bookmark(): string | null {
    return this.session.getBookmark();
  }
}

function toCore(row: ProfileDbRow): ProfileCore {
  return {
    profileId: row.profile_id,
    userId: row.user_id,
    email: row.email,
    phone: row.phone,
    firstName: row.first_name,
    lastName: row.last_name,
    traits: JSON.parse(row.traits),
    traitMeta: JSON.parse(row.trait_meta),
    computedTraits: JSON.parse(row.computed_traits),
    segments: JSON.parse(row.segments),
    consent: JSON.parse(row.consent),
    createdAt: row.created_at,
    firstSeenAt: row.first_seen_at,
    lastSeenAt: row.last_seen_at,
    updatedAt: row.updated_at,
    lastSourceId: row.last_source_id,
    lastMessageId: row.last_message_id,
  };
}
