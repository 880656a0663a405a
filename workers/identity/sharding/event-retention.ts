import type { IdentityGraphShard } from "../../../durable-objects/identity-graph";
import { graphShardCount } from "../../env";
import { everyShard } from "./fan-out";
import { shardStub } from "./graph-shards";

/**
 * Event payload retention (the `objectEvents` period) over a workspace's graph
 * shards. Every shard keeps the payloads of the people it holds, so the period
 * and each prune go to all of them; with one shard, that is shard 0 alone, as
 * before sharding.
 *
 * Both calls are safe to send twice: the same period set again is the same
 * period, and a prune repeated finds nothing left past the cutoff (its count
 * then says zero for what the first attempt dropped).
 */

type RetentionEnv = Pick<Env, "IDENTITY">;

const stub = (env: RetentionEnv, workspaceId: string, n: number) => shardStub(env.IDENTITY, workspaceId, n, ["pruneEvents", "setEventRetentionDays"] as const);

/** Drops, on every shard, the payloads of events timestamped before `cutoff`; answers how many in all. */
export async function pruneEventsOnEveryShard(env: RetentionEnv, workspaceId: string, cutoff: number): Promise<number> {
  const dropped = await everyShard(graphShardCount(env), (n) => stub(env, workspaceId, n).pruneEvents(cutoff));
  return dropped.reduce((sum, count) => sum + count, 0);
}

type Told = ReturnType<IdentityGraphShard["setEventRetentionDays"]>;

/**
 * Tells every shard the workspace's period. The shards validate it alike, so
 * one refusal is every shard's: it is answered as the single graph's was.
 * A shard that cannot be reached fails the call; the maintenance cron tells
 * every shard again on its next run.
 */
export async function setEventRetentionOnEveryShard(env: RetentionEnv, workspaceId: string, days: number | null): Promise<Told> {
  const answers = await everyShard(graphShardCount(env), (n) => stub(env, workspaceId, n).setEventRetentionDays(days));
  return answers.find((answer) => !answer.ok) ?? answers[0]!;
}
