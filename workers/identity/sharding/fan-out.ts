import type { IdentityGraphShard } from "../../../durable-objects/identity-graph";
import { resilientStub } from "../../lib/durable-object-retry";
import { graphShardName } from "./graph-shards";

/**
 * What the workspace-wide features (privacy requests, event retention,
 * audiences) share when a workspace's identity is spread over graph shards:
 * a stub per shard, and calls to every shard at once.
 */

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

/** `call` for shards 0 to `count - 1`, all at once; answers in shard order. */
export function everyShard<T>(count: number, call: (n: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: count }, (_, n) => call(n)));
}

/**
 * Ascending profile id order, as the objects' SQLite orders them (binary
 * collation): ids are ASCII, where UTF-16 and UTF-8 byte order agree. Ids are
 * unique across a workspace's shards (a shard above 0 puts its number in the
 * ids it issues), so one id is a position in every shard's walk at once.
 */
export const byProfileId = <T extends { profileId: string }>(a: T, b: T) => (a.profileId < b.profileId ? -1 : a.profileId > b.profileId ? 1 : 0);
