import { z } from "zod";
import { applyEventWithFeatures, type EventInput } from "../workers/identity/apply";
import { eraseClusters } from "../workers/identity/erase";
import { IdentityGraph } from "../workers/identity/graph";
import { DEFAULT_IDENTITY_SETTINGS, type IdentitySettings, identitySettingsSchema } from "../workers/identity/settings";
import { fromSnapshot, fromSnapshotParts, snapshotParts } from "../workers/identity/snapshot";
import { approveReview, IdentityRuleError, rejectReview, splitIdentifiers, unmerge } from "../workers/identity/unmerge";
import { SqlEventLinks } from "./sql-event-links";

/** Every change to the graph is one of these, logged before it is acknowledged and replayed on wake. */
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
  /** Profile ids only: an erasure must not log what it erases. */
  z.object({ kind: z.literal("erase"), profileIds: z.array(z.string()) }),
]);
export type Operation = z.infer<typeof operationSchema>;

const SNAPSHOT_EVERY_OPERATIONS = 500;
/** Well under the 2 MB a row may hold. */
const SNAPSHOT_PART_CHARS = 500_000;

/** Operations that take links away or move them between clusters: the snapshot is taken at once after them. */
const RETRACTING = new Set<Operation["kind"]>(["unmerge", "split", "erase"]);

/**
 * The identity graph's durability: the graph lives in memory, every change is
 * an operation appended to a log in SQLite before it is acknowledged, and every
 * SNAPSHOT_EVERY_OPERATIONS operations the whole graph is written as a chunked
 * snapshot and the log before it dropped. Waking replays snapshot then log; the
 * same operations in the same order give the same graph.
 *
 * Per-event state (which cluster each event is in, and its link) is not in
 * memory or in the snapshot: it is written to SQLite tables as operations run,
 * so on wake those tables are already as of the log's end. Replaying the
 * logged operations over them is harmless because every write is a "set" and
 * the operations after a snapshot only add links and move them from absorbed
 * clusters to survivors, never read them. The operations that do read and
 * retract links (unmerge, split, erase) are followed at once by a snapshot, so
 * they are never replayed.
 */
export class GraphLog {
  private readonly sql: SqlStorage;
  private current: IdentityGraph | null = null;
  private currentSettings: IdentitySettings = DEFAULT_IDENTITY_SETTINGS;
  private operationsSinceSnapshot = 0;
  private readonly events: SqlEventLinks;

  constructor(private readonly storage: DurableObjectStorage) {
    this.sql = storage.sql;
    this.events = new SqlEventLinks(storage.sql);
    this.sql.exec("CREATE TABLE IF NOT EXISTS operations (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL)");
    this.sql.exec("CREATE TABLE IF NOT EXISTS snapshot (chunk INTEGER PRIMARY KEY, seq INTEGER NOT NULL, data TEXT NOT NULL)");
  }

  graph(): IdentityGraph {
    if (this.current) return this.current;
    const first = this.sql.exec<{ seq: number; data: string }>("SELECT seq, data FROM snapshot ORDER BY chunk LIMIT 1").toArray()[0];
    const since = first?.seq ?? 0;
    let upgrade = false;
    if (!first) this.current = new IdentityGraph(0, this.events);
    else if (first.data.startsWith('{"settings":')) {
      // Parts are read one row at a time: the snapshot is never one string in memory.
      const rows = this.sql.exec<{ data: string }>("SELECT data FROM snapshot ORDER BY chunk");
      const head = rows.next();
      this.currentSettings = identitySettingsSchema.parse((JSON.parse(head.done ? "{}" : head.value.data) as { settings?: unknown }).settings);
      this.current = fromSnapshotParts((function* () { for (const row of rows) yield row.data; })(), this.events);
    } else {
      // Written before snapshots came in parts: one JSON cut into chunks, possibly with per-event state to move into the tables.
      const all = this.sql.exec<{ data: string }>("SELECT data FROM snapshot ORDER BY chunk").toArray();
      const parsed = JSON.parse(all.map((c) => c.data).join("")) as { graph: unknown; settings: unknown };
      this.current = fromSnapshot(parsed.graph, this.events);
      this.currentSettings = identitySettingsSchema.parse(parsed.settings);
      upgrade = true;
    }
    for (const row of this.sql.exec<{ op: string }>("SELECT op FROM operations WHERE seq > ? ORDER BY seq", since)) {
      this.apply(operationSchema.parse(JSON.parse(row.op)));
      this.operationsSinceSnapshot++;
    }
    this.events.flush();
    if (upgrade) this.snapshot();
    return this.current;
  }

