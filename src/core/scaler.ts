/** Serialised StandardScaler: x' = (x - mean) / scale. */
export interface ScalerState {
  mean: number[];
  scale: number[];
}

/**
 * Fits a StandardScaler (population standard deviation, as scikit-learn). A feature
 * with zero variance gets scale 1, so it maps to 0 instead of NaN.
 */
export function fitScaler(x: Float64Array, n: number, d: number): ScalerState {
  if (n < 1) throw new Error('cannot fit a scaler on no rows');
  const mean = new Array<number>(d).fill(0);
  const m2 = new Array<number>(d).fill(0);
  // Welford's algorithm: stable for large offsets such as bytes/s counters.
  for (let i = 0; i < n; i++) {
    for (let f = 0; f < d; f++) {
      const v = x[i * d + f];
      const delta = v - mean[f];
      mean[f] += delta / (i + 1);
      m2[f] += delta * (v - mean[f]);
    }
  }
  const scale = m2.map((s) => {
    const sd = Math.sqrt(s / n);
    return sd > 1e-12 && Number.isFinite(sd) ? sd : 1;
  });
  return { mean, scale };
}

/** Applies the scaler to `n` rows of `src` into `dst` (may be the same array). */
export function transform(scaler: ScalerState, src: Float64Array, n: number, dst: Float64Array): void {
  const d = scaler.mean.length;
  const { mean, scale } = scaler;
  for (let i = 0; i < n; i++) {
    const base = i * d;
    for (let f = 0; f < d; f++) dst[base + f] = (src[base + f] - mean[f]) / scale[f];
  }
}
