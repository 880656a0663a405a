import { IdentityGraph } from "../workers/identity/graph";
import { DEFAULT_IDENTITY_SETTINGS, type IdentitySettings, identitySettingsSchema } from "../workers/identity/settings";
import { copyGraph, dropLegacyTables, readLegacyGraph } from "./legacy-graph-log";
import { SqlEventLinks } from "./sql-event-links";
import { SqlGraphCollections } from "./sql-graph-collections";

/** Shard 0 issues ids as a single graph always did; shard n above it tags them `sn`. */
const idTagOf = (shard: number) => (shard > 0 ? `s${shard}` : null);

/**
 * The identity graph's durability. Every collection of the graph is a table in
 * the object's SQLite (sql-graph-collections.ts, sql-event-links.ts); an
 * operation reads the rows it needs, changes them in memory and writes them
 * back in one transaction with everything else it did. Memory holds what one
 * operation touched, so a workspace's graph is bounded by storage rather than
 * by the isolate's 128 MB, and waking reads nothing but two meta rows: no
 * snapshot to load, no log to replay.
 */
export class GraphStore {
  private readonly sql: SqlStorage;
  private readonly events: SqlEventLinks;
  private readonly collections: SqlGraphCollections;
  private current: IdentityGraph | null = null;
  private currentSettings: IdentitySettings = DEFAULT_IDENTITY_SETTINGS;
  private storedCounter = 0;
  /** This object's graph shard number (graph meta `shard`); 0 until told otherwise. */
  private shardNumber = 0;

  constructor(
    private readonly storage: DurableObjectStorage,
    /** The shard this object is reached as (its name); 0 when reached by the workspace id alone. */
    private readonly namedShard = 0,
  ) {
    this.sql = storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS graph_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID");
    this.events = new SqlEventLinks(storage.sql);
    this.collections = new SqlGraphCollections(storage.sql);
  }

  graph(): IdentityGraph {
    if (this.current) return this.current;
    this.upgradeLegacy();
    const meta = new Map(this.sql.exec<{ name: string; value: string }>("SELECT name, value FROM graph_meta").toArray().map((r) => [r.name, r.value]));
    this.storedCounter = Number(meta.get("counter") ?? 0);
    this.currentSettings = meta.has("settings") ? identitySettingsSchema.parse(JSON.parse(meta.get("settings")!)) : DEFAULT_IDENTITY_SETTINGS;
    this.shardNumber = Number(meta.get("shard") ?? 0);
    this.current = new IdentityGraph(this.storedCounter, this.events, this.collections);
    this.current.idTag = idTagOf(this.shardNumber);
    if (this.namedShard !== this.shardNumber) this.useShard(this.namedShard);
    return this.current;
  }

  /** This object's graph shard number: 0 unless a shard above 0 was given once (`useShard`). */
  shard(): number {
    this.graph();
    return this.shardNumber;
  }

  /**
   * Records which graph shard of its workspace this object is. Kept from the
   * first time a shard above 0 is given: from then on every id the graph
   * issues carries the shard's tag, so ids stay unique across the workspace's
   * shards, whose counters are their own. A different shard later is an error:
   * the object was reached under the wrong name.
   */
  useShard(shard: number) {
    if (!Number.isInteger(shard) || shard < 0) throw new Error(`a graph shard number is an integer from 0, not ${String(shard)}`);
    const graph = this.graph();
    if (shard === this.shardNumber) return;
    if (this.shardNumber !== 0) throw new Error(`this identity object is graph shard ${this.shardNumber}, not shard ${shard}`);
    this.setMeta("shard", String(shard));
    this.shardNumber = shard;
    graph.idTag = idTagOf(shard);
  }

  settings(): IdentitySettings {
    this.graph();
    return this.currentSettings;
  }

  putSettings(settings: IdentitySettings) {
    this.graph();
    this.setMeta("settings", JSON.stringify(settings));
    this.currentSettings = settings;
  }

  /**
   * Runs a change to the graph and its storage as one transaction: the rows it
   * changed are written as it commits. If it throws, storage rolls back and
   * every cached row is dropped, so the next read sees storage as it was.
   */
  atomically<T>(run: () => T): T {
    const graph = this.graph();
    try {
      const result = this.storage.transactionSync(() => {
        const value = run();
        this.collections.writeBack();
        this.events.flush();
        if (graph.counterValue() !== this.storedCounter) this.setMeta("counter", String(graph.counterValue()));
        return value;
      });
      this.storedCounter = graph.counterValue();
      this.collections.forget({ rolledBack: false });
      return result;
    } catch (error) {
      this.reload();
      throw error;
    }
  }

  /** Forgets everything read: the next read rebuilds the graph from storage, as a fresh instance would. */
  reload() {
    this.events.discard();
    this.collections.forget({ rolledBack: true });
    this.current = null;
  }

  private setMeta(name: "counter" | "settings" | "shard", value: string) {
    this.sql.exec("INSERT OR REPLACE INTO graph_meta (name, value) VALUES (?, ?)", name, value);
  }

  /** A graph stored as a snapshot and an operation log (before its collections were tables) is moved into the tables once. */
  private upgradeLegacy() {
    const legacy = readLegacyGraph(this.sql, this.events);
    if (!legacy) return;
    this.storage.transactionSync(() => {
      copyGraph(legacy.graph, this.collections);
      this.collections.writeBack();
      this.events.flush();
      this.setMeta("counter", String(legacy.graph.counterValue()));
      this.setMeta("settings", JSON.stringify(legacy.settings));
      dropLegacyTables(this.sql);
    });
    this.collections.forget({ rolledBack: false });
  }
}
