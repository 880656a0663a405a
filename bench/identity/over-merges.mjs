/**
 * Why a resolver's clusters over-merge: for every predicted cluster holding events of more than one
 * true person, which identifier brought each minority person's events in, and which hazard of the
 * synthetic population that identifier belongs to.
 *
 * `overMergeBreakdown(population, predicted, graph, { unattributable })`:
 * - the cluster's main person is the one with most events in it; every other person in it is a
 *   "minority" person;
 * - a minority person's bridging identifiers are the keys on the links (the identifiers the resolver
 *   accepted, the keys of its link) of their events in the cluster that also appear on the links
 *   of another person's events in the same cluster;
 * - each bridging key is classified by what it is in the population (see `hazardOf`); a minority
 *   person is counted under the hazard of their first bridging key in a fixed order of hazards;
 * - wrong pairs (pairs of events in one cluster but of different people) are attributed to minority
 *   people: the pairs between a minority person and the main person, and between two minority people
 *   to the one listed first, so each wrong pair counts exactly once; their sum over hazards is the
 *   pairwise precision loss: predictedPairs × (1 − precision);
 * - `unattributable` (a Set of messageIds, from oracle.mjs) splits the minority events into those no
 *   identifier can place (the oracle leaves them alone too) and those it places correctly.
 */

const HAZARDS = [
  "kiosk device",
  "household tablet",
  "support agent desktop (login as)",
  "someone else's device (login without reset)",
  "own device reused / other device key",
  "shared phone",
  "shared email",
  "user id",
  "custom id",
  "no shared key on links",
];

/** Device keys (anonymous_id, device_id, advertising_id) -> what the device is. */
function deviceIndex(population) {
  const owner = new Map(); // key -> { person, agent }
  for (const p of population.people) {
    for (const d of p.devices) {
      const info = { person: p.id, agent: p.agent };
      owner.set(`anonymous_id:${d.anonymousId}`, info);
      if (d.deviceId) owner.set(`device_id:${d.deviceId}`, info);
    }
  }
  const kind = new Map(); // key -> "kiosk" | "tablet"
  for (const e of population.events) {
    const ua = e.context.userAgent ?? "";
    const k = e.type === "page" && e.name === "Welcome" ? "kiosk" : ua.includes("iPad") ? "tablet" : null;
    if (!k) continue;
    for (const key of deviceKeys(e)) if (kind.get(key) !== "kiosk") kind.set(key, k);
  }
  // Advertising ids follow the device id of the event they came with.
  for (const e of population.events) {
    const d = e.context.device;
    if (!d?.advertisingId) continue;
    const o = owner.get(`device_id:${d.id}`);
    if (o) owner.set(`advertising_id:${d.advertisingId.toLowerCase()}`, o);
  }
  return { owner, kind };
}

function deviceKeys(e) {
  const keys = [];
  if (e.anonymousId) keys.push(`anonymous_id:${e.anonymousId}`);
  if (e.context.device?.id) keys.push(`device_id:${e.context.device.id}`);
  if (e.context.device?.advertisingId) keys.push(`advertising_id:${e.context.device.advertisingId.toLowerCase()}`);
  return keys;
}

function hazardOf(key, devices) {
  const type = key.slice(0, key.indexOf(":"));
  if (type === "anonymous_id" || type === "device_id" || type === "advertising_id") {
    const k = devices.kind.get(key);
    if (k === "kiosk") return "kiosk device";
    if (k === "tablet") return "household tablet";
    const o = devices.owner.get(key);
    if (o?.agent) return "support agent desktop (login as)";
    if (o) return "someone else's device (login without reset)";
    return "own device reused / other device key";
  }
  if (type === "phone") return "shared phone";
  if (type === "email") return "shared email";
  if (type === "user_id") return "user id";
  return "custom id";
}

