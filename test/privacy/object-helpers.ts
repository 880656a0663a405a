import { runInDurableObject } from "cloudflare:test";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import type { QueuedEvent } from "../../workers/intake/envelope";

let n = 0;

/** A message as intake queues it, `minutesAgo` before now (segment windows count back from now). */
export function queued(fields: Record<string, unknown>, minutesAgo = 60): QueuedEvent {
  const at = new Date(Date.now() - minutesAgo * 60_000).toISOString();
  return { type: "track", messageId: `privacy-${++n}-${Date.now().toString(36)}`, receivedAt: at, timestamp: at, context: {}, integrations: {}, ...fields } as QueuedEvent;
}

/**
 * Every cell of every table in the object's SQLite, as text, by table. The
 * runtime's own `_cf_` tables are not readable from inside the object (and the
 * code here never writes them).
 */
export function objectStorageText(stub: DurableObjectStub<IdentityGraphShard>): Promise<Record<string, string>> {
  return runInDurableObject(stub, (_instance: IdentityGraphShard, state) => {
    const tables = state.storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'")
      .toArray()
      .map((t) => t.name);
    return Object.fromEntries(
      tables.map((table) => {
        const rows = state.storage.sql.exec(`SELECT * FROM "${table}"`).toArray();
        return [table, rows.map((row) => Object.values(row).map(String).join("\u0001")).join("\n")];
      }),
    );
  });
}

/** The tables of `text` that contain `value`. */
export const tablesHolding = (text: Record<string, string>, value: string) => Object.keys(text).filter((table) => text[table]!.includes(value));

/** A segment of everyone who ordered in the last 30 days: state the identity object keeps per person. */
export const buyers = {
  id: "seg_buyers",
  kind: "segment",
  key: "buyers",
  name: "Ordered in the last 30 days",
  version: 1,
  definition: { kind: "event", event: "Order Completed", window: { within: { days: 30 } }, count: { op: "gte", value: 1 } },
};
