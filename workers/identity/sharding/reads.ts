import type { IdentityGraphShard } from "../../../durable-objects/identity-graph";
import { byProfileId, everyShard } from "./fan-out";
import { ShardStubs } from "./graph-shards";
import type { IdentifierIndex } from "./identifier-index";

/** Reads only: safe to send twice. */
const READS = ["listProfiles", "lookup", "profile"] as const;
type Listed = Awaited<ReturnType<IdentityGraphShard["listProfiles"]>>;

/**
 * The admin reads of a workspace's identity over its graph shards: a read by
 * identifier or profile id goes to the shard the identifier index places it
 * on; the listing reads every shard and merges their pages in id order.
 * With one shard, every read goes to shard 0 without asking the index.
 */
export class ShardedReads {
  private readonly stubs: ShardStubs<(typeof READS)[number]>;

  constructor(
    namespace: DurableObjectNamespace<IdentityGraphShard>,
    private readonly index: IdentifierIndex,
    workspaceId: string,
    private readonly count: number,
  ) {
    this.stubs = new ShardStubs(namespace, workspaceId, READS);
  }

  private shard(n: number) {
    return this.stubs.shard(n);
  }

  /** With one shard everyone is on shard 0, and the index is not asked. */
  private async shardOf(key: string): Promise<number | null> {
    return this.count === 1 ? 0 : this.index.shardOf(key);
  }

  /** The live profile holding an identifier key, following merges. */
  async lookup(key: string) {
    const n = await this.shardOf(key);
    return n === null ? null : this.shard(n).lookup(key);
  }

  /** A profile by id; an absorbed id answers its survivor's view, as on one graph. */
  async profile(profileId: string) {
    const n = await this.shardOf(`profile_id:${profileId}`);
    return n === null ? null : this.shard(n).profile(profileId);
  }

  /**
   * Live profiles in id order after `after`, merged from every shard's page
   * of the same size: the first `limit` of them are the first `limit` overall.
   */
  async listProfiles(after: string | null, limit: number): Promise<Listed> {
    const pages = await everyShard(this.count, (n) => this.shard(n).listProfiles(after, limit));
    const profiles = pages.flatMap((page) => page.profiles).sort(byProfileId);
    const more = profiles.length > limit || pages.some((page) => page.next !== null);
    const shown = profiles.slice(0, limit);
    return { total: pages.reduce((sum, page) => sum + page.total, 0), profiles: shown, next: more && shown.length > 0 ? shown.at(-1)!.profileId : null };
  }
}
