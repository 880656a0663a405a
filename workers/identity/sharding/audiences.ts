import type { AudienceSyncPage, IdentityGraphShard } from "../../../durable-objects/identity-graph";
import { graphShardCount } from "../../env";
import type { Audience } from "../../segments/catalog";
import { canonical } from "../../segments/time";
import { backfillOverShards } from "./audience-backfill";
import { byProfileId, everyShard } from "./fan-out";
import { type ShardStub, ShardStubs } from "./graph-shards";

export type AudienceStub = ShardStub<
  "putAudience" | "removeAudience" | "listAudiences" | "previewAudience" | "audienceMembers" | "audienceSyncPage" | "backfillAudiences" | "backfillAudiencesThrough" | "listProfiles" | "putStatistics"
>;

/**
 * Every one of them is safe to send twice: reads; a definition put or removed
 * again ends as the first put or removal did; a backfill chunk rebuilds the
 * same profiles to the same result; the same statistics again change no one.
 */
const AUDIENCE_CALLS = [
  "putAudience",
  "removeAudience",
  "listAudiences",
  "previewAudience",
  "audienceMembers",
  "audienceSyncPage",
  "backfillAudiences",
  "backfillAudiencesThrough",
  "listProfiles",
  "putStatistics",
] as const;

type PutResult = ReturnType<IdentityGraphShard["putAudience"]>;
type Preview = ReturnType<IdentityGraphShard["previewAudience"]>;
type Member = ReturnType<IdentityGraphShard["audienceMembers"]>[number];

/**
 * Segments and computed traits over a workspace's graph shards. Each shard
 * evaluates the people it holds, so:
 *
 * - definitions are on every shard: a put or a removal goes to all of them,
 *   and the maintenance cron (`repair`) compares every shard with D1;
 * - what is per person is merged: a preview adds up the shards' counts,
 *   members and sync pages merge the shards' pages in profile id order;
 * - statistics are the workspace's (computed from D1 over everyone): every
 *   shard gets the same figures;
 * - a backfill walks every shard in one profile id order (audience-backfill.ts).
 *
 * Profile ids are unique across shards, so the id a page ends on is a position
 * in every shard at once: pages and chunks are cut there, and the cursors stay
 * the profile ids they were with one graph. A person handed over between two
 * pages keeps their id, so they are neither skipped nor repeated.
 *
 * With one shard, each method is the object's own call on shard 0.
 */
export class ShardedAudiences {
  private readonly stubs: ShardStubs<(typeof AUDIENCE_CALLS)[number]>;

  constructor(
    namespace: DurableObjectNamespace<IdentityGraphShard>,
    readonly workspaceId: string,
    readonly count: number,
  ) {
    this.stubs = new ShardStubs(namespace, workspaceId, AUDIENCE_CALLS);
  }

  shard(n: number): AudienceStub {
    return this.stubs.shard(n);
  }

  /**
   * Puts a definition on every shard. They validate it alike, so a refusal is
   * every shard's and is answered as the single graph's; a shard that cannot
   * be reached fails the call (the caller records it; the cron puts it there).
   */
  async putAudience(audience: Audience): Promise<PutResult> {
    const answers = await everyShard(this.count, (n) => this.shard(n).putAudience(audience));
    const refused = answers.find((answer) => !answer.ok);
    if (refused) return refused;
    // `profiles` counts the live profiles the backfill will evaluate: every shard's.
    const first = answers[0]!;
    return first.ok ? { ...first, profiles: answers.reduce((sum, a) => sum + (a.ok ? a.profiles : 0), 0) } : first;
  }

  /** Removes a definition from every shard; true when one of them held it. */
  async removeAudience(audienceId: string): Promise<boolean> {
    const existed = await everyShard(this.count, (n) => this.shard(n).removeAudience(audienceId));
    return existed.some(Boolean);
  }

  /** The definitions shard 0 holds: every shard holds the same, once puts and the cron's repairs have reached them. */
  listAudiences(): Promise<Audience[]> {
    return this.shard(0).listAudiences();
  }

  /**
   * A definition that is not saved, evaluated by every shard over its own
   * people: sizes and totals add up, and the sample is the first `sampleSize`
   * of the shards' samples in profile id order, as one graph's would be (each
   * shard's sample is its own first ones).
   */
  async previewAudience(input: unknown, sampleSize: number): Promise<Preview> {
    if (this.count === 1) return this.shard(0).previewAudience(input, sampleSize);
    const previews = await everyShard(this.count, (n) => this.shard(n).previewAudience(input, sampleSize));
    let size = 0;
    let total = 0;
    const sample: { profileId: string; value: unknown }[] = [];
    for (const preview of previews) {
      if (!preview.ok) return preview;
      size += preview.size;
      total += preview.total;
      sample.push(...preview.sample);
    }
    return { ok: true, size, total, sample: sample.sort(byProfileId).slice(0, sampleSize) };
  }