  settings(): IdentitySettings {
    this.graph();
    return this.currentSettings;
  }

  /** Logs an operation already applied to the in-memory graph (settings are applied here). */
  record(op: Operation) {
    if (op.kind === "settings") this.currentSettings = identitySettingsSchema.parse(op.settings);
    this.sql.exec("INSERT INTO operations (op) VALUES (?)", JSON.stringify(op));
    if (++this.operationsSinceSnapshot >= SNAPSHOT_EVERY_OPERATIONS || RETRACTING.has(op.kind)) this.snapshot();
  }

  /** Replays one logged operation. */
  private apply(op: Operation) {
    const graph = this.current!;
    if (op.kind === "events") for (const input of op.inputs) applyEventWithFeatures(graph, this.currentSettings, input as EventInput);
    else if (op.kind === "unmerge") unmerge(graph, op.mergeId, op.at);
    else if (op.kind === "approve") approveReview(graph, op.reviewId, op.at);
    else if (op.kind === "reject") rejectReview(graph, op.reviewId);
    else if (op.kind === "split") splitIdentifiers(graph, op.profileId, op.keys);
    else if (op.kind === "erase") eraseClusters(graph, op.profileIds);
    else this.currentSettings = identitySettingsSchema.parse(op.settings);
  }

  /**
   * Runs a change to the graph and its storage as one transaction. If it
   * throws, storage rolls back, and the in-memory graph, which may be half
   * changed, is dropped so the next read rebuilds it from storage: per-event
   * rows never outlive the operation that wrote them.
   */
  atomically<T>(run: () => T): T {
    // Loading (and upgrading an old snapshot) commits on its own, whatever becomes of this change.
    this.graph();
    try {
      return this.storage.transactionSync(() => {
        const result = run();
        this.events.flush();
        return result;
      });
    } catch (error) {
      // A rule refusal is checked before anything changes: the graph in memory is still good.
      if (error instanceof IdentityRuleError) this.events.discard();
      else this.reload();
      throw error;
    }
  }

  /** Forgets the in-memory graph: the next read rebuilds it from storage, as a fresh instance would. */
  reload() {
    this.events.discard();
    this.current = null;
    this.currentSettings = DEFAULT_IDENTITY_SETTINGS;
    this.operationsSinceSnapshot = 0;
  }

  /**
   * Writes the graph as the snapshot, one row per part (the settings first),
   * and drops the log it covers. Parts are produced and written one at a time,
   * so the snapshot never needs the whole graph's size again in memory.
   */
  private snapshot() {
    const seq = this.sql.exec<{ seq: number }>("SELECT coalesce(max(seq), 0) AS seq FROM operations").one().seq;
    this.storage.transactionSync(() => {
      this.sql.exec("DELETE FROM snapshot");
      let chunk = 0;
      this.sql.exec("INSERT INTO snapshot (chunk, seq, data) VALUES (?, ?, ?)", chunk++, seq, JSON.stringify({ settings: this.currentSettings }));
      for (const part of snapshotParts(this.current!, SNAPSHOT_PART_CHARS)) this.sql.exec("INSERT INTO snapshot (chunk, seq, data) VALUES (?, ?, ?)", chunk++, seq, part);
      this.sql.exec("DELETE FROM operations WHERE seq <= ?", seq);
    });
    this.operationsSinceSnapshot = 0;
  }
}
