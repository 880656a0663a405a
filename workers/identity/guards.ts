import type { Cluster, ConflictReason, IdentityGraph } from "./graph";
import { type IdentitySettings, ruleFor } from "./settings";
import { type Identifier, identifierKey } from "./types";

/**
 * The guards an identifier must pass to join an event's clusters: each type's
 * limit (within its window), two user ids never merging, never-merge pairs
 * and the cluster cap (docs/identity.md, "Resolving one event").
 */

/**
 * The values of each type a cluster holds within that type's window at one
 * instant, types in the order the cluster first holds them: what the limits
 * read of a cluster.
 */
export type WindowedValues = Map<string, Set<string>>;

function windowedValues(settings: IdentitySettings, cluster: Cluster, at: number): WindowedValues {
  const out: WindowedValues = new Map();
  for (const identifier of cluster.identifiers.values()) {
    const window = ruleFor(settings, identifier.type).window;
    if (window !== "ever" && identifier.lastSeen < at - window.days * 86_400_000) continue;
    let values = out.get(identifier.type);
    if (!values) out.set(identifier.type, (values = new Set()));
    values.add(identifier.value);
  }
  return out;
}

/**
 * The first guard that accepting these identifiers into these clusters
 * together would break, or null. `views` keeps each cluster's windowed values
 * across the calls of one event (the clusters do not change until its
 * identifiers are all decided), so an event's identifiers do not each walk
 * the clusters again.
 */
export function checkGuards(
  graph: IdentityGraph,
  settings: IdentitySettings,
  clusters: Cluster[],
  accepted: Identifier[],
  at: number,
  views?: Map<string, WindowedValues>,
): ConflictReason | null {
  const held = clusters.map((cluster) => {
    let view = views?.get(cluster.id);
    if (!view) {
      view = windowedValues(settings, cluster, at);
      views?.set(cluster.id, view);
    }
    return view;
  });
  // Types in the order first met: the clusters' own, then the event's.
  const types = new Set<string>();
  for (const view of held) for (const type of view.keys()) types.add(type);
  for (const identifier of accepted) types.add(identifier.type);
  for (const type of types) {
    // Written as loops: this runs for every identifier of every event, and most events touch one cluster.
    let values: Set<string> | undefined;
    let copied = false;
    for (const view of held) {
      const set = view.get(type);
      if (!set) continue;
      if (!values) values = set;
      else {
        if (!copied) (values = new Set(values)), (copied = true);
        for (const value of set) values.add(value);
      }
    }
    let added: string[] | undefined;
    for (const identifier of accepted) {
      if (identifier.type === type && !values?.has(identifier.value) && !added?.includes(identifier.value)) (added ??= []).push(identifier.value);
    }
    if ((values?.size ?? 0) + (added?.length ?? 0) > ruleFor(settings, type).limit) return type === "user_id" ? "user-id-conflict" : "limit";
  }
  if (clusters.length > 1 && violatesNeverMerge(graph, clusters, accepted)) return "never-merge";
  if (distinctKeys(clusters, accepted) > settings.clusterCap) return "cluster-cap";
  return null;
}

/** How many identifier keys the clusters and the accepted identifiers hold together. */
function distinctKeys(clusters: Cluster[], accepted: Identifier[]): number {
  if (clusters.length === 1) {
    const held = clusters[0]!.identifiers;
    return held.size + new Set(accepted.map(identifierKey).filter((key) => !held.has(key))).size;
  }
  const all = new Set<string>();
  for (const cluster of clusters) for (const key of cluster.identifiers.keys()) all.add(key);
  for (const identifier of accepted) all.add(identifierKey(identifier));
  return all.size;
}

function violatesNeverMerge(graph: IdentityGraph, clusters: Cluster[], accepted: Identifier[]): boolean {
  if (graph.neverMerge.size === 0) return false;
  const owner = new Map<string, string>();
  for (const cluster of clusters) for (const key of cluster.identifiers.keys()) owner.set(key, cluster.id);
  for (const identifier of accepted) if (!owner.has(identifierKey(identifier))) owner.set(identifierKey(identifier), "event");
  for (const pair of graph.neverMerge) {
    const [a, b] = pair.split("\u0000") as [string, string];
    const ownerA = owner.get(a);
    const ownerB = owner.get(b);
    if (ownerA && ownerB && ownerA !== ownerB) return true;
  }
  return false;
}
