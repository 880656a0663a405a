/**
 * Groups a batch's events by the identifiers they share, so that the people
 * a group reaches can be brought onto one graph shard in one round of
 * hand-overs, before any of its events is sent, instead of one round per
 * event that meets a second shard.
 *
 * A key seen in the batch with more user ids than the quarantine threshold
 * (a kiosk, a "login as" session) does not join groups: the graph is about to
 * quarantine it, and grouping by it would pull every person who used it onto
 * one shard. Events carrying such a key are brought together one at a time,
 * until the graph has quarantined it.
 */

export interface ShardMove {
  from: number;
  to: number;
  keys: string[];
}

/** Keys (other than user ids) seen in the batch on events with more than `threshold` distinct user ids. */
export function hotKeys(keysOfEvents: Iterable<string[]>, threshold: number): Set<string> {
  const userIds = new Map<string, Set<string>>();
  for (const keys of keysOfEvents) {
    const userId = keys.find((key) => key.startsWith("user_id:"));
    if (userId === undefined) continue;
    for (const key of keys) {
      if (key.startsWith("user_id:")) continue;
      let seen = userIds.get(key);
      if (!seen) userIds.set(key, (seen = new Set()));
      seen.add(userId);
    }
  }
  return new Set([...userIds].filter(([, seen]) => seen.size > threshold).map(([key]) => key));
}

/** Union-find over keys: two keys on one event are in one group. */
export class KeyGroups {
  private readonly parent = new Map<string, string>();

  add(keys: string[]) {
    for (const key of keys) if (!this.parent.has(key)) this.parent.set(key, key);
    for (let i = 1; i < keys.length; i++) this.union(keys[0]!, keys[i]!);
  }

  root(key: string): string {
    let root = key;
    while (this.parent.get(root) !== root) root = this.parent.get(root)!;
    // Path halving would do; full compression keeps later lookups flat.
    for (let k = key; k !== root; ) {
      const next = this.parent.get(k)!;
      this.parent.set(k, root);
      k = next;
    }
    return root;
  }

  /** Every group, as its root → its keys. */
  groups(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const key of this.parent.keys()) {
      const root = this.root(key);
      let keys = out.get(root);
      if (!keys) out.set(root, (keys = []));
      keys.push(key);
    }
    return out;
  }

  private union(a: string, b: string) {
    const ra = this.root(a);
    const rb = this.root(b);
    if (ra !== rb) this.parent.set(ra < rb ? rb : ra, ra < rb ? ra : rb);
  }
}

/**
 * Each group's shard: the one holding its first user id (in key order), so
 * that two consumers whose batches reach the same people choose alike rather
 * than pull them back and forth; without a placed user id, the one holding
 * most of its placed keys (fewest keys move), the lowest on a tie; a group
 * with nothing placed goes where `home` says. Groups placed on several shards
 * answer the moves that bring them onto theirs, merged per pair of shards.
 */
export function placeGroups(groups: Map<string, string[]>, shardOf: (key: string) => number | undefined, home: (keys: string[]) => number) {
  const targets = new Map<string, number>();
  const moves = new Map<string, ShardMove>();
  for (const [root, keys] of groups) {
    const tally = new Map<number, string[]>();
    for (const key of keys) {
      const shard = shardOf(key);
      if (shard === undefined) continue;
      let placed = tally.get(shard);
      if (!placed) tally.set(shard, (placed = []));
      placed.push(key);
    }
    if (tally.size === 0) {
      targets.set(root, home(keys));
      continue;
    }
    const userId = keys.filter((key) => key.startsWith("user_id:") && shardOf(key) !== undefined).sort()[0];
    const target = userId !== undefined ? shardOf(userId)! : [...tally].sort((a, b) => b[1].length - a[1].length || a[0] - b[0])[0]![0];
    targets.set(root, target);
    for (const [from, placed] of tally) {
      if (from === target) continue;
      const pair = `${from}>${target}`;
      const move = moves.get(pair) ?? { from, to: target, keys: [] };
      move.keys.push(...placed);
      moves.set(pair, move);
    }
  }
  return { targets, moves: [...moves.values()] };
}
