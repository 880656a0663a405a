import type { IdentityGraph } from "../workers/identity/graph";
import { addPersonRows, type GraphRows, personForHandOver, removePerson } from "../workers/identity/handover";
import type { AudienceEngine } from "./audience-engine";
import type { GraphStore } from "./graph-store";
import type { HandoverLedger, Move } from "./handover-ledger";
import { graphRowsOf, PartWriter, parsePart } from "./handover-package";
import { accountsOf, exportProfileRows, importProfileRows, removeProfileRows } from "./handover-profile";
import type { PendingMatchLeads } from "./pending-match-leads";
import type { ObjectMeta } from "./object-meta";
import type { ProfileStore } from "./profile-store";

/**
 * The identity object's side of handing people over between the graph
 * shards of a workspace (docs/identity.md, "Handing a person over to another
 * shard"). At the shard handing over: `handOver` exports the person into a
 * stored package, removes them and marks their keys moved, in one
 * transaction; `completeHandOver` drops the package once the identifier index
 * points at the target. At the target: `acceptPart` writes each part,
 * `finishHandOver` makes the person live there. Every step may be repeated.
 */

export interface HandoverParts {
  sql: SqlStorage;
  graphs: GraphStore;
  store: ProfileStore;
  audiences: AudienceEngine;
  ledger: HandoverLedger;
  meta: ObjectMeta;
  leads: PendingMatchLeads;
}

function assertShard(shard: unknown, field: string): asserts shard is number {
  if (typeof shard !== "number" || !Number.isInteger(shard) || shard < 0) throw new Error(`${field} must be a graph shard number (an integer from 0), not ${String(shard)}`);
}

function assertKeys(keys: unknown): asserts keys is string[] {
  if (!Array.isArray(keys) || keys.some((key) => typeof key !== "string")) throw new Error("keys must be an array of identifier keys (type:value)");
}

/** One transaction; if it throws, what the ledger knew of the marks goes with the rolled-back rows. */
function atomically<T>({ graphs, ledger }: HandoverParts, run: () => T): T {
  try {
    return graphs.atomically(run);
  } catch (error) {
    ledger.forget();
    throw error;
  }
}

/** The live cluster a key names here: an identifier's index entry (quarantined or not), or `profile_id:` a cluster held here. */
function holderOf(graph: IdentityGraph, key: string): string | undefined {
  if (key.startsWith("profile_id:")) {
    const id = key.slice("profile_id:".length);
    return graph.liveIdOf(id) ?? undefined;
  }
  const entry = graph.index.get(key);
  return entry ? graph.resolve(entry.clusterId).id : undefined;
}

/**
 * Step 1, at the shard holding the keys: each key's person is handed over to
 * `to`, unless the key was handed over already (that move is answered, with
 * its own target). Keys nobody here holds go too, as one move with no rows:
 * the index may have placed such a key here for an event still on its way,
 * and the mark sends that event on instead of letting it create the key here
 * after the index has placed it elsewhere. A person is answered once.
 */
export function handOver(parts: HandoverParts, keys: string[], to: number): { moves: Move[] } {
  assertKeys(keys);
  assertShard(to, "to");
  const from = parts.graphs.shard();
  if (to === from) throw new Error(`a person cannot be handed over to the shard holding them (${from})`);
  return atomically(parts, () => {
    // Before anything is answered: a mark read below is never one this call then forgets.
    parts.ledger.prune();
    const graph = parts.graphs.graph();
    const moves: Move[] = [];
    const bare: string[] = [];
    const answered = new Set<string>();
    const arriving = parts.ledger.arriving(keys);
    for (const key of keys) {
      // A person (or key) still arriving here is handed on only once their move in is finished: that move is answered, for the caller to finish.
      const incoming = arriving.get(key);
      if (incoming) {
        if (!answered.has(incoming.moveId)) {
          answered.add(incoming.moveId);
          moves.push({ moveId: incoming.moveId, from: incoming.from, to: from, keys: parts.ledger.arrivingKeys(incoming.moveId), parts: -1, completed: false });
        }
        continue;
      }
      const clusterId = holderOf(graph, key);
      if (clusterId !== undefined) {
        const move = handOverPerson(parts, graph, clusterId, from, to);
        answered.add(move.moveId);
        moves.push(move);
        continue;
      }
      const mark = parts.ledger.marksOf([key]).get(key);
      if (!mark) bare.push(key);
      else if (!answered.has(mark.moveId)) {
        answered.add(mark.moveId);
        moves.push(parts.ledger.move(mark.moveId)!);
      }
    }
    if (bare.length > 0) moves.push(handOverKeysOnly(parts, graph, [...new Set(bare)], from, to));
    return { moves };
  });
}

/** A move of keys with no person: one part with no rows, so the target and the index take it like any other. */
function handOverKeysOnly({ ledger, meta }: HandoverParts, graph: IdentityGraph, keys: string[], from: number, to: number): Move {
  const moveId = graph.nextId("mov");
  keys.sort();
  const writer = new PartWriter({ moveId, from, to, version: meta.get("version") ?? 0, profiles: [], keys }, (part, body) => ledger.storePart(moveId, part, body));
  const move: Move = { moveId, from, to, keys, parts: writer.end(), completed: false };
  ledger.record(move);
  return move;
}

