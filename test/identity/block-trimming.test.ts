import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import { applyEventWithFeatures, type EventInput } from "../../workers/identity/apply";
import { eraseClusters } from "../../workers/identity/erase";
import { IdentityGraph } from "../../workers/identity/graph";
import type { ProfileFeatures } from "../../workers/identity/probabilistic";
import { DEFAULT_IDENTITY_SETTINGS, identitySettingsSchema } from "../../workers/identity/settings";
import { unmerge } from "../../workers/identity/unmerge";
import { storedGraph } from "./graph-comparison";

/**
 * A profile is only in the blocks of the blocking keys its match features give
 * now (workers/identity/blocks.ts), in the block index in memory and in the
 * one over the object's SQLite alike.
 */

const T0 = Date.UTC(2026, 10, 1);
const home = { street: "12 Rue des Lilas", city: "Lyon", postalCode: "69003", country: "FR" };

let n = 0;
function input(keys: string[], features: Partial<ProfileFeatures>): EventInput {
  n += 1;
  const identifiers = keys.map((k) => ({ type: k.slice(0, k.indexOf(":")), value: k.slice(k.indexOf(":") + 1) }));
  return { messageId: `bt${n}`, at: T0 + n * 1000, identifiers, features: { emails: [], phones: [], ips: [], userAgents: [], ...features } };
}

const apply = (graph: IdentityGraph, keys: string[], features: Partial<ProfileFeatures>, settings = DEFAULT_IDENTITY_SETTINGS) => applyEventWithFeatures(graph, settings, input(keys, features));
/** A workspace that lets a profile hold more emails than its match features list (five): the oldest falls off the list. */
const manyEmails = identitySettingsSchema.parse({ identifiers: DEFAULT_IDENTITY_SETTINGS.identifiers.map((rule) => (rule.type === "email" ? { ...rule, limit: 20 } : rule)) });
const blocksOf = (graph: IdentityGraph, key: string) => graph.blocks.keysOf(graph.clusterOf(key)!.id).sort();

/** Jane's laptop and a phone merged, wrongly, then unmerged: answers the part that kept the profile and the one restored. */
function janeAndPhoneUnmerged(graph: IdentityGraph) {
  apply(graph, ["anonymous_id:laptop", "email:jane.doe@gmail.com"], { firstName: "Jane", lastName: "Doe", emails: ["jane.doe@gmail.com"] });
  apply(graph, ["anonymous_id:phone", "phone:+33612345678"], { phones: ["+33612345678"] });
  const merge = apply(graph, ["anonymous_id:laptop", "anonymous_id:phone"], {}).merge!;
  return unmerge(graph, merge.id, T0 + 60_000);
}

/** Runs the same story over a graph in memory and over one stored in a fresh object's SQLite; answers both. */
async function inMemoryAndStored<T>(story: (graph: IdentityGraph) => T): Promise<{ memory: T; stored: T }> {
  const memory = story(new IdentityGraph());
  const stub = env.IDENTITY.getByName(`block-trimming-${crypto.randomUUID()}`);
  const stored = await runInDurableObject(stub, (_o: IdentityGraphShard, state) => story(storedGraph(state.storage.sql)));
  return { memory, stored };
}

