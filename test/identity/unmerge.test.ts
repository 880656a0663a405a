import { describe, expect, it } from "vitest";
import { IdentityGraph } from "../../workers/identity/graph";
import { applyEvent } from "../../workers/identity/resolve";
import { DEFAULT_IDENTITY_SETTINGS } from "../../workers/identity/settings";
import type { Identifier } from "../../workers/identity/types";
import { approveReview, IdentityRuleError, rejectReview, splitIdentifiers, unmerge } from "../../workers/identity/unmerge";

const T0 = Date.UTC(2026, 10, 1);
const ids = (keys: string[]): Identifier[] => keys.map((k) => ({ type: k.slice(0, k.indexOf(":")), value: k.slice(k.indexOf(":") + 1) }));

function run(events: [string, string[]][], graph = new IdentityGraph()) {
  events.forEach(([messageId, keys], n) => applyEvent(graph, DEFAULT_IDENTITY_SETTINGS, { messageId, at: T0 + n * 1000, identifiers: ids(keys) }));
  return graph;
}

/** Clusters as sorted identifier sets, and events grouped by the cluster they belong to. */
function shape(graph: IdentityGraph, ignore: string[] = []) {
  const clusters = graph.liveClusters().map((c) => [...c.identifiers.keys()].sort().join(",")).sort();
  const groups = new Map<string, string[]>();
  for (const [messageId] of graph.events.assignments()) {
    if (ignore.includes(messageId) || messageId.startsWith("review:")) continue;
    const id = graph.clusterOfEvent(messageId)!.id;
    groups.set(id, [...(groups.get(id) ?? []), messageId]);
  }
  return { clusters, events: [...groups.values()].map((g) => g.sort().join(",")).sort() };
}

const before: [string, string[]][] = [
  ["e1", ["anonymous_id:a1", "email:pat@shop.example"]],
  ["e2", ["anonymous_id:a1"]],
  ["e3", ["anonymous_id:a2", "device_id:d2"]],
];
const wrongMerge: [string, string[]] = ["bad", ["anonymous_id:a2", "email:pat@shop.example"]];
const after: [string, string[]][] = [
  ["e4", ["anonymous_id:a2"]],
  ["e5", ["device_id:d2", "anonymous_id:a3"]],
  ["e6", ["email:pat@shop.example"]],
];

describe("unmerge", () => {
  it("leaves the graph as if the merge had never happened", () => {
    const merged = run([...before, wrongMerge, ...after]);
    const mergeId = [...merged.merges.values()][0]!.id;
    expect(merged.liveClusters()).toHaveLength(1);
    unmerge(merged, mergeId, T0 + 60_000);
    const neverMerged = run([...before, ...after]);
    expect(shape(merged, ["bad"])).toEqual(shape(neverMerged));
  });

  it("keeps the profile id with the part that holds the oldest identifiers and gives the rest new ids", () => {
    const graph = run([...before, wrongMerge]);
    const original = graph.clusterOf("anonymous_id:a1")!.id;
    const absorbed = [...graph.merges.values()][0]!.absorbed[0]!;
    const { kept, restored } = unmerge(graph, [...graph.merges.values()][0]!.id, T0 + 60_000);
    expect(kept).toBe(original);
    expect(graph.clusterOf("anonymous_id:a1")!.id).toBe(original);
    expect(restored).toHaveLength(1);
    expect(restored[0]).not.toBe(absorbed);
    expect(graph.clusterOf("anonymous_id:a2")!.id).toBe(restored[0]);
    expect(graph.clusterOfEvent("e3")!.id).toBe(restored[0]);
  });

  it("sends the absorbed profile id to the part that holds its identifiers again", () => {
    const graph = run([...before, wrongMerge]);
    const absorbed = [...graph.merges.values()][0]!.absorbed[0]!;
    const { restored } = unmerge(graph, [...graph.merges.values()][0]!.id, T0 + 60_000);
    expect(graph.resolve(absorbed).id).toBe(restored[0]);
  });

  it("does not merge again when the retracted event is replayed", () => {
    const graph = run([...before, wrongMerge]);
    unmerge(graph, [...graph.merges.values()][0]!.id, T0 + 60_000);
    run([wrongMerge], graph);
    expect(graph.clusterOf("anonymous_id:a1")!.id).not.toBe(graph.clusterOf("anonymous_id:a2")!.id);
  });

  it("stops a new event with the same evidence from joining the parts again", () => {
    const graph = run([...before, wrongMerge]);
    unmerge(graph, [...graph.merges.values()][0]!.id, T0 + 60_000);
    const again = applyEvent(graph, DEFAULT_IDENTITY_SETTINGS, { messageId: "again", at: T0 + 90_000, identifiers: ids(["anonymous_id:a2", "email:pat@shop.example"]) });
    expect(again.dropped.map((d) => d.reason)).toEqual(["never-merge"]);
    expect(graph.clusterOf("anonymous_id:a1")!.id).not.toBe(graph.clusterOf("anonymous_id:a2")!.id);
  });

  it("refuses to retract a merge twice, or one that does not exist", () => {
    const graph = run([...before, wrongMerge]);
    const mergeId = [...graph.merges.values()][0]!.id;
    unmerge(graph, mergeId, T0 + 60_000);
    expect(() => unmerge(graph, mergeId, T0 + 61_000)).toThrow(IdentityRuleError);
    expect(() => unmerge(graph, "mrg_nope", T0)).toThrow(/not found/);
  });
});

