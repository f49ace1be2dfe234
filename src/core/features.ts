import { METRIC_NAMES, METRICS, type MetricName } from './metrics';

/**
 * A model input: a raw metric passed through a transform. The artifact declares its
 * features, and this module is the one place that computes them, for training, the
 * poller and /detect alike.
 */
export interface FeatureSpec {
  name: string;
  source: MetricName;
  transform: 'raw';
  unit: string;
  min: number;
  max: number | null;
}

/** The default features: the three raw metrics. */
export function defaultFeatures(): FeatureSpec[] {
  return METRIC_NAMES.map((m) => ({ name: m, source: m, transform: 'raw' as const, unit: METRICS[m].unit, min: METRICS[m].min, max: METRICS[m].max }));
}

/**
 * Builds the feature matrix (row-major, n x features) from a raw metric matrix
 * (row-major, n x METRIC_NAMES.length).
 */
export function buildFeatures(specs: readonly FeatureSpec[], raw: Float64Array, n: number, out: Float64Array): void {
  const m = METRIC_NAMES.length;
  const d = specs.length;
  const src = specs.map((s) => METRIC_NAMES.indexOf(s.source));
  for (let i = 0; i < n; i++) for (let f = 0; f < d; f++) out[i * d + f] = raw[i * m + src[f]];
}

/** Index into METRIC_NAMES of each feature's source metric (to fold contributions). */
export function sourceIndex(specs: readonly FeatureSpec[]): Int32Array {
  return Int32Array.from(specs.map((s) => METRIC_NAMES.indexOf(s.source)));
}
