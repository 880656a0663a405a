import { describe, expect, it } from "vitest";
import { applyEventWithFeatures, type EventInput } from "../../workers/identity/apply";
import { IdentityGraph } from "../../workers/identity/graph";
import type { ProfileFeatures } from "../../workers/identity/probabilistic";
import { DEFAULT_IDENTITY_SETTINGS, identitySettingsSchema } from "../../workers/identity/settings";
import { forgetNamed } from "../../workers/identity/erase";
import { suggestAcross } from "../../workers/identity/suggest";
import type { Identifier } from "../../workers/identity/types";

const T0 = Date.UTC(2026, 10, 1);
const home = { street: "12 Rue des Lilas", city: "Lyon", postalCode: "69003", country: "FR" };

function input(n: number, keys: string[], features: Partial<ProfileFeatures>): EventInput {
  const identifiers: Identifier[] = keys.map((k) => ({ type: k.slice(0, k.indexOf(":")), value: k.slice(k.indexOf(":") + 1) }));
  return { messageId: `s${n}`, at: T0 + n * 1000, identifiers, features: { emails: [], phones: [], ips: [], userAgents: [], ...features } };
}

const janeOnLaptop = input(1, ["anonymous_id:laptop", "email:jane.doe@gmail.com"], {
  firstName: "Jane",
  lastName: "Doe",
  emails: ["jane.doe@gmail.com"],
  address: home,
  ips: ["203.0.113.5"],
});
const janeOnPhone = input(2, ["anonymous_id:phone", "email:janedoe@yahoo.fr"], {
  firstName: "Jane",
  lastName: "Doe",
  emails: ["janedoe@yahoo.fr"],
  address: home,
  ips: ["198.51.100.7"],
});

