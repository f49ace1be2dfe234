import { Detector } from '../../../src/core/detector';
import { hostTemporalFeatures } from '../../../src/core/features';
import { Rng } from '../../../src/core/random';
import { trainModel } from '../../../src/core/train';
import {
  curves,
  flaggedSummary,
  labelFreeFigures,
  labelledFigures,
  measureLatency,
  scoreRows,
  scoreSet,
  testMetrics,
  thin,
} from '../../../src/eval/evaluate';
import { averagePrecision, rocAuc } from '../../../src/eval/metrics';

/** ROC-AUC by counting every positive/negative pair (ties count half). */
function bruteAuc(s: number[], l: number[]): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < s.length; i++) {
    if (l[i] !== 1) continue;
    for (let j = 0; j < s.length; j++) {
      if (l[j] !== 0) continue;
      den++;
      num += s[i] > s[j] ? 1 : s[i] === s[j] ? 0.5 : 0;
    }
  }
  return num / den;
}

describe('classification metrics', () => {
  it('ROC-AUC equals the pairwise definition, ties included', () => {
    const r = new Rng(3);
    for (let t = 0; t < 5; t++) {
      const s = Array.from({ length: 300 }, () => Math.round(r.next() * 20) / 20);
      const l = s.map((v) => (r.next() < 0.2 + 0.5 * v ? 1 : 0));
      expect(rocAuc(s, l)).toBeCloseTo(bruteAuc(s, l), 12);
    }
  });

  it('average precision matches a hand computation', () => {
    // Ranked: 1 (P=1, R=.5), 0, 1 (P=2/3, R=1), 0 -> AP = .5 * 1 + .5 * 2/3
    expect(averagePrecision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0])).toBeCloseTo(0.5 + 1 / 3, 12);
  });

  it('labelled figures come from the labels, never from the flags themselves', () => {
    const scores = [0.9, 0.8, 0.7, 0.6, 0.5];
    const flags = [1, 1, 1, 0, 0];
    const labels = [1, 0, 1, 1, 0];
    const f = labelledFigures(scores, flags, labels);
    expect(f.confusion).toEqual({ tp: 2, fp: 1, tn: 1, fn: 1 });
    expect(f.precision).toBeCloseTo(2 / 3, 12);
    expect(f.recall).toBeCloseTo(2 / 3, 12);
    expect(f.positives).toBe(3);
    expect(f.negatives).toBe(2);
    expect(f.roc_auc).toBeCloseTo(bruteAuc(scores, labels), 12);
    // Scoring the flags against themselves would give F1 = 1: the labels differ, so it does not.
    expect(f.f1).toBeLessThan(1);
    const oneClass = labelledFigures(scores, flags, [0, 0, 0, 0, 0]);
    expect(oneClass.roc_auc).toBeNull();
    expect(oneClass.pr_auc).toBeNull();
  });

  it('label-free figures: flagged share and score quantiles', () => {
    const s = Float64Array.from({ length: 101 }, (_, i) => i / 100);
    const flags = Uint8Array.from(s, (v) => (v > 0.9 ? 1 : 0));
    const f = labelFreeFigures(s, flags, 0.9);
    expect(f.flagged).toBe(10);
    expect(f.flagged_fraction).toBeCloseTo(10 / 101, 12);
    expect(f.score.p50).toBeCloseTo(0.5, 12);
    expect(f.score.p99).toBeCloseTo(0.99, 12);
    expect(f.score.mean).toBeCloseTo(0.5, 12);
  });

  it('curves are thinned keeping both ends, and absent without both classes', () => {
    const pts = Array.from({ length: 1000 }, (_, i) => i);
    const t = thin(pts, 10);
    expect(t).toHaveLength(10);
    expect(t[0]).toBe(0);
    expect(t[9]).toBe(999);
    expect(curves(Float64Array.from([0.1, 0.2]), Uint8Array.from([0, 0]))).toBeNull();
    const c = curves(Float64Array.from([0.1, 0.2, 0.3, 0.4]), Uint8Array.from([0, 1, 0, 1]));
    expect(c?.positive_rate).toBe(0.5);
    expect(c?.roc[0]).toEqual({ fpr: 0, tpr: 0 });
    expect(c?.roc[c.roc.length - 1]).toEqual({ fpr: 1, tpr: 1 });
  });
});

