import { z } from "zod";
import type { EventLinks } from "./event-links";
import { IdentityGraph, type ReviewItem } from "./graph";
import { blockingKeys, type ProfileFeatures } from "./probabilistic";

/**
 * The graph as JSON: the rows the Durable Object stores are validated with
 * these schemas, and a graph it stored as a snapshot before its collections
 * became tables is read with them. Parsed with zod on the way back in: stored
 * JSON is never trusted. Per-event state (event assignments and links) is
 * included only on request. Version 1 snapshots held it inside each cluster;
 * reading one moves it into the graph's event store.
 */
const identifierSchema = z.object({ type: z.string(), value: z.string(), firstSeen: z.number(), lastSeen: z.number() });
export const linkSchema = z.object({ messageId: z.string(), keys: z.array(z.string()), at: z.number() });
const clusterSchema = z.object({
  id: z.string(),
  createdAt: z.number(),
  seq: z.number(),
  identifiers: z.array(z.tuple([z.string(), identifierSchema])),
  /** Version 1 only. */
  links: z.array(linkSchema).optional(),
  forwardedTo: z.string().optional(),
});
/** A cluster as the object's table stores it: identifiers only, links live in their own table. */
export const clusterRowSchema = clusterSchema.omit({ links: true });
export const indexEntrySchema = z.object({ clusterId: z.string(), userIds: z.array(z.string()), quarantined: z.boolean(), shared: z.boolean().optional() });
export const mergeSchema = z.object({
  id: z.string(),
  survivor: z.string(),
  absorbed: z.array(z.string()),
  messageId: z.string(),
  evidence: z.array(z.object({ key: z.string(), clusterId: z.string() })),
  rule: z.enum(["shared-identifier", "review-approved", "probabilistic"]),
  at: z.number(),
  retracted: z.object({ at: z.number(), restored: z.array(z.string()) }).optional(),
});
export const reviewSchema = z.object({
  id: z.string(),
  kind: z.enum(["user-id-conflict", "cluster-cap", "quarantine", "probabilistic"]),
  clusters: z.array(z.string()),
  identifiers: z.array(z.string()),
  messageId: z.string().optional(),
  detail: z.string(),
  score: z.number().optional(),
  evidence: z.array(z.object({ field: z.string(), level: z.string(), weight: z.number() })).optional(),
  status: z.enum(["open", "approved", "rejected"]),
  at: z.number(),
});
export const conflictSchema = z.object({
  messageId: z.string(),
  dropped: z.string(),
  reason: z.enum(["limit", "user-id-conflict", "never-merge", "cluster-cap", "quarantined"]),
  clusters: z.array(z.string()),
  at: z.number(),
});

export const featuresSchema = z.object({
  firstName: z.string().optional(),
  lastName: z.string().optional(),
  emails: z.array(z.string()),
  phones: z.array(z.string()),
  address: z.object({ street: z.string().optional(), city: z.string().optional(), postalCode: z.string().optional(), country: z.string().optional() }).optional(),
  ips: z.array(z.string()),
  userAgents: z.array(z.string()),
});

export const graphSnapshotSchema = z.object({
  v: z.union([z.literal(1), z.literal(2)]),
  counter: z.number(),
  clusters: z.array(clusterSchema),
  index: z.array(z.tuple([z.string(), indexEntrySchema])),
  merges: z.array(mergeSchema),
  conflicts: z.array(conflictSchema),
  reviews: z.array(reviewSchema),
  neverMerge: z.array(z.string()),
  tombstones: z.array(z.string()),
  eventCluster: z.array(z.tuple([z.string(), z.string()])).optional(),
  links: z.array(z.tuple([z.string(), linkSchema])).optional(),
  features: z.array(z.tuple([z.string(), featuresSchema])).default([]),
  suggested: z.array(z.string()).default([]),
});
export type GraphSnapshot = z.infer<typeof graphSnapshotSchema>;

export function toSnapshot(graph: IdentityGraph, { events = true } = {}): GraphSnapshot {
  return {
    v: 2,
    counter: graph.counterValue(),
    clusters: [...graph.clusters.values()].map((c) => ({ ...c, identifiers: [...c.identifiers], ...(c.forwardedTo ? { forwardedTo: c.forwardedTo } : {}) })),
    index: [...graph.index],
    merges: [...graph.merges.values()],
    conflicts: graph.conflicts.all(),
    reviews: [...graph.reviews.values()],
    neverMerge: [...graph.neverMerge],
    tombstones: [...graph.tombstones],
    ...(events ? { eventCluster: [...graph.events.assignments()], links: [...graph.events.allLinks()].map(({ clusterId, link }) => [clusterId, link] as [string, typeof link]) } : {}),
    features: [...graph.features],
    suggested: [...graph.suggested],
  };
}

