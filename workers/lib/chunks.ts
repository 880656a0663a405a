/** Splits items, in order, into chunks of at most `size` items. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += size) out.push(items.slice(start, start + size));
  return out;
}

/**
 * Splits items, in order, into chunks of at most `maxItems` items whose sizes
 * add up to at most `maxSize`. An item larger than `maxSize` gets a chunk of
 * its own: callers size their limits so that one item always fits.
 */
export function chunkBySize<T>(items: Iterable<T>, sizeOf: (item: T) => number, maxSize: number, maxItems = Number.POSITIVE_INFINITY): T[][] {
  const chunks: T[][] = [];
  let chunk: T[] = [];
  let size = 0;
  for (const item of items) {
    const itemSize = sizeOf(item);
    if (chunk.length && (chunk.length >= maxItems || size + itemSize > maxSize)) {
      chunks.push(chunk);
      chunk = [];
      size = 0;
    }
    chunk.push(item);
    size += itemSize;
  }
  if (chunk.length) chunks.push(chunk);
  return chunks;
}
