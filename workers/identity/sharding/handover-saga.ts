import type { Move } from "../../../durable-objects/handover-ledger";
import type { GraphShards } from "./graph-shards";
import type { IdentifierIndex } from "./identifier-index";

export type { Move };

/**
 * Drives a hand-over to its end, from wherever an earlier attempt stopped.
 * Each step is idempotent, so any consumer that meets the move (the one that
 * started it, or one whose event the source sent on) can finish it:
 *
 * 1. the source took the person out and keeps the package (`handOver`);
 * 2. the target stores every part;
 * 3. the index places the move's keys on the target, compare-and-set from the source
 *    and remembering the move;
 * 4. the target finishes for the keys now placed on it (its moved marks for
 *    them cleared, profiles queued for D1);
 * 5. the source drops the package; its moved marks stay for a day, so late events are sent on.
 *
 * Until step 3 the index names the source, whose marks send events carrying
 * the keys back to the router, which comes here. A key the index places on a
 * third shard (a move of keys nobody held, asked for on a stale view) is left
 * where the index says (so is one already on the target that another move put
 * there), and the target keeps its marks for it: a shard accepts
 * an event for a key only if the index placed the key on it, and marks every
 * key that leaves it.
 *
 * Answers where the index places each of the move's keys, which is all the
 * caller may learn from it: a completed move's target may be long out of date.
 */
export async function driveMove(shards: GraphShards, index: IdentifierIndex, answered: Move): Promise<Map<string, number>> {
  if (answered.completed) return placementsOf(index, answered.keys);
  const source = shards.shard(answered.from);
  const target = shards.shard(answered.to);
  let move = answered;
  if (move.parts < 0) {
    // Answered by the target, where the move is still arriving: the source knows its parts.
    const status = await source.handOverStatus(move.moveId);
    if (!status) throw new Error(`hand-over ${move.moveId} is unknown to shard ${move.from}, which the target says it comes from`);
    if (status.completed) return placementsOf(index, move.keys);
    move = { ...move, parts: status.parts };
  }
  try {
    for (let part = 0; part < move.parts; part++) {
      const body = await source.handOverPart(move.moveId, part);
      await target.acceptHandOverPart(move.moveId, move.from, part, body);
    }
  } catch (error) {
    // Another consumer driving the same move may have completed it, dropping the parts: then it is done.
    if (await completedElsewhere(shards, move)) return placementsOf(index, move.keys);
    throw error;
  }
  // Keys this move placed, now or in an earlier attempt, are not answered; a key on the target put there by another move is.
  const left = await index.repoint(move.keys, move.from, move.to, move.moveId);
  const placed = new Map(move.keys.map((key) => [key, left.get(key)?.shard ?? move.to]));
  const landed = move.keys.filter((key) => !left.has(key));
  const astray = move.keys.filter((key) => left.has(key) && !key.startsWith("profile_id:"));
  if (astray.length > 0 && move.keys.some((key) => key.startsWith("profile_id:"))) {
    // The source held these people's entries: the index placing their keys elsewhere means the two disagree.
    throw new Error(`hand-over ${move.moveId} from shard ${move.from} to ${move.to}: the index places ${astray.map((key) => `${key} on shard ${placed.get(key)}`).join(", ")}`);
  }
  await target.finishHandOver(move.moveId, move.from, landed);
  await source.completeHandOver(move.moveId);
  return placed;
}

async function placementsOf(index: IdentifierIndex, keys: string[]): Promise<Map<string, number>> {
  const placed = await index.locate(keys);
  return new Map([...placed].map(([key, placement]) => [key, placement.shard]));
}

/** Whether the source now holds this move as completed: asked without touching anything, since a hand-over call would make a new move. */
async function completedElsewhere(shards: GraphShards, move: Move): Promise<boolean> {
  return (await shards.shard(move.from).handOverStatus(move.moveId))?.completed === true;
}

/**
 * Takes the people holding `keys` out of shard `from` into shard `to`, and
 * the keys nobody there holds with them. Answers the moves met (a key may
 * already be on its way to another shard than `to`, whose move is then
 * finished instead) and where the index now places each of their keys.
 */
export async function handOverKeys(shards: GraphShards, index: IdentifierIndex, from: number, keys: string[], to: number): Promise<{ moves: Move[]; placed: Map<string, number> }> {
  const { moves } = await shards.shard(from).handOver(keys, to);
  const placed = new Map<string, number>();
  for (const move of moves) for (const [key, shard] of await driveMove(shards, index, move)) placed.set(key, shard);
  return { moves, placed };
}
