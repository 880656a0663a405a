import type { CrossShardPairs } from "../../../durable-objects/match-operations";
import { chunk } from "../../lib/chunks";
import type { AnsweredEntry } from "../blocks";
import { MAX_BLOCK, type MatchCandidate } from "../suggest";
import type { GraphShards } from "./graph-shards";
import { handOverKeys } from "./handover-saga";
import type { IdentifierIndex } from "./identifier-index";

/** Candidates scored per profile, so one profile's cost stays bounded (as within one graph). */
const MAX_CANDIDATES = 50;

/** A profile that gained a blocking key on its shard, with its blocks (`matchBlocks` of its event's assignment, at `version`) and the event's time. */
export interface MatchLead {
  profileId: string;
  blocks: string[];
  version: number;
  at: number;
}

export interface CrossShardOutcome {
  /** Pairs on two shards that were scored. */
  pairs: number;
  reviews: number;
  /** Pairs the workspace auto-merges: brought onto one shard and matched there. */
  broughtTogether: number;
}

/**
 * Profiles per call for features, and profiles scored per call (each with up
 * to 50 candidates' features): calls stay a few megabytes whatever a batch holds.
 */
const FEATURES_PER_CALL = 1_000;
const PROFILES_PER_SCORING = 100;

const profileKey = (id: string) => `profile_id:${id}`;

/**
 * Probabilistic matching between profiles on different graph shards. Each
 * shard matches a profile that gained a blocking key with the profiles it
 * holds itself; this finds the ones elsewhere:
 *
 * 1. the leads join the workspace's match blocks, kept in the identifier
 *    index, which answer every profile in the same blocks wherever it lives;
 * 2. the index says which shard holds each, and the candidates on another
 *    shard than their lead are asked for their match features;
 * 3. each pair is scored on the shard holding the first of its two profile
 *    ids in order, so one shard decides each pair whichever of the two gained
 *    the key: the review is queued there, once;
 * 4. a pair the workspace would auto-merge is brought onto that shard (the
 *    other person is handed over) and matched again there, where the guards
 *    decide it as one graph would.
 */