  /**
   * Members after `after` in profile id order: each shard's first `limit`,
   * merged. The first `limit` of the merge are the first `limit` overall,
   * since no shard has one before its own first `limit` that it did not send.
   */
  async audienceMembers(audienceId: string, after: string | null, limit: number): Promise<Member[]> {
    if (this.count === 1) return this.shard(0).audienceMembers(audienceId, after, limit);
    const pages = await everyShard(this.count, (n) => this.shard(n).audienceMembers(audienceId, after, limit));
    return pages.flat().sort(byProfileId).slice(0, limit);
  }

  /**
   * A destination's initial sync, page by page, merged as `audienceMembers`
   * is. Null when shard 0 does not know the audience, as one graph answered;
   * a shard that lacks a definition shard 0 has has not been given it yet (a
   * put that did not reach it): that is an error, so the job's chunk is tried
   * again once the cron has put it there, rather than a sync that leaves out
   * that shard's members.
   */
  async audienceSyncPage(audienceId: string, after: string | null, limit: number): Promise<AudienceSyncPage | null> {
    if (this.count === 1) return this.shard(0).audienceSyncPage(audienceId, after, limit);
    const pages = await everyShard(this.count, (n) => this.shard(n).audienceSyncPage(audienceId, after, limit));
    if (pages[0] === null) return null;
    const missing = pages.findIndex((page) => page === null);
    if (missing >= 0) throw new Error(`graph shard ${missing} of workspace '${this.workspaceId}' does not hold '${audienceId}' yet; the maintenance cron puts it there`);
    const full = pages as AudienceSyncPage[];
    const envelopes = full.flatMap((page) => page.envelopes).sort(byProfileId);
    const shown = envelopes.slice(0, limit);
    const more = envelopes.length > limit || full.some((page) => page.next !== null);
    const oldest = full.flatMap((page) => (page.oldest === null ? [] : [page.oldest]));
    return {
      envelopes: shown,
      next: more && shown.length > 0 ? shown.at(-1)!.profileId : null,
      total: full.reduce((sum, page) => sum + page.total, 0),
      // The earliest of every page's: no later than the earliest of the members shown, which is all the caller needs of it.
      oldest: oldest.length ? Math.min(...oldest) : null,
    };
  }

  /** One chunk of a backfill job: the next `limit` live profiles of the workspace after `after`, in profile id order, whichever shards hold them. */
  backfillAudiences(after: string | null, limit: number) {
    if (this.count === 1) return this.shard(0).backfillAudiences(after, limit);
    return backfillOverShards(this, after, limit);
  }

  /** The workspace's statistics, the same on every shard; answers how many profiles changed in all. */
  async putStatistics(statistics: Record<string, number>): Promise<number> {
    const changed = await everyShard(this.count, (n) => this.shard(n).putStatistics(statistics));
    return changed.reduce((sum, n) => sum + n, 0);
  }

  /**
   * Brings every shard's definitions to what D1 holds (`wanted`, the
   * workspace's rows): a definition a shard lacks or holds otherwise is put
   * there, one D1 no longer has is removed from the shards holding it.
   * Answers how many definitions were put and removed (each once, however
   * many shards needed it), and the first one that changed on some shard,
   * whose profiles there need a backfill.
   */
  async repair(wanted: Audience[]): Promise<{ put: number; removed: number; redefined: string | null }> {
    const held = await everyShard(this.count, async (n) => new Map((await this.shard(n).listAudiences()).map((audience) => [audience.id, audience])));
    let put = 0;
    let removed = 0;
    let redefined: string | null = null;
    for (const audience of wanted) {
      const stale = held.flatMap((have, n) => {
        const current = have.get(audience.id);
        return current && canonical(current) === canonical(audience) ? [] : [n];
      });
      if (stale.length === 0) continue;
      await Promise.all(stale.map((n) => this.putOn(n, audience)));
      put++;
      const changed = (n: number) => {
        const have = held[n]!.get(audience.id);
        return !have || have.version !== audience.version || canonical(have.definition) !== canonical(audience.definition);
      };
      if (stale.some(changed)) redefined ??= audience.id;
    }
    const keep = new Set(wanted.map((audience) => audience.id));
    const extra = new Set(held.flatMap((have) => [...have.keys()].filter((id) => !keep.has(id))));
    for (const id of extra) {
      await Promise.all(held.map((have, n) => (have.has(id) ? this.shard(n).removeAudience(id) : null)));
      removed++;
    }
    return { put, removed, redefined };
  }

  private async putOn(n: number, audience: Audience) {
    const result = await this.shard(n).putAudience(audience);
    if (!result.ok) throw new Error(`the identity object refused the definition: ${result.errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`);
  }
}

/** The audiences of a workspace's identity, over as many graph shards as the deployment has. */
export function audiencesFor(env: Pick<Env, "IDENTITY">, workspaceId: string): ShardedAudiences {
  return new ShardedAudiences(env.IDENTITY, workspaceId, graphShardCount(env));
}