describe('test metrics through the Detector', () => {
  const r = new Rng(8);
  const n = 1200;
  const raw = new Float64Array(n * 3);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const bad = i % 25 === 0;
    labels[i] = bad ? 1 : 0;
    raw[i * 3] = bad ? 97 : 30 + 5 * r.normal();
    raw[i * 3 + 1] = bad ? 95 : 50 + 5 * r.normal();
    raw[i * 3 + 2] = bad ? 9e6 : 5e5 + 5e4 * r.normal();
  }
  const det = new Detector(
    trainModel(raw, n, { nEstimators: 50, maxSamples: 128, seed: 2, contamination: 0.04, createdAt: '2026-01-01T00:00:00.000Z' }),
  );

  it('reports labelled figures, a confusion matrix and latency with labels', () => {
    const t = testMetrics(det, raw, n, labels);
    expect(t.labels).toBe('present');
    const l = t.labelled;
    expect(l).not.toBeNull();
    expect((l?.confusion.tp ?? 0) + (l?.confusion.fn ?? 0)).toBe(48);
    expect(l?.roc_auc).toBeGreaterThan(0.95);
    expect(t.latency.points).toBe(1200);
    expect(t.latency.per_point_mean_us).toBeGreaterThan(0);
    expect(Number.isFinite(t.latency.per_point_p99_us)).toBe(true);
    expect(t.latency.batch_per_point_us).toBeGreaterThan(0);
  });

  it('without labels reports label-free figures only and says so', () => {
    const t = testMetrics(det, raw, n, null);
    expect(t.labels).toBe('absent');
    expect(t.labelled).toBeNull();
    expect(t.note).toMatch(/no anomaly labels: only label-free figures.*never used as truth/);
    expect(t.label_free.flagged).toBeGreaterThan(0);
  });

  it('latency is measured on single-point calls, capped', () => {
    const lat = measureLatency(det, raw, n, 50);
    expect(lat.points).toBe(50);
  });

  it('summarises contributions of flagged points: means over flagged rows, top points by score', () => {
    const s = scoreSet(det, raw, n);
    const f = flaggedSummary(s, raw, { hosts: new Array(n).fill('h'), timestamps: Array.from({ length: n }, (_, i) => i), labels }, 5);
    const flagged = Array.from(s.flags).reduce((a, b) => a + b, 0);
    expect(f.flagged).toBe(flagged);
    expect(f.top).toHaveLength(5);
    for (let k = 1; k < 5; k++) expect(f.top[k - 1].score).toBeGreaterThanOrEqual(f.top[k].score);
    let cpu = 0;
    for (let i = 0; i < n; i++) if (s.flags[i]) cpu += s.contributions[i * 3];
    expect(f.mean_contributions.cpu_usage).toBeCloseTo(cpu / flagged, 9);
    const dom = f.dominant_share;
    expect(dom.cpu_usage + dom.memory_usage + dom.network_load).toBeCloseTo(1, 9);
    expect(f.top[0].values.cpu_usage).toBe(raw[f.top[0].row * 3]);
  });
});

describe('scoreRows', () => {
  it('scores a temporal model per host in time order whatever the row order, and a raw model row by row', () => {
    const r = new Rng(12);
    const n = 300;
    const keys = Array.from({ length: n }, (_, i) => `h${i % 3}`);
    const times = Array.from({ length: n }, (_, i) => 1_000 * Math.floor(i / 3));
    const raw = Float64Array.from({ length: n * 3 }, (_, k) => [30, 50, 4e5][k % 3] * (1 + 0.05 * r.normal()));
    const det = new Detector(
      trainModel(raw, n, {
        nEstimators: 20,
        maxSamples: 64,
        seed: 3,
        contamination: 0.05,
        createdAt: '2026-01-01T00:00:00.000Z',
        features: hostTemporalFeatures(10, 3),
        keys,
        times,
      }),
    );
    const inOrder = scoreRows(det, raw, n, { keys, times });
    const perm = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = r.int(i + 1);
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    const shuffledRaw = new Float64Array(n * 3);
    perm.forEach((p, k) => shuffledRaw.set(raw.subarray(p * 3, p * 3 + 3), k * 3));
    const shuffled = scoreRows(det, shuffledRaw, n, { keys: perm.map((p) => keys[p]), times: perm.map((p) => times[p]) });
    perm.forEach((p, k) => {
      expect(shuffled.scores[k]).toBe(inOrder.scores[p]);
      expect(Array.from(shuffled.contributions.subarray(k * 3, k * 3 + 3))).toEqual(
        Array.from(inOrder.contributions.subarray(p * 3, p * 3 + 3)),
      );
    });
    // History matters: the series scores differ from row-by-row scores.
    expect(Array.from(inOrder.scores)).not.toEqual(Array.from(det.scoreRaw(raw, n).scores));
    const rawDet = new Detector(
      trainModel(raw, n, { nEstimators: 20, maxSamples: 64, seed: 3, contamination: 0.05, createdAt: '2026-01-01T00:00:00.000Z' }),
    );
    expect(Array.from(scoreRows(rawDet, raw, n, { keys, times }).scores)).toEqual(Array.from(rawDet.scoreRaw(raw, n).scores));
  });
});
