import type { IdentityGraphShard } from "../../../durable-objects/identity-graph";
import { createLogger } from "../../lib/logger";
import type { ReviewItem } from "../graph";
import { clustersOfMerge } from "../graph-collections";
import { everyShard } from "./fan-out";
import { GraphShards, ShardStubs } from "./graph-shards";
import { handOverKeys } from "./handover-saga";
import type { IdentifierIndex } from "./identifier-index";
import { settleWaitingBlocks } from "./match-block-updates";
import { decodePosition, decodePositions, encodePositions } from "./review-cursor";

type Methods = "reviews" | "reviewQueue" | "reviewCopy" | "merge" | "mergeCopy" | "blockChangesWaiting" | "leadsMatched" | "approveReview" | "rejectReview" | "unmerge" | "splitIdentifiers";

/** What the identity admin routes call on a graph shard, typed per method so each decision keeps its own answer. */
type DecisionStub = { [M in Methods]: (...args: Parameters<IdentityGraphShard[M]>) => Promise<Awaited<ReturnType<IdentityGraphShard[M]>>> };


/**
 * The reads, and confirming block entries the index follows: safe to send twice. Decisions are sent once: an approval or an
 * unmerge that may already have been applied must not be sent again blindly.
 */
const READS = ["reviews", "reviewQueue", "reviewCopy", "merge", "mergeCopy", "blockChangesWaiting", "leadsMatched"] as const;

/** A decision a graph refused, as the graph answers it. */
export interface Refusal {
  ok: false;
  code: "NOT_FOUND" | "CONFLICT";
  detail: string;
}
type Decided = { ok: true } | Refusal;
type QueueEntry = Awaited<ReturnType<IdentityGraphShard["reviewQueue"]>>["reviews"][number];

const refuse = (code: Refusal["code"], detail: string): Refusal => ({ ok: false, code, detail });

/**
 * Rounds of finding and gathering a decision may take. Gathering finishes
 * every move it starts, so a second round is needed only when an event's
 * hand-over moved one of the people on meanwhile.
 */
const MAX_ROUNDS = 4;
const pause = (round: number) => new Promise((resolve) => setTimeout(resolve, 50 * round));

/** One shard's copy of a review or merge, as far as deciding it goes. */
interface Copy {
  shard: number;
  /** The profiles it names, the one it is decided around first. */
  named: string[];
  /** Those this shard holds. */
  held: string[];
  /** Why it cannot be decided any more (already decided or retracted), or null. */
  settled: string | null;
}

/**
 * The identity review queue and the decisions on it (approve, reject,
 * unmerge, split) over a workspace's graph shards. With one shard every call
 * goes to shard 0 exactly as before there were shards.
 *
 * With several: ids are not routable (a person keeps their ids when they
 * move), so a review or merge is found by asking every shard, and a profile
 * through the identifier index. A decision needs one graph holding every
 * profile it names, as the graph refuses anything less; when they are on
 * several shards they are first handed over, with the router's saga, to the
 * shard holding the first one named. Profile ids an unmerge or split creates
 * are placed in the index, so reads by id find them.
 */
export class ShardedDecisions {
  private readonly stubs: ShardStubs<Methods>;
  private readonly graphShards: GraphShards;

  constructor(
    namespace: DurableObjectNamespace<IdentityGraphShard>,
    private readonly index: IdentifierIndex,
    private readonly workspaceId: string,
    private readonly count: number,
  ) {
    this.graphShards = new GraphShards(namespace, workspaceId);
    this.stubs = new ShardStubs<Methods>(namespace, workspaceId, READS);
  }

  private shard(n: number): DecisionStub {
    return this.stubs.shard(n) as unknown as DecisionStub;
  }

