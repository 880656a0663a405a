import type { Cluster, IndexEntry, MergeRecord, ReviewItem } from "../workers/identity/graph";
import { type ClusterTable, clustersOfMerge, followForwards, type FeatureTable, featureKeys, type IndexTable, type MergeTable, type PositionedReview, type ReviewPage, type ReviewTable } from "../workers/identity/graph-collections";
import type { ProfileFeatures } from "../workers/identity/probabilistic";
import { clusterRowSchema, featuresSchema, indexEntrySchema, mergeSchema, reviewSchema } from "../workers/identity/snapshot";
import type { SqlExec } from "./sql-event-links";
import { type Codec, jsonCodec, SqlTable } from "./sql-table";

/**
 * The identity graph's keyed tables, each with the columns and side tables
 * its lookups need (see graph-collections.ts). Lists of ids travel as one
 * JSON parameter (`json_each`), however many an erasure names.
 */

/**
 * Rows each table keeps cached between operations: about 20 MB when full. A
 * person has about six identifiers to one cluster and one set of features.
 */
export const CACHED_ROWS = { clusters: 4_000, features: 4_000, index: 16_000, merges: 1_000, reviews: 1_000 };

const list = (ids: Iterable<string>) => JSON.stringify([...ids]);

const clusterCodec: Codec<Cluster> = {
  encode: (c) => JSON.stringify({ id: c.id, createdAt: c.createdAt, seq: c.seq, identifiers: [...c.identifiers], ...(c.forwardedTo ? { forwardedTo: c.forwardedTo } : {}) }),
  decode: (json) => {
    const row = clusterRowSchema.parse(JSON.parse(json));
    return { ...row, identifiers: new Map(row.identifiers) };
  },
};

/**
 * Clusters. `forwarded_to` finds the clusters absorbed into one; its index
 * leaves out live clusters, the rows rewritten by nearly every event. The
 * side table holds the identifiers of live clusters only, as `liveHolder` asks.
 */
export class SqlClusterTable extends SqlTable<Cluster> implements ClusterTable {
  constructor(sql: SqlExec, cachedRows = CACHED_ROWS.clusters) {
    super(
      sql,
      "graph_clusters",
      clusterCodec,
      {
        columns: { live: (c) => (c.forwardedTo ? 0 : 1), forwarded_to: (c) => c.forwardedTo ?? null },
        indexes: [{ on: "forwarded_to", where: "forwarded_to IS NOT NULL" }],
        side: { table: "graph_cluster_identifiers", item: "identifier", owner: "cluster_id", of: (c) => (c.forwardedTo ? [] : c.identifiers.keys()) },
      },
      cachedRows,
    );
  }
  liveIds(after: string | null, limit: number) {
    this.writeBack();
    return this.sql
      .exec<{ key: string }>(`SELECT key FROM graph_clusters WHERE live = 1 AND key > ? ORDER BY key LIMIT ?`, after ?? "", Number.isFinite(limit) ? limit : -1)
      .toArray()
      .map((r) => r.key);
  }
  liveCount() {
    this.writeBack();
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM graph_clusters WHERE live = 1").one().n;
  }
  forwardingTo(clusterId: string) {
    return this.keys("WHERE forwarded_to = ?", clusterId);
  }
  liveIdsOf(ids: Iterable<string>) {
    const out = new Map<string, string>();
    const stored: string[] = [];
    for (const id of ids) {
      const cached = this.peek(id);
      if (cached === undefined) stored.push(id);
      else if (cached !== null) out.set(id, cached.forwardedTo ? (followForwards(this, id) ?? id) : id);
    }
    if (!stored.length) return out;
    // Rows not cached are as stored (a row changed by this operation stays cached until write-back), so their column is current.
    const rows = this.sql.exec<{ key: string; forwarded_to: string | null }>("SELECT key, forwarded_to FROM graph_clusters WHERE key IN (SELECT value FROM json_each(?))", list(stored)).toArray();
    for (const row of rows) {
      const live = row.forwarded_to ? followForwards(this, row.forwarded_to) : row.key;
      if (live !== undefined) out.set(row.key, live);
    }
    return out;
  }
  liveHolder(key: string, except: Set<string>) {
    this.writeBack();
    return this.sql
      .exec<{ key: string }>(
        "SELECT c.key FROM graph_cluster_identifiers i JOIN graph_clusters c ON c.key = i.cluster_id WHERE i.identifier = ? AND c.live = 1 AND c.key NOT IN (SELECT value FROM json_each(?)) ORDER BY c.rowid LIMIT 1",
        key,
        list(except),
      )
      .toArray()[0]?.key;
  }
}

/** Identifiers, with the cluster each routes to as a column and the user ids each remembers in a side table. */
export class SqlIndexTable extends SqlTable<IndexEntry> implements IndexTable {
  constructor(sql: SqlExec, cachedRows = CACHED_ROWS.index) {
    super(
      sql,
      "graph_index",
      jsonCodec(indexEntrySchema),
      {
        columns: { cluster_id: (e) => e.clusterId },
        indexes: [{ on: "cluster_id" }],
        side: { table: "graph_index_user_ids", item: "user_id", owner: "identifier", of: (e) => e.userIds },
      },
      cachedRows,
    );
  }
  routingTo(clusterIds: Iterable<string>) {
    return this.keys("WHERE cluster_id IN (SELECT value FROM json_each(?))", list(clusterIds));
  }
  remembering(userIds: Iterable<string>) {
    return this.keys("WHERE key IN (SELECT identifier FROM graph_index_user_ids WHERE user_id IN (SELECT value FROM json_each(?)))", list(userIds));
  }
}

