import { describe, expect, it } from "vitest";
import { applyEventWithFeatures } from "../../workers/identity/apply";
import { eraseClusters, footprint } from "../../workers/identity/erase";
import { IdentityGraph } from "../../workers/identity/graph";
import type { ProfileFeatures } from "../../workers/identity/probabilistic";
import { DEFAULT_IDENTITY_SETTINGS, identitySettingsSchema } from "../../workers/identity/settings";
import { fromSnapshot, toSnapshot } from "../../workers/identity/snapshot";
import { rejectReview, unmerge } from "../../workers/identity/unmerge";

const T0 = Date.UTC(2026, 10, 1);
let clock = 0;

function apply(graph: IdentityGraph, messageId: string, keys: string[], features?: Partial<ProfileFeatures>, settings = DEFAULT_IDENTITY_SETTINGS) {
  const identifiers = keys.map((k) => ({ type: k.slice(0, k.indexOf(":")), value: k.slice(k.indexOf(":") + 1) }));
  return applyEventWithFeatures(graph, settings, { messageId, at: T0 + ++clock * 1000, identifiers, ...(features ? { features } : {}) });
}

const profileOf = (graph: IdentityGraph, key: string) => graph.clusterOf(key)?.id;

/** The graph as it is stored: whatever survives erasure is in here. */
const stored = (graph: IdentityGraph) => JSON.stringify(toSnapshot(graph));

/** Pat: two profiles (anonymous browsing, then a sign-up) merged by an email; Sam shares nothing with Pat. */
function patAndSam() {
  const graph = new IdentityGraph();
  apply(graph, "pat-1", ["anonymous_id:pat-anon", "email:pat@acme-shop.com"], { emails: ["pat@acme-shop.com"], firstName: "Pat", lastName: "Lee", ips: [], userAgents: [], phones: [] });
  apply(graph, "pat-2", ["user_id:pat-user", "phone:+14155550101"], { phones: ["+14155550101"], emails: [], ips: [], userAgents: [] });
  const merging = apply(graph, "pat-3", ["user_id:pat-user", "email:pat@acme-shop.com", "crm_id:pat-crm"]);
  apply(graph, "sam-1", ["user_id:sam-user", "email:sam@acme-shop.com", "anonymous_id:sam-anon"], { emails: ["sam@acme-shop.com"], firstName: "Sam", lastName: "Ray", ips: [], userAgents: [], phones: [] });
  return { graph, mergeId: merging.merge!.id, pat: profileOf(graph, "user_id:pat-user")! };
}

