/**
 * The naive baseline: transitive closure over every identifier an event carries, by union-find,
 * with no guards, no limits and no blocked values. Two events that share any identifier end in the
 * same cluster, and so does everything either is linked to.
 *
 * Identifiers (typed keys, `type:value`, as in workers/identity/types.ts):
 * - `user_id` (userId) and `anonymous_id` (anonymousId), exactly as sent;
 * - alias `previousId`, as both `user_id` and `anonymous_id` (Segment allows either);
 * - `email` from `traits.email` and `context.traits.email`, trimmed and lowercased;
 * - `phone` from `traits.phone` and `context.traits.phone`, digits only;
 * - `device_id` (`context.device.id`), `advertising_id` (`context.device.advertisingId`);
 * - `context.externalIds[]` as `<type>:<id>`.
 * Only missing, non-string or empty values are skipped. IPs and user agents are not used.
 */

/** The identifier keys of one Segment message, in the order above. */
export function identifiersOf(event) {
  const keys = [];
  const add = (type, value) => { if (typeof value === "string" && value !== "") keys.push(`${type}:${value}`); };
  add("user_id", event.userId);
  add("anonymous_id", event.anonymousId);
  if (event.type === "alias") { add("user_id", event.previousId); add("anonymous_id", event.previousId); }
  const ctx = event.context ?? {};
  for (const traits of [event.traits, ctx.traits]) {
    if (!traits) continue;
    if (typeof traits.email === "string") add("email", traits.email.trim().toLowerCase());
    if (typeof traits.phone === "string") add("phone", traits.phone.replace(/\D/g, ""));
  }
  add("device_id", ctx.device?.id);
  add("advertising_id", ctx.device?.advertisingId);
  for (const x of ctx.externalIds ?? []) if (x && typeof x.type === "string") add(x.type, x.id);
  return keys;
}

/**
 * Clusters `events` by the transitive closure of their identifiers. Returns Map<messageId, clusterId>
 * where clusterId is a number (the union-find root). `accept(key, event)`, if given, keeps only the
 * identifiers it returns true for (run-baseline uses it for an oracle; the baseline itself passes none).
 * An event left with no identifier is a cluster of its own.
 */
export function naiveBaseline(events, { accept } = {}) {
  const index = new Map(); // identifier key -> node
  let parent = new Int32Array(1024);
  let nodes = 0;
  const node = (key) => {
    let n = index.get(key);
    if (n === undefined) {
      if (nodes === parent.length) { const grown = new Int32Array(nodes * 2); grown.set(parent); parent = grown; }
      n = nodes++;
      parent[n] = n;
      index.set(key, n);
    }
    return n;
  };
  const find = (x) => {
    let root = x;
    while (parent[root] !== root) root = parent[root];
    while (parent[x] !== root) { const next = parent[x]; parent[x] = root; x = next; }
    return root;
  };
  const union = (a, b) => { const ra = find(a), rb = find(b); if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb); };

  const firstNode = new Int32Array(events.length).fill(-1);
  for (let i = 0; i < events.length; i++) {
    let first = -1;
    for (const key of identifiersOf(events[i])) {
      if (accept && !accept(key, events[i])) continue;
      const n = node(key);
      if (first < 0) first = n;
      else union(first, n);
    }
    firstNode[i] = first;
  }
  const out = new Map();
  let lone = -1;
  for (let i = 0; i < events.length; i++) out.set(events[i].messageId, firstNode[i] < 0 ? lone-- : find(firstNode[i]));
  return out;
}
