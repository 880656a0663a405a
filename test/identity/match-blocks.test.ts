import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IdentifierIndexShard } from "../../durable-objects/identifier-index";
import { LEFT_KEPT_MS } from "../../durable-objects/match-block-table";
import type { AnsweredEntry, BlockMembership } from "../../workers/identity/blocks";
import { IdentifierIndex, indexObjectName, indexShardOf } from "../../workers/identity/sharding/identifier-index";
import { matchBlockEntries as entriesOf } from "./match-block-entries";

/**
 * The match blocks the identifier index keeps for probabilistic matching
 * across graph shards: which profiles share a blocking key, wherever they live.
 */

const workspace = () => `ws-${crypto.randomUUID().slice(0, 8)}`;
const at = (version: number) => (block: string, profileId: string): AnsweredEntry => [block, profileId, version];

describe("match blocks in the identifier index", () => {
  it("answers every profile that joined a block, whichever shard's router joined it, and joining again changes nothing", async () => {
    const workspaceId = workspace();
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    const first = await client.joinBlocks([at(1)("ln:D000:j", "prof_000001"), at(1)("em:janedoe", "prof_000001")], 200);
    expect(Object.fromEntries(first)).toEqual({ "ln:D000:j": ["prof_000001"], "em:janedoe": ["prof_000001"] });
    const second = await client.joinBlocks([at(4)("ln:D000:j", "prof_s2_000003"), at(4)("pc:69003:d", "prof_s2_000003")], 200);
    expect(Object.fromEntries(second)).toEqual({ "ln:D000:j": ["prof_000001", "prof_s2_000003"], "pc:69003:d": ["prof_s2_000003"] });
    await client.joinBlocks([at(4)("ln:D000:j", "prof_s2_000003")], 200);
    expect(await entriesOf(workspaceId)).toEqual(["em:janedoe prof_000001", "ln:D000:j prof_000001", "ln:D000:j prof_s2_000003", "pc:69003:d prof_s2_000003"]);
  });

  it("answers null for a block with more members than the limit: a common name is no lead", async () => {
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspace());
    const many = Array.from({ length: 5 }, (_, i) => at(1)("ln:S530:j", `prof_00000${i}`));
    expect((await client.joinBlocks(many, 5)).get("ln:S530:j")).toHaveLength(5);
    expect(await client.joinBlocks([at(1)("ln:S530:j", "prof_00000x"), at(1)("em:rare", "prof_00000x")], 5)).toEqual(
      new Map<string, string[] | null>([
        ["ln:S530:j", null],
        ["em:rare", ["prof_00000x"]],
      ]),
    );
  });

  it("takes an erased person's profiles out of every block, in every index object, leaving the others", async () => {
    const workspaceId = workspace();
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    const blocks = Array.from({ length: 40 }, (_, i) => `em:local${i}`);
    await client.joinBlocks([...blocks.map((b) => at(1)(b, "prof_erased")), ...blocks.map((b) => at(1)(b, "prof_absorbed")), at(1)("em:local0", "prof_kept")], 200);
    expect(new Set(blocks.map(indexShardOf)).size).toBeGreaterThan(8);
    expect(await client.forgetProfiles(["prof_erased", "prof_absorbed"])).toBe(80);
    expect(await entriesOf(workspaceId)).toEqual(["em:local0 prof_kept"]);
    expect(await client.forgetProfiles(["prof_erased"])).toBe(0);
  });

  it("keeps an erased profile out of every block when a join or an update sent before the erasure lands after it", async () => {
    const workspaceId = workspace();
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    const blocks = Array.from({ length: 20 }, (_, i) => `em:local${i}`);
    await client.joinBlocks([at(1)("em:local0", "prof_erased"), at(1)("em:local0", "prof_kept")], 200);
    await client.forgetProfiles(["prof_erased"]);

    const joined = await client.joinBlocks([...blocks.map((b) => at(9)(b, "prof_erased")), at(9)("em:local1", "prof_new")], 200);
    expect(new Set(blocks.map(indexShardOf)).size).toBeGreaterThan(8);
    expect(joined.get("em:local0")).toEqual(["prof_kept"]);
    expect(joined.get("em:local1")).toEqual(["prof_new"]);
    expect(await client.updateBlocks(blocks.map((b): BlockMembership => [b, "prof_erased", true, 9]))).toBe(0);
    expect(await entriesOf(workspaceId)).toEqual(["em:local0 prof_kept", "em:local1 prof_new"]);
  });

  it("brings blocks in line with the shards' updates, each in the object its block hashes to, and the same updates again change nothing", async () => {
    const workspaceId = workspace();
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    const blocks = Array.from({ length: 20 }, (_, i) => `em:local${i}`);
    await client.joinBlocks([...blocks.map((b) => at(1)(b, "prof_renamed")), at(1)("ln:D000:j", "prof_renamed"), at(1)("ln:D000:j", "prof_kept")], 200);
    const updates: BlockMembership[] = [...blocks.map((b): BlockMembership => [b, "prof_renamed", b !== "em:local0", 2]), ["ln:D000:j", "prof_renamed", false, 2], ["ln:S530:j", "prof_renamed", true, 2]];
    expect(new Set(updates.map(([block]) => indexShardOf(block))).size).toBeGreaterThan(8);
    expect(await client.updateBlocks(updates)).toBe(updates.length);
    const after = await entriesOf(workspaceId);
    expect(after).toEqual([...blocks.slice(1).map((b) => `${b} prof_renamed`), "ln:D000:j prof_kept", "ln:S530:j prof_renamed"].sort());
    expect(await client.updateBlocks(updates)).toBe(0);
    expect(await entriesOf(workspaceId)).toEqual(after);
  });

  it("keeps the newer word on an entry when two consumers bring words on it in either order", async () => {
    const workspaceId = workspace();
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    // Left at 5, then the older join (3) and the older update (4) land: the profile stays out.
    await client.updateBlocks([["ln:D000:j", "prof_a", false, 5]]);
    expect((await client.joinBlocks([at(3)("ln:D000:j", "prof_a"), at(3)("ln:D000:j", "prof_b")], 200)).get("ln:D000:j")).toEqual(["prof_b"]);
    expect(await client.updateBlocks([["ln:D000:j", "prof_a", true, 4]])).toBe(0);
    expect(await entriesOf(workspaceId)).toEqual(["ln:D000:j prof_b"]);
    // Back in at 7, then an older leave (6) lands: the profile stays in.
    await client.updateBlocks([["ln:D000:j", "prof_a", true, 7]]);
    expect(await client.updateBlocks([["ln:D000:j", "prof_a", false, 6]])).toBe(0);
    expect(await entriesOf(workspaceId)).toEqual(["ln:D000:j prof_a", "ln:D000:j prof_b"]);
  });

  it("remembers a leave for a day, then lets it go", async () => {
    const workspaceId = workspace();
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    await client.updateBlocks([["ln:D000:j", "prof_a", false, 5], ["ln:D000:j", "prof_b", false, 5]]);
    const object = env.IDENTIFIER_INDEX.getByName(indexObjectName(workspaceId, indexShardOf("ln:D000:j")));
    const rows = () => runInDurableObject(object, (_o: IdentifierIndexShard, state) => state.storage.sql.exec<{ profile_id: string }>("SELECT profile_id FROM match_blocks ORDER BY profile_id").toArray().map((r) => r.profile_id));
    expect(await rows()).toEqual(["prof_a", "prof_b"]);
    await runInDurableObject(object, (_o: IdentifierIndexShard, state) => state.storage.sql.exec("UPDATE match_blocks SET changed_at = changed_at - ? WHERE profile_id = 'prof_a'", LEFT_KEPT_MS + 1_000));
    await client.updateBlocks([["ln:D000:j", "prof_c", true, 6]]);
    expect(await rows()).toEqual(["prof_b", "prof_c"]);
  });

  it("refuses a bad entry before calling any object, so nothing is joined", async () => {
    const workspaceId = workspace();
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    await expect(client.joinBlocks([at(1)("ln:D000:j", "prof_1"), at(1)("no-colon", "prof_1")], 200)).rejects.toThrow(/entries\[1\]\[0\] must be an identifier key of the form type:value/);
    await expect(client.joinBlocks([at(1)("ln:D000:j", "")], 200)).rejects.toThrow(/entries\[0\]\[1\] must be a profile id of 1 to 128 characters/);
    await expect(client.joinBlocks([["ln:D000:j", "prof_1"] as unknown as AnsweredEntry], 200)).rejects.toThrow(/entries\[0\] must be a \[block, profileId, version\] entry/);
    await expect(client.joinBlocks([at(1)("ln:D000:j", "prof_1")], 0)).rejects.toThrow(/max must be an integer from 1 to 1,000/);
    await expect(client.forgetProfiles(["x".repeat(129)])).rejects.toThrow(/profileIds\[0\] must be a profile id/);
    await expect(client.updateBlocks([["ln:D000:j", "prof_1", "yes" as unknown as boolean, 1]])).rejects.toThrow(/updates\[0\] must be a \[block, profileId, member, version\] entry/);
    await expect(client.updateBlocks([["ln:D000:j", "prof_1", true, -1]])).rejects.toThrow(/updates\[0\] must be a \[block, profileId, member, version\] entry/);
    expect(await entriesOf(workspaceId)).toEqual([]);
  });
});
