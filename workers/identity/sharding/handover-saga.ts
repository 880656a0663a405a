import type { GraphShards } from "./graph-shards";
import type { IdentifierIndex } from "./identifier-index";

/** A person on their way from one graph shard to another, as the source shard answers it. */
export interface Move {
  moveId: string;
  from: number;
  to: number;
  /** Every key the identifier index must place on `to`: the person's identifiers and profile ids. */
  keys: string[];
  parts: number;
  /** The source already dropped the stored parts: the index was repointed before that. */
  completed: boolean;
}

/**
 * Drives a hand-over to its end, from wherever an earlier attempt stopped.
 * Each step is idempotent, so any consumer that meets the move (the one that
 * started it, or one whose event the source sent on) can finish it:
 *
 * 1. the source took the person out and keeps the package (`handOver`);
 * 2. the target stores every part, then finishes (its moved marks cleared, profiles queued for D1);
 * 3. the index places the person's keys on the target (compare-and-set from the source);
 * 4. the source drops the package; its moved marks stay, so late events are sent on.
 *
 * Until step 3, the index still names the source, whose moved marks send
 * events carrying the keys back to the router, which comes here: nothing is
 * resolved against half a person.
 */
export async function driveMove(shards: GraphShards, index: IdentifierIndex, move: Move): Promise<void> {
  if (move.completed) return;
  const source = shards.shard(move.from);
  const target = shards.shard(move.to);
  try {
    for (let part = 0; part < move.parts; part++) {
      const body = await source.handOverPart(move.moveId, part);
      await target.acceptHandOverPart(move.moveId, move.from, part, body);
    }
  } catch (error) {
    // Another consumer driving the same move may have completed it, dropping the parts: then it is done.
    if (await completedElsewhere(shards, move)) return;
    throw error;
  }
  await target.finishHandOver(move.moveId, move.from, move.keys);
  const left = await index.repoint(move.keys, move.from, move.to);
  // A key already on the target was placed there by an earlier attempt of this step.
  const elsewhere = [...left].filter(([, placement]) => placement.shard !== move.to);
  if (elsewhere.length > 0) {
    // Only this move takes these keys off the source; another shard holding one means the index and the shards disagree.
    throw new Error(`hand-over ${move.moveId} from shard ${move.from} to ${move.to}: the index places ${elsewhere.map(([key, p]) => `${key} on shard ${p.shard}`).join(", ")}`);
  }
  await source.completeHandOver(move.moveId);
}

/** Whether the source now answers this move as completed (or its keys as part of a later one, which needs it completed). */
async function completedElsewhere(shards: GraphShards, move: Move): Promise<boolean> {
  const { moves } = await shards.shard(move.from).handOver(move.keys.slice(0, 1), move.to);
  const now = moves.find((m) => m.moveId === move.moveId);
  return now === undefined || now.completed;
}

/**
 * Takes the people holding `keys` out of shard `from` into shard `to`, and
 * the keys nobody there holds with them. Answers every move met, for the
 * caller's view of where keys are: a key may already be on its way to another
 * shard than `to`, whose move is then finished instead.
 */
export async function handOverKeys(shards: GraphShards, index: IdentifierIndex, from: number, keys: string[], to: number): Promise<Move[]> {
  const { moves } = await shards.shard(from).handOver(keys, to);
  for (const move of moves) await driveMove(shards, index, move);
  return moves;
}
