import type { IdentitySettings } from "../workers/identity/settings";
import { assertKeys } from "./identifier-index-input";
import { IdentityGraphBase } from "./identity-graph-base";
import type { Move } from "./handover-ledger";
import { acceptPart, finishHandOver, handOver } from "./handover-operations";
import type { PlacementPage } from "./index-backfill";

/**
 * The identity graph object's RPCs for spreading people over graph shards
 * (docs/identity-sharding.md): what the router needs of shard 0, filling the
 * identifier index from the keys this object holds, and the four steps of
 * handing a person over to another shard (bodies in handover-operations.ts).
 * Part of `IdentityGraphShard` (identity-graph.ts), which extends it.
 */
export abstract class IdentityGraphHandoverRpc extends IdentityGraphBase {
  /** What the router needs of shard 0 before routing a batch: the settings identifiers are extracted with, and whether the identifier index holds all of this object's keys yet. */
  routingState(): { settings: IdentitySettings; indexFilled: boolean } {
    return { settings: this.graphs.settings(), indexFilled: this.backfill.done() };
  }

  /** The next page of keys to place in the identifier index (docs/identity-sharding.md, "Setting the number of shards"). Reads only. */
  placementPage(limit: number): PlacementPage {
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new Error("limit must be an integer from 1 to 10,000");
    this.graphs.graph();
    return this.backfill.page(limit);
  }

  /** The page before `next` is placed in the index: the position moves on. */
  placementsPlaced(next: string) {
    this.backfill.placed(next);
  }

  /** Hands the people holding `keys` over to graph shard `to` (step 1, here; docs/identity.md, "Handing a person over to another shard"). */
  handOver(keys: string[], to: number): { moves: Move[] } {
    return handOver(this.handovers, keys, to);
  }

  /** The stored JSON of one part of a move made here. */
  handOverPart(moveId: string, part: number): string {
    return this.ledger.part(moveId, part);
  }

  /** A move made here: whether it is completed (its parts dropped) and how many parts it has; null for a move this object never made. Reads only. */
  handOverStatus(moveId: string): { completed: boolean; parts: number } | null {
    const move = this.ledger.move(moveId);
    return move ? { completed: move.completed, parts: move.parts } : null;
  }

  /** Writes one part of a person handed over from shard `from` (step 2, at the target); accepting it again changes nothing. */
  acceptHandOverPart(moveId: string, from: number, part: number, body: string): { rows: number } {
    return acceptPart(this.handovers, moveId, from, part, body);
  }

  /** Makes the person live here once every part is in, and writes them through to D1 (step 4, after the index placed their keys here); idempotent. */
  finishHandOver(moveId: string, from: number, keys: string[]): { profiles: number; events: number } {
    const counts = finishHandOver(this.handovers, moveId, from, keys);
    this.writer.schedule();
    return counts;
  }

  /** The moves made here, not yet completed, that took any of these keys: a privacy request finishes them before it looks for the person. Reads only. */
  movesInFlight(keys: string[]): Move[] {
    assertKeys(keys);
    const ids = new Set([...this.ledger.marksOf(keys).values()].map((mark) => mark.moveId));
    return [...ids].flatMap((id) => {
      const move = this.ledger.move(id);
      return move && !move.completed ? [move] : [];
    });
  }

  /**
   * Clears the moved marks of keys the identifier index places on this shard
   * again (a key released by an erasure and claimed here anew): the index
   * decides where a key lives, so a mark naming another shard is stale. The
   * router asks only after a move's answer left the key here.
   */
  forgetMovedMarks(keys: string[]): void {
    assertKeys(keys);
    this.ledger.clearMarks(keys);
  }

  /** Drops a move's stored parts once the identifier index points at the target (step 5, here); the moved marks stay a day (`MOVED_MARK_DAYS`). */
  completeHandOver(moveId: string): void {
    this.ledger.complete(moveId);
  }
}
