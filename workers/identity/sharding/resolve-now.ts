import type { IdentityGraphShard } from "../../../durable-objects/identity-graph";
import type { QueuedEvent } from "../../intake/envelope";
import { shardStub } from "./graph-shards";
import { IdentifierIndex } from "./identifier-index";
import { routeBatch } from "./route-batch";

export type ResolvedNow = Awaited<ReturnType<IdentityGraphShard["flushedProfile"]>>;

/** Shards a synchronous call follows a person to when they moved between its resolution and its write-through. */
const MAX_FOLLOWS = 3;

/**
 * `resolveNow` over several graph shards, for synchronous tracking: the event
 * is resolved through the router, as the queue consumer resolves it (so it
 * lands on the shard holding its people, bringing them together first if it
 * must), then the shard the index places the answered profile on writes
 * through and answers that profile's row and the D1 bookmark after the write.
 *
 * The consumer resolves the same event from the queue too; resolution skips
 * an event already applied, so whichever comes second changes nothing.
 */
export async function resolveNowOnShards(env: Pick<Env, "IDENTITY" | "IDENTIFIER_INDEX">, workspaceId: string, count: number, event: QueuedEvent, sources: Record<string, string>): Promise<ResolvedNow> {
  const index = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
  // As the consumer's identity processor resolves it.
  const [assignment] = await routeBatch(env, workspaceId, count, [event], sources);
  const profileId = assignment?.profileId;
  // No profile to show (the event names no one): the same answer as when the synchronous step fails.
  if (!profileId) return { bookmark: null, profile: null };

  // The router placed the profile id on the shard that resolved the event; a hand-over since then moved it with the person.
  const key = `profile_id:${profileId}`;
  let answer: ResolvedNow = { bookmark: null, profile: null };
  let asked: number | undefined;
  for (let follow = 0; follow < MAX_FOLLOWS; follow++) {
    const shard = await index.shardOf(key);
    if (shard === null || shard === asked) break;
    // A write-through is not a read: it is sent once, as `resolveNow` is. A failure leaves the event to the queue consumer.
    answer = await shardStub<"flushedProfile">(env.IDENTITY, workspaceId, shard, []).flushedProfile(profileId);
    if (answer.profile) break;
    asked = shard;
  }
  return answer;
}
