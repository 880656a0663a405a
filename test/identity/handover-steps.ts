import { runInDurableObject } from "cloudflare:test";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import type { QueuedEvent } from "../../workers/intake/envelope";

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

/** Events as the events consumer hands them over, `minutesAgo` before now (a segment's window counts back from now). */
export function eventsOf(prefix: string) {
  let n = 0;
  return (fields: Record<string, unknown>, minutesAgo = 5): QueuedEvent => {
    const at = new Date(Date.now() - minutesAgo * 60_000).toISOString();
    return { type: "track", messageId: `${prefix}-${++n}`, receivedAt: at, timestamp: at, context: {}, integrations: {}, ...fields } as QueuedEvent;
  };
}

/** Every row of every table an object stores, as JSON per table: what "changes nothing" compares. */
export const storage = (stub: Stub) =>
  runInDurableObject(stub, (_instance: IdentityGraphShard, state) => {
    const sql = state.storage.sql;
    const tables = sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name").toArray();
    return Object.fromEntries(tables.map(({ name }) => [name, sql.exec(`SELECT * FROM "${name}" ORDER BY 1`).toArray().map((r) => JSON.stringify(r))]));
  });
