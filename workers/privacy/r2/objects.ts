/** Every object under a prefix, listed to the end before any is changed, so deletions cannot disturb the listing. */
export async function listAll(bucket: R2Bucket, prefix: string): Promise<R2Object[]> {
  const objects: R2Object[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, cursor });
    objects.push(...page.objects);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return objects;
}

/** Attempts at a conditional rewrite before giving up: each failure means another writer changed the object meanwhile. */
const ATTEMPTS = 3;

export type Rewrite<T> = { put: ArrayBuffer | Uint8Array | string; options?: Omit<R2PutOptions, "onlyIf">; result: T } | { delete: true; result: T } | { result: T };

/**
 * Reads an object and writes back what `change` makes of it, only if nobody
 * wrote it in between (an etag precondition): an export or a consumer retry
 * rewriting the same key must not be overwritten by a copy made before it,
 * and neither must the erasure be undone by it. A conflict reads it again.
 * Returns null when the object does not exist.
 */
export async function rewriteObject<T>(bucket: R2Bucket, key: string, change: (object: R2ObjectBody) => Promise<Rewrite<T>>): Promise<T | null> {
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const object = await bucket.get(key);
    if (!object) return null;
    const next = await change(object);
    if ("put" in next) {
      const written = await bucket.put(key, next.put, { ...next.options, onlyIf: { etagMatches: object.etag } });
      if (written) return next.result;
    } else {
      // R2 deletes unconditionally. A writer racing it can only put back a copy made before the erasure
      // (an events batch retried), which the next run of the erasure removes again.
      if ("delete" in next) await bucket.delete(key);
      return next.result;
    }
  }
  throw new Error(`${key} kept changing while it was being rewritten; try again`);
}
