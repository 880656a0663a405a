import { describe, expect, it } from "vitest";
import { IdentityGraph } from "../../workers/identity/graph";
import { applyEvent } from "../../workers/identity/resolve";
import { DEFAULT_IDENTITY_SETTINGS, type IdentitySettings, identitySettingsSchema } from "../../workers/identity/settings";
import type { Identifier } from "../../workers/identity/types";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 1);

function ids(...keys: string[]): Identifier[] {
  return keys.map((key) => ({ type: key.slice(0, key.indexOf(":")), value: key.slice(key.indexOf(":") + 1) }));
}

function world(settings: IdentitySettings = DEFAULT_IDENTITY_SETTINGS) {
  const graph = new IdentityGraph();
  let n = 0;
  const send = (keys: string[], at = T0 + n * 1000) => applyEvent(graph, settings, { messageId: `m${++n}`, at, identifiers: ids(...keys) });
  const clusterOf = (key: string) => graph.clusterOf(key)?.id;
  return { graph, send, clusterOf };
}

describe("deterministic merges", () => {
  it("joins anonymous browsing to the user who identifies on that device", () => {
    const { send, clusterOf } = world();
    send(["anonymous_id:a1"]);
    const identify = send(["user_id:u1", "anonymous_id:a1"]);
    expect(identify.merge).toBeUndefined();
    expect(clusterOf("user_id:u1")).toBe(clusterOf("anonymous_id:a1"));
  });

  it("merges two anonymous profiles that share an email, keeping the older one's id", () => {
    const { graph, send, clusterOf } = world();
    const first = send(["anonymous_id:a1", "email:ann@shop.example"]);
    send(["anonymous_id:a2"]);
    const second = send(["anonymous_id:a2", "email:ann@shop.example"]);
    expect(second.merge).toMatchObject({ survivor: first.clusterId, rule: "shared-identifier" });
    expect(clusterOf("anonymous_id:a2")).toBe(first.clusterId);
    expect(graph.resolve(second.merge!.absorbed[0]!).id).toBe(first.clusterId);
  });

  it("does not merge when nothing is shared", () => {
    const { send, clusterOf } = world();
    send(["user_id:u1", "email:a@shop.example"]);
    send(["user_id:u2", "email:b@shop.example"]);
    expect(clusterOf("user_id:u1")).not.toBe(clusterOf("user_id:u2"));
  });
});

