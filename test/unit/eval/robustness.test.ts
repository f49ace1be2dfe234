import { Detector } from '../../../src/core/detector';
import { Rng } from '../../../src/core/random';
import { quantile } from '../../../src/core/stats';
import { trainModel } from '../../../src/core/train';
import { scoreSet } from '../../../src/eval/evaluate';
import {
  DEFAULT_ROBUSTNESS,
  addNoise,
  imputeMetric,
  injectOutliers,
  metricScales,
  normalDraws,
  runRobustness,
  sampleRows,
  shiftMetrics,
  trainingMedians,
} from '../../../src/eval/robustness';

/** Rows of cpu, memory, network around realistic levels. */
function hostRows(n: number, seed: number): Float64Array {
  const r = new Rng(seed);
  const x = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) {
    x[i * 3] = 30 + 6 * r.normal();
    x[i * 3 + 1] = 50 + 5 * r.normal();
    x[i * 3 + 2] = 6e5 + 1e5 * r.normal();
  }
  return x;
}

const train = hostRows(4000, 1);
const artifact = trainModel(train, 4000, {
  nEstimators: 60,
  maxSamples: 256,
  seed: 3,
  contamination: 0.05,
  createdAt: '2026-01-01T00:00:00.000Z',
});
const det = new Detector(artifact);

describe('robustness perturbations', () => {
  it("scales are the training scaler's standard deviations; medians are the training medians stored in the artifact", () => {
    const s = metricScales(artifact, train, 4000);
    expect(s.source).toEqual(['training_scaler', 'training_scaler', 'training_scaler']);
    expect(s.values).toEqual(artifact.scaler.scale);
    expect(s.values[0]).toBeGreaterThan(5);
    expect(s.values[0]).toBeLessThan(7);
    const m = trainingMedians(artifact, train, 4000);
    expect(m.source).toEqual(['training_median', 'training_median', 'training_median']);
    for (let f = 0; f < 3; f++) {
      const col = Float64Array.from({ length: 4000 }, (_, i) => train[i * 3 + f]);
      expect(m.values[f]).toBeCloseTo(quantile(col, 0.5), 9);
    }
  });

  it('falls back to the training mean when an artifact has no quantiles, and says so', () => {
    const bare = { ...artifact, training: { ...artifact.training, feature_quantiles: [] as number[][] } };
    const m = trainingMedians(bare, train, 4000);
    expect(m.source).toEqual(['training_mean', 'training_mean', 'training_mean']);
    expect(m.values).toEqual(artifact.scaler.mean);
  });

  it("noise is Gaussian with sigma times each metric's scale; zero sigma changes nothing", () => {
    const n = 20000;
    const raw = hostRows(n, 2);
    const scales = [2, 10, 1000];
    const z = normalDraws(n, 9);
    expect(Array.from(addNoise(raw, n, scales, 0, z))).toEqual(Array.from(raw));
    const noisy = addNoise(raw, n, scales, 0.1, z);
    for (let m = 0; m < 3; m++) {
      let s = 0;
      let ss = 0;
      for (let i = 0; i < n; i++) {
        const d = (noisy[i * 3 + m] - raw[i * 3 + m]) / scales[m];
        s += d;
        ss += d * d;
      }
      const mean = s / n;
      expect(Math.abs(mean)).toBeLessThan(0.005);
      expect(Math.sqrt(ss / n - mean * mean)).toBeCloseTo(0.1, 2);
    }
  });

  it('imputation replaces exactly one metric; shift adds delta standard deviations to every metric', () => {
    const raw = hostRows(50, 3);
    const imp = imputeMetric(raw, 50, 2, 123);
    for (let i = 0; i < 50; i++) {
      expect(imp[i * 3 + 2]).toBe(123);
      expect(imp[i * 3]).toBe(raw[i * 3]);
      expect(imp[i * 3 + 1]).toBe(raw[i * 3 + 1]);
    }
    const sh = shiftMetrics(raw, 50, [2, 3, 4], 0.5);
    for (let i = 0; i < 150; i++) expect(sh[i] - raw[i]).toBeCloseTo(0.5 * [2, 3, 4][i % 3], 9);
  });

  it('outliers multiply every metric of 10% of rows (seeded, distinct) and leave the rest', () => {
    const rows = sampleRows(200, 0.1, 5);
    expect(rows.length).toBe(20);
    expect(new Set(rows).size).toBe(20);
    expect(Array.from(rows)).toEqual(Array.from(rows).sort((a, b) => a - b));
    expect(Array.from(sampleRows(200, 0.1, 5))).toEqual(Array.from(rows));
    expect(Array.from(sampleRows(200, 0.1, 6))).not.toEqual(Array.from(rows));
    const raw = hostRows(200, 4);
    const out = injectOutliers(raw, 200, rows, 5);
    const chosen = new Set(rows);
    for (let i = 0; i < 200; i++)
      for (let m = 0; m < 3; m++) expect(out[i * 3 + m]).toBe(chosen.has(i) ? raw[i * 3 + m] * 5 : raw[i * 3 + m]);
  });
});

