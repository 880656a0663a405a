/** Shared figures for the benchmarks: exact (nearest-rank) percentiles over every sample. */

/** Nearest-rank percentile of an ascending array; null when it is empty. */
export function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const round1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);

/** Sample count, p50 / p95 / p99, min and max of latencies in ms, to 0.1 ms. */
export function latencySummary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    samples: sorted.length,
    p50Ms: round1(percentile(sorted, 50)),
    p95Ms: round1(percentile(sorted, 95)),
    p99Ms: round1(percentile(sorted, 99)),
    minMs: round1(sorted[0] ?? null),
    maxMs: round1(sorted.at(-1) ?? null),
  };
}