export function overMergeBreakdown(population, predicted, graph, { unattributable = new Set() } = {}) {
  const { truth, events } = population;
  const devices = deviceIndex(population);
  const byCluster = new Map(); // clusterId -> Map(person -> messageIds[])
  for (const e of events) {
    const c = predicted.get(e.messageId);
    if (c === undefined) continue;
    let row = byCluster.get(c);
    if (!row) byCluster.set(c, (row = new Map()));
    const who = truth.get(e.messageId);
    let ids = row.get(who);
    if (!ids) row.set(who, (ids = []));
    ids.push(e.messageId);
  }
  const linkKeys = new Map(); // messageId -> accepted keys
  for (const { link } of graph.events.allLinks()) linkKeys.set(link.messageId, link.keys);
  // Anonymous: no userId, or a placeholder one (the resolver refuses it).
  const customerIds = new Set(population.people.map((p) => p.customerId).filter(Boolean));
  const anonymous = new Set(events.filter((e) => !customerIds.has(e.userId)).map((e) => e.messageId));

  const rows = Object.fromEntries(HAZARDS.map((h) => [h, { clusters: new Set(), people: 0, events: 0, anonymousEvents: 0, unattributableEvents: 0, wrongPairs: 0 }]));
  const bridges = new Map(); // key -> { hazard, clusters, people }
  let wrongPairs = 0;
  for (const [clusterId, row] of byCluster) {
    if (row.size < 2) continue;
    const people = [...row.entries()].sort((a, b) => b[1].length - a[1].length);
    const keyPeople = new Map(); // key -> Set(person) over this cluster's links
    for (const [who, ids] of people) for (const id of ids) for (const key of linkKeys.get(id) ?? []) {
      let s = keyPeople.get(key);
      if (!s) keyPeople.set(key, (s = new Set()));
      s.add(who);
    }
    const [, ...minority] = people;
    let rest = people.reduce((n, [, ids]) => n + ids.length, 0) - people[0][1].length;
    for (const [who, ids] of minority) {
      rest -= ids.length;
      const pairs = ids.length * (people[0][1].length + rest);
      wrongPairs += pairs;
      const keys = new Set();
      for (const id of ids) for (const key of linkKeys.get(id) ?? []) if (keyPeople.get(key).size > 1) keys.add(key);
      const hazards = [...keys].map((k) => hazardOf(k, devices));
      const hazard = HAZARDS.find((h) => hazards.includes(h)) ?? "no shared key on links";
      const r = rows[hazard];
      r.clusters.add(clusterId);
      r.people++;
      r.events += ids.length;
      r.anonymousEvents += ids.filter((id) => anonymous.has(id)).length;
      r.unattributableEvents += ids.filter((id) => unattributable.has(id)).length;
      r.wrongPairs += pairs;
      for (const key of keys) {
        let b = bridges.get(key);
        if (!b) bridges.set(key, (b = { hazard: hazardOf(key, devices), clusters: new Set(), people: 0, events: 0 }));
        b.clusters.add(clusterId);
        b.people++;
        b.events += ids.length;
      }
    }
  }
  const predictedPairs = [...byCluster.values()].reduce((n, row) => {
    const size = [...row.values()].reduce((m, ids) => m + ids.length, 0);
    return n + (size * (size - 1)) / 2;
  }, 0);
  const table = {};
  for (const [h, r] of Object.entries(rows)) {
    if (r.people === 0) continue;
    table[h] = {
      "clusters": r.clusters.size,
      "minority people": r.people,
      "their events": r.events,
      "of which anonymous": r.anonymousEvents,
      "of which unattributable": r.unattributableEvents,
      "wrong pairs": r.wrongPairs,
      "precision lost": +(r.wrongPairs / predictedPairs).toFixed(4),
    };
  }
  const topBridges = [...bridges.entries()]
    .sort((a, b) => b[1].events - a[1].events)
    .slice(0, 10)
    .map(([key, b]) => ({ key, hazard: b.hazard, clusters: b.clusters.size, "minority people": b.people, "their events": b.events, quarantined: !!graph.index.get(key)?.quarantined, "user ids seen": graph.index.get(key)?.userIds.length ?? 0 }));
  return { table, topBridges, wrongPairs, predictedPairs };
}