  /**
   * A page of the review queue after the cursor `next`. Over several shards:
   * each shard's queue in its own order, merged by the time a review was
   * queued (`at`), then id; a review copied in two shards is listed by the
   * shard holding the first profile it names (see `reviewQueue`). The cursor
   * holds each shard's position, so a page can end short of `limit`; `next`
   * is null once no shard has more.
   */
  async reviews(status: ReviewItem["status"] | undefined, next: string | undefined, limit: number): Promise<{ reviews: ReviewItem[]; next: string | null }> {
    if (this.count === 1) {
      // The cursor is the queue position of the last review shown, so the object reads only the page asked for.
      const page = await this.shard(0).reviews(status, decodePosition(next), limit);
      return { reviews: page.reviews, next: page.next === null ? null : String(page.next) };
    }
    const start = decodePositions(next);
    const queues = Array.from({ length: this.count }, (_, shard) => ({ shard, position: start.get(shard) ?? 0, buffer: [] as QueueEntry[], more: true }));
    const shown: ReviewItem[] = [];
    const ids = new Set<string>();
    for (;;) {
      // The next head of every shard that may have one is needed to know which comes first.
      await Promise.all(
        queues
          .filter((q) => q.buffer.length === 0 && q.more)
          .map(async (q) => {
            const page = await this.shard(q.shard).reviewQueue(status, q.position, limit);
            q.buffer = page.reviews;
            q.more = page.more;
          }),
      );
      // A copy another shard lists is passed over: its position is taken, nothing shown.
      for (const q of queues) while (q.buffer[0] && !q.buffer[0].listed) q.position = q.buffer.shift()!.position;
      if (queues.some((q) => q.buffer.length === 0 && q.more)) continue;
      if (shown.length === limit) break;
      const head = queues.filter((q) => q.buffer.length > 0).sort((a, b) => queueOrder(a.buffer[0]!.review, b.buffer[0]!.review) || a.shard - b.shard)[0];
      if (!head) break;
      const { review, position } = head.buffer.shift()!;
      head.position = position;
      // Only a copy caught mid-hand-over could be listed twice in one page.
      if (!ids.has(review.id)) shown.push(review);
      ids.add(review.id);
    }
    const more = queues.some((q) => q.buffer.length > 0 || q.more);
    return { reviews: shown, next: more ? encodePositions(new Map(queues.map((q) => [q.shard, q.position]))) : null };
  }

  async approveReview(reviewId: string) {
    const { result, shard } = await this.decideReview(reviewId, (stub) => stub.approveReview(reviewId, Date.now(), this.count > 1));
    if (this.count > 1 && result.ok) await this.settleBlocks(shard);
    // The graph now holds the identifier as shared; the index's mark would still have the router refuse it on every shard.
    const key = result.ok && result.review.kind === "quarantine" ? result.review.identifiers[0] : undefined;
    if (this.count > 1 && key !== undefined) await this.index.setQuarantined([key], false);
    return result;
  }

  async rejectReview(reviewId: string) {
    return (await this.decideReview(reviewId, (stub) => stub.rejectReview(reviewId))).result;
  }

  /** A merge by id. Only a retracted merge can be copied (its parts are different people now): the copy where it was retracted is read. */
  async merge(mergeId: string) {
    if (this.count === 1) return this.shard(0).merge(mergeId);
    const copies = await this.copies((stub) => stub.mergeCopy(mergeId));
    const holding = copies.find(({ copy }) => copy.held.length === clustersOfMerge(copy.merge).length) ?? copies[0];
    return holding?.copy.merge ?? null;
  }

  async unmerge(mergeId: string) {
    if (this.count === 1) return this.shard(0).unmerge(mergeId);
    const find = async () =>
      (await this.copies((stub) => stub.mergeCopy(mergeId))).map(({ shard, copy }) => ({
        shard,
        named: clustersOfMerge(copy.merge),
        held: copy.held,
        settled: copy.merge.retracted ? `merge ${mergeId} was already retracted` : null,
      }));
    const { result, shard } = await this.gatherAndDecide(find, `merge ${mergeId} not found`, (stub) => stub.unmerge(mergeId, Date.now(), true));
    if (result.ok) await Promise.all([this.place(result.restored, shard), this.settleBlocks(shard)]);
    return result;
  }

  /** Splits identifiers out of a profile on the shard the index places the profile on. */
  async split(profileId: string, keys: string[]) {
    if (this.count === 1) return this.shard(0).splitIdentifiers(profileId, keys);
    const key = `profile_id:${profileId}`;
    for (let round = 1; ; round++) {
      const shard = await this.index.shardOf(key);
      if (shard === null) return refuse("NOT_FOUND", `profile ${profileId} not found`);
      const result = await this.shard(shard).splitIdentifiers(profileId, keys, true);
      if (result.ok) {
        await Promise.all([this.place(result.restored, shard), this.settleBlocks(shard)]);
        return result;
      }
      // Not where the index placed it: a hand-over is moving the person, and the index names the target once it is done.
      if (result.code !== "NOT_FOUND" || round >= MAX_ROUNDS) return result;
      await pause(round);
    }
  }

  private async decideReview<R extends Decided>(reviewId: string, decide: (stub: DecisionStub) => Promise<R>) {
    if (this.count === 1) return { result: await decide(this.shard(0)), shard: 0 };
    const find = async () =>
      (await this.copies((stub) => stub.reviewCopy(reviewId))).map(({ shard, copy }) => ({
        shard,
        named: copy.review.clusters,
        held: copy.held,
        settled: copy.review.status === "open" ? null : `review ${reviewId} is already ${copy.review.status}`,
      }));
    return this.gatherAndDecide(find, `review ${reviewId} not found`, decide);
  }

