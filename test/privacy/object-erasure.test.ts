import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { PrivacyPerson } from "../../durable-objects/identity-graph";
import { CONSENT_EVENT } from "../../workers/privacy/settings";
import type { ProfileRow } from "../../workers/profiles/write-through";
import { unique } from "../profiles/helpers";
import { buyers, objectStorageText, queued, tablesHolding } from "./object-helpers";

const revenue = { id: "ctr_revenue", kind: "computed_trait", key: "revenue_30d", name: "Revenue, 30 days", version: 1, definition: { function: "sum", event: "Order Completed", property: "revenue", window: { within: { days: 30 } } } };

/** Pat: browses anonymously, signs up, and the two profiles merge; orders, joins an account, states consent. Sam: another customer of the same account. */
function people(tag: string) {
  const pat = {
    anon: `pat-anon-${tag}`,
    anon2: `pat-tablet-${tag}`,
    user: `pat-user-${tag}`,
    email: `pat-${tag}@acme-shop.com`,
    phone: "+14155550123",
    crm: `pat-crm-${tag}`,
    colour: `teal-of-pat-${tag}`,
    name: `Patricia Erasable${tag}`,
  };
  const sam = { user: `sam-user-${tag}`, email: `sam-${tag}@acme-shop.com`, plan: `plan-of-sam-${tag}` };
  const group = `acme-${tag}`;
  const events = [
    queued({ type: "identify", anonymousId: pat.anon, traits: { favourite_colour: pat.colour } }, 50),
    queued({ type: "identify", userId: pat.user, traits: { email: pat.email, phone: "(415) 555-0123", name: pat.name }, context: { externalIds: [{ type: "crm_id", id: pat.crm, collection: "users", encoding: "none" }] } }, 40),
    queued({ event: "Order Completed", userId: pat.user, anonymousId: pat.anon, properties: { revenue: 42 } }, 30),
    queued({ type: "page", name: "Home", userId: pat.user, anonymousId: pat.anon2 }, 20),
    queued({ type: "group", userId: pat.user, groupId: group, traits: { name: "Acme Corp", industry: "retail" } }, 15),
    queued({ event: CONSENT_EVENT, userId: pat.user, context: { consent: { categoryPreferences: { analytics: true, advertising: false } } } }, 10),
    queued({ type: "identify", userId: sam.user, traits: { email: sam.email, plan: sam.plan } }, 45),
    queued({ event: "Order Completed", userId: sam.user, properties: { revenue: 7 } }, 35),
    queued({ type: "group", userId: sam.user, groupId: group }, 5),
  ];
  return { pat, sam, group, events };
}

const d1Rows = async (workspaceId: string, table: string) =>
  (await env.DB.prepare(`SELECT * FROM ${table} WHERE workspace_id = ?`).bind(workspaceId).all<Record<string, unknown>>()).results.map((row) => JSON.stringify(row)).join("\n");

