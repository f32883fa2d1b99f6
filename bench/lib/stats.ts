// Small statistics for benchmark samples: nearest-rank percentiles and the median of repeated runs.

/** Nearest-rank percentile (p in 0..100) of the samples; NaN for none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const s = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))]!;
}

/** Median (mean of the two middle values for an even count); NaN for none; NaN samples are ignored. */
export function median(samples: readonly number[]): number {
  const s = samples.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function nsToMs(ns: bigint | number): number {
  return Number(ns) / 1e6;
}
