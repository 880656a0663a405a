import { byProfileId, everyShard } from "./fan-out";
import type { ShardedAudiences } from "./audiences";

export interface BackfillChunk {
  processed: number;
  changed: number;
  /** The profile id the chunk ended on, where the next one starts; null after the last chunk. */
  next: string | null;
  total: number;
}

/**
 * One chunk of a backfill over every graph shard: the next `limit` live
 * profiles of the workspace after `after`, in profile id order, whichever
 * shard holds them, as one graph's chunk would take them.
 *
 * 1. Every shard lists its next `limit` live ids after `after`. The first
 *    `limit` of all of them are the chunk's; the last one, `through`, ends it.
 * 2. Every shard rebuilds its own profiles in (`after`, `through`], at once.
 *
 * So the job's cursor stays one profile id, every shard has been walked up to
 * it after each chunk, and the jobs consumer's ordering of cursors as text
 * holds as with one graph. A person handed over to another shard between two
 * chunks keeps their id: behind the cursor they were rebuilt where they were,
 * ahead of it they are rebuilt where they are. Step 2 asks each shard for the
 * range rather than for the ids it listed, so a person handed over to it
 * between the two steps is rebuilt there too; only one who is in the middle
 * of a hand-over (in neither shard) during the whole chunk can be missed,
 * and is evaluated from their next event as any person is.
 *
 * Each shard works in parallel: a chunk of `limit` profiles costs two calls
 * per shard, however they are spread.
 */
export async function backfillOverShards(audiences: ShardedAudiences, after: string | null, limit: number): Promise<BackfillChunk> {
  const lists = await everyShard(audiences.count, (n) => audiences.shard(n).listProfiles(after, limit));
  const listed = lists.flatMap((list) => list.profiles).sort(byProfileId);
  const more = listed.length > limit || lists.some((list) => list.next !== null);
  const chunk = listed.slice(0, limit);
  const through = more ? (chunk.at(-1)?.profileId ?? null) : null;
  const total = lists.reduce((sum, list) => sum + list.total, 0);
  if (chunk.length === 0) return { processed: 0, changed: 0, next: null, total };
  // The last chunk has no end of its own: each shard goes through its last profile (those it listed, and any that came since).
  const done = await everyShard(audiences.count, (n) => backfillRange(audiences, n, after, through, limit));
  return {
    processed: done.reduce((sum, d) => sum + d.processed, 0),
    changed: done.reduce((sum, d) => sum + d.changed, 0),
    next: through,
    total,
  };
}

/**
 * Shard `n`'s live profiles after `after` up to `through` (included; null:
 * to its last profile), rebuilt `limit` at a time. Usually one call: the range
 * holds at most the `limit` ids the shard listed, unless people were handed
 * over to it since.
 */
async function backfillRange(audiences: ShardedAudiences, n: number, after: string | null, through: string | null, limit: number) {
  const stub = audiences.shard(n);
  let processed = 0;
  let changed = 0;
  for (let from = after; ; ) {
    const step = through === null ? await stub.backfillAudiences(from, limit) : await stub.backfillAudiencesThrough(from, through, limit);
    processed += step.processed;
    changed += step.changed;
    if (step.next === null) return { processed, changed };
    from = step.next;
  }
}
