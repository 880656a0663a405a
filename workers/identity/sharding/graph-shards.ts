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

/** What the router calls on a graph shard: the resolution and hand-over RPCs. */
export type GraphShardStub = Pick<
  IdentityGraphShard,
  "resolveEvents" | "getSettings" | "putSettings" | "handOver" | "handOverPart" | "handOverStatus" | "acceptHandOverPart" | "finishHandOver" | "completeHandOver"
>;

/**
 * Every RPC the router sends is safe to send twice: resolution skips events
 * already applied, a hand-over answers the move it already made, accepting a
 * part or finishing writes the same rows again, and completing a completed
 * move does nothing, and the same settings written twice are the same
 * settings. So all of them are retried on a retryable error.
 */
const IDEMPOTENT = ["resolveEvents", "getSettings", "putSettings", "handOver", "handOverPart", "handOverStatus", "acceptHandOverPart", "finishHandOver", "completeHandOver"] as const;

/** The graph shards of one workspace, each reached through a stub that retries as Cloudflare documents. */
export class GraphShards {
  private readonly stubs = new Map<number, GraphShardStub>();

  constructor(
    private readonly namespace: DurableObjectNamespace<IdentityGraphShard>,
    readonly workspaceId: string,
  ) {}

  shard(n: number): GraphShardStub {
    let stub = this.stubs.get(n);
    if (!stub) {
      const name = graphShardName(this.workspaceId, n);
      stub = resilientStub<GraphShardStub>(() => this.namespace.getByName(name) as unknown as GraphShardStub, { object: `IDENTITY:${name}`, idempotent: IDEMPOTENT });
      this.stubs.set(n, stub);
    }
    return stub;
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
