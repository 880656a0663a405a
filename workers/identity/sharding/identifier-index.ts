import type { IdentifierIndexShard, IndexPlacement } from "../../../durable-objects/identifier-index";
import { assertBlockEntries, assertBlockLimit, assertBlockUpdates, assertKey, assertProfileIds, assertShard, MAX_KEYS_PER_CALL } from "../../../durable-objects/identifier-index-input";
import type { AnsweredEntry, BlockMembership } from "../blocks";
import { chunk } from "../../lib/chunks";
import { callDurableObject } from "../../lib/durable-object-retry";

export type { IndexPlacement } from "../../../durable-objects/identifier-index";

/**
 * Index objects per workspace. Fixed for good: a key's object is derived from
 * the key alone, so changing this would lose every placement already made.
 */
export const INDEX_SHARDS = 16;

/** FNV-1a, 32 bits, over the UTF-16 code units of `key`: an unsigned integer. */
export function fnv1a(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * A key's hash for choosing among shards: FNV-1a, then murmur3's final mix.
 * Without the mix, FNV-1a modulo a power of two sees only the low bits of each
 * character (a product's low bits depend only on its factors' low bits), so
 * "a" and "q" would always share a shard.
 */
export function shardHash(key: string): number {
  let h = fnv1a(key);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The index object that keeps `key`. Fixed for good once placements exist, like `INDEX_SHARDS`. */
export function indexShardOf(key: string): number {
  return shardHash(key) % INDEX_SHARDS;
}

export function indexObjectName(workspaceId: string, n: number): string {
  return `${workspaceId}/index/${n}`;
}

/**
 * A workspace's identifier index, over its `INDEX_SHARDS` objects. Each method
 * takes any number of keys: they are de-duplicated, grouped by the object that
 * keeps them, sent to the objects in parallel (in calls of at most 10,000 keys)
 * and the answers merged.
 *
 * Every key is checked before any object is called, so a bad key fails the
 * whole call with nothing placed. Past that, a call that spans several
 * objects is atomic per object, not across them: a failure can leave some
 * objects changed and others not, and the caller repeats the call.
 *
 * That repetition, and the retries of `callDurableObject` (a retryable error
 * may come from a call that did reach the object), are safe because every
 * method is idempotent: a claim leaves claimed keys where they are, a repoint
 * already done finds the keys on `to` and changes nothing, marking and
 * releasing twice ends as once. Only the counts answered can differ: a retry
 * of `setQuarantined` or `release` that the first attempt already applied
 * counts nothing for those keys.
 */
export class IdentifierIndex {
  constructor(
    private readonly namespace: DurableObjectNamespace<IdentifierIndexShard>,
    private readonly workspaceId: string,
  ) {}

  /** Where each key lives; keys never claimed are left out. */
  async locate(keys: Iterable<string>): Promise<Map<string, IndexPlacement>> {
    return this.placements(keys, (index, part) => index.locate(part));
  }

  /** The shard one key is placed on; null when it was never placed (nobody holds it). */
  async shardOf(key: string): Promise<number | null> {
    return (await this.locate([key])).get(key)?.shard ?? null;
  }

  /** Claims every unclaimed key for `shard`; answers every key's placement (what was already claimed keeps its shard). */
  async claim(keys: Iterable<string>, shard: number): Promise<Map<string, IndexPlacement>> {
    assertShard(shard);
    return this.placements(keys, (index, part) => index.claim(part, shard));
  }

  /** Keys on `from`, or placed nowhere, go to `to`; answers the keys left on another shard (or on `to` by another move than `moveId`). */
  async repoint(keys: Iterable<string>, from: number, to: number, moveId?: string): Promise<Map<string, IndexPlacement>> {
    assertShard(from, "from");
    assertShard(to, "to");
    return this.placements(keys, (index, part) => index.repoint(part, from, to, moveId));
  }

  /** Marks keys quarantined or clears the mark; keys placed nowhere are ignored. Answers how many changed. */
  async setQuarantined(keys: Iterable<string>, quarantined: boolean): Promise<number> {
    if (typeof quarantined !== "boolean") throw new Error("quarantined must be a boolean");
    const counts = await this.fanOut(keys, (index, part) => index.setQuarantined(part, quarantined));
    return counts.reduce((sum, n) => sum + n, 0);
  }

  /** Forgets keys placed on `from`. Answers how many were forgotten. */
  async release(keys: Iterable<string>, from: number): Promise<number> {
    assertShard(from, "from");
    const counts = await this.fanOut(keys, (index, part) => index.release(part, from));
    return counts.reduce((sum, n) => sum + n, 0);
  }

  /**
   * Joins profiles to match blocks (`[block, profileId, version]`), each block
   * kept by the object its key hashes to; answers each block's members, or
   * null for a block of more than `max`.
   */
  async joinBlocks(entries: AnsweredEntry[], max: number): Promise<Map<string, string[] | null>> {
    assertBlockEntries(entries, null);
    assertBlockLimit(max);
    const answers = await this.spread(entries, ([block]) => block, (index, part) => index.joinBlocks(part, max));
    const out = new Map<string, string[] | null>();
    for (const answer of answers) for (const [block, members] of Object.entries(answer)) out.set(block, members);
    return out;
  }

  /** Brings match blocks in line with the shards' `blockUpdates`, each block in the object its key hashes to. Answers how many words were taken (newer than the word held). */
  async updateBlocks(updates: BlockMembership[]): Promise<number> {
    assertBlockUpdates(updates, null);
    const counts = await this.spread(updates, ([block]) => block, (index, part) => index.updateBlocks(part));
    return counts.reduce((sum, count) => sum + count, 0);
  }

  /** Takes erased profiles out of every match block, in every index object. Answers how many entries went. */
  async forgetProfiles(profileIds: string[]): Promise<number> {
    assertProfileIds(profileIds);
    if (profileIds.length === 0) return 0;
    const counts = await Promise.all(Array.from({ length: INDEX_SHARDS }, (_, n) => this.call(n, (index) => index.forgetProfiles(profileIds))));
    return counts.reduce((sum, count) => sum + count, 0);
  }

  private call<R>(n: number, call: (index: DurableObjectStub<IdentifierIndexShard>) => Promise<R>): Promise<R> {
    const name = indexObjectName(this.workspaceId, n);
    return callDurableObject(() => this.namespace.getByName(name), call, { object: `IDENTIFIER_INDEX:${name}` });
  }

  /** Merges the objects' answers, in the order the keys were first given. */
  private async placements(
    keys: Iterable<string>,
    call: (index: DurableObjectStub<IdentifierIndexShard>, part: string[]) => Promise<Record<string, IndexPlacement>>,
  ): Promise<Map<string, IndexPlacement>> {
    const unique = [...new Set(keys)];
    const answers = await this.fanOut(unique, call);
    const found = new Map<string, IndexPlacement>();
    for (const answer of answers) for (const [key, placement] of Object.entries(answer)) found.set(key, placement);
    const out = new Map<string, IndexPlacement>();
    for (const key of unique) {
      const placement = found.get(key);
      if (placement) out.set(key, placement);
    }
    return out;
  }

  private async fanOut<R>(keys: Iterable<string>, call: (index: DurableObjectStub<IdentifierIndexShard>, part: string[]) => Promise<R>): Promise<R[]> {
    const unique = [...new Set(keys)];
    for (const key of unique) assertKey(key);
    return this.spread(unique, (key) => key, call);
  }

  /** Sends each item to the object its key hashes to, in calls of at most 10,000, all at once. */
  private async spread<T, R>(items: T[], keyOf: (item: T) => string, call: (index: DurableObjectStub<IdentifierIndexShard>, part: T[]) => Promise<R>): Promise<R[]> {
    const groups = new Map<number, T[]>();
    for (const item of items) {
      const n = indexShardOf(keyOf(item));
      const group = groups.get(n);
      if (group) group.push(item);
      else groups.set(n, [item]);
    }
    const calls: Promise<R>[] = [];
    for (const [n, group] of groups) for (const part of chunk(group, MAX_KEYS_PER_CALL)) calls.push(this.call(n, (index) => call(index, part)));
    return Promise.all(calls);
  }
}