function handOverPerson(parts: HandoverParts, graph: IdentityGraph, clusterId: string, from: number, to: number): Move {
  const { sql, ledger, store, audiences, meta, leads } = parts;
  const person = personForHandOver(graph, clusterId);
  const moveId = graph.nextId("mov");
  const keys = [...person.keys].sort();
  const writer = new PartWriter({ moveId, from, to, version: meta.get("version") ?? 0, blockClock: leads.clock(), profiles: person.clusterIds, keys }, (part, body) =>
    ledger.storePart(moveId, part, body),
  );
  writeGraphRows(writer, person.rows);
  const routed = person.rows.index.map(([key]) => key);
  // Sources of every identifier their clusters list, so their profile reads the same there; only those routed to them leave.
  const listed = person.rows.clusters.flatMap((c) => [...c.identifiers.keys()]);
  exportProfileRows(sql, person.clusterIds, [...new Set([...routed, ...listed])], writer);
  const waiting = leads.waitingFor(person.clusterIds);
  for (const lead of waiting.leads) writer.add("matchLeads", lead);
  for (const entry of waiting.blockChanges) writer.add("blockChanges", entry);
  const move: Move = { moveId, from, to, keys, parts: writer.end(), completed: false };
  removeProfileRows(store, audiences, sql, person.clusterIds, routed);
  leads.forget(person.clusterIds);
  removePerson(graph, person);
  ledger.record(move);
  return move;
}

function writeGraphRows(writer: PartWriter, rows: GraphRows) {
  for (const c of rows.clusters) writer.add("clusters", { id: c.id, createdAt: c.createdAt, seq: c.seq, identifiers: [...c.identifiers], ...(c.forwardedTo ? { forwardedTo: c.forwardedTo } : {}) });
  for (const row of rows.index) writer.add("index", row);
  for (const row of rows.features) writer.add("features", row);
  for (const row of rows.blocks) writer.add("blocks", row);
  for (const row of rows.assignments) writer.add("assignments", row);
  for (const row of rows.links) writer.add("links", row);
  for (const merge of rows.merges) writer.add("merges", merge);
  for (const review of rows.reviews) writer.add("reviews", review);
  for (const conflict of rows.conflicts) writer.add("conflicts", conflict);
  for (const pair of rows.neverMerge) writer.add("neverMerge", pair);
  for (const messageId of rows.tombstones) writer.add("tombstones", messageId);
  for (const pair of rows.suggested) writer.add("suggested", pair);
}

/**
 * Step 2, at the target, one transaction per part: the part is validated
 * before anything is written, graph rows go through the graph's collections,
 * profile rows by upsert. A part accepted before, or of a move finished
 * here, changes nothing.
 */
export function acceptPart(parts: HandoverParts, moveId: string, from: number, part: number, body: string): { rows: number } {
  assertShard(from, "from");
  const receipt = parts.ledger.received(moveId, part);
  if (receipt) return { rows: receipt.rows };
  // Finished here long enough ago that its receipts were pruned: the part was taken in then.
  if (parts.ledger.finished(moveId)) return { rows: 0 };
  const parsed = parsePart(moveId, part, body);
  if (parsed.from !== from) throw new Error(`hand-over ${moveId} part ${part} comes from shard ${parsed.from}, not shard ${from}`);
  const here = parts.graphs.shard();
  if (parsed.to !== here) throw new Error(`hand-over ${moveId} is addressed to shard ${parsed.to}; this object is shard ${here}`);
  return atomically(parts, () => {
    const rows = addPersonRows(parts.graphs.graph(), graphRowsOf(parsed)) + importProfileRows(parts.sql, parsed);
    parts.leads.takeOver(parsed.matchLeads ?? [], parsed.blockChanges ?? [], parsed.blockClock ?? 0);
    parts.ledger.receive(moveId, { part, from, last: parsed.last, version: parsed.version, profiles: parsed.profiles, rows });
    parts.ledger.arrive(moveId, from, parsed.keys);
    return { rows };
  });
}

/**
 * Step 4, at the target once every part is in and the index places the
 * keys here: they are no longer marked moved here (a person can come
 * back), D1 writes from here rank above every
 * write of the shard they came from, and the person's profiles, memberships,
 * accounts and events are written through again. The graph is read afresh,
 * so its open reviews by identifier include theirs.
 */
export function finishHandOver(parts: HandoverParts, moveId: string, from: number, keys: string[]): { profiles: number; events: number } {
  assertShard(from, "from");
  assertKeys(keys);
  const done = parts.ledger.finished(moveId);
  if (done) return { profiles: done.profiles, events: done.events };
  const receipts = parts.ledger.receipts(moveId);
  const last = receipts.find((r) => r.last);
  if (!last || receipts.length !== last.part + 1) {
    const have = receipts.map((r) => r.part).join(", ") || "none";
    throw new Error(`hand-over ${moveId} is not complete here: parts accepted ${have}${last ? ` of 0 to ${last.part}` : ", and not the last"}`);
  }
  const other = receipts.find((r) => r.from !== from);
  if (other) throw new Error(`hand-over ${moveId} came from shard ${other.from}, not shard ${from}`);
  const { graphs, store, ledger, meta, sql } = parts;
  const counts = atomically(parts, () => {
    const graph = graphs.graph();
    ledger.clearMarks(keys);
    meta.raise("version", Math.max(...receipts.map((r) => r.version)) + 1);
    const held = receipts[0]!.profiles.filter((id) => graph.clusters.has(id));
    for (const id of held) {
      store.markDirty("profile", id);
      // An absorbed profile's row points at the live one; its D1 events follow it there.
      store.markDirty(graph.resolve(id).id === id ? "membership" : "reassign", id);
    }
    for (const groupId of accountsOf(sql, held)) store.markDirty("account", groupId);
    const result = { profiles: held.length, events: store.outbox.rewriteEventsOf(held) };
    ledger.finish(moveId, result);
    ledger.arrived(moveId);
    return result;
  });
  graphs.reload();
  return counts;
}
