import { type BlockEntry, leaveStaleBlocks } from "./blocks";
import { hasMatchableFeatures, mergeFeatures } from "./features";
import type { IdentityGraph } from "./graph";
import { blockingKeys, type ProfileFeatures, sameBlockingFields } from "./probabilistic";
import { applyEvent, type ResolveInput, type ResolveResult } from "./resolve";
import type { IdentitySettings } from "./settings";
import { type Suggestion, suggestMatches } from "./suggest";

export interface EventInput extends ResolveInput {
  features?: Partial<ProfileFeatures>;
}

/**
 * One event, all the way: deterministic resolution, then the profile's match
 * features, then probabilistic matching if the event gave the profile a new
 * blocking key (a new name, email or phone). A key it no longer gives (a
 * name replaced, an email or phone past its list's cap, an address without
 * its postal code) leaves its block, whether or not a new one came. Live
 * processing and log replay both go through here, so a replay makes the same
 * decisions.
 */
export function applyEventWithFeatures(graph: IdentityGraph, settings: IdentitySettings, input: EventInput): ResolveResult & { suggestions: Suggestion[]; matchedOn?: string[] } {
  const result = applyEvent(graph, settings, input);
  if (!result.clusterId || !input.features) return { ...result, suggestions: [] };
  const before = graph.features.get(result.clusterId);
  const after = mergeFeatures(before, heldOnly(input.features, result));
  graph.features.set(result.clusterId, after);
  if (before && sameBlockingFields(before, after)) return { ...result, suggestions: [] };
  const known = new Set(before ? blockingKeys(before) : []);
  const blocks = blockingKeys(after);
  const held = new Set(blocks);
  const left = [...known].some((key) => !held.has(key)) ? leaveStaleBlocks(graph, result.clusterId, blocks) : [];
  const changed = withBlocksChanged(result, left);
  if (!blocks.some((key) => !known.has(key)) || !hasMatchableFeatures(after)) return { ...changed, suggestions: [] };
  const suggestions = suggestMatches(graph, settings, result.clusterId, input.at);
  // `matchedOn`: the blocks searched, for matching with the people other graph shards hold.
  return { ...withBlocksChanged(changed, suggestions.flatMap((s) => s.blocksChanged ?? [])), suggestions, matchedOn: blocks };
}

/** The result with these block entries added to those it changed already, in the order they changed. */
function withBlocksChanged<R extends ResolveResult>(result: R, entries: BlockEntry[]): R {
  return entries.length === 0 ? result : { ...result, blocksChanged: [...(result.blocksChanged ?? []), ...entries] };
}

/**
 * An email or phone the guards dropped from the event is someone else's (a
 * household line, a shared inbox): that decision is made, and must not come
 * back as a match suggestion between the two.
 */
function heldOnly(features: Partial<ProfileFeatures>, result: ResolveResult): Partial<ProfileFeatures> {
  if (result.dropped.length === 0) return features;
  const dropped = new Set(result.dropped.map((conflict) => conflict.dropped));
  return {
    ...features,
    ...(features.emails ? { emails: features.emails.filter((value) => !dropped.has(`email:${value}`)) } : {}),
    ...(features.phones ? { phones: features.phones.filter((value) => !dropped.has(`phone:${value}`)) } : {}),
  };
}