  /**
   * Finds the copies of what is decided, brings the people it names onto one
   * shard, and decides there. Something already decided is refused before
   * anyone is moved. A graph answering NOT_FOUND although every profile was
   * gathered there lost one to an event's hand-over meanwhile: the decision
   * changed nothing (it is one transaction), so it is looked for again.
   */
  private async gatherAndDecide<R extends Decided>(find: () => Promise<Copy[]>, unknown: string, decide: (stub: DecisionStub) => Promise<R>): Promise<{ result: R | Refusal; shard: number }> {
    for (let round = 1; ; round++) {
      const copies = await find();
      if (copies.length === 0) return { result: refuse("NOT_FOUND", unknown), shard: 0 };
      const settled = copies.find((copy) => copy.settled !== null);
      if (settled) return { result: refuse("CONFLICT", settled.settled!), shard: settled.shard };
      const { target, complete } = await this.gather(copies);
      const result = await decide(this.shard(target));
      if (result.ok || result.code !== "NOT_FOUND" || !complete || round >= MAX_ROUNDS) return { result, shard: target };
      await pause(round);
    }
  }

  /**
   * Hands the people a decision names over to one shard: the shard holding
   * the first profile named (a review's first side, a merge's survivor), or
   * the one holding most of them. Answers it, and whether every profile named
   * was held somewhere (an erased person is held nowhere: the graph then
   * refuses the decision, as one graph that erased them would not find it).
   */
  private async gather(copies: Copy[]): Promise<{ target: number; complete: boolean }> {
    const holder = new Map<string, number>();
    for (const copy of copies) for (const id of copy.held) holder.set(id, copy.shard);
    // A review scored across shards is kept only where its first profile is: the other is found through the index.
    const elsewhere = copies[0]!.named.filter((id) => !holder.has(id));
    if (elsewhere.length > 0) for (const [key, { shard }] of await this.index.locate(elsewhere.map((id) => `profile_id:${id}`))) holder.set(key.slice("profile_id:".length), shard);
    const byShard = new Map<number, string[]>();
    for (const [id, shard] of holder) byShard.set(shard, [...(byShard.get(shard) ?? []), id]);
    const named = copies[0]!.named;
    const most = [...byShard].sort((a, b) => b[1].length - a[1].length || a[0] - b[0])[0]?.[0];
    const target = holder.get(named[0] ?? "") ?? most ?? copies[0]!.shard;
    for (const [from, ids] of byShard) {
      if (from !== target) await handOverKeys(this.graphShards, this.index, from, ids.map((id) => `profile_id:${id}`), target);
    }
    return { target, complete: named.every((id) => holder.has(id)) };
  }

  /** Every shard's copy, in shard order. */
  private async copies<T extends object>(read: (stub: DecisionStub) => Promise<T | null>): Promise<{ shard: number; copy: T }[]> {
    const found = await everyShard(this.count, async (shard) => ({ shard, copy: await read(this.shard(shard)) }));
    return found.flatMap(({ shard, copy }) => (copy === null ? [] : [{ shard, copy }]));
  }

  /** Profile ids an unmerge or split created on `shard` are placed there, so reads by id find them. */
  private async place(profileIds: string[], shard: number) {
    if (profileIds.length > 0) await this.index.claim(profileIds.map((id) => `profile_id:${id}`), shard);
  }

  /**
   * A decision changed blocks in one graph (parts an unmerge or split
   * restored start in the merged profile's; an approval hands the absorbed
   * profiles' to the survivor), and the shard keeps those entries waiting: the
   * identifier index follows them now, so people on other shards are matched
   * with these profiles as they are. The decision stands whatever happens
   * here: on a failure the entries stay waiting, answered again with their
   * profiles' next events.
   */
  private async settleBlocks(shard: number) {
    try {
      await settleWaitingBlocks(this.shard(shard), this.index);
    } catch (error) {
      createLogger({ workspaceId: this.workspaceId }).warn("the identifier index's match blocks did not follow a decision yet; the shard answers them again with the profiles' next events", { shard, error: String(error) });
    }
  }

}

/** Queue order across shards: when it was queued, then id. A review without a usable time sorts first. */
function queueOrder(a: ReviewItem, b: ReviewItem): number {
  const at = (review: ReviewItem) => (Number.isFinite(review.at) ? review.at : Number.NEGATIVE_INFINITY);
  const [x, y] = [at(a), at(b)];
  if (x !== y) return x < y ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