/** `events`: where the graph keeps per-event state; any the snapshot holds is written into it. */
export function fromSnapshot(raw: unknown, events?: EventLinks): IdentityGraph {
  const snapshot = graphSnapshotSchema.parse(raw);
  const graph = new IdentityGraph(snapshot.counter, events);
  addToGraph(graph, snapshot);
  return graph;
}

/** A slice of a snapshot: any of its collections, each possibly in part. */
const snapshotPartSchema = graphSnapshotSchema.omit({ v: true, counter: true }).partial();
type SnapshotPart = z.infer<typeof snapshotPartSchema>;
const snapshotHeadSchema = z.object({ v: z.literal(3), counter: z.number() });

/**
 * The graph as a series of JSON parts, none much over `maxChars`: a head with
 * the id counter, then each collection in slices. Writing parts one at a time
 * never holds the whole graph as one string, which would need as much memory
 * again as the graph itself. Per-event state is never included.
 */
export function* snapshotParts(graph: IdentityGraph, maxChars = 500_000): Generator<string> {
  yield JSON.stringify({ v: 3, counter: graph.counterValue() });
  const clusters = function* () {
    for (const c of graph.clusters.values()) yield { ...c, identifiers: [...c.identifiers] };
  };
  const collections: [keyof SnapshotPart, Iterable<unknown>][] = [
    ["clusters", clusters()],
    ["index", graph.index],
    ["merges", graph.merges.values()],
    ["conflicts", graph.conflicts.all()],
    ["reviews", graph.reviews.values()],
    ["neverMerge", graph.neverMerge],
    ["tombstones", graph.tombstones],
    ["features", graph.features],
    ["suggested", graph.suggested],
  ];
  for (const [name, items] of collections) {
    let slice: string[] = [];
    let size = 0;
    for (const item of items) {
      const json = JSON.stringify(item);
      slice.push(json);
      size += json.length + 1;
      if (size < maxChars) continue;
      yield `{"${name}":[${slice.join(",")}]}`;
      slice = [];
      size = 0;
    }
    if (slice.length) yield `{"${name}":[${slice.join(",")}]}`;
  }
}

/** Rebuilds a graph from `snapshotParts`' output, in order; each part is parsed and validated on its own. */
export function fromSnapshotParts(parts: Iterable<string>, events?: EventLinks): IdentityGraph {
  let graph: IdentityGraph | undefined;
  for (const part of parts) {
    if (!graph) graph = new IdentityGraph(snapshotHeadSchema.parse(JSON.parse(part)).counter, events);
    else addToGraph(graph, snapshotPartSchema.parse(JSON.parse(part)));
  }
  if (!graph) throw new Error("a snapshot has at least its head part");
  return graph;
}

function addToGraph(graph: IdentityGraph, snapshot: SnapshotPart) {
  for (const { links, ...c } of snapshot.clusters ?? []) {
    graph.clusters.set(c.id, { ...c, identifiers: new Map(c.identifiers) });
    for (const link of links ?? []) graph.events.addLink(c.id, link);
  }
  for (const [clusterId, link] of snapshot.links ?? []) graph.events.addLink(clusterId, link);
  for (const [key, entry] of snapshot.index ?? []) graph.index.set(key, entry);
  for (const m of snapshot.merges ?? []) graph.merges.set(m.id, m);
  for (const conflict of snapshot.conflicts ?? []) graph.conflicts.add(conflict);
  for (const r of snapshot.reviews ?? []) graph.addReview(r as ReviewItem);
  for (const pair of snapshot.neverMerge ?? []) graph.neverMerge.add(pair);
  for (const messageId of snapshot.tombstones ?? []) graph.tombstones.add(messageId);
  for (const [messageId, clusterId] of snapshot.eventCluster ?? []) graph.events.assign(messageId, clusterId);
  for (const [clusterId, features] of snapshot.features ?? []) {
    graph.features.set(clusterId, features as ProfileFeatures);
    graph.blocks.enter(clusterId, blockingKeys(features as ProfileFeatures));
  }
  for (const pair of snapshot.suggested ?? []) graph.suggested.add(pair);
}
