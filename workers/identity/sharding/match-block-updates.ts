import { chunk } from "../../lib/chunks";
import type { LeadVersion } from "../../../durable-objects/pending-match-leads";
import type { AnsweredEntry, BlockMembership } from "../blocks";
import type { MatchLead } from "./cross-shard-matching";
import type { IdentifierIndex } from "./identifier-index";

const entryKey = (block: string, profileId: string) => `${block}\u0000${profileId}`;

/**
 * What a batch's answers said of match block entries outside matching
 * (`blockUpdates`: a key a profile no longer gives, a merge handing blocks to
 * the survivor), for the identifier index to follow once the batch is
 * resolved. Each answer is the shard's word on the entry at its version: the
 * latest is kept (a later answer of one call has the same version and comes
 * after), and a lead's blocks (joined as it is matched) take the place of an
 * earlier update of the same entry.
 */
export class MatchBlockUpdates {
  private readonly latest = new Map<string, BlockMembership>();
  /** Every entry each shard answered, at the latest version: confirmed to it once the index follows, so it is not answered again. */
  private readonly answered = new Map<number, Map<string, AnsweredEntry>>();

  /** Whether any shard answered an update. */
  any() {
    return this.answered.size > 0;
  }

  /**
   * A lead answered at `version`: its blocks are joined as it is matched, in
   * place of any update on them answered before it. One answered after it
   * (a higher version, or the same call's later event) stays.
   */
  lead(profileId: string, blocks: string[], version: number) {
    for (const block of blocks) {
      const key = entryKey(block, profileId);
      if ((this.latest.get(key)?.[3] ?? -1) <= version) this.latest.delete(key);
    }
  }

  answer(shard: number, updates: BlockMembership[]) {
    let entries = this.answered.get(shard);
    if (!entries) this.answered.set(shard, (entries = new Map()));
    for (const update of updates) {
      const [block, profileId, , version] = update;
      const key = entryKey(block, profileId);
      if ((this.latest.get(key)?.[3] ?? -1) <= version) this.latest.set(key, update);
      if ((entries.get(key)?.[2] ?? -1) <= version) entries.set(key, [block, profileId, version]);
    }
  }

  /** The updates for the index (`IdentifierIndex.updateBlocks`). */
  updates(): BlockMembership[] {
    return [...this.latest.values()];
  }

  /**
   * The lead without the blocks a later answer took its profile out of: it is
   * matched on what it holds. Shards answer at once, so an answer can arrive
   * after a newer lead; only a leave at the lead's version or above counts
   * (at its version, it came after the lead in the same call, or `lead` would
   * have dropped it).
   */
  current<L extends MatchLead>(lead: L): L {
    const left = (block: string) => {
      const word = this.latest.get(entryKey(block, lead.profileId));
      return word !== undefined && word[2] === false && word[3] >= lead.version;
    };
    return lead.blocks.some(left) ? { ...lead, blocks: lead.blocks.filter((block) => !left(block)) } : lead;
  }

  /** The entries each shard answered, with the version answered, to confirm to it. */
  answeredBy(): Map<number, AnsweredEntry[]> {
    return new Map([...this.answered].map(([shard, entries]) => [shard, [...entries.values()]]));
  }
}

/** A graph shard's calls for the block entries it keeps waiting for the identifier index. */
export interface WaitingBlocks {
  blockChangesWaiting(): Promise<BlockMembership[]>;
  leadsMatched(leads: LeadVersion[], settled: AnsweredEntry[]): Promise<number>;
}

/** Entries confirmed to a shard per call: `leadsMatched` takes at most 5,000. */
const CONFIRMED_PER_CALL = 5_000;

/**
 * Has the identifier index follow every block entry a shard keeps waiting
 * (an erasure's, a decision's, an update whose confirmation never came),
 * then confirms them to the shard, which stops keeping them. A failure
 * anywhere leaves them waiting, to be answered again with their profile's
 * next event or settled by the next call here.
 */
export async function settleWaitingBlocks(shard: WaitingBlocks, index: IdentifierIndex) {
  const updates = await shard.blockChangesWaiting();
  if (updates.length === 0) return;
  await index.updateBlocks(updates);
  for (const part of chunk(updates, CONFIRMED_PER_CALL)) await shard.leadsMatched([], part.map(([block, profileId, , version]): AnsweredEntry => [block, profileId, version]));
}
