/**
 * What the readers of a workspace spread over graph shards share (admin
 * reads and decisions, the Profile API, privacy requests, retention, audiences):
 * calls to every shard at once, and the order their pages merge in.
 */

/** `call` for shards 0 to `count - 1`, all at once; answers in shard order. */
export function everyShard<T>(count: number, call: (n: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: count }, (_, n) => call(n)));
}

/**
 * Ascending profile id order, as the objects' SQLite orders them (binary
 * collation): ids are ASCII, where UTF-16 and UTF-8 byte order agree. Ids are
 * unique across a workspace's shards (a shard above 0 puts its number in the
 * ids it issues), so one id is a position in every shard's walk at once.
 */
export const byProfileId = <T extends { profileId: string }>(a: T, b: T) => (a.profileId < b.profileId ? -1 : a.profileId > b.profileId ? 1 : 0);
