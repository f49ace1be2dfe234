/** Quantile with linear interpolation between order statistics (numpy's default). */
export function quantile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) throw new Error('quantile of an empty sample');
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile level must be in [0, 1], got ${q}`);
  const sorted = Float64Array.from(values).sort();
  return quantileSorted(sorted, q);
}

/** Quantile of an already sorted sample. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  if (lo === hi) return sorted[lo];
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Threshold on scores such that about `contamination` of `scores` lie above it. */
export function thresholdFromContamination(scores: ArrayLike<number>, contamination: number): number {
  if (!(contamination > 0 && contamination < 0.5)) throw new Error(`contamination must be in (0, 0.5), got ${contamination}`);
  return quantile(scores, 1 - contamination);
}
