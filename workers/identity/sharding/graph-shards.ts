import type { IdentityGraphShard } from "../../../durable-objects/identity-graph";
import { resilientStub } from "../../lib/durable-object-retry";
import type { IdentitySettings } from "../settings";

/** Most graph shards a workspace may have: a shard number is part of the ids it issues and of index placements. */
export const MAX_GRAPH_SHARDS = 64;

/**
 * A workspace's graph shard `n`: shard 0 is the object a single-shard
 * workspace always had (named by the workspace id), so a workspace that
 * grows shards keeps everything it already holds where it is.
 */
export const graphShardName = (workspaceId: string, shard: number) => (shard === 0 ? workspaceId : `${workspaceId}#${shard}`);

/**
 * A graph shard's methods as the caller sees them over RPC: whatever they
 * return arrives as a promise. Typed from the class itself rather than from
 * `DurableObjectStub`, whose mapping turns `unknown` values (definitions,
 * traits) into `never`.
 */
export type Remote<T> = { [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never };

export type ShardStub<K extends keyof IdentityGraphShard> = Remote<Pick<IdentityGraphShard, K>>;

/**
 * Graph shard `n` of a workspace, through a stub that retries the methods in
 * `idempotent` on a retryable error (each attempt through a new stub) and
 * sends any other method once. Callers list only what is safe to send twice.
 */
export function shardStub<K extends keyof IdentityGraphShard & string>(
  namespace: DurableObjectNamespace<IdentityGraphShard>,
  workspaceId: string,
  n: number,
  idempotent: readonly K[],
): ShardStub<K> {
  const name = graphShardName(workspaceId, n);
  return resilientStub<ShardStub<K>>(() => namespace.getByName(name) as unknown as ShardStub<K>, { object: `IDENTITY:${name}`, idempotent });
}

/** One stub per shard of a workspace, made on first use, offering the methods `K`. */
export class ShardStubs<K extends keyof IdentityGraphShard & string> {
  private readonly stubs = new Map<number, ShardStub<K>>();

  constructor(
    private readonly namespace: DurableObjectNamespace<IdentityGraphShard>,
    readonly workspaceId: string,
    private readonly idempotent: readonly K[],
  ) {}

  shard(n: number): ShardStub<K> {
    let stub = this.stubs.get(n);
    if (!stub) this.stubs.set(n, (stub = shardStub(this.namespace, this.workspaceId, n, this.idempotent)));
    return stub;
  }
}

/**
 * Every RPC the router sends is safe to send twice: resolution skips events
 * already applied, a hand-over answers the move it already made, accepting a
 * part or finishing writes the same rows again, completing a completed move
 * does nothing, the same settings written twice are the same settings, and
 * an index fill position recorded twice is the same position, marks cleared
 * twice are cleared, match
 * features are a read, and a pair scored or matched again is skipped as
 * already suggested. So all of them are retried on a retryable error.
 */
const ROUTER_CALLS = [
  "resolveEvents",
  "getSettings",
  "putSettings",
  "routingState",
  "placementPage",
  "placementsPlaced",
  "handOver",
  "handOverPart",
  "handOverStatus",
  "acceptHandOverPart",
  "finishHandOver",
  "completeHandOver",
  "forgetMovedMarks",
  "matchFeatures",
  "scoreAcross",
  "matchAgain",
  "leadsMatched",
] as const;

export type GraphShardStub = ShardStub<(typeof ROUTER_CALLS)[number]>;

/** The graph shards of one workspace as the router and the hand-over saga reach them. */
export class GraphShards extends ShardStubs<(typeof ROUTER_CALLS)[number]> {
  constructor(namespace: DurableObjectNamespace<IdentityGraphShard>, workspaceId: string) {
    super(namespace, workspaceId, ROUTER_CALLS);
  }
}

/** Writes the settings shard 0 keeps to shards 1 to `count - 1`, so every shard resolves with them. */
export async function copySettingsToShards(namespace: DurableObjectNamespace<IdentityGraphShard>, workspaceId: string, settings: IdentitySettings, count: number) {
  const shards = new GraphShards(namespace, workspaceId);
  await Promise.all(
    Array.from({ length: count - 1 }, async (_, i) => {
      const result = await shards.shard(i + 1).putSettings(settings);
      // Shard 0 accepted this very document: another shard refusing it means the shards run different code.
      if (!result.ok) throw new Error(`graph shard ${i + 1} of ${workspaceId} refused the settings shard 0 accepted`);
    }),
  );
}
