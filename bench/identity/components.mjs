/**
 * Whether the identity graph can be sharded by connected component, on the benchmark's
 * population: the components of identifiers that appear together in an event, once with every
 * identifier and once without those seen with more than one user id (shared devices, household
 * phones, kiosks), beside the clusters the real resolver makes.
 *
 *   node bench/identity/components.mjs [people] [seed]
 */
import { generatePopulation } from "./population.mjs";
import { loadResolver, runResolver } from "./resolver.mjs";

/** Union-find over identifier keys; each event's keys are joined. Returns component sizes (identifiers) and the root of each key. */
function components(linkSets) {
  const parent = new Map();
  const find = (key) => {
    let root = key;
    while (parent.get(root) !== root) root = parent.get(root);
    // Path compression: every key on the way points at the root directly.
    for (let at = key; at !== root; ) {
      const next = parent.get(at);
      parent.set(at, root);
      at = next;
    }
    return root;
  };
  for (const keys of linkSets) {
    for (const key of keys) if (!parent.has(key)) parent.set(key, key);
    for (const key of keys.slice(1)) parent.set(find(key), find(keys[0]));
  }
  const sizes = new Map();
  for (const key of parent.keys()) {
    const root = find(key);
    sizes.set(root, (sizes.get(root) ?? 0) + 1);
  }
  return { sizes: [...sizes.values()].sort((a, b) => b - a), find, identifiers: parent.size };
}

export async function benchComponents({ people = 10_000, seed = 42 } = {}) {
  const resolver = await loadResolver();
  const { events, truth } = generatePopulation({ people, seed });
  const perEvent = events.map((event) => ({ event, keys: resolver.extractIdentifiers(event, resolver.DEFAULT_IDENTITY_SETTINGS).identifiers.map(resolver.identifierKey) }));

  const all = components(perEvent.map((e) => e.keys));
  const peopleByRoot = new Map();
  const keysByRoot = new Map();
  for (const { event, keys } of perEvent) {
    if (!keys.length) continue;
    const root = all.find(keys[0]);
    if (!peopleByRoot.has(root)) peopleByRoot.set(root, new Set());
    peopleByRoot.get(root).add(truth.get(event.messageId));
    if (!keysByRoot.has(root)) keysByRoot.set(root, new Set());
    for (const key of keys) keysByRoot.get(root).add(key);
  }
  const giant = [...keysByRoot].sort((a, b) => b[1].size - a[1].size)[0];

  const userIds = new Map();
  for (const { keys } of perEvent) {
    const user = keys.find((k) => k.startsWith("user_id:"));
    if (user) for (const key of keys) if (key !== user) userIds.set(key, (userIds.get(key) ?? new Set()).add(user));
  }
  const shared = new Set([...userIds].filter(([, users]) => users.size > 1).map(([key]) => key));
  const unshared = components(perEvent.map((e) => e.keys.filter((key) => !shared.has(key))));

  const run = runResolver(resolver, events);
  const clusters = run.graph.liveClusters().map((c) => c.identifiers.size).sort((a, b) => b - a);
  return {
    people,
    identifiers: all.identifiers,
    coOccurrence: { components: all.sizes.length, largest: all.sizes[0], largestPeople: peopleByRoot.get(giant[0]).size, next: all.sizes.slice(1, 4) },
    shared: shared.size,
    withoutShared: { components: unshared.sizes.length, largest: unshared.sizes[0] },
    clusters: { count: clusters.length, largest: clusters[0] },
  };
}

export function printComponents(r) {
  console.log(`\nconnected components of identifiers seen together, ${r.people.toLocaleString("en-US")} people, ${r.identifiers.toLocaleString("en-US")} identifiers`);
  console.log(`  every identifier:            ${r.coOccurrence.components.toLocaleString("en-US")} components, largest ${r.coOccurrence.largest.toLocaleString("en-US")} identifiers (${((r.coOccurrence.largest / r.identifiers) * 100).toFixed(1)} %) of ${r.coOccurrence.largestPeople.toLocaleString("en-US")} people, next ${r.coOccurrence.next.join(", ")}`);
  console.log(`  without the ${r.shared.toLocaleString("en-US")} seen with 2+ user ids: ${r.withoutShared.components.toLocaleString("en-US")} components, largest ${r.withoutShared.largest} identifiers`);
  console.log(`  the resolver's clusters:     ${r.clusters.count.toLocaleString("en-US")}, largest ${r.clusters.largest} identifiers`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printComponents(await benchComponents({ people: process.argv[2] ? Number(process.argv[2]) : undefined, seed: process.argv[3] ? Number(process.argv[3]) : undefined }));
}