describe("guards", () => {
  it("never merges two user ids, and queues a review when an email links them", () => {
    const { graph, send, clusterOf } = world();
    send(["user_id:u1", "email:shared@shop.example"]);
    const second = send(["user_id:u2", "email:shared@shop.example"]);
    expect(clusterOf("user_id:u1")).not.toBe(clusterOf("user_id:u2"));
    expect(second.clusterId).toBe(clusterOf("user_id:u2"));
    expect(second.dropped).toMatchObject([{ dropped: "email:shared@shop.example", reason: "user-id-conflict" }]);
    expect([...graph.reviews.values()]).toMatchObject([{ kind: "user-id-conflict", identifiers: ["email:shared@shop.example"], status: "open" }]);
  });

  it("records, without queueing, a household phone shared by two users", () => {
    const { graph, send, clusterOf } = world();
    send(["user_id:mum", "phone:+33612345678"]);
    const kid = send(["user_id:kid", "phone:+33612345678"]);
    expect(clusterOf("user_id:mum")).not.toBe(clusterOf("user_id:kid"));
    expect(kid.dropped).toMatchObject([{ dropped: "phone:+33612345678", reason: "user-id-conflict" }]);
    expect(graph.reviews.size).toBe(0);
  });

  it("keeps the true links an event carries when it drops a conflicting one", () => {
    const { send, clusterOf } = world();
    send(["user_id:u1", "anonymous_id:tablet"]);
    const event = send(["user_id:u2", "anonymous_id:tablet", "email:u2@shop.example"]);
    expect(event.dropped.map((d) => d.dropped)).toEqual(["anonymous_id:tablet"]);
    expect(clusterOf("email:u2@shop.example")).toBe(clusterOf("user_id:u2"));
  });

  it("drops a sixth email on a profile: the limit is five", () => {
    const { send, clusterOf } = world();
    for (let i = 1; i <= 5; i++) send(["user_id:u1", `email:e${i}@shop.example`]);
    const sixth = send(["user_id:u1", "email:e6@shop.example"]);
    expect(sixth.dropped).toMatchObject([{ dropped: "email:e6@shop.example", reason: "limit" }]);
    expect(clusterOf("email:e6@shop.example")).toBeUndefined();
    expect(clusterOf("email:e5@shop.example")).toBe(clusterOf("user_id:u1"));
  });

  it("counts anonymous ids per week: a sixth in one week is dropped, the same one a week later is kept", () => {
    const { send, clusterOf } = world();
    for (let i = 1; i <= 5; i++) send(["user_id:u1", `anonymous_id:a${i}`], T0 + i * 1000);
    expect(send(["user_id:u1", "anonymous_id:a6"], T0 + DAY).dropped).toHaveLength(1);
    expect(send(["user_id:u1", "anonymous_id:a6"], T0 + 8 * DAY).dropped).toHaveLength(0);
    expect(clusterOf("anonymous_id:a6")).toBe(clusterOf("user_id:u1"));
  });

  it("queues a review instead of merging past the cluster cap", () => {
    const settings = identitySettingsSchema.parse({ clusterCap: 4 });
    const { graph, send, clusterOf } = world(settings);
    send(["anonymous_id:a1", "email:x@shop.example", "device_id:d1"]);
    send(["anonymous_id:a2", "device_id:d2"]);
    const joining = send(["anonymous_id:a2", "email:x@shop.example"]);
    expect(joining.dropped).toMatchObject([{ reason: "cluster-cap" }]);
    expect(clusterOf("anonymous_id:a1")).not.toBe(clusterOf("anonymous_id:a2"));
    expect([...graph.reviews.values()].map((r) => r.kind)).toEqual(["cluster-cap"]);
  });

  it("quarantines an identifier seen with more than three user ids and stops matching on it", () => {
    const { graph, send, clusterOf } = world();
    for (const user of ["u1", "u2", "u3"]) send([`user_id:${user}`, "device_id:kiosk"]);
    const fourth = send(["user_id:u4", "device_id:kiosk"]);
    expect(fourth.dropped).toMatchObject([{ dropped: "device_id:kiosk", reason: "quarantined" }]);
    expect(graph.index.get("device_id:kiosk")!.quarantined).toBe(true);
    expect([...graph.reviews.values()].map((r) => r.kind)).toEqual(["quarantine"]);
    expect(send(["device_id:kiosk", "email:walkin@shop.example"]).clusterId).not.toBe(clusterOf("user_id:u1"));
  });
});

describe("logout without reset", () => {
  it("sends a shared device's later anonymous events to the most recent user, without merging the two", () => {
    const { send, clusterOf } = world();
    send(["user_id:alice", "anonymous_id:laptop"]);
    send(["user_id:bob", "anonymous_id:laptop"]);
    expect(clusterOf("user_id:alice")).not.toBe(clusterOf("user_id:bob"));
    expect(send(["anonymous_id:laptop"]).clusterId).toBe(clusterOf("user_id:bob"));
    send(["user_id:alice", "anonymous_id:laptop"]);
    expect(send(["anonymous_id:laptop"]).clusterId).toBe(clusterOf("user_id:alice"));
  });
});

describe("order", () => {
  it("ends in the same clusters whatever the order of events that trigger no guard", () => {
    const events = [
      ["anonymous_id:a1"],
      ["anonymous_id:a1", "email:p@shop.example"],
      ["anonymous_id:a2", "email:p@shop.example"],
      ["user_id:p", "anonymous_id:a2"],
      ["anonymous_id:b1", "phone:+14155550100"],
      ["user_id:q", "phone:+14155550100"],
      ["anonymous_id:c1"],
      ["device_id:d9", "anonymous_id:c1", "user_id:r"],
    ];
    const partition = (order: number[]) => {
      const graph = new IdentityGraph();
      order.forEach((i, n) => applyEvent(graph, DEFAULT_IDENTITY_SETTINGS, { messageId: `e${i}`, at: T0 + n, identifiers: ids(...events[i]!) }));
      return graph
        .liveClusters()
        .map((c) => [...c.identifiers.keys()].sort().join(","))
        .sort();
    };
    const reference = partition(events.map((_, i) => i));
    let seed = 7;
    for (let round = 0; round < 25; round++) {
      const order = events.map((_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
        const j = seed % (i + 1);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      expect(partition(order)).toEqual(reference);
    }
    expect(reference).toHaveLength(3);
  });
});