describe("probabilistic suggestions", () => {
  it("queues a likely match for review with its evidence, and does not merge it", () => {
    const graph = new IdentityGraph();
    applyEventWithFeatures(graph, DEFAULT_IDENTITY_SETTINGS, janeOnLaptop);
    const second = applyEventWithFeatures(graph, DEFAULT_IDENTITY_SETTINGS, janeOnPhone);
    expect(second.suggestions).toHaveLength(1);
    const review = second.suggestions[0]!.review!;
    expect(review).toMatchObject({ kind: "probabilistic", status: "open" });
    expect(review.score).toBeGreaterThanOrEqual(0.9);
    expect(review.evidence!.map((f) => f.field)).toEqual(["firstName", "lastName", "email", "phone", "address", "ip", "userAgent"]);
    expect(graph.clusterOf("anonymous_id:laptop")!.id).not.toBe(graph.clusterOf("anonymous_id:phone")!.id);
  });

  it("suggests nothing for two members of one household", () => {
    const graph = new IdentityGraph();
    applyEventWithFeatures(graph, DEFAULT_IDENTITY_SETTINGS, janeOnLaptop);
    const brother = applyEventWithFeatures(
      graph,
      DEFAULT_IDENTITY_SETTINGS,
      input(3, ["anonymous_id:console", "email:tom.doe@gmail.com"], { firstName: "Tom", lastName: "Doe", emails: ["tom.doe@gmail.com"], address: home, ips: ["203.0.113.5"] }),
    );
    expect(brother.suggestions).toEqual([]);
    expect(graph.reviews.size).toBe(0);
  });

  it("never suggests namesakes who share nothing but their name, and does once something corroborates it", () => {
    const graph = new IdentityGraph();
    const jane = (n: number, keys: string[], features: Partial<ProfileFeatures>) => applyEventWithFeatures(graph, DEFAULT_IDENTITY_SETTINGS, input(n, keys, { firstName: "Jane", lastName: "Doe", ...features }));
    jane(5, ["anonymous_id:a", "email:jd1@gmail.com"], { emails: ["jd1@gmail.com"], ips: ["203.0.113.9"] });
    const namesake = jane(6, ["anonymous_id:b", "email:jane.d@yahoo.fr"], { emails: ["jane.d@yahoo.fr"], ips: ["203.0.113.9"] });
    // First and last name agree exactly (about 12.9 bits) and so does the IP: above the threshold on its own, but no email, phone or address agrees.
    expect(namesake.suggestions).toEqual([]);
    // The same postal code and city is not enough: thousands share them.
    jane(7, ["anonymous_id:b"], { address: { ...home, street: "3 Quai Perrache" } });
    expect(jane(8, ["anonymous_id:a"], { address: home }).suggestions).toEqual([]);
    // A third Jane Doe at the street where the first one lives: that points at one person.
    const corroborated = jane(9, ["anonymous_id:c"], { address: home });
    expect(corroborated.suggestions).toHaveLength(1);
    expect(corroborated.suggestions[0]!.review!.clusters.sort()).toEqual([graph.clusterOf("anonymous_id:a")!.id, graph.clusterOf("anonymous_id:c")!.id].sort());
    expect(corroborated.suggestions[0]!.review!.evidence!.find((f) => f.field === "address")!.weight).toBeGreaterThan(0);
    expect([...graph.reviews.values()].filter((r) => r.kind === "probabilistic")).toHaveLength(1);
  });

  it("does not suggest two user ids that share a household phone the guards already kept apart", () => {
    const graph = new IdentityGraph();
    const landline = "+33478123456";
    applyEventWithFeatures(graph, DEFAULT_IDENTITY_SETTINGS, input(11, ["user_id:mum", `phone:${landline}`], { firstName: "Marie", lastName: "Curie", phones: [landline] }));
    const daughter = applyEventWithFeatures(graph, DEFAULT_IDENTITY_SETTINGS, input(12, ["user_id:irene", `phone:${landline}`], { firstName: "Irène", lastName: "Curie", phones: [landline] }));
    expect(daughter.dropped.map((d) => d.dropped)).toEqual([`phone:${landline}`]);
    expect(daughter.suggestions).toEqual([]);
    expect(graph.features.get(graph.clusterOf("user_id:irene")!.id)!.phones).toEqual([]);
    expect([...graph.reviews.values()].filter((r) => r.kind === "probabilistic")).toHaveLength(0);
  });

  it("suggests a pair once, however many events follow", () => {
    const graph = new IdentityGraph();
    applyEventWithFeatures(graph, DEFAULT_IDENTITY_SETTINGS, janeOnLaptop);
    applyEventWithFeatures(graph, DEFAULT_IDENTITY_SETTINGS, janeOnPhone);
    applyEventWithFeatures(graph, DEFAULT_IDENTITY_SETTINGS, input(4, ["anonymous_id:phone", "phone:+33612345678"], { phones: ["+33612345678"] }));
    expect([...graph.reviews.values()].filter((r) => r.kind === "probabilistic")).toHaveLength(1);
  });

  it("merges on its own only when the workspace opted in and the score clears the higher threshold", () => {
    const settings = identitySettingsSchema.parse({ probabilistic: { reviewThreshold: 0.9, autoMerge: true, autoMergeThreshold: 0.95 } });
    const graph = new IdentityGraph();
    applyEventWithFeatures(graph, settings, janeOnLaptop);
    const second = applyEventWithFeatures(graph, settings, janeOnPhone);
    expect(second.suggestions[0]!.merge).toMatchObject({ rule: "probabilistic" });
    expect(graph.clusterOf("anonymous_id:laptop")!.id).toBe(graph.clusterOf("anonymous_id:phone")!.id);
  });

  it("never merges two user ids on a score, even when the workspace opted in", () => {
    const settings = identitySettingsSchema.parse({ probabilistic: { reviewThreshold: 0.9, autoMerge: true, autoMergeThreshold: 0.95 } });
    const graph = new IdentityGraph();
    applyEventWithFeatures(graph, settings, { ...janeOnLaptop, identifiers: [...janeOnLaptop.identifiers, { type: "user_id", value: "jane-1" }] });
    const second = applyEventWithFeatures(graph, settings, { ...janeOnPhone, identifiers: [...janeOnPhone.identifiers, { type: "user_id", value: "jane-2" }] });
    expect(second.suggestions[0]!.review).toMatchObject({ kind: "probabilistic" });
    expect(graph.clusterOf("user_id:jane-1")!.id).not.toBe(graph.clusterOf("user_id:jane-2")!.id);
  });

  describe("with a profile another graph shard holds", () => {
    const janeElsewhere = { profileId: "prof_s2_000007", features: { emails: ["janedoe@yahoo.fr"], phones: [], ips: ["198.51.100.7"], userAgents: [], firstName: "Jane", lastName: "Doe", address: home } };

    it("queues the likely match here with its evidence, once, and merges nothing", () => {
      const graph = new IdentityGraph();
      const laptop = applyEventWithFeatures(graph, DEFAULT_IDENTITY_SETTINGS, janeOnLaptop).clusterId!;
      const found = suggestAcross(graph, DEFAULT_IDENTITY_SETTINGS, laptop, [janeElsewhere], T0);
      expect(found.bringTogether).toEqual([]);
      expect(found.suggestions).toHaveLength(1);
      expect(found.suggestions[0]!.review).toMatchObject({ kind: "probabilistic", clusters: [laptop, "prof_s2_000007"], status: "open", at: T0 });
      expect(found.suggestions[0]!.review!.score).toBeGreaterThanOrEqual(0.9);
      // Scored again (a redelivered batch, or the other side gaining a key): the pair is already suggested.
      expect(suggestAcross(graph, DEFAULT_IDENTITY_SETTINGS, laptop, [janeElsewhere], T0 + 1).suggestions).toEqual([]);
      expect(graph.reviews.size).toBe(1);
      expect(graph.clusters.has("prof_s2_000007")).toBe(false);
    });

    it("suggests nothing for a household member held elsewhere, as within one graph", () => {
      const graph = new IdentityGraph();
      const laptop = applyEventWithFeatures(graph, DEFAULT_IDENTITY_SETTINGS, janeOnLaptop).clusterId!;
      const tom = { ...janeElsewhere, features: { ...janeElsewhere.features, firstName: "Tom", emails: ["tom.doe@gmail.com"], ips: ["203.0.113.5"] } };
      expect(suggestAcross(graph, DEFAULT_IDENTITY_SETTINGS, laptop, [tom], T0)).toEqual({ suggestions: [], bringTogether: [] });
      expect(graph.reviews.size).toBe(0);
    });

    it("asks for the pair to be brought together where the workspace auto-merges, without marking it suggested", () => {
      const settings = identitySettingsSchema.parse({ probabilistic: { reviewThreshold: 0.9, autoMerge: true, autoMergeThreshold: 0.95 } });
      const graph = new IdentityGraph();
      const laptop = applyEventWithFeatures(graph, settings, janeOnLaptop).clusterId!;
      expect(suggestAcross(graph, settings, laptop, [janeElsewhere], T0)).toEqual({ suggestions: [], bringTogether: ["prof_s2_000007"] });
      expect(graph.reviews.size).toBe(0);
      // Asked again it answers the same: nothing was recorded that would stop the merge once the two are in one graph.
      expect(suggestAcross(graph, settings, laptop, [janeElsewhere], T0).bringTogether).toEqual(["prof_s2_000007"]);
    });

    it("forgets the review and the pair naming the other person once they are erased on their shard, and nothing of its own", () => {
      const graph = new IdentityGraph();
      const laptop = applyEventWithFeatures(graph, DEFAULT_IDENTITY_SETTINGS, janeOnLaptop).clusterId!;
      const phone = applyEventWithFeatures(graph, DEFAULT_IDENTITY_SETTINGS, janeOnPhone).clusterId!;
      expect(graph.reviews.size).toBe(1);
      suggestAcross(graph, DEFAULT_IDENTITY_SETTINGS, laptop, [janeElsewhere], T0);
      expect(graph.reviews.size).toBe(2);
      // Erasing a person held here is eraseClusters' work: a profile id this graph holds is left alone.
      expect(forgetNamed(graph, [phone])).toBe(0);
      expect(forgetNamed(graph, ["prof_s2_000007"])).toBe(1);
      // What is left is the review between the two profiles held here.
      expect([...graph.reviews.values()].map((r) => [...r.clusters].sort())).toEqual([[laptop, phone].sort()]);
      expect([...graph.suggested].some((pair) => pair.includes("prof_s2_000007"))).toBe(false);
      // The pair is no longer suggested: were that id ever held somewhere again, it would be scored afresh.
      expect(suggestAcross(graph, DEFAULT_IDENTITY_SETTINGS, laptop, [janeElsewhere], T0).suggestions).toHaveLength(1);
    });

    it("scores nothing for a profile this graph does not hold", () => {
      const graph = new IdentityGraph();
      expect(suggestAcross(graph, DEFAULT_IDENTITY_SETTINGS, "prof_000001", [janeElsewhere], T0)).toEqual({ suggestions: [], bringTogether: [] });
    });
  });
});