export async function matchAcrossShards(
  shards: GraphShards,
  index: IdentifierIndex,
  leads: MatchLead[],
  { featuresPerCall = FEATURES_PER_CALL, profilesPerScoring = PROFILES_PER_SCORING } = {},
): Promise<CrossShardOutcome> {
  const outcome: CrossShardOutcome = { pairs: 0, reviews: 0, broughtTogether: 0 };
  const byLead = new Map<string, MatchLead>();
  for (const lead of leads) byLead.set(lead.profileId, lead);
  if (byLead.size === 0) return outcome;
  const blocks = await index.joinBlocks(
    [...byLead.values()].flatMap((lead) => lead.blocks.map((block): AnsweredEntry => [block, lead.profileId, lead.version])),
    MAX_BLOCK,
  );
  const candidatesOf = new Map<string, string[]>();
  for (const lead of byLead.values()) {
    const members = new Set(lead.blocks.flatMap((block) => blocks.get(block) ?? []));
    members.delete(lead.profileId);
    if (members.size > 0) candidatesOf.set(lead.profileId, [...members].sort().slice(0, MAX_CANDIDATES));
  }
  if (candidatesOf.size === 0) return outcome;
  const ids = new Set([...candidatesOf.keys(), ...[...candidatesOf.values()].flat()]);
  const placed = await index.locate([...ids].map(profileKey));
  const shardOf = (id: string) => placed.get(profileKey(id))?.shard;

  const asked = new Map<number, Set<string>>();
  const ask = (id: string, shard: number) => {
    let set = asked.get(shard);
    if (!set) asked.set(shard, (set = new Set()));
    set.add(id);
  };
  for (const [lead, candidates] of candidatesOf) {
    const home = shardOf(lead);
    if (home === undefined) continue;
    for (const candidate of candidates) {
      const there = shardOf(candidate);
      if (there === undefined || there === home) continue;
      ask(lead, home);
      ask(candidate, there);
    }
  }
  if (asked.size === 0) return outcome;
  const features = new Map<string, { shard: number; candidate: MatchCandidate }>();
  await Promise.all(
    [...asked].map(async ([shard, set]) => {
      for (const part of chunk([...set], featuresPerCall)) {
        for (const { asked: id, candidate } of await shards.shard(shard).matchFeatures(part)) features.set(id, { shard, candidate });
      }
    }),
  );

  const scoring = new Map<number, Map<string, { at: number; others: Map<string, MatchCandidate> }>>();
  for (const [lead, candidates] of candidatesOf) {
    const a = features.get(lead);
    if (!a) continue;
    for (const candidate of candidates) {
      const b = features.get(candidate);
      if (!b || b.shard === a.shard || a.candidate.profileId === b.candidate.profileId) continue;
      const [own, other] = a.candidate.profileId < b.candidate.profileId ? [a, b] : [b, a];
      let onShard = scoring.get(own.shard);
      if (!onShard) scoring.set(own.shard, (onShard = new Map()));
      let entry = onShard.get(own.candidate.profileId);
      if (!entry) onShard.set(own.candidate.profileId, (entry = { at: byLead.get(lead)!.at, others: new Map() }));
      entry.others.set(other.candidate.profileId, other.candidate);
    }
  }

  const shardOfLive = new Map([...features.values()].map(({ shard, candidate }) => [candidate.profileId, shard]));
  await Promise.all(
    [...scoring].map(async ([shard, byProfile]) => {
      const pairs: CrossShardPairs = [...byProfile].map(([profileId, { at, others }]) => ({ profileId, at, others: [...others.values()].slice(0, MAX_CANDIDATES) }));
      outcome.pairs += pairs.reduce((sum, pair) => sum + pair.others.length, 0);
      const bringTogether: { profileId: string; other: string; at: number }[] = [];
      for (const part of chunk(pairs, profilesPerScoring)) {
        const scored = await shards.shard(shard).scoreAcross(part);
        outcome.reviews += scored.reviews;
        bringTogether.push(...scored.bringTogether);
      }
      // One at a time: two pairs can name the same person.
      for (const { profileId, other, at } of bringTogether) {
        const from = shardOfLive.get(other);
        if (from === undefined) continue;
        await handOverKeys(shards, index, from, [profileKey(other)], shard);
        if ((await shards.shard(shard).matchAgain(profileId, at)).merged) outcome.broughtTogether++;
      }
    }),
  );
  return outcome;
}

/**
 * Tells each shard its leads were matched and the index follows the block
 * entries it answered (`settled`), so it stops answering them again
 * (durable-objects/pending-match-leads.ts).
 */
export async function leadsMatched(shards: GraphShards, leads: (MatchLead & { shard: number })[], settled = new Map<number, AnsweredEntry[]>()) {
  // Each lead as answered at its highest version: the shard keeps one made a lead again since.
  const byShard = new Map<number, Map<string, number>>();
  for (const { shard, profileId, version } of leads) {
    let ids = byShard.get(shard);
    if (!ids) byShard.set(shard, (ids = new Map()));
    ids.set(profileId, Math.max(version, ids.get(profileId) ?? 0));
  }
  for (const shard of settled.keys()) if (!byShard.has(shard)) byShard.set(shard, new Map());
  await Promise.all(
    [...byShard].map(async ([shard, ids]) => {
      const idParts = chunk([...ids], FEATURES_PER_CALL);
      const entryParts = chunk(settled.get(shard) ?? [], FEATURES_PER_CALL);
      for (let i = 0; i < Math.max(idParts.length, entryParts.length); i++) await shards.shard(shard).leadsMatched(idParts[i] ?? [], entryParts[i] ?? []);
    }),
  );
}
