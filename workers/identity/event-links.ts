/**
 * The graph's per-event state: which cluster each applied event belongs to,
 * and the link (the identifiers it joined) each event left. It grows with
 * events rather than with people, so the graph reaches it through this
 * interface: the Durable Object keeps it in SQLite (durable-objects/
 * sql-event-links.ts), out of the isolate's memory; tests and benchmarks keep
 * it in maps. Both must behave alike, and every write is a "set", so replaying
 * an operation over state that already holds it changes nothing.
 */

/** One applied event: the identifiers it carried (after guards) are linked to each other. */
export interface Link {
  messageId: string;
  keys: string[];
  at: number;
}

export interface EventLinks {
  /** The cluster an event was assigned to when applied (follow forwards through the graph). */
  clusterOf(messageId: string): string | undefined;
  /** `clusterOf` for many events at once: those never applied are absent. */
  clustersOf(messageIds: string[]): Map<string, string>;
  assign(messageId: string, clusterId: string): void;
  /** How many events have been assigned. */
  count(): number;
  /** Every assignment, for checks and exports; unordered. */
  assignments(): Iterable<[messageId: string, clusterId: string]>;
  /** Events assigned to any of these clusters. */
  eventsOf(clusterIds: Iterable<string>): string[];

  /** Records a link; a link with the same messageId is replaced. */
  addLink(clusterId: string, link: Link): void;
  hasLink(messageId: string): boolean;
  /** The cluster's links in event time order (then by messageId). */
  links(clusterId: string): Link[];
  /** Replaces every link of a cluster (unmerge and split recompute them). */
  setLinks(clusterId: string, links: Link[]): void;
  /** A merge: the absorbed cluster's links now belong to the survivor. */
  moveLinks(from: string, to: string): void;
  /** Links anywhere in the graph naming one of `keys`, with the cluster holding each. */
  linksNaming(keys: Set<string>): { clusterId: string; link: Link }[];
  /** Every link, for checks and benchmarks. */
  allLinks(): Iterable<{ clusterId: string; link: Link }>;

  /** Erasure: drops the assignments of these clusters and these events, and these clusters' links. */
  forget(clusterIds: Set<string>, messageIds: Set<string>): void;
}

const byTime = (a: Link, b: Link) => a.at - b.at || (a.messageId < b.messageId ? -1 : a.messageId > b.messageId ? 1 : 0);

/** Maps in memory: the pure graph's default. */
export class MemoryEventLinks implements EventLinks {
  private readonly events = new Map<string, string>();
  private readonly linkById = new Map<string, { clusterId: string; link: Link }>();
  private readonly byCluster = new Map<string, Set<string>>();

  clusterOf(messageId: string) {
    return this.events.get(messageId);
  }
  clustersOf(messageIds: string[]) {
    return new Map(messageIds.flatMap((id) => (this.events.has(id) ? [[id, this.events.get(id)!] as const] : [])));
  }
  assign(messageId: string, clusterId: string) {
    this.events.set(messageId, clusterId);
  }
  count() {
    return this.events.size;
  }
  assignments() {
    return this.events.entries();
  }
  eventsOf(clusterIds: Iterable<string>) {
    const wanted = new Set(clusterIds);
    return [...this.events].filter(([, clusterId]) => wanted.has(clusterId)).map(([messageId]) => messageId);
  }

  addLink(clusterId: string, link: Link) {
    this.removeLink(link.messageId);
    this.linkById.set(link.messageId, { clusterId, link });
    this.members(clusterId).add(link.messageId);
  }
  hasLink(messageId: string) {
    return this.linkById.has(messageId);
  }
  links(clusterId: string) {
    return [...(this.byCluster.get(clusterId) ?? [])].map((id) => this.linkById.get(id)!.link).sort(byTime);
  }
  setLinks(clusterId: string, links: Link[]) {
    for (const id of [...(this.byCluster.get(clusterId) ?? [])]) this.removeLink(id);
    for (const link of links) this.addLink(clusterId, link);
  }
  moveLinks(from: string, to: string) {
    const moving = this.byCluster.get(from);
    if (!moving) return;
    for (const id of moving) this.linkById.get(id)!.clusterId = to;
    const target = this.members(to);
    for (const id of moving) target.add(id);
    this.byCluster.delete(from);
  }
  linksNaming(keys: Set<string>) {
    return [...this.linkById.values()].sort((a, b) => byTime(a.link, b.link)).filter(({ link }) => link.keys.some((k) => keys.has(k))).map(({ clusterId, link }) => ({ clusterId, link }));
  }
  allLinks() {
    return [...this.linkById.values()].sort((a, b) => byTime(a.link, b.link)).map(({ clusterId, link }) => ({ clusterId, link }));
  }

  forget(clusterIds: Set<string>, messageIds: Set<string>) {
    for (const [messageId, clusterId] of this.events) if (clusterIds.has(clusterId) || messageIds.has(messageId)) this.events.delete(messageId);
    for (const clusterId of clusterIds) for (const id of [...(this.byCluster.get(clusterId) ?? [])]) this.removeLink(id);
  }

  private members(clusterId: string) {
    let ids = this.byCluster.get(clusterId);
    if (!ids) this.byCluster.set(clusterId, (ids = new Set()));
    return ids;
  }
  private removeLink(messageId: string) {
    const entry = this.linkById.get(messageId);
    if (!entry) return;
    this.linkById.delete(messageId);
    const members = this.byCluster.get(entry.clusterId);
    members?.delete(messageId);
    if (members?.size === 0) this.byCluster.delete(entry.clusterId);
  }
}