describe("trimming the block index", () => {
  it("drops a profile's old name block when the name changes, and an email's block once it falls off the list, keeping the blocks of keys it still holds", async () => {
    const { memory, stored } = await inMemoryAndStored((graph) => {
      apply(graph, ["anonymous_id:jane", "email:e0@acme-shop.com"], { firstName: "Jane", lastName: "Doe", emails: ["e0@acme-shop.com"] });
      const first = blocksOf(graph, "anonymous_id:jane");
      const married = apply(graph, ["anonymous_id:jane"], { firstName: "Jane", lastName: "Smith" });
      const renamed = blocksOf(graph, "anonymous_id:jane");
      // Five newer emails: the list keeps five, so e0 falls off.
      for (const i of [1, 2, 3, 4, 5]) apply(graph, ["anonymous_id:jane", `email:e${i}@acme-shop.com`], { emails: [`e${i}@acme-shop.com`] }, manyEmails);
      return { first, renamed, married: married.blocksChanged, last: blocksOf(graph, "anonymous_id:jane"), profile: graph.clusterOf("anonymous_id:jane")!.id };
    });
    expect(stored).toEqual(memory);
    expect(memory.first).toEqual(["em:e0", "ln:D000:j"]);
    expect(memory.renamed).toEqual(["em:e0", "ln:S530:j"]);
    // The result carries the entry taken out, for the match blocks other graph shards share.
    expect(memory.married).toEqual([["ln:D000:j", memory.profile]]);
    expect(memory.last).toEqual(["em:e1", "em:e2", "em:e3", "em:e4", "em:e5", "ln:S530:j"]);
  });

  it("drops a block even when the event gives the profile no new key: an address without its postal code", async () => {
    const { memory, stored } = await inMemoryAndStored((graph) => {
      apply(graph, ["anonymous_id:jane", "email:jane@acme-shop.com"], { firstName: "Jane", lastName: "Doe", emails: ["jane@acme-shop.com"], address: home });
      const first = blocksOf(graph, "anonymous_id:jane");
      const moved = apply(graph, ["anonymous_id:jane"], { address: { city: "Lyon" } });
      return { first, after: blocksOf(graph, "anonymous_id:jane"), suggestions: moved.suggestions.length, matchedOn: moved.matchedOn ?? null };
    });
    expect(stored).toEqual(memory);
    expect(memory.first).toContain("pc:69003:d");
    expect(memory).toMatchObject({ after: ["em:jane", "ln:D000:j"], suggestions: 0, matchedOn: null });
  });

  it("takes an absorbed profile out of its blocks on a merge, and a new profile sharing one of its keys still finds the survivor", async () => {
    const { memory, stored } = await inMemoryAndStored((graph) => {
      apply(graph, ["anonymous_id:laptop", "email:jane.doe@gmail.com"], { firstName: "Jane", lastName: "Doe", emails: ["jane.doe@gmail.com"], address: home });
      apply(graph, ["anonymous_id:phone", "phone:+33612345678"], { phones: ["+33612345678"] });
      const absorbed = graph.clusterOf("anonymous_id:phone")!.id;
      const merged = apply(graph, ["anonymous_id:laptop", "anonymous_id:phone"], {});
      const survivor = merged.merge!.survivor;
      // Another Jane, "Doering", on another number ending in the same 7 digits: she shares only the absorbed profile's phone block.
      const other = apply(graph, ["anonymous_id:tablet", "phone:+14152345678"], { firstName: "Jane", lastName: "Doering", phones: ["+14152345678"] });
      return {
        absorbedWas: merged.merge!.absorbed,
        absorbed,
        survivor,
        absorbedBlocks: graph.blocks.keysOf(absorbed),
        survivorBlocks: graph.blocks.keysOf(survivor).sort(),
        suggested: other.suggestions.map((s) => [...s.review!.clusters].sort()),
        other: other.clusterId,
      };
    });
    expect(stored).toEqual(memory);
    expect(memory.absorbedWas).toEqual([memory.absorbed]);
    expect(memory.absorbedBlocks).toEqual([]);
    expect(memory.survivorBlocks).toEqual(["em:janedoe", "ln:D000:j", "pc:69003:d", "ph:2345678"]);
    expect(memory.suggested).toEqual([[memory.other, memory.survivor].sort()]);
  });

  it("starts a profile restored by an unmerge in the merged profile's blocks, as it starts from its features", async () => {
    const { memory, stored } = await inMemoryAndStored((graph) => {
      const { kept, restored } = janeAndPhoneUnmerged(graph);
      return { kept: graph.blocks.keysOf(kept).sort(), restored: restored.map((id) => graph.blocks.keysOf(id).sort()) };
    });
    expect(stored).toEqual(memory);
    expect(memory).toEqual({ kept: ["em:janedoe", "ln:D000:j", "ph:2345678"], restored: [["em:janedoe", "ln:D000:j", "ph:2345678"]] });
  });
});

