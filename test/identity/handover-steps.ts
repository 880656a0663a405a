import type { IdentityGraphShard } from "../../durable-objects/identity-graph";

export type Stub = DurableObjectStub<IdentityGraphShard>;

/** The shards' side of a hand-over as the router runs it (the index left out): hand over, each part across, finish, complete. */
export async function handOverAll(from: Stub, fromShard: number, to: Stub, toShard: number, keys: string[]) {
  const answer = await from.handOver(keys, toShard);
  for (const move of answer.moves) {
    for (let part = 0; part < move.parts; part++) await to.acceptHandOverPart(move.moveId, fromShard, part, await from.handOverPart(move.moveId, part));
    await to.finishHandOver(move.moveId, fromShard, move.keys);
    await from.completeHandOver(move.moveId);
  }
  return answer;
}

/** The message of the Error an RPC call fails with (read through `then`, as an RPC promise is not a plain promise). */
export const failure = (call: Promise<unknown>) =>
  call.then(
    () => "no error",
    (error: Error) => error.message,
  );
