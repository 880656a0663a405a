import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MOVED_MARK_DAYS } from "../../durable-objects/handover-ledger";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import { unique } from "../helpers";
import { eventsOf, handOverAll, storage, type Stub } from "./handover-steps";

const HOUR = 3_600_000;
/** How long a completed move's marks, and a finished move's receipts, are kept. */
const LIMIT = MOVED_MARK_DAYS * 24 * HOUR;

/** Pat (an anonymous visit merged into a sign-up) and Sam on shard 0; shard 1 empty. */
async function twoPeople() {
  const ws = `handover-pruning-${unique()}`;
  const event = eventsOf(ws);
  const pat = { anon: `pat-anon-${ws}`, user: `pat-${ws}`, email: `pat-${ws}@acme-shop.com` };
  const sam = { user: `sam-${ws}`, email: `sam-${ws}@acme-shop.com` };
  const shard0 = env.IDENTITY.getByName(ws);
  const shard1 = env.IDENTITY.getByName(`${ws}#1`);
  const answers = await shard0.resolveEvents([
    event({ type: "identify", anonymousId: pat.anon, traits: { colour: "teal" } }, 30),
    event({ type: "identify", userId: pat.user, traits: { email: pat.email } }, 25),
    event({ event: "Order Completed", userId: pat.user, anonymousId: pat.anon, properties: { revenue: 42 } }, 20),
    event({ type: "identify", userId: sam.user, traits: { email: sam.email } }, 15),
  ]);
  let keysOnly = 0;
  /** Shard 0 hands a key nobody holds over to shard 1, every step of it: each shard prunes on the way. */
  const anotherMove = () => handOverAll(shard0, 0, shard1, 1, [`email:nobody-${++keysOnly}-${ws}@acme-shop.com`]);
  return { event, pat, sam, shard0, shard1, anotherMove, patId: answers[2]!.profileId! };
}

/** Runs one statement in the object's storage and answers its rows. */
const sql = <R extends Record<string, SqlStorageValue>>(stub: Stub, query: string, ...bindings: unknown[]) =>
  runInDurableObject(stub, (_instance: IdentityGraphShard, state) => state.storage.sql.exec<R>(query, ...bindings).toArray());

/** The keys marked moved for a move, sorted. */
const marksOf = async (stub: Stub, moveId: string) => (await sql<{ key: string }>(stub, "SELECT key FROM moved_keys WHERE move_id = ? ORDER BY key", moveId)).map((r) => r.key);

/** Makes a completed move's completion (at its source) look `ms` old. */
const completedAgo = (stub: Stub, moveId: string, ms: number) => sql(stub, "UPDATE handover_moves SET completed_at = ? WHERE move_id = ?", Date.now() - ms, moveId);

/** Makes a finished move's finish (at its target) look `ms` old. */
const finishedAgo = (stub: Stub, moveId: string, ms: number) => sql(stub, "UPDATE handover_finished SET finished_at = ? WHERE move_id = ?", Date.now() - ms, moveId);

/** What the target keeps of a move it received: its receipts' parts and whether it is finished. */
async function receivedOf(stub: Stub, moveId: string) {
  const parts = (await sql<{ part: number }>(stub, "SELECT part FROM handover_received WHERE move_id = ? ORDER BY part", moveId)).map((r) => r.part);
  const finished = (await sql(stub, "SELECT 1 FROM handover_finished WHERE move_id = ?", moveId)).length === 1;
  return { parts, finished };
}