describe("erasing a person from the identity graph", () => {
  it("removes every cluster, identifier, event, merge and match feature of theirs and leaves the other person as they were", () => {
    const { graph, pat, mergeId } = patAndSam();
    const sam = profileOf(graph, "user_id:sam-user")!;
    expect(graph.merges.has(mergeId)).toBe(true);

    const erased = eraseClusters(graph, [pat]);

    expect(erased.clusterIds).toHaveLength(2);
    expect(erased.ownKeys).toEqual(["anonymous_id:pat-anon", "crm_id:pat-crm", "email:pat@acme-shop.com", "phone:+14155550101", "user_id:pat-user"]);
    expect(erased.messageIds).toEqual(["pat-1", "pat-2", "pat-3"]);
    for (const value of ["pat-anon", "pat@acme-shop.com", "pat-user", "+14155550101", "pat-crm", "Pat", "Lee", "pat-1", "pat-3", pat]) expect(stored(graph)).not.toContain(value);
    expect(graph.merges.size).toBe(0);
    expect(graph.clusterOf("email:pat@acme-shop.com")).toBeUndefined();
    expect(profileOf(graph, "email:sam@acme-shop.com")).toBe(sam);
    expect(footprint(graph, [sam]).identifierKeys).toEqual(["anonymous_id:sam-anon", "email:sam@acme-shop.com", "user_id:sam-user"]);
    const reloaded = fromSnapshot(JSON.parse(stored(graph)));
    expect(reloaded.clusterOf("anonymous_id:sam-anon")?.id).toBe(sam);
    expect(reloaded.clusterOf("anonymous_id:pat-anon")).toBeUndefined();
  });

  it("erases the whole person when given only an absorbed profile id, and erasing again changes nothing", () => {
    const { graph, mergeId } = patAndSam();
    const absorbed = graph.merges.get(mergeId)!.absorbed[0]!;
    expect(eraseClusters(graph, [absorbed]).clusterIds).toHaveLength(2);
    const after = stored(graph);
    expect(eraseClusters(graph, [absorbed])).toMatchObject({ clusterIds: [], ownKeys: [], messageIds: [] });
    expect(eraseClusters(graph, ["prof_unknown"]).clusterIds).toEqual([]);
    expect(stored(graph)).toBe(after);
  });

  it("leaves a device the other person also holds with them, and forgets the erased user id seen with it", () => {
    const graph = new IdentityGraph();
    apply(graph, "pat-1", ["user_id:pat-user", "anonymous_id:family-tablet"]);
    // Sam logs in on the same tablet without a reset: the tablet follows Sam from now on.
    apply(graph, "sam-1", ["user_id:sam-user", "anonymous_id:family-tablet"]);
    apply(graph, "sam-2", ["anonymous_id:family-tablet"]);
    const sam = profileOf(graph, "user_id:sam-user")!;
    expect(profileOf(graph, "anonymous_id:family-tablet")).toBe(sam);

    const erased = eraseClusters(graph, [profileOf(graph, "user_id:pat-user")!]);

    expect(erased.identifierKeys).toContain("anonymous_id:family-tablet");
    expect(erased.ownKeys).toEqual(["user_id:pat-user"]);
    expect(profileOf(graph, "anonymous_id:family-tablet")).toBe(sam);
    expect(stored(graph)).not.toContain("pat-user");
    expect(stored(graph)).toContain("family-tablet");
  });

  it("removes the reviews, conflicts, never-merge pairs and tombstones that name them", () => {
    const graph = new IdentityGraph();
    apply(graph, "pat-1", ["user_id:pat-user", "email:shared@acme-shop.com"]);
    apply(graph, "sam-1", ["user_id:sam-user"]);
    // Two user ids through one email: dropped, recorded as a conflict, and queued for review.
    apply(graph, "sam-2", ["user_id:sam-user", "email:shared@acme-shop.com"]);
    const review = [...graph.reviews.values()][0]!;
    rejectReview(graph, review.id);
    apply(graph, "pat-2", ["anonymous_id:pat-anon"]);
    const merge = apply(graph, "pat-3", ["anonymous_id:pat-anon", "user_id:pat-user"]).merge!;
    unmerge(graph, merge.id, T0 + 100_000);
    expect(graph.tombstones.has("pat-3")).toBe(true);
    expect(graph.conflicts.all().length).toBeGreaterThan(0);
    expect(graph.neverMerge.size).toBeGreaterThan(0);

    eraseClusters(graph, [profileOf(graph, "user_id:pat-user")!, profileOf(graph, "anonymous_id:pat-anon")!]);

    expect(graph.reviews.size).toBe(0);
    expect(graph.openReviewsByIdentifier.size).toBe(0);
    expect(graph.conflicts.all()).toEqual([]);
    expect(graph.neverMerge.size).toBe(0);
    expect(graph.tombstones.size).toBe(0);
    expect(stored(graph)).not.toMatch(/pat-|shared@/);
    expect(profileOf(graph, "user_id:sam-user")).toBeDefined();
  });

  it("removes them from probabilistic matching: features, blocks and suggested pairs", () => {
    const settings = identitySettingsSchema.parse({ probabilistic: { reviewThreshold: 0.5 } });
    const graph = new IdentityGraph();
    const person = (name: string, email: string) => ({ firstName: name, lastName: "Lee", emails: [email], phones: [], ips: ["203.0.113.9"], userAgents: [] });
    apply(graph, "pat-1", ["user_id:pat-user", "email:lee.surfs@acme-shop.com"], person("Pat", "lee.surfs@acme-shop.com"), settings);
    apply(graph, "pat-twin-1", ["user_id:twin-user", "email:leesurfs@acme-shop.com"], person("Pat", "leesurfs@acme-shop.com"), settings);
    expect(graph.suggested.size).toBe(1);
    const pat = profileOf(graph, "user_id:pat-user")!;
    expect(graph.blocks.keysOf(pat).length).toBeGreaterThan(0);

    eraseClusters(graph, [pat]);

    expect(graph.features.has(pat)).toBe(false);
    expect(graph.suggested.size).toBe(0);
    expect(graph.blocks.keysOf(pat)).toEqual([]);
    expect(stored(graph)).not.toContain("lee.surfs@acme-shop.com");
    expect(graph.features.get(profileOf(graph, "user_id:twin-user")!)!.emails).toEqual(["leesurfs@acme-shop.com"]);
  });
});