/** Match features, with the emails and phones each lists in a side table (as identifier keys). */
export class SqlFeatureTable extends SqlTable<ProfileFeatures> implements FeatureTable {
  constructor(sql: SqlExec, cachedRows = CACHED_ROWS.features) {
    super(sql, "graph_features", jsonCodec(featuresSchema), { side: { table: "graph_feature_identifiers", item: "identifier", owner: "cluster_id", of: featureKeys } }, cachedRows);
  }
  listing(keys: Iterable<string>) {
    return this.keys("WHERE key IN (SELECT cluster_id FROM graph_feature_identifiers WHERE identifier IN (SELECT value FROM json_each(?)))", list(keys));
  }
}

/** Merges, with a side table from each cluster a merge names to the merge, so a profile's merges are found without reading them all. */
export class SqlMergeTable extends SqlTable<MergeRecord> implements MergeTable {
  constructor(sql: SqlExec, cachedRows = CACHED_ROWS.merges) {
    super(sql, "graph_merges", jsonCodec(mergeSchema), { side: { table: "graph_merge_clusters", item: "cluster_id", owner: "merge_id", of: clustersOfMerge } }, cachedRows);
  }
  involving(clusterId: string) {
    this.writeBack();
    return this.sql
      .exec<{ key: string; value: string }>("SELECT m.key, m.value FROM graph_merge_clusters c JOIN graph_merges m ON m.key = c.merge_id WHERE c.cluster_id = ? ORDER BY m.rowid", clusterId)
      .toArray()
      .map((row) => this.decoded(row.key, row.value));
  }
}

/** The review queue: its order is the rowid's, a page's cursor the last rowid shown. */
export class SqlReviewTable extends SqlTable<ReviewItem> implements ReviewTable {
  constructor(sql: SqlExec, cachedRows = CACHED_ROWS.reviews) {
    super(
      sql,
      "graph_reviews",
      jsonCodec(reviewSchema),
      {
        columns: { status: (r) => r.status, message_id: (r) => r.messageId ?? null },
        indexes: [{ on: "status" }, { on: "message_id", where: "message_id IS NOT NULL" }],
        side: { table: "graph_review_clusters", item: "cluster_id", owner: "review_id", of: (r) => r.clusters },
      },
      cachedRows,
    );
  }
  /**
   * Open reviews, read once when the graph is built to index them by
   * identifier. A review naming a cluster this object does not hold (a copy
   * kept or brought by a person's hand-over to another graph shard) is left
   * out: this graph could not resolve it, and the shard holding the cluster decides it.
   */
  open(): ReviewItem[] {
    return [
      ...this.rows(
        "WHERE status = 'open' AND NOT EXISTS (SELECT 1 FROM json_each(graph_reviews.value, '$.clusters') AS j WHERE NOT EXISTS (SELECT 1 FROM graph_clusters AS c WHERE c.key = j.value))",
      ),
    ].map(([, review]) => review);
  }
  concerning(clusterIds: Iterable<string>, messageIds: Iterable<string>) {
    this.writeBack();
    return this.sql
      .exec<{ position: number; key: string; value: string }>(
        "SELECT rowid AS position, key, value FROM graph_reviews WHERE key IN (SELECT review_id FROM graph_review_clusters WHERE cluster_id IN (SELECT value FROM json_each(?))) " +
          "UNION SELECT rowid AS position, key, value FROM graph_reviews WHERE message_id IN (SELECT value FROM json_each(?)) ORDER BY position",
        list(clusterIds),
        list(messageIds),
      )
      .toArray()
      .map((row) => this.decoded(row.key, row.value));
  }
  page(status: ReviewItem["status"] | undefined, after: number, limit: number): ReviewPage {
    this.writeBack();
    // One row past the page says whether another follows.
    const rows = this.sql
      .exec<{ position: number; key: string; value: string }>(
        `SELECT rowid AS position, key, value FROM graph_reviews WHERE ${status ? "status = ? AND " : ""}rowid > ? ORDER BY rowid LIMIT ?`,
        ...(status ? [status] : []),
        after,
        limit + 1,
      )
      .toArray();
    const shown = rows.slice(0, limit);
    return { reviews: shown.map((row) => this.decoded(row.key, row.value)), next: rows.length > limit ? (shown.at(-1)?.position ?? after) : null };
  }
  positioned(status: ReviewItem["status"] | undefined, after: number, limit: number): PositionedReview[] {
    this.writeBack();
    return this.sql
      .exec<{ position: number; key: string; value: string }>(
        `SELECT rowid AS position, key, value FROM graph_reviews WHERE ${status ? "status = ? AND " : ""}rowid > ? ORDER BY rowid LIMIT ?`,
        ...(status ? [status] : []),
        after,
        limit,
      )
      .toArray()
      .map((row) => ({ review: this.decoded(row.key, row.value), position: row.position }));
  }
}
