import { hasMatchableFeatures, mergeFeatures } from "./features";
import type { IdentityGraph } from "./graph";
import { blockingKeys, type ProfileFeatures } from "./probabilistic";
import { applyEvent, type ResolveInput, type ResolveResult } from "./resolve";
import type { IdentitySettings } from "./settings";
import { type Suggestion, suggestMatches } from "./suggest";

export interface EventInput extends ResolveInput {
  features?: Partial<ProfileFeatures>;
}

/**
 * One event, all the way: deterministic resolution, then the profile's match
 * features, then probabilistic matching if the event gave the profile a new
 * blocking key (a new name, email or phone). Live processing and log replay
 * both go through here, so a replay makes the same decisions.
 */
export function applyEventWithFeatures(graph: IdentityGraph, settings: IdentitySettings, input: EventInput): ResolveResult & { suggestions: Suggestion[] } {
  const result = applyEvent(graph, settings, input);
  if (!result.clusterId || !input.features) return { ...result, suggestions: [] };
  const before = graph.features.get(result.clusterId);
  const after = mergeFeatures(before, input.features);
  graph.features.set(result.clusterId, after);
  const known = new Set(before ? blockingKeys(before) : []);
  const gainedKey = blockingKeys(after).some((key) => !known.has(key));
  const suggestions = gainedKey && hasMatchableFeatures(after) ? suggestMatches(graph, settings, result.clusterId, input.at) : [];
  return { ...result, suggestions };
}
