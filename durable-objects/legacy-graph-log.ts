import { z } from "zod";
import { applyEventWithFeatures, type EventInput } from "../workers/identity/apply";
import { eraseClusters } from "../workers/identity/erase";
import type { EventLinks } from "../workers/identity/event-links";
import type { GraphCollections, IdentityGraph } from "../workers/identity/graph";
import { blockingKeys } from "../workers/identity/probabilistic";
import { DEFAULT_IDENTITY_SETTINGS, type IdentitySettings, identitySettingsSchema } from "../workers/identity/settings";
import { fromSnapshot, fromSnapshotParts } from "../workers/identity/snapshot";
import { approveReview, rejectReview, splitIdentifiers, unmerge } from "../workers/identity/unmerge";
import type { SqlExec } from "./sql-event-links";
import { tableExists } from "./sql-table";

/**
 * Reads a graph stored the way the object stored it before its collections
 * became tables: a snapshot (in parts, or one JSON cut into chunks) and the
 * log of operations after it, replayed in order. Per-event state was already
 * in its own tables, as of the log's end, and replay only sets it again. Used
 * once, to move the graph into the tables; then both are dropped.
 */
const operationSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("events"),
    inputs: z.array(
      z.object({
        messageId: z.string(),
        at: z.number(),
        identifiers: z.array(z.object({ type: z.string(), value: z.string() })),
        features: z.record(z.string(), z.unknown()).optional(),
      }),
    ),
  }),
  z.object({ kind: z.literal("unmerge"), mergeId: z.string(), at: z.number() }),
  z.object({ kind: z.literal("approve"), reviewId: z.string(), at: z.number() }),
  z.object({ kind: z.literal("reject"), reviewId: z.string() }),
  z.object({ kind: z.literal("split"), profileId: z.string(), keys: z.array(z.string()) }),
  z.object({ kind: z.literal("settings"), settings: z.unknown() }),
  z.object({ kind: z.literal("erase"), profileIds: z.array(z.string()) }),
]);

export function readLegacyGraph(sql: SqlExec, events: EventLinks): { graph: IdentityGraph; settings: IdentitySettings } | null {
  if (!tableExists(sql, "snapshot") && !tableExists(sql, "operations")) return null;
  const chunks = tableExists(sql, "snapshot") ? sql.exec<{ seq: number; data: string }>("SELECT seq, data FROM snapshot ORDER BY chunk").toArray() : [];
  let graph: IdentityGraph;
  let settings = DEFAULT_IDENTITY_SETTINGS;
  if (chunks.length === 0) graph = fromSnapshotParts([JSON.stringify({ v: 3, counter: 0 })], events);
  else if (chunks[0]!.data.startsWith('{"settings":')) {
    settings = identitySettingsSchema.parse((JSON.parse(chunks[0]!.data) as { settings?: unknown }).settings);
    graph = fromSnapshotParts(
      chunks.slice(1).map((c) => c.data),
      events,
    );
  } else {
    const parsed = JSON.parse(chunks.map((c) => c.data).join("")) as { graph: unknown; settings: unknown };
    graph = fromSnapshot(parsed.graph, events);
    settings = identitySettingsSchema.parse(parsed.settings);
  }
  const since = chunks[0]?.seq ?? 0;
  const ops = tableExists(sql, "operations") ? sql.exec<{ op: string }>("SELECT op FROM operations WHERE seq > ? ORDER BY seq", since).toArray() : [];
  for (const row of ops) {
    const op = operationSchema.parse(JSON.parse(row.op));
    if (op.kind === "events") for (const input of op.inputs) applyEventWithFeatures(graph, settings, input as EventInput);
    else if (op.kind === "unmerge") unmerge(graph, op.mergeId, op.at);
    else if (op.kind === "approve") approveReview(graph, op.reviewId, op.at);
    else if (op.kind === "reject") rejectReview(graph, op.reviewId);
    else if (op.kind === "split") splitIdentifiers(graph, op.profileId, op.keys);
    else if (op.kind === "erase") eraseClusters(graph, op.profileIds);
    else settings = identitySettingsSchema.parse(op.settings);
  }
  return { graph, settings };
}

export function dropLegacyTables(sql: SqlExec) {
  sql.exec("DROP TABLE IF EXISTS snapshot");
  sql.exec("DROP TABLE IF EXISTS operations");
}

/** Copies an in-memory graph into stored collections. */
export function copyGraph(from: IdentityGraph, to: GraphCollections) {
  for (const [id, cluster] of from.clusters) to.clusters.set(id, cluster);
  for (const [key, entry] of from.index) to.index.set(key, entry);
  for (const [id, merge] of from.merges) to.merges.set(id, merge);
  for (const [id, review] of from.reviews) to.reviews.set(id, review);
  for (const [id, features] of from.features) {
    to.features.set(id, features);
    to.blocks.enter(id, blockingKeys(features));
  }
  for (const conflict of from.conflicts.all()) to.conflicts.add(conflict);
  for (const pair of from.neverMerge) to.neverMerge.add(pair);
  for (const messageId of from.tombstones) to.tombstones.add(messageId);
  for (const pair of from.suggested) to.suggested.add(pair);
}