describe("erasing a person from the workspace's identity object", () => {
  it("finds everything about them by any identifier, erases every trace from the object's storage and D1, and leaves the other person whole", async () => {
    const workspaceId = unique("erase-ws");
    const stub = env.IDENTITY.getByName(workspaceId);
    const { pat, sam, group, events } = people(workspaceId);
    expect((await stub.putAudience(buyers)).ok).toBe(true);
    expect((await stub.putAudience(revenue)).ok).toBe(true);
    const assignments = await stub.resolveEvents(events);
    expect(assignments.filter((a) => a.mergeId)).toHaveLength(1);
    await stub.flush();
    expect(await d1Rows(workspaceId, "profile_identifiers")).toContain(pat.email);

    // An access request: the raw value is normalised as the workspace stores it.
    const person = (await stub.personForPrivacy("email", pat.email.toUpperCase())) as unknown as PrivacyPerson;
    expect(person.profileIds).toHaveLength(2);
    expect(person.profileIds[0]).toBe(person.profileId);
    expect(person.identifiers.map((i) => `${i.type}:${i.value}`).sort()).toEqual(
      [`anonymous_id:${pat.anon}`, `anonymous_id:${pat.anon2}`, `crm_id:${pat.crm}`, `email:${pat.email}`, `phone:${pat.phone}`, `user_id:${pat.user}`].sort(),
    );
    expect(person.messageIds).toEqual(events.slice(0, 6).map((e) => e.messageId).sort());
    expect(person.events.map((e) => e.message_id)).toEqual(events.slice(0, 6).map((e) => e.messageId));
    expect(person.groupIds).toEqual([group]);
    expect(person.profile).toMatchObject({ traits: { favourite_colour: pat.colour, name: pat.name }, segments: [expect.objectContaining({ key: "buyers" })], computedTraits: { revenue_30d: 42 } });
    expect(person.merges).toHaveLength(1);
    expect(person.merges[0]!.evidence.map((e) => e.key)).toContain(`anonymous_id:${pat.anon}`);
    expect(person.consent).toMatchObject({ analytics: { consented: true }, advertising: { consented: false } });
    expect(person.consentHistory).toEqual([{ messageId: events[5]!.messageId, at: Date.parse(events[5]!.timestamp), categoryPreferences: { analytics: true, advertising: false } }]);
    expect(await stub.personForPrivacy("profile_id", person.profileIds[1]!)).toMatchObject({ profileId: person.profileId });
    expect(await stub.personForPrivacy("email", "nobody@acme-shop.com")).toBeNull();

    expect(await stub.erasePerson(person.profileIds)).toEqual({ profiles: 2, identifiers: 6, events: 6 });

    const patValues = [pat.anon, pat.anon2, pat.user, pat.email, pat.phone, "(415) 555-0123", pat.crm, pat.colour, pat.name];
    const stored = await objectStorageText(stub);
    // The lookups' side tables too: each names identifiers, user ids or profile ids.
    const lookupTables = ["graph_cluster_identifiers", "graph_index_user_ids", "graph_feature_identifiers", "graph_merge_clusters", "graph_review_clusters"];
    expect(Object.keys(stored)).toEqual(expect.arrayContaining([...lookupTables, "graph_clusters", "graph_index", "graph_merges", "graph_features", "graph_blocks", "graph_conflicts", "graph_links", "graph_event_clusters", "profile_events", "profile_traits", "profile_consent", "identifier_sources", "outbox", "emissions", "audience_values", "person_state"]));
    for (const value of patValues) expect(tablesHolding(stored, value), value).toEqual([]);
    // Only the pending D1 deletion may still name them, until the write-through has run.
    for (const id of person.profileIds) expect(tablesHolding(stored, id).filter((table) => table !== "outbox"), id).toEqual([]);
    for (const value of [sam.user, sam.email, sam.plan]) expect(tablesHolding(stored, value).length, value).toBeGreaterThan(0);
    expect(tablesHolding(stored, sam.email)).toEqual(expect.arrayContaining(["graph_cluster_identifiers", "graph_feature_identifiers"]));
    expect(tablesHolding(stored, "Acme Corp")).toEqual(["account_traits"]);

    const samProfile = (await stub.profileByKey(`email:${sam.email}`)) as unknown as ProfileRow | null;
    expect(samProfile).toMatchObject({ userId: sam.user, traits: { plan: sam.plan }, segments: [expect.objectContaining({ key: "buyers" })], links: [expect.objectContaining({ groupId: group })] });
    expect(await stub.lookup(`user_id:${pat.user}`)).toBeNull();
    expect(await stub.erasePerson(person.profileIds)).toEqual({ profiles: 0, identifiers: 0, events: 0 });

    // A fresh instance rebuilds the graph from storage alone: Pat is not in it.
    await evictDurableObject(stub);
    for (const key of [`email:${pat.email}`, `anonymous_id:${pat.anon}`, `crm_id:${pat.crm}`]) expect(await stub.lookup(key)).toBeNull();
    expect(await stub.personForPrivacy("profile_id", person.profileId)).toBeNull();
    expect((await stub.lookup(`user_id:${sam.user}`))!.profileId).toBe(samProfile!.profileId);
    const [again] = await stub.resolveEvents([queued({ event: "Order Completed", userId: sam.user, properties: { revenue: 1 } }, 1)]);
    expect(again!.profileId).toBe(samProfile!.profileId);

    await stub.flush();
    expect(await stub.writeBacklog()).toBe(0);
    for (const table of ["profiles", "profile_identifiers", "profile_events", "account_links"]) {
      const rows = await d1Rows(workspaceId, table);
      for (const value of [...patValues, ...person.profileIds]) expect(rows, `${table} holds ${value}`).not.toContain(value);
      expect(rows, `${table} keeps Sam`).toContain(samProfile!.profileId);
    }
    expect(await d1Rows(workspaceId, "accounts")).toContain("Acme Corp");
  });
});
