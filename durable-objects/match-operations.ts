import { z } from "zod";
import { type BlockMembership, membershipOf } from "../workers/identity/blocks";
import { hasMatchableFeatures } from "../workers/identity/features";
import { featuresSchema } from "../workers/identity/snapshot";
import { type MatchCandidate, suggestAcross, suggestMatches } from "../workers/identity/suggest";
import type { GraphChanges } from "./graph-changes";
import type { GraphStore } from "./graph-store";
import type { PendingMatchLeads } from "./pending-match-leads";

/**
 * A graph shard's part in probabilistic matching across graph shards
 * (docs/identity-sharding.md, "Probabilistic matching over shards"): the
 * router asks each shard for the match features of profiles it holds, has
 * each pair scored on one shard, and brings together a pair the workspace
 * would auto-merge, so the guards decide it in one graph.
 */

/** Profiles asked for per call: a batch's leads and their candidates. */
const MAX_PROFILES = 5_000;

const idsSchema = z.array(z.string().min(1).max(128)).max(MAX_PROFILES);

const pairsSchema = z
  .array(
    z.object({
      profileId: z.string().min(1).max(128),
      /** When the profile gained the key: the time a review is queued at, as within one graph. */
      at: z.number().finite(),
      others: z.array(z.object({ profileId: z.string().min(1).max(128), features: featuresSchema })).max(50),
    }),
  )
  .max(MAX_PROFILES);

export type CrossShardPairs = z.infer<typeof pairsSchema>;

/** The live profile each asked id is (followed through merges) with its match features, for those held here with features worth matching. */
export function matchFeatures(graphs: GraphStore, profileIds: unknown): { asked: string; candidate: MatchCandidate }[] {
  const ids = idsSchema.parse(profileIds);
  const graph = graphs.graph();
  const out: { asked: string; candidate: MatchCandidate }[] = [];
  for (const asked of ids) {
    const live = graph.liveIdOf(asked);
    if (live === null) continue;
    const features = graph.features.get(live);
    if (hasMatchableFeatures(features)) out.push({ asked, candidate: { profileId: live, features: features! } });
  }
  return out;
}

/**
 * Scores each profile held here against profiles other shards hold, in one
 * transaction: reviews are queued here. Answers the pairs to bring together
 * first (the workspace would auto-merge them) and how many reviews were queued.
 */
export function scoreAcross(graphs: GraphStore, input: unknown): { reviews: number; bringTogether: { profileId: string; other: string; at: number }[] } {
  const pairs = pairsSchema.parse(input);
  return graphs.atomically(() => {
    const graph = graphs.graph();
    const settings = graphs.settings();
    const out = { reviews: 0, bringTogether: [] as { profileId: string; other: string; at: number }[] };
    for (const { profileId, at, others } of pairs) {
      const found = suggestAcross(graph, settings, profileId, others, at);
      out.reviews += found.suggestions.filter((s) => s.review).length;
      for (const other of found.bringTogether) out.bringTogether.push({ profileId: graph.resolve(profileId).id, other, at });
    }
    return out;
  });
}

/**
 * Matches a profile again within this shard, once the people it should be
 * scored with were handed over here; an auto-merge moves profile state as any
 * merge does, and the block entries it hands over wait for the index to follow
 * (answered with the profile's next event).
 */
export function matchAgain(graphs: GraphStore, changes: GraphChanges, leads: PendingMatchLeads, profileId: string, at: number): { merged: boolean } {
  z.string().min(1).max(128).parse(profileId);
  z.number().finite().parse(at);
  return graphs.atomically(() => {
    const graph = graphs.graph();
    if (!graph.clusters.has(profileId)) return { merged: false };
    const suggestions = changes.withMerges(() => suggestMatches(graph, graphs.settings(), graph.resolve(profileId).id, at));
    const changed = suggestions.flatMap((s) => s.blocksChanged ?? []);
    if (changed.length) leads.addBlockChanges(changed, leads.stamp());
    return { merged: suggestions.some((s) => s.merge) };
  });
}

/** Block entries per call: a batch's changed entries on one shard. */
const blockEntriesSchema = z.array(z.tuple([z.string().min(1).max(1_024), z.string().min(1).max(128), z.number().int().min(0)])).max(MAX_PROFILES);

/** Leads confirmed per call: each `[profileId, version]` as answered. */
const confirmedLeadsSchema = z.array(z.tuple([z.string().min(1).max(128), z.number().int().min(0)])).max(MAX_PROFILES);

/**
 * The router matched these leads across shards, and the identifier index
 * follows these block entries (`blockUpdates`): none is answered again,
 * unless it was made a lead again or changed after the version confirmed.
 * Answers how many waiting leads went.
 */
export function leadsMatched(graphs: GraphStore, leads: PendingMatchLeads, confirmed: unknown, settled: unknown = []): number {
  const versions = new Map<string, number>();
  for (const [id, version] of confirmedLeadsSchema.parse(confirmed)) versions.set(id, Math.max(version, versions.get(id) ?? 0));
  const entries = blockEntriesSchema.parse(settled);
  return graphs.atomically(() => {
    const graph = graphs.graph();
    return leads.matched(versions, (id) => graph.liveIdOf(id), entries);
  });
}

/**
 * Every block entry waiting for the identifier index to follow, with whether
 * its profile is in that block here now: what an erasure left (the erased
 * email's handle under another profile that had it) and any update whose
 * confirmation never came. Confirmed with `leadsMatched` once the index follows.
 */
export function blockChangesWaiting(graphs: GraphStore, leads: PendingMatchLeads): BlockMembership[] {
  const graph = graphs.graph();
  const entries = [...leads.waitingBlocks((id) => graph.liveIdOf(id)).values()].flat();
  return entries.length ? membershipOf(graph, entries, leads.stamp()) : [];
}
