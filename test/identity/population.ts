import type { PopulationEvent } from "../../bench/identity/population.mjs";
import { applyEventWithFeatures } from "../../workers/identity/apply";
import { extractIdentifiers, previousUserId } from "../../workers/identity/extract";
import { featuresFromEvent } from "../../workers/identity/features";
import type { IdentityGraph } from "../../workers/identity/graph";
import { DEFAULT_IDENTITY_SETTINGS, type IdentitySettings } from "../../workers/identity/settings";
import { identifierKey } from "../../workers/identity/types";
import type { QueuedEvent } from "../../workers/intake/envelope";

/** One event of the benchmark's population as the object applies it (graph-changes.ts): identifiers, an alias's previous id, features. */
export function applyPopulationEvent(graph: IdentityGraph, raw: PopulationEvent, settings: IdentitySettings = DEFAULT_IDENTITY_SETTINGS) {
  const event = raw as unknown as QueuedEvent;
  const { identifiers } = extractIdentifiers(event, settings);
  const previous = previousUserId(event, settings);
  if (previous && graph.index.has(identifierKey(previous))) identifiers.push(previous);
  applyEventWithFeatures(graph, settings, { messageId: raw.messageId, at: Date.parse(raw.timestamp), identifiers, features: featuresFromEvent(event, identifiers) });
}