describe("erasure and the block index", () => {
  /** What Jane's own event said for matching. */
  const janesOwn: Partial<ProfileFeatures> = { firstName: "Jane", lastName: "Doe", emails: ["jane.doe@gmail.com"] };

  it("takes another profile out of the erased person's email and name blocks when its features were copied from hers, and answers those entries for the shared index", async () => {
    const { memory, stored } = await inMemoryAndStored((graph) => {
      // The phone's part starts from the merged features, Jane's email among them, but holds only the phone.
      const { kept, restored } = janeAndPhoneUnmerged(graph);
      const phone = restored[0]!;
      const erased = eraseClusters(graph, [kept], [janesOwn]);
      const left = erased.blocksLeft.map(([key, id]) => `${key} ${id === phone ? "phone" : id}`).sort();
      return { left, phoneBlocks: graph.blocks.keysOf(phone).sort(), phoneFeatures: graph.features.get(phone) };
    });
    expect(stored).toEqual(memory);
    // Her email was in the part's features without the part holding it: they were copied from hers, her name with them.
    expect(memory.left).toEqual(["em:janedoe phone", "ln:D000:j phone"]);
    expect(memory.phoneBlocks).toEqual(["ph:2345678"]);
    expect(memory.phoneFeatures).toEqual({ emails: [], phones: ["+33612345678"], ips: [], userAgents: [] });
  });

  it("keeps a profile's own name when the one erased is the part that was copied from it", async () => {
    const { memory, stored } = await inMemoryAndStored((graph) => {
      const { kept, restored } = janeAndPhoneUnmerged(graph);
      // The phone's part is erased: its own events gave a phone number and nothing else.
      const erased = eraseClusters(graph, restored, [{ phones: ["+33612345678"] }]);
      return { left: erased.blocksLeft.map(([key, id]) => `${key} ${id === kept ? "kept" : id}`), features: graph.features.get(kept), blocks: graph.blocks.keysOf(kept).sort() };
    });
    expect(stored).toEqual(memory);
    expect(memory.left).toEqual(["ph:2345678 kept"]);
    expect(memory.features).toEqual({ firstName: "Jane", lastName: "Doe", emails: ["jane.doe@gmail.com"], phones: [], ips: [], userAgents: [] });
    expect(memory.blocks).toEqual(["em:janedoe", "ln:D000:j"]);
  });

  it("leaves another profile's own name when the erasure scrubs a copied email from it", async () => {
    const { memory, stored } = await inMemoryAndStored((graph) => {
      const { kept, restored } = janeAndPhoneUnmerged(graph);
      // The phone's owner gives her own name after the unmerge: it replaces the copied one.
      apply(graph, ["anonymous_id:phone"], { firstName: "Sam", lastName: "Roe" });
      eraseClusters(graph, [kept], [janesOwn]);
      return graph.features.get(restored[0]!);
    });
    expect(stored).toEqual(memory);
    expect(memory).toMatchObject({ firstName: "Sam", lastName: "Roe", emails: [] });
  });
});

describe("matching on current blocking keys", () => {
  it("brings no candidate through a key a profile no longer gives, and still does through the keys it gives now", () => {
    const graph = new IdentityGraph();
    // Jane Doe marries and becomes Jane Smith: her Doe blocks are stale.
    apply(graph, ["anonymous_id:jane", "email:bluefox77@gmail.com"], { firstName: "Jane", lastName: "Doe", emails: ["bluefox77@gmail.com"], address: home });
    apply(graph, ["anonymous_id:jane"], { firstName: "Jane", lastName: "Smith" });
    const jane = graph.clusterOf("anonymous_id:jane")!.id;
    // A Jane Doe at the same street with a close handle scores above the threshold on Jane's current features,
    // but shares only her old name and postal-code blocks: she is no candidate.
    const namesake = apply(graph, ["anonymous_id:namesake", "email:bluefox78@yahoo.fr"], { firstName: "Jane", lastName: "Doe", emails: ["bluefox78@yahoo.fr"], address: home });
    expect(namesake.suggestions).toEqual([]);
    // A Jane Smith there with a close handle shares her current name and postal-code blocks: the pair is queued.
    const smith = apply(graph, ["anonymous_id:smith", "email:bluefox79@outlook.com"], { firstName: "Jane", lastName: "Smith", emails: ["bluefox79@outlook.com"], address: home });
    expect(smith.suggestions.map((s) => [...s.review!.clusters].sort())).toEqual([[jane, smith.clusterId].sort()]);
  });
});
