import { z } from "zod";
import type { EventLinks, Link } from "../workers/identity/event-links";
import { chunk } from "../workers/lib/chunks";

/** The subset of `SqlStorage` used here, so a benchmark can run the same code over node:sqlite. */
export interface SqlExec {
  exec<T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]): { toArray(): T[]; one(): T };
}

const keysSchema = z.array(z.string());

/**
 * The graph's per-event state in the object's SQLite, so that memory holds
 * identifiers and clusters but nothing per event. Lists of ids travel as one
 * JSON parameter (`json_each`), which keeps every statement within the bound
 * parameter limit however many clusters an erasure names.
 */
export class SqlEventLinks implements EventLinks {
  constructor(private readonly sql: SqlExec) {
    // Written for every event, so each table is one B-tree keyed by messageId and links get a single index;
    // finding a person's assignments (privacy requests only) scans the table instead of taxing every write.
    sql.exec("CREATE TABLE IF NOT EXISTS graph_event_clusters (message_id TEXT PRIMARY KEY, cluster_id TEXT NOT NULL) WITHOUT ROWID");
    sql.exec("CREATE TABLE IF NOT EXISTS graph_links (message_id TEXT PRIMARY KEY, cluster_id TEXT NOT NULL, keys TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID");
    sql.exec("CREATE INDEX IF NOT EXISTS graph_links_cluster ON graph_links (cluster_id, at)");
  }

  /** Writes not yet sent: one statement per operation instead of two per event. */
  private readonly pendingEvents = new Map<string, string>();
  private readonly pendingLinks = new Map<string, PendingLink>();
  /**
   * The same pending links by cluster, so a merge moves its absorbed cluster's
   * links without walking every link of the operation. An entry replaced in
   * `pendingLinks` may linger here; `moveLinks` skips it.
   */
  private readonly pendingByCluster = new Map<string, PendingLink[]>();

  clusterOf(messageId: string) {
    const pending = this.pendingEvents.get(messageId);
    if (pending !== undefined) return pending;
    return this.sql.exec<{ cluster_id: string }>("SELECT cluster_id FROM graph_event_clusters WHERE message_id = ?", messageId).toArray()[0]?.cluster_id;
  }
  clustersOf(messageIds: string[]) {
    this.flush();
    const rows = this.sql
      .exec<{ message_id: string; cluster_id: string }>("SELECT message_id, cluster_id FROM graph_event_clusters WHERE message_id IN (SELECT value FROM json_each(?))", JSON.stringify(messageIds))
      .toArray();
    return new Map(rows.map((r) => [r.message_id, r.cluster_id]));
  }
  assign(messageId: string, clusterId: string) {
    this.pendingEvents.set(messageId, clusterId);
  }
  count() {
    this.flush();
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM graph_event_clusters").one().n;
  }
  assignments() {
    this.flush();
    return this.sql.exec<{ message_id: string; cluster_id: string }>("SELECT message_id, cluster_id FROM graph_event_clusters").toArray().map((r) => [r.message_id, r.cluster_id] as [string, string]);
  }
  eventsOf(clusterIds: Iterable<string>) {
    this.flush();
    return this.sql
      .exec<{ message_id: string }>("SELECT message_id FROM graph_event_clusters WHERE cluster_id IN (SELECT value FROM json_each(?))", JSON.stringify([...clusterIds]))
      .toArray()
      .map((r) => r.message_id);
  }

