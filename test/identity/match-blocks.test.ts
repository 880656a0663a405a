import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { IdentifierIndex, indexShardOf } from "../../workers/identity/sharding/identifier-index";
import { matchBlockEntries as entriesOf } from "./match-block-entries";

/**
 * The match blocks the identifier index keeps for probabilistic matching
 * across graph shards: which profiles share a blocking key, wherever they live.
 */

const workspace = () => `ws-${crypto.randomUUID().slice(0, 8)}`;

describe("match blocks in the identifier index", () => {
  it("answers every profile that joined a block, whichever shard's router joined it, and joining again changes nothing", async () => {
    const workspaceId = workspace();
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    const first = await client.joinBlocks([["ln:D000:j", "prof_000001"], ["em:janedoe", "prof_000001"]], 200);
    expect(Object.fromEntries(first)).toEqual({ "ln:D000:j": ["prof_000001"], "em:janedoe": ["prof_000001"] });
    const second = await client.joinBlocks([["ln:D000:j", "prof_s2_000003"], ["pc:69003:d", "prof_s2_000003"]], 200);
    expect(Object.fromEntries(second)).toEqual({ "ln:D000:j": ["prof_000001", "prof_s2_000003"], "pc:69003:d": ["prof_s2_000003"] });
    await client.joinBlocks([["ln:D000:j", "prof_s2_000003"]], 200);
    expect(await entriesOf(workspaceId)).toEqual(["em:janedoe prof_000001", "ln:D000:j prof_000001", "ln:D000:j prof_s2_000003", "pc:69003:d prof_s2_000003"]);
  });

  it("answers null for a block with more members than the limit: a common name is no lead", async () => {
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspace());
    const many = Array.from({ length: 5 }, (_, i): [string, string] => ["ln:S530:j", `prof_00000${i}`]);
    expect((await client.joinBlocks(many, 5)).get("ln:S530:j")).toHaveLength(5);
    expect((await client.joinBlocks([["ln:S530:j", "prof_00000x"], ["em:rare", "prof_00000x"]], 5))).toEqual(
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
    await client.joinBlocks([...blocks.map((b): [string, string] => [b, "prof_erased"]), ...blocks.map((b): [string, string] => [b, "prof_absorbed"]), ["em:local0", "prof_kept"]], 200);
    expect(new Set(blocks.map(indexShardOf)).size).toBeGreaterThan(8);
    expect(await client.forgetProfiles(["prof_erased", "prof_absorbed"])).toBe(80);
    expect(await entriesOf(workspaceId)).toEqual(["em:local0 prof_kept"]);
    expect(await client.forgetProfiles(["prof_erased"])).toBe(0);
  });

  it("keeps an erased profile out of every block when a join or an update sent before the erasure lands after it", async () => {
    const workspaceId = workspace();
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    const blocks = Array.from({ length: 20 }, (_, i) => `em:local${i}`);
    await client.joinBlocks([["em:local0", "prof_erased"], ["em:local0", "prof_kept"]], 200);
    await client.forgetProfiles(["prof_erased"]);

    const joined = await client.joinBlocks([...blocks.map((b): [string, string] => [b, "prof_erased"]), ["em:local1", "prof_new"]], 200);
    expect(new Set(blocks.map(indexShardOf)).size).toBeGreaterThan(8);
    expect(joined.get("em:local0")).toEqual(["prof_kept"]);
    expect(joined.get("em:local1")).toEqual(["prof_new"]);
    expect(await client.updateBlocks(blocks.map((b): [string, string, boolean] => [b, "prof_erased", true]))).toBe(0);
    expect(await entriesOf(workspaceId)).toEqual(["em:local0 prof_kept", "em:local1 prof_new"]);
  });

  it("brings blocks in line with the shards' updates, each in the object its block hashes to, and the same updates again change nothing", async () => {
    const workspaceId = workspace();
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    const blocks = Array.from({ length: 20 }, (_, i) => `em:local${i}`);
    await client.joinBlocks([...blocks.map((b): [string, string] => [b, "prof_renamed"]), ["ln:D000:j", "prof_renamed"], ["ln:D000:j", "prof_kept"]], 200);
    const updates = [
      ...blocks.map((b): [string, string, boolean] => [b, "prof_renamed", b !== "em:local0"]),
      ["ln:D000:j", "prof_renamed", false],
      ["ln:S530:j", "prof_renamed", true],
    ] satisfies [string, string, boolean][];
    expect(new Set(updates.map(([block]) => indexShardOf(block))).size).toBeGreaterThan(8);
    // em:local1 to 19 are there already: only the three changes count.
    expect(await client.updateBlocks(updates)).toBe(3);
    const after = await entriesOf(workspaceId);
    expect(after).toEqual([...blocks.slice(1).map((b) => `${b} prof_renamed`), "ln:D000:j prof_kept", "ln:S530:j prof_renamed"].sort());
    expect(await client.updateBlocks(updates)).toBe(0);
    expect(await entriesOf(workspaceId)).toEqual(after);
  });

  it("refuses a bad entry before calling any object, so nothing is joined", async () => {
    const workspaceId = workspace();
    const client = new IdentifierIndex(env.IDENTIFIER_INDEX, workspaceId);
    await expect(client.joinBlocks([["ln:D000:j", "prof_1"], ["no-colon", "prof_1"]], 200)).rejects.toThrow(/entries\[1\]\[0\] must be an identifier key of the form type:value/);
    await expect(client.joinBlocks([["ln:D000:j", ""]], 200)).rejects.toThrow(/entries\[0\]\[1\] must be a profile id of 1 to 128 characters/);
    await expect(client.joinBlocks([["ln:D000:j", "prof_1"]], 0)).rejects.toThrow(/max must be an integer from 1 to 1,000/);
    await expect(client.forgetProfiles(["x".repeat(129)])).rejects.toThrow(/profileIds\[0\] must be a profile id/);
    await expect(client.updateBlocks([["ln:D000:j", "prof_1", "yes" as unknown as boolean]])).rejects.toThrow(/updates\[0\] must be a \[block, profileId, member\] entry/);
    expect(await entriesOf(workspaceId)).toEqual([]);
  });
});
