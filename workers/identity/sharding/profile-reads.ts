import type { IdentityGraphShard } from "../../../durable-objects/identity-graph";
import type { EventRecord } from "../../profiles/event-record";
import { type TraitMeta, wins } from "../../profiles/traits";
import type { AccountRow, ProfileRow } from "../../profiles/write-through";
import { byProfileId, everyShard } from "./fan-out";
import { ShardStubs } from "./graph-shards";
import type { IdentifierIndex } from "./identifier-index";

/** Reads only: safe to send twice. */
const READS = ["profileByKey", "profileEvents", "account", "accountMembers"] as const;
type EventOptions = Parameters<IdentityGraphShard["profileEvents"]>[1];
export type AccountMember = ReturnType<IdentityGraphShard["accountMembers"]>[number];

/**
 * The Profile API's strongly consistent reads over a workspace's graph
 * shards, with the methods and answers of one graph object, so the Profile
 * API's strong reader reads through either (profile-api/strong-reader.ts).
 *
 * - A person lives on one shard: a read by identifier or profile id goes to
 *   the shard the identifier index places the key on (profile ids are placed
 *   too); a key placed nowhere is a person nobody holds, the same null (404)
 *   as one graph answers.
 * - An account is not a person: each shard whose people joined it keeps its
 *   own copy, with the traits those people's `group` calls wrote. Its traits
 *   and members are read from every shard and merged.
 *
 * One instance serves one request: it remembers where it found each profile,
 * so that profile's events and identifiers come from the same shard without
 * asking the index again.
 */
export class ShardedProfileReads {
  private readonly found = new Map<string, number>();
  private readonly stubs: ShardStubs<(typeof READS)[number]>;

  constructor(
    namespace: DurableObjectNamespace<IdentityGraphShard>,
    private readonly index: IdentifierIndex,
    workspaceId: string,
    private readonly count: number,
  ) {
    this.stubs = new ShardStubs(namespace, workspaceId, READS);
  }

  /** The live profile holding `type:value` (or `profile_id:{id}`), read on the shard the index places it on. */
  async profileByKey(key: string): Promise<ProfileRow | null> {
    const n = await this.index.shardOf(key);
    if (n === null) return null;
    const row = await this.shard(n).profileByKey(key);
    if (row) this.found.set(row.profileId, n);
    return row;
  }

  async profileEvents(profileId: string, query: EventOptions): Promise<EventRecord[]> {
    const n = this.found.get(profileId) ?? (await this.index.shardOf(`profile_id:${profileId}`));
    return n === null ? [] : this.shard(n).profileEvents(profileId, query);
  }

  /** The account as every shard's copy of it merged: one graph's row, had all its members been on one shard. */
  async account(groupId: string): Promise<AccountRow | null> {
    const copies = await everyShard(this.count, (n) => this.shard(n).account(groupId));
    return mergeAccountCopies(copies.filter((copy): copy is AccountRow => copy !== null));
  }

  /** Members from every shard, oldest link first as one graph orders them (then by profile id). */
  async accountMembers(groupId: string): Promise<AccountMember[]> {
    const lists = await everyShard(this.count, (n) => this.shard(n).accountMembers(groupId));
    // A person is on one shard; a copy met twice is one caught mid hand-over, and counts once with its first link.
    const byProfile = new Map<string, AccountMember>();
    for (const member of lists.flat()) {
      const seen = byProfile.get(member.profileId);
      if (!seen || member.linkedAt < seen.linkedAt) byProfile.set(member.profileId, member);
    }
    return [...byProfile.values()].sort((a, b) => a.linkedAt - b.linkedAt || byProfileId(a, b));
  }

  private shard(n: number) {
    return this.stubs.shard(n);
  }
}

/**
 * One account row from the shards' copies. Each trait is a unit of last write
 * wins, as within one graph: the copy whose write has the latest time wins it,
 * ties to the larger messageId. Created is the earliest copy's; updated and
 * the last message are the latest copy's.
 */
export function mergeAccountCopies(copies: AccountRow[]): AccountRow | null {
  if (copies.length <= 1) return copies[0] ?? null;
  const winners = new Map<string, { value: unknown; meta: unknown; at: number; messageId: string }>();
  for (const copy of copies) {
    for (const [key, value] of Object.entries(copy.traits)) {
      const meta = copy.traitMeta[key] as TraitMeta | undefined;
      const write = { value, meta, at: meta ? Date.parse(meta.updatedAt) : Number.NEGATIVE_INFINITY, messageId: meta?.messageId ?? "" };
      if (wins(write, winners.get(key))) winners.set(key, write);
    }
  }
  const stamp = (copy: AccountRow) => ({ at: copy.updatedAt, messageId: copy.lastMessageId ?? "" });
  const latest = copies.reduce((best, copy) => (wins(stamp(copy), stamp(best)) ? copy : best));
  const traits: Record<string, unknown> = {};
  const traitMeta: Record<string, unknown> = {};
  // Key order, as one graph reads its traits.
  for (const key of [...winners.keys()].sort()) {
    traits[key] = winners.get(key)!.value;
    traitMeta[key] = winners.get(key)!.meta;
  }
  return {
    groupId: latest.groupId,
    traits,
    traitMeta,
    createdAt: Math.min(...copies.map((copy) => copy.createdAt)),
    updatedAt: latest.updatedAt,
    lastSourceId: latest.lastSourceId,
    lastMessageId: latest.lastMessageId,
  };
}