describe("pruning the hand-over ledger", () => {
  it("keeps a completed move's marks for a day, so a late event carrying its keys is still sent on, and forgets the move after that", async () => {
    const { event, pat, sam, shard0, shard1, anotherMove } = await twoPeople();
    const [move] = (await handOverAll(shard0, 0, shard1, 1, [`user_id:${pat.user}`])).moves;
    const [samMove] = (await handOverAll(shard0, 0, shard1, 1, [`user_id:${sam.user}`])).moves;
    expect(await marksOf(shard0, move!.moveId)).toEqual(move!.keys);

    await completedAgo(shard0, move!.moveId, LIMIT - HOUR);
    await anotherMove();
    expect(await shard0.handOverStatus(move!.moveId)).toEqual({ completed: true, parts: move!.parts });
    expect(await marksOf(shard0, move!.moveId)).toEqual(move!.keys);
    const [late] = await shard0.resolveEvents([event({ anonymousId: pat.anon, event: "Viewed" })]);
    expect(late!.moved).toEqual({ key: `anonymous_id:${pat.anon}`, to: 1 });

    await completedAgo(shard0, move!.moveId, LIMIT + HOUR);
    await anotherMove();
    expect(await marksOf(shard0, move!.moveId)).toEqual([]);
    expect(await sql(shard0, "SELECT * FROM handover_moves WHERE move_id = ?", move!.moveId)).toEqual([]);
    expect(await shard0.handOverStatus(move!.moveId)).toBeNull();
    // Sam's move, completed minutes ago, keeps its marks.
    expect(await marksOf(shard0, samMove!.moveId)).toEqual(samMove!.keys);
    const [samLate] = await shard0.resolveEvents([event({ userId: sam.user, event: "Viewed" })]);
    expect(samLate!.moved).toEqual({ key: `user_id:${sam.user}`, to: 1 });
  });

  it("keeps a move that was never completed, with its marks and its package, however old the moves completed around it", async () => {
    const { event, pat, sam, shard0, shard1, anotherMove, patId } = await twoPeople();
    // Step 1 only: the consumer stopped there.
    const [stuck] = (await shard0.handOver([`user_id:${pat.user}`], 1)).moves;
    const [done] = (await handOverAll(shard0, 0, shard1, 1, [`user_id:${sam.user}`])).moves;
    // Every completion shard 0 has a time for, the done move's and any other, a month old.
    await sql(shard0, "UPDATE handover_moves SET completed_at = ? WHERE completed_at IS NOT NULL", Date.now() - 30 * 24 * HOUR);
    await anotherMove();

    expect(await shard0.handOverStatus(done!.moveId)).toBeNull();
    expect(await shard0.handOverStatus(stuck!.moveId)).toEqual({ completed: false, parts: stuck!.parts });
    expect(await marksOf(shard0, stuck!.moveId)).toEqual(stuck!.keys);
    const [late] = await shard0.resolveEvents([event({ anonymousId: pat.anon, event: "Viewed" })]);
    expect(late!.moved).toEqual({ key: `anonymous_id:${pat.anon}`, to: 1 });
    // Any consumer can still finish it, from its package.
    expect((await shard0.handOver([`email:${pat.email}`], 1)).moves).toEqual([stuck]);
    for (let part = 0; part < stuck!.parts; part++) await shard1.acceptHandOverPart(stuck!.moveId, 0, part, await shard0.handOverPart(stuck!.moveId, part));
    expect(await shard1.finishHandOver(stuck!.moveId, 0, stuck!.keys)).toMatchObject({ profiles: 2 });
    await shard0.completeHandOver(stuck!.moveId);
    expect((await shard1.lookup(`user_id:${pat.user}`))!.profileId).toBe(patId);
  });

  it("gives a move completed before completion times were kept a time at the next prune, and forgets it a day after that", async () => {
    const { shard0, shard1, pat, anotherMove } = await twoPeople();
    const [move] = (await handOverAll(shard0, 0, shard1, 1, [`user_id:${pat.user}`])).moves;
    // As an object stored before the columns existed holds them.
    await sql(shard0, "UPDATE handover_moves SET completed_at = NULL WHERE move_id = ?", move!.moveId);
    await sql(shard1, "UPDATE handover_finished SET finished_at = NULL WHERE move_id = ?", move!.moveId);
    const before = Date.now();
    await anotherMove();
    const [stamped] = await sql<{ completed_at: number }>(shard0, "SELECT completed_at FROM handover_moves WHERE move_id = ?", move!.moveId);
    expect(stamped!.completed_at).toBeGreaterThanOrEqual(before);
    const [finished] = await sql<{ finished_at: number }>(shard1, "SELECT finished_at FROM handover_finished WHERE move_id = ?", move!.moveId);
    expect(finished!.finished_at).toBeGreaterThanOrEqual(before);
    expect(await marksOf(shard0, move!.moveId)).toEqual(move!.keys);

    await completedAgo(shard0, move!.moveId, LIMIT + HOUR);
    await finishedAgo(shard1, move!.moveId, LIMIT + HOUR);
    await anotherMove();
    expect(await shard0.handOverStatus(move!.moveId)).toBeNull();
    expect(await marksOf(shard0, move!.moveId)).toEqual([]);
    expect(await receivedOf(shard1, move!.moveId)).toEqual({ parts: [], finished: true });
  });

  it("forgets the target's receipts of a move finished more than a day ago, keeps its finish, and a part or finish asked again then changes nothing", async () => {
    const { pat, sam, shard0, shard1, anotherMove, patId } = await twoPeople();
    // The consumer stops between the target's finish and the source's completion: the source keeps the package.
    const [move] = (await shard0.handOver([`user_id:${pat.user}`], 1)).moves;
    const package0 = await shard0.handOverPart(move!.moveId, 0);
    for (let part = 0; part < move!.parts; part++) await shard1.acceptHandOverPart(move!.moveId, 0, part, await shard0.handOverPart(move!.moveId, part));
    const finished = await shard1.finishHandOver(move!.moveId, 0, move!.keys);
    expect(finished).toMatchObject({ profiles: 2 });
    const allParts = Array.from({ length: move!.parts }, (_, part) => part);

    await finishedAgo(shard1, move!.moveId, LIMIT - HOUR);
    await anotherMove();
    expect(await receivedOf(shard1, move!.moveId)).toEqual({ parts: allParts, finished: true });
    expect(await shard1.finishHandOver(move!.moveId, 0, move!.keys)).toEqual(finished);

    await finishedAgo(shard1, move!.moveId, LIMIT + HOUR);
    const [samMove] = (await handOverAll(shard0, 0, shard1, 1, [`user_id:${sam.user}`])).moves;
    expect(await receivedOf(shard1, move!.moveId)).toEqual({ parts: [], finished: true });
    // The move shard 1 just finished keeps its own.
    expect(await receivedOf(shard1, samMove!.moveId)).toEqual({ parts: [0], finished: true });

    await shard1.flush();
    const before = await storage(shard1);
    // A driver that never saw the move complete sends the old package again: nothing of it is taken in.
    expect(await shard1.acceptHandOverPart(move!.moveId, 0, 0, package0)).toEqual({ rows: 0 });
    expect(await shard1.finishHandOver(move!.moveId, 0, move!.keys)).toEqual(finished);
    expect(await storage(shard1)).toEqual(before);
    expect((await shard1.lookup(`user_id:${pat.user}`))!.profileId).toBe(patId);
  });

  it("keeps the newest move's mark on a key that came back and left again when the oldest move is forgotten", async () => {
    const { event, pat, shard0, shard1, anotherMove } = await twoPeople();
    const [first] = (await handOverAll(shard0, 0, shard1, 1, [`user_id:${pat.user}`])).moves;
    const [back] = (await handOverAll(shard1, 1, shard0, 0, [`user_id:${pat.user}`])).moves;
    const [again] = (await handOverAll(shard0, 0, shard1, 1, [`user_id:${pat.user}`])).moves;
    expect(again!.keys).toEqual(first!.keys);
    expect(back!.keys).toEqual(first!.keys);
    // Shard 0 cleared the first move's marks when Pat came back; the keys now carry the newest move's.
    expect(await marksOf(shard0, first!.moveId)).toEqual([]);
    expect(await marksOf(shard0, again!.moveId)).toEqual(first!.keys);

    await completedAgo(shard0, first!.moveId, LIMIT + HOUR);
    await anotherMove();
    expect(await shard0.handOverStatus(first!.moveId)).toBeNull();
    expect(await shard0.handOverStatus(again!.moveId)).toEqual({ completed: true, parts: again!.parts });
    expect(await marksOf(shard0, again!.moveId)).toEqual(first!.keys);
    const [late] = await shard0.resolveEvents([event({ anonymousId: pat.anon, event: "Viewed" })]);
    expect(late!.moved).toEqual({ key: `anonymous_id:${pat.anon}`, to: 1 });
  });
});
