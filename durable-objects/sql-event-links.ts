import { z } from "zod";
import type { EventLinks, Link } from "../workers/identity/event-links";

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
    sql.exec("CREATE TABLE IF NOT EXISTS graph_event_clusters (message_id TEXT PRIMARY KEY, cluster_id TEXT NOT NULL) WITHOUT ROWID");
    sql.exec("CREATE INDEX IF NOT EXISTS graph_event_clusters_cluster ON graph_event_clusters (cluster_id)");
    sql.exec("CREATE TABLE IF NOT EXISTS graph_links (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE, cluster_id TEXT NOT NULL, keys TEXT NOT NULL, at INTEGER NOT NULL)");
    sql.exec("CREATE INDEX IF NOT EXISTS graph_links_cluster ON graph_links (cluster_id, seq)");
  }

  clusterOf(messageId: string) {
    return this.sql.exec<{ cluster_id: string }>("SELECT cluster_id FROM graph_event_clusters WHERE message_id = ?", messageId).toArray()[0]?.cluster_id;
  }
  assign(messageId: string, clusterId: string) {
    this.sql.exec("INSERT OR REPLACE INTO graph_event_clusters (message_id, cluster_id) VALUES (?, ?)", messageId, clusterId);
  }
  count() {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM graph_event_clusters").one().n;
  }
  assignments() {
    return this.sql.exec<{ message_id: string; cluster_id: string }>("SELECT message_id, cluster_id FROM graph_event_clusters").toArray().map((r) => [r.message_id, r.cluster_id] as [string, string]);
  }
  eventsOf(clusterIds: Iterable<string>) {
    return this.sql
      .exec<{ message_id: string }>("SELECT message_id FROM graph_event_clusters WHERE cluster_id IN (SELECT value FROM json_each(?))", JSON.stringify([...clusterIds]))
      .toArray()
      .map((r) => r.message_id);
  }

  addLink(clusterId: string, link: Link) {
    this.sql.exec("INSERT OR REPLACE INTO graph_links (message_id, cluster_id, keys, at) VALUES (?, ?, ?, ?)", link.messageId, clusterId, JSON.stringify(link.keys), link.at);
  }
  hasLink(messageId: string) {
    return this.sql.exec("SELECT 1 FROM graph_links WHERE message_id = ?", messageId).toArray().length > 0;
  }
  links(clusterId: string) {
    return this.rows("SELECT message_id, cluster_id, keys, at FROM graph_links WHERE cluster_id = ? ORDER BY seq", clusterId).map((r) => r.link);
  }
  setLinks(clusterId: string, links: Link[]) {
    this.sql.exec("DELETE FROM graph_links WHERE cluster_id = ?", clusterId);
    for (const link of links) this.addLink(clusterId, link);
  }
  moveLinks(from: string, to: string) {
    this.sql.exec("UPDATE graph_links SET cluster_id = ? WHERE cluster_id = ?", to, from);
  }
  linksNaming(keys: Set<string>) {
    if (keys.size === 0) return [];
    return this.rows(
      "SELECT message_id, cluster_id, keys, at FROM graph_links WHERE EXISTS (SELECT 1 FROM json_each(graph_links.keys) AS k WHERE k.value IN (SELECT value FROM json_each(?))) ORDER BY seq",
      JSON.stringify([...keys]),
    );
  }
  allLinks() {
    return this.rows("SELECT message_id, cluster_id, keys, at FROM graph_links ORDER BY seq");
  }

  forget(clusterIds: Set<string>, messageIds: Set<string>) {
    const clusters = JSON.stringify([...clusterIds]);
    this.sql.exec(
      "DELETE FROM graph_event_clusters WHERE cluster_id IN (SELECT value FROM json_each(?)) OR message_id IN (SELECT value FROM json_each(?))",
      clusters,
      JSON.stringify([...messageIds]),
    );
    this.sql.exec("DELETE FROM graph_links WHERE cluster_id IN (SELECT value FROM json_each(?))", clusters);
  }

  /** Rows are parsed, not trusted: a corrupt `keys` cell fails loudly here rather than linking the wrong people. */
  private rows(query: string, ...bindings: unknown[]) {
    return this.sql
      .exec<{ message_id: string; cluster_id: string; keys: string; at: number }>(query, ...bindings)
      .toArray()
      .map((r) => ({ clusterId: r.cluster_id, link: { messageId: r.message_id, keys: keysSchema.parse(JSON.parse(r.keys)), at: Number(r.at) } }));
  }
}
