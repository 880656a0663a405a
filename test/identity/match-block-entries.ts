import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { IdentifierIndexShard } from "../../durable-objects/identifier-index";
import { INDEX_SHARDS, indexObjectName, indexShardOf } from "../../workers/identity/sharding/identifier-index";

/** Every match block member of a workspace, over its index objects, as `block profileId`, sorted; checks each block is on the object its key hashes to. */
export async function matchBlockEntries(workspaceId: string): Promise<string[]> {
  const all: string[] = [];
  for (let n = 0; n < INDEX_SHARDS; n++) {
    const rows = await runInDurableObject(env.IDENTIFIER_INDEX.getByName(indexObjectName(workspaceId, n)), (_o: IdentifierIndexShard, state) =>
      state.storage.sql.exec<{ block: string; profile_id: string }>("SELECT block, profile_id FROM match_blocks WHERE member = 1").toArray(),
    );
    for (const row of rows) {
      expect(indexShardOf(row.block), row.block).toBe(n);
      all.push(`${row.block} ${row.profile_id}`);
    }
  }
  return all.sort();
}