describe('robustness suite', () => {
  const n = 1500;
  const raw = hostRows(n, 11);
  const labels = new Uint8Array(n);
  // Label 5% of rows and make them real incidents.
  for (let i = 0; i < n; i += 20) {
    labels[i] = 1;
    raw[i * 3] = 95;
    raw[i * 3 + 1] = 92;
    raw[i * 3 + 2] = 4e6;
  }

  it('runs every scenario through the Detector and measures what the prototype measured', () => {
    const r = runRobustness(det, raw, n, labels, { seed: 1, ...DEFAULT_ROBUSTNESS });
    const clean = scoreSet(det, raw, n);
    expect(r.clean.flagged_fraction).toBeCloseTo(clean.flags.reduce((a, b) => a + b, 0) / n, 12);
    expect(r.noise.map((s) => s.parameter)).toEqual([0.01, 0.05, 0.1]);
    expect(r.missing.map((s) => s.parameter)).toEqual(['cpu_usage', 'memory_usage', 'network_load']);
    expect(r.outliers.map((s) => s.parameter)).toEqual([2, 5, 10]);
    expect(r.shift.map((s) => s.parameter)).toEqual([0.1, 0.5, 1]);
    // Tiny noise barely changes flags; labelled figures are computed against the labels.
    expect(r.noise[0].flag_agreement).toBeGreaterThan(0.97);
    expect(r.noise[0].score_spearman).toBeGreaterThan(0.99);
    expect(r.noise[0].labelled?.f1).toBeGreaterThan(0.5);
    // Outliers: 150 rows; x10 puts every metric far out, so nearly all are caught, and more than at x2.
    for (const o of r.outliers) expect(o.rows_affected).toBe(150);
    expect(r.outliers[2].detection_rate).toBeGreaterThan(0.95);
    expect(r.outliers[2].detection_rate).toBeGreaterThanOrEqual(r.outliers[0].detection_rate as number);
    expect(r.outliers[0].baseline_rate).toBe(r.outliers[2].baseline_rate);
    expect(r.outliers[0].labelled).toBeNull();
    // A shift of one standard deviation of every metric flags more than the clean data; 0.1 sd hardly changes it.
    expect(r.shift[2].flagged_fraction).toBeGreaterThan(r.clean.flagged_fraction + 0.05);
    expect(Math.abs(r.shift[0].flagged_change)).toBeLessThan(0.03);
    expect(r.imputation.cpu_usage.source).toBe('training_median');
    expect(r.notes.join(' ')).toMatch(/standardised units/);
  });

  it('without labels: no accuracy figures, and it says so', () => {
    const r = runRobustness(det, raw, n, null, { seed: 1, ...DEFAULT_ROBUSTNESS });
    for (const s of [...r.noise, ...r.missing, ...r.shift]) expect(s.labelled).toBeNull();
    expect(r.clean.labelled).toBeNull();
    expect(r.notes.join(' ')).toMatch(/no labels: accuracy under perturbation .* is not computed/);
    expect(r.outliers[2].detection_rate).toBeGreaterThan(0.95);
  });

  it('is deterministic for a seed', () => {
    const a = runRobustness(det, raw, n, labels, { seed: 4, ...DEFAULT_ROBUSTNESS });
    const b = runRobustness(det, raw, n, labels, { seed: 4, ...DEFAULT_ROBUSTNESS });
    expect(b).toEqual(a);
  });
});