  addLink(clusterId: string, link: Link) {
    const pending = { clusterId, link };
    this.pendingLinks.set(link.messageId, pending);
    this.pendingOf(clusterId).push(pending);
  }
  private pendingOf(clusterId: string): PendingLink[] {
    let list = this.pendingByCluster.get(clusterId);
    if (!list) this.pendingByCluster.set(clusterId, (list = []));
    return list;
  }
  hasLink(messageId: string) {
    if (this.pendingLinks.has(messageId)) return true;
    return this.sql.exec("SELECT 1 FROM graph_links WHERE message_id = ?", messageId).toArray().length > 0;
  }
  links(clusterId: string) {
    this.flush();
    return this.rows("SELECT message_id, cluster_id, keys, at FROM graph_links WHERE cluster_id = ? ORDER BY at, message_id", clusterId).map((r) => r.link);
  }
  setLinks(clusterId: string, links: Link[]) {
    this.flush();
    this.sql.exec("DELETE FROM graph_links WHERE cluster_id = ?", clusterId);
    for (const link of links) this.addLink(clusterId, link);
  }
  moveLinks(from: string, to: string) {
    // Links not yet sent move in memory: flushing first would write them twice, once to insert and once to move.
    const moving = this.pendingByCluster.get(from);
    if (moving && from !== to) {
      this.pendingByCluster.delete(from);
      const target = this.pendingOf(to);
      for (const pending of moving) {
        if (this.pendingLinks.get(pending.link.messageId) !== pending) continue;
        pending.clusterId = to;
        target.push(pending);
      }
    }
    this.sql.exec("UPDATE graph_links SET cluster_id = ? WHERE cluster_id = ?", to, from);
  }
  linksNaming(keys: Set<string>) {
    if (keys.size === 0) return [];
    this.flush();
    return this.rows(
      "SELECT message_id, cluster_id, keys, at FROM graph_links WHERE EXISTS (SELECT 1 FROM json_each(graph_links.keys) AS k WHERE k.value IN (SELECT value FROM json_each(?))) ORDER BY at, message_id",
      JSON.stringify([...keys]),
    );
  }
  allLinks() {
    this.flush();
    return this.rows("SELECT message_id, cluster_id, keys, at FROM graph_links ORDER BY at, message_id");
  }

  forget(clusterIds: Set<string>, messageIds: Set<string>) {
    this.flush();
    const clusters = JSON.stringify([...clusterIds]);
    this.sql.exec(
      "DELETE FROM graph_event_clusters WHERE cluster_id IN (SELECT value FROM json_each(?)) OR message_id IN (SELECT value FROM json_each(?))",
      clusters,
      JSON.stringify([...messageIds]),
    );
    this.sql.exec("DELETE FROM graph_links WHERE cluster_id IN (SELECT value FROM json_each(?))", clusters);
  }

  /**
   * Sends buffered writes, as a few statements whatever their number (the rows
   * travel as one JSON parameter). The graph's log calls this before an
   * operation's transaction commits; every read above calls it first.
   */
  flush() {
    if (this.pendingEvents.size) {
      for (const part of chunk([...this.pendingEvents], CHUNK)) {
        this.sql.exec("INSERT OR REPLACE INTO graph_event_clusters (message_id, cluster_id) SELECT value ->> 0, value ->> 1 FROM json_each(?)", JSON.stringify(part));
      }
      this.pendingEvents.clear();
    }
    if (this.pendingLinks.size) {
      const rows = [...this.pendingLinks.values()].map(({ clusterId, link }) => [link.messageId, clusterId, JSON.stringify(link.keys), link.at]);
      for (const part of chunk(rows, CHUNK)) {
        this.sql.exec("INSERT OR REPLACE INTO graph_links (message_id, cluster_id, keys, at) SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?)", JSON.stringify(part));
      }
      this.pendingLinks.clear();
      this.pendingByCluster.clear();
    }
  }

  /** Drops buffered writes: their operation failed and its transaction rolled back. */
  discard() {
    this.pendingEvents.clear();
    this.pendingLinks.clear();
    this.pendingByCluster.clear();
  }

  /** Rows are parsed, not trusted: a corrupt `keys` cell fails loudly here rather than linking the wrong people. */
  private rows(query: string, ...bindings: unknown[]) {
    return this.sql
      .exec<{ message_id: string; cluster_id: string; keys: string; at: number }>(query, ...bindings)
      .toArray()
      .map((r) => ({ clusterId: r.cluster_id, link: { messageId: r.message_id, keys: keysSchema.parse(JSON.parse(r.keys)), at: Number(r.at) } }));
  }
}

/** Rows per statement: keeps each JSON parameter well under SQLite's string limits. */
const CHUNK = 2_000;

type PendingLink = { clusterId: string; link: Link };
