import type { EventAssignment } from "../../../durable-objects/identity-graph";
import type { QueuedEvent } from "../../intake/envelope";
import { identifierKeysOf } from "../extract";
import type { IdentitySettings } from "../settings";
import { GraphShards } from "./graph-shards";
import { IdentifierIndex } from "./identifier-index";
import { ShardRouter } from "./router";

/** Keys placed in the index per batch while it is filled from shard 0: one call per index object, well under their limit. */
const FILL_PAGE = 5_000;

/**
 * Resolves a workspace's events over `count` graph shards. Until the
 * identifier index holds every key shard 0 had before the workspace was
 * spread (a workspace that lived on one object), events stay on shard 0 and
 * each batch places a page of shard 0's keys, with the keys of its own
 * events, so that no identifier already known is ever taken for a new one.
 * Once the index is filled, the router spreads new people over the shards.
 */
export async function routeBatch(env: Pick<Env, "IDENTITY" | "IDENTIFIER_INDEX">, workspaceId: string, count: number, events: QueuedEvent[], sources: Record<string, string>): Promise<EventAssignment[]> {
  const shards = new GraphShards(env.IDENTITY, workspaceId);
  const index = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
  // Shard 0 keeps the workspace's identity settings: identifiers are extracted here as the shards extract them.
  const { settings, indexFilled } = await shards.shard(0).routingState();
  if (indexFilled) return new ShardRouter(shards, index, count, settings).resolve(events, sources);
  return resolveWhileFilling(shards, index, settings, events, sources);
}

async function resolveWhileFilling(shards: GraphShards, index: IdentifierIndex, settings: IdentitySettings, events: QueuedEvent[], sources: Record<string, string>) {
  const shard0 = shards.shard(0);
  const answers = await shard0.resolveEvents(events, { sources, shard: 0 });
  // What this batch added is placed now, whatever the page has reached; an extra key placed on shard 0 holds no one.
  const keys = new Set(events.flatMap((event) => identifierKeysOf(event, settings)));
  for (const { profileId } of answers) if (profileId) keys.add(`profile_id:${profileId}`);
  const page = await shard0.placementPage(FILL_PAGE);
  for (const [key] of page.keys) keys.add(key);
  await index.claim(keys, 0);
  const quarantined = [...answers.flatMap((answer) => answer.quarantined ?? []), ...page.keys.filter(([, q]) => q).map(([key]) => key)];
  if (quarantined.length > 0) await index.setQuarantined(quarantined, true);
  await shard0.placementsPlaced(page.next);
  return answers;
}
