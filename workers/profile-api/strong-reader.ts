import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import type { ShardedProfileReads } from "../identity/sharding/profile-reads";
import type { ProfileRow } from "../profiles/write-through";
import type { EventQuery, ProfileCore, ProfileReader } from "./reader";

/** Where strong reads go: the workspace's identity object, or, with several graph shards, the shards through the identifier index. */
export type StrongGraph = DurableObjectStub<IdentityGraphShard> | ShardedProfileReads;

/**
 * `?consistency=strong`: reads the workspace's identity object, the single
 * writer, so the answer includes every event it has applied, written through
 * to D1 or not. Slower than D1 and served from one place; for reads that must
 * not miss a write. The profile comes with its consent per category, as the
 * object holds it now (a D1 row carries the same in `profiles.consent`).
 */
export class StrongProfileReader implements ProfileReader {
  private readonly rows = new Map<string, ProfileRow>();

  constructor(private readonly graph: StrongGraph) {}

  async findUser(type: string, value: string): Promise<ProfileCore | null> {
    const row = (await this.graph.profileByKey(`${type}:${value}`)) as ProfileRow | null;
    if (!row) return null;
    this.rows.set(row.profileId, row);
    const { identifiers: _i, links: _l, canonicalId: _c, ...core } = row;
    return { ...core, consent: row.consent ?? {} };
  }

  async identifiers(profileId: string) {
    return (await this.row(profileId))?.identifiers ?? [];
  }

  async links(profileId: string) {
    return (await this.row(profileId))?.links ?? [];
  }

  async events(profileId: string, query: EventQuery) {
    return this.graph.profileEvents(profileId, query);
  }

  async findAccount(groupId: string) {
    return this.graph.account(groupId);
  }

  async accountMembers(groupId: string) {
    return this.graph.accountMembers(groupId);
  }

  bookmark(): string | null {
    return null;
  }

  private async row(profileId: string): Promise<ProfileRow | null> {
    return this.rows.get(profileId) ?? ((await this.graph.profileByKey(`profile_id:${profileId}`)) as ProfileRow | null);
  }
}
