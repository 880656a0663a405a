import type { IdentityGraph } from "./graph";
import { blockingKeys } from "./probabilistic";

/**
 * Keeps each cluster in the blocks of the keys its match features give now.
 * Features keep only the latest name and address and the newest emails and
 * phones, so keys come and go. An entry for a key the cluster no longer gives
 * is only a wasted comparison, since pairs are scored on current features,
 * but the index would grow with every change of name and never shrink. A
 * merge hands the absorbed clusters' entries to the survivor, so their leads
 * stay with it and nothing forwarded is left to resolve.
 */

/** A block entry: [blocking key, cluster id]. */
export type BlockEntry = [string, string];

/**
 * A block entry, whether the cluster is in that block now, and the version of
 * that word (a graph shard's block clock, which a hand-over carries forward):
 * what the match blocks other graph shards share must say of it. Two words on
 * one entry can reach the identifier index in either order; the higher
 * version stands.
 */
export type BlockMembership = [block: string, clusterId: string, member: boolean, version: number];

/** A block entry as answered at a version: what a confirmation names, so a change made after that answer still waits. */
export type AnsweredEntry = [block: string, clusterId: string, version: number];

/** Takes the cluster out of the blocks of keys not in `held` (the keys its features give now); answers the entries taken out. */
export function leaveStaleBlocks(graph: IdentityGraph, clusterId: string, held: string[]): BlockEntry[] {
  return graph.blocks.leave(clusterId, new Set(held)).map((key): BlockEntry => [key, clusterId]);
}

/**
 * After a merge, once the survivor holds the merged features: the absorbed
 * clusters leave every block; the survivor enters theirs whose keys its merged
 * features give, and leaves its own whose keys they no longer give (the
 * latest name wins, lists are capped). It joins no block neither side was
 * in, so the merge brings no new comparison. Answers every entry taken out or
 * put in.
 */
export function mergeBlocks(graph: IdentityGraph, survivorId: string, absorbedIds: string[]): BlockEntry[] {
  const features = graph.features.get(survivorId);
  const held = new Set(features ? blockingKeys(features) : []);
  const changed: BlockEntry[] = [];
  const takenOver = new Set<string>();
  for (const id of absorbedIds) {
    for (const key of graph.blocks.leave(id)) {
      changed.push([key, id]);
      if (held.has(key)) takenOver.add(key);
    }
  }
  changed.push(...leaveStaleBlocks(graph, survivorId, [...held]));
  if (takenOver.size > 0) for (const key of graph.blocks.enter(survivorId, [...takenOver])) changed.push([key, survivorId]);
  return changed;
}

/** Each entry once, with whether its cluster is in that block now, at `version`. */
export function membershipOf(graph: IdentityGraph, entries: BlockEntry[], version: number): BlockMembership[] {
  const keysOf = new Map<string, Set<string>>();
  const seen = new Set<string>();
  const out: BlockMembership[] = [];
  for (const [key, clusterId] of entries) {
    const entry = `${key}\u0000${clusterId}`;
    if (seen.has(entry)) continue;
    seen.add(entry);
    let keys = keysOf.get(clusterId);
    if (!keys) keysOf.set(clusterId, (keys = new Set(graph.blocks.keysOf(clusterId))));
    out.push([key, clusterId, keys.has(key), version]);
  }
  return out;
}
