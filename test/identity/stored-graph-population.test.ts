import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { generatePopulation } from "../../bench/identity/population.mjs";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import { SqlEventLinks } from "../../durable-objects/sql-event-links";
import { SqlGraphCollections } from "../../durable-objects/sql-graph-collections";
import { IdentityGraph } from "../../workers/identity/graph";
import { comparable, storedGraph } from "./graph-comparison";
import { applyPopulationEvent as apply } from "./population";

describe("the stored graph over a whole population", () => {
  it("ends, through operations of 50 events with a cache far smaller than the graph, where the same events end in memory", async () => {
    // Households, kiosks, shared tablets, logouts without reset, typos and placeholders: every rule is used.
    const { events } = generatePopulation({ people: 150, seed: 11 });
    expect(events.length).toBeGreaterThan(3_000);
    const inMemory = new IdentityGraph();
    for (const event of events) apply(inMemory, event);

    const stored = await runInDurableObject(env.IDENTITY.getByName("stored-population"), (_i: IdentityGraphShard, state) => {
      const sql = state.storage.sql;
      const collections = new SqlGraphCollections(sql, { clusters: 20, features: 20, index: 60, merges: 5, reviews: 5 });
      const links = new SqlEventLinks(sql);
      const graph = new IdentityGraph(0, links, collections);
      for (let i = 0; i < events.length; i += 50) {
        state.storage.transactionSync(() => {
          for (const event of events.slice(i, i + 50)) apply(graph, event);
          collections.writeBack();
          links.flush();
        });
        collections.forget({ rolledBack: false });
      }
      return comparable(storedGraph(sql, graph.counterValue()));
    });

    const expected = comparable(inMemory);
    expect(stored.clusters.length).toBe(expected.clusters.length);
    expect(expected.merges.length).toBeGreaterThan(50);
    expect(expected.reviews.length).toBeGreaterThan(0);
    expect(stored).toEqual(expected);
  });
});
