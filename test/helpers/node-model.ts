import type { ModelArtifact } from '../../src/core/artifact';
import { Detector } from '../../src/core/detector';
import type { FeatureSpec } from '../../src/core/features';
import { NODE_METRICS, type MetricDef } from '../../src/core/metrics';
import { Rng } from '../../src/core/random';
import { trainModel } from '../../src/core/train';

/** A typical value of each metric of the node set, and its spread. */
const LEVELS: Record<string, [number, number]> = {
  cpu_usage: [30, 8],
  memory_usage: [50, 5],
  network_load: [4e5, 6e4],
  load1: [1.2, 0.4],
  load5: [1.1, 0.2],
  load15: [1, 0.1],
  disk_read_bytes: [2e6, 4e5],
  disk_write_bytes: [3e6, 5e5],
  disk_io_time: [40, 10],
  swap_used_percent: [5, 1],
  tcp_established: [120, 15],
  tcp_time_wait: [30, 6],
  tcp_retrans_segs: [2, 0.7],
};

/** A normal-looking value of metric `name` (clamped into its range). */
export function typicalValue(d: MetricDef, r: Rng): number {
  const [mean, sd] = LEVELS[d.name] ?? [10, 2];
  const v = mean + sd * r.normal();
  return Math.min(d.max ?? Infinity, Math.max(d.min, v));
}

/**
 * A model of raw features over a metric set (default: the node set, 13 metrics), trained
 * like the bundled one (200 trees of 128 samples) on normal-looking rows; `trainModel`
 * records the set's declarations (`metrics`) in the artifact.
 */
export function metricSetModel(defs: readonly MetricDef[] = NODE_METRICS, seed = 3): ModelArtifact {
  const r = new Rng(seed);
  const n = 2000;
  const m = defs.length;
  const raw = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let k = 0; k < m; k++) raw[i * m + k] = typicalValue(defs[k], r);
  const features: FeatureSpec[] = defs.map((d) => ({
    name: d.name,
    source: d.name,
    transform: 'raw',
    unit: d.unit,
    min: d.min,
    max: d.max,
  }));
  return trainModel(raw, n, {
    nEstimators: 200,
    maxSamples: 128,
    seed,
    contamination: 0.05,
    createdAt: '2026-01-01T00:00:00.000Z',
    features,
    inputs: defs.map((d) => d.name),
    metricDefs: defs,
  });
}

/** The detector of `metricSetModel`, taking its own inputs (as the service will load it). */
export const metricSetDetector = (defs: readonly MetricDef[] = NODE_METRICS, seed = 3): Detector =>
  new Detector(metricSetModel(defs, seed), { inputs: 'any' });
