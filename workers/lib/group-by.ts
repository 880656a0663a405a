/** Items by key, each group in the order the items came. */
export function groupBy<T>(items: Iterable<T>, keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}

/** The same keys with each value transformed. */
export function mapValues<K, V, W>(map: Map<K, V>, transform: (value: V) => W): Map<K, W> {
  const out = new Map<K, W>();
  for (const [key, value] of map) out.set(key, transform(value));
  return out;
}