describe("review decisions", () => {
  const conflicting: [string, string[]][] = [
    ["r1", ["user_id:u1", "email:shared@shop.example"]],
    ["r2", ["user_id:u2", "email:shared@shop.example"]],
  ];

  it("merges two user ids when a person approves the review", () => {
    const graph = run(conflicting);
    const review = [...graph.reviews.values()][0]!;
    const { merge } = approveReview(graph, review.id, T0 + 60_000);
    expect(merge).toMatchObject({ rule: "review-approved" });
    expect(graph.clusterOf("user_id:u1")!.id).toBe(graph.clusterOf("user_id:u2")!.id);
    expect(() => approveReview(graph, review.id, T0)).toThrow(/already approved/);
  });

  it("remembers a rejection so that the same link is not proposed as a merge again", () => {
    const graph = run(conflicting);
    const review = [...graph.reviews.values()][0]!;
    rejectReview(graph, review.id);
    expect(review.status).toBe("rejected");
    run([["r3", ["user_id:u2", "email:shared@shop.example"]]], graph);
    expect([...graph.reviews.values()]).toHaveLength(1);
    expect(graph.clusterOf("user_id:u1")!.id).not.toBe(graph.clusterOf("user_id:u2")!.id);
  });

  it("queues one review for a conflict that repeats while the review is open", () => {
    const graph = run([...conflicting, ["r3", ["user_id:u2", "email:shared@shop.example"]], ["r4", ["user_id:u2", "email:shared@shop.example"]]]);
    expect([...graph.reviews.values()].filter((r) => r.status === "open")).toHaveLength(1);
  });

  it("keeps an approved shared identifier out of quarantine", () => {
    const graph = run(["u1", "u2", "u3", "u4"].map((u, i): [string, string[]] => [`q${i}`, [`user_id:${u}`, "device_id:family-tablet"]]));
    const quarantine = [...graph.reviews.values()].find((r) => r.kind === "quarantine")!;
    approveReview(graph, quarantine.id, T0 + 60_000);
    run([["q5", ["user_id:u5", "device_id:family-tablet"]]], graph);
    expect(graph.index.get("device_id:family-tablet")!.quarantined).toBe(false);
    expect([...graph.reviews.values()].filter((r) => r.kind === "quarantine")).toHaveLength(1);
  });
});

describe("splitting out chosen identifiers", () => {
  const household: [string, string[]][] = [
    ["h1", ["user_id:mum", "anonymous_id:tablet"]],
    ["h2", ["anonymous_id:tablet"]],
    ["h3", ["anonymous_id:tablet", "email:mum@acme-shop.com"]],
    ["h4", ["user_id:mum", "email:mum@acme-shop.com"]],
  ];

  it("moves the chosen identifiers and the events that carried only them to a new profile", () => {
    const graph = run(household);
    const profile = graph.clusterOf("user_id:mum")!.id;
    const { kept, restored } = splitIdentifiers(graph, profile, ["anonymous_id:tablet"]);
    expect(kept).toBe(profile);
    expect(restored).toHaveLength(1);
    expect(graph.clusterOf("anonymous_id:tablet")!.id).toBe(restored[0]);
    expect(graph.clusterOf("email:mum@acme-shop.com")!.id).toBe(profile);
    expect(graph.clusterOfEvent("h2")!.id).toBe(restored[0]);
    expect(graph.clusterOfEvent("h3")!.id).toBe(profile);
    expect(graph.events.count()).toBe(household.length);
  });

  it("keeps them apart when a later event links them again", () => {
    const graph = run(household);
    splitIdentifiers(graph, graph.clusterOf("user_id:mum")!.id, ["anonymous_id:tablet"]);
    const again = applyEvent(graph, DEFAULT_IDENTITY_SETTINGS, { messageId: "h5", at: T0 + 90_000, identifiers: ids(["user_id:mum", "anonymous_id:tablet"]) });
    expect(again.dropped.map((d) => d.reason)).toEqual(["never-merge"]);
  });

  it("refuses to split out an identifier the profile does not hold, or all of them", () => {
    const graph = run(household);
    const profile = graph.clusterOf("user_id:mum")!.id;
    expect(() => splitIdentifiers(graph, profile, ["email:someone@else.com"])).toThrow(/does not hold/);
    expect(() => splitIdentifiers(graph, profile, ["user_id:mum", "anonymous_id:tablet", "email:mum@acme-shop.com"])).toThrow(/nothing behind/);
    expect(() => splitIdentifiers(graph, "prof_nope", ["user_id:mum"])).toThrow(/not found/);
  });
});
