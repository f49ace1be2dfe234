import type { BatchScores, Detector } from '../core/detector';
import { METRIC_NAMES } from '../core/metrics';
import { quantile } from '../core/stats';
import { averagePrecision, binaryMetrics, prCurve, rocAuc, rocCurve } from './metrics';

/** Figures against real 0/1 labels (never against the model's own flags). */
export interface LabelledFigures {
  precision: number;
  recall: number;
  f1: number;
  /** null when the labels have a single class. */
  roc_auc: number | null;
  pr_auc: number | null;
  confusion: { tp: number; fp: number; tn: number; fn: number };
  positives: number;
  negatives: number;
}

/** Figures that need no labels. */
export interface LabelFreeFigures {
  rows: number;
  flagged: number;
  flagged_fraction: number;
  threshold: number;
  score: { mean: number; min: number; p50: number; p90: number; p99: number; max: number };
}

/** Scoring latency through Detector.scoreRaw, microseconds. */
export interface Latency {
  /** Points timed one at a time (a batch of one, as a single /detect point). */
  points: number;
  per_point_mean_us: number;
  per_point_p50_us: number;
  per_point_p99_us: number;
  /** Whole-set batch time divided by its rows. */
  batch_per_point_us: number;
}

export interface TestMetrics {
  labels: 'present' | 'absent';
  label_free: LabelFreeFigures;
  labelled: LabelledFigures | null;
  latency: Latency;
  /** Says what was and was not computed, and why. */
  note: string;
}

export const NO_LABELS_NOTE =
  'the data has no anomaly labels: only label-free figures are reported (flagged fraction, score ' +
  "distribution, latency); precision, recall, F1, ROC-AUC and PR-AUC need real labels and the model's own flags " +
  'are never used as truth';

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** Precision, recall, F1, ROC-AUC, PR-AUC and the confusion matrix against `labels`. */
export function labelledFigures(scores: ArrayLike<number>, flags: ArrayLike<number>, labels: ArrayLike<number>): LabelledFigures {
  const b = binaryMetrics(flags, labels);
  return {
    precision: b.precision,
    recall: b.recall,
    f1: b.f1,
    roc_auc: finiteOrNull(rocAuc(scores, labels)),
    pr_auc: finiteOrNull(averagePrecision(scores, labels)),
    confusion: { tp: b.tp, fp: b.fp, tn: b.tn, fn: b.fn },
    positives: b.tp + b.fn,
    negatives: b.tn + b.fp,
  };
}

/** Flagged share and score distribution. */
export function labelFreeFigures(scores: Float64Array, flags: Uint8Array, threshold: number): LabelFreeFigures {
  const n = scores.length;
  let flagged = 0;
  let mean = 0;
  for (let i = 0; i < n; i++) {
    flagged += flags[i];
    mean += (scores[i] - mean) / (i + 1);
  }
  const sorted = Float64Array.from(scores).sort();
  return {
    rows: n,
    flagged,
    flagged_fraction: n > 0 ? flagged / n : 0,
    threshold,
    score: {
      mean,
      min: sorted[0],
      p50: quantile(sorted, 0.5),
      p90: quantile(sorted, 0.9),
      p99: quantile(sorted, 0.99),
      max: sorted[n - 1],
    },
  };
}

/** 1 where the detector flags a score. */
export function flagsOf(det: Detector, scores: Float64Array): Uint8Array {
  const flags = new Uint8Array(scores.length);
  for (let i = 0; i < scores.length; i++) flags[i] = det.isAnomaly(scores[i]) ? 1 : 0;
  return flags;
}

/**
 * Times Detector.scoreRaw: up to `maxPoints` single-point calls (after a warm-up, so the
 * JIT has compiled the path) and one batch call over all rows.
 */
export function measureLatency(det: Detector, raw: Float64Array, n: number, maxPoints = 2000): Latency {
  const m = det.inputs.length;
  const one = (i: number): void => {
    det.scoreRaw(raw.subarray(i * m, i * m + m), 1);
  };
  for (let k = 0; k < Math.min(300, n); k++) one(k % n);
  const points = Math.min(maxPoints, n);
  const us = new Float64Array(points);
  for (let k = 0; k < points; k++) {
    const t0 = process.hrtime.bigint();
    one(k);
    us[k] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const t0 = process.hrtime.bigint();
  det.scoreRaw(raw, n);
  const batchUs = Number(process.hrtime.bigint() - t0) / 1000;
  let mean = 0;
  for (let k = 0; k < points; k++) mean += (us[k] - mean) / (k + 1);
  return {
    points,
    per_point_mean_us: mean,
    per_point_p50_us: quantile(us, 0.5),
    per_point_p99_us: quantile(us, 0.99),
    batch_per_point_us: batchUs / n,
  };
}

/** Scores, flags and contributions of a set, through the one scoring path. */
export interface Scored {
  scores: Float64Array;
  flags: Uint8Array;
  /** n x inputs (the detector's inputs, in order) */
  contributions: Float64Array;
}

/** Host and time of each row of a set (for models with temporal features). */
export interface RowSeries {
  keys: readonly string[];
  times: ArrayLike<number>;
}

/** The host and time columns of a part, as RowSeries. */
export const seriesOf = (part: { hosts: string[]; timestamps: number[] }): RowSeries => ({ keys: part.hosts, times: part.timestamps });

/**
 * Scores the rows of a set through the Detector. A raw-feature model (or no `series`):
 * each row on its own. A model with temporal features: each host's rows in time order,
 * with a history that starts empty at the set's first row of that host (as the service
 * after a restart without history), results in the rows' original order.
 */
export function scoreRows(det: Detector, raw: Float64Array, n: number, series?: RowSeries): BatchScores {
  if (!det.temporal || !series) return det.scoreRaw(raw, n);
  const m = det.inputs.length;
  // Rows without a readable time go last; their time stays NaN, so they are scored
  // without history (see SeriesFeatures.compute).
  const at = (i: number): number => (Number.isFinite(series.times[i]) ? series.times[i] : Infinity);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => at(a) - at(b) || a - b);
  const keys = order.map((i) => series.keys[i]);
  const sorted = new Float64Array(n * m);
  for (let k = 0; k < n; k++) sorted.set(raw.subarray(order[k] * m, order[k] * m + m), k * m);
  const s = det.scoreSeries(
    keys,
    order.map((i) => series.times[i]),
    sorted,
    n,
    { state: det.stateFor(undefined, Math.max(1, new Set(keys).size)) },
  );
  const scores = new Float64Array(n);
  const contributions = new Float64Array(n * m);
  for (let k = 0; k < n; k++) {
    scores[order[k]] = s.scores[k];
    contributions.set(s.contributions.subarray(k * m, k * m + m), order[k] * m);
  }
  return { n, scores, contributions };
}

export function scoreSet(det: Detector, raw: Float64Array, n: number, series?: RowSeries): Scored {
  const { scores, contributions } = scoreRows(det, raw, n, series);
  return { scores, flags: flagsOf(det, scores), contributions };
}

/** Test-set figures: label-free always, labelled when `labels` is given, latency. */
export function testMetrics(
  det: Detector,
  raw: Float64Array,
  n: number,
  labels: Uint8Array | null,
  scored = scoreSet(det, raw, n),
): TestMetrics {
  const labelled = labels ? labelledFigures(scored.scores, scored.flags, labels) : null;
  let note = labels ? "figures against the data's anomaly labels" : NO_LABELS_NOTE;
  if (labelled && (labelled.positives === 0 || labelled.negatives === 0)) {
    note = `the labels have a single class (${labelled.positives} anomalous, ${labelled.negatives} normal): ROC-AUC and PR-AUC are undefined (null)`;
  }
  return {
    labels: labels ? 'present' : 'absent',
    label_free: labelFreeFigures(scored.scores, scored.flags, det.threshold),
    labelled,
    latency: measureLatency(det, raw, n),
    note,
  };
}

/** A flagged point and what pushed it over. */
export interface FlaggedPoint {
  row: number;
  host: string;
  timestamp: number;
  score: number;
  label: number | null;
  values: Record<string, number>;
  contributions: Record<string, number>;
}

export interface FlaggedSummary {
  flagged: number;
  /** Mean contribution of each metric over all flagged points (keys in the set's order). */
  mean_contributions: Record<string, number>;
  /** Share of flagged points whose largest contribution is each metric. */
  dominant_share: Record<string, number>;
  /** Highest-scoring flagged points. */
  top: FlaggedPoint[];
}

/**
 * Contributions of the flagged points: means, dominant metric, and the top `top` points.
 * `meta.metrics`: the columns of `raw` and of the contributions (default the basic three).
 */
export function flaggedSummary(
  scored: Scored,
  raw: Float64Array,
  meta: { hosts: string[]; timestamps: number[]; labels: Uint8Array | null; metrics?: readonly string[] },
  top = 20,
): FlaggedSummary {
  const names = meta.metrics ?? METRIC_NAMES;
  const m = names.length;
  const idx: number[] = [];
  for (let i = 0; i < scored.scores.length; i++) if (scored.flags[i]) idx.push(i);
  const mean = new Array<number>(m).fill(0);
  const dominant = new Array<number>(m).fill(0);
  for (const i of idx) {
    let best = 0;
    for (let f = 0; f < m; f++) {
      mean[f] += scored.contributions[i * m + f] / idx.length;
      if (scored.contributions[i * m + f] > scored.contributions[i * m + best]) best = f;
    }
    dominant[best] += 1 / idx.length;
  }
  const byName = (v: ArrayLike<number>): Record<string, number> => Object.fromEntries(names.map((name, f) => [name, v[f]]));
  const topIdx = [...idx].sort((a, b) => scored.scores[b] - scored.scores[a] || a - b).slice(0, top);
  return {
    flagged: idx.length,
    mean_contributions: byName(mean),
    dominant_share: byName(dominant),
    top: topIdx.map((i) => ({
      row: i,
      host: meta.hosts[i],
      timestamp: meta.timestamps[i],
      score: scored.scores[i],
      label: meta.labels ? meta.labels[i] : null,
      values: byName(raw.subarray(i * m, i * m + m)),
      contributions: byName(scored.contributions.subarray(i * m, i * m + m)),
    })),
  };
}

/** Evenly thinned copy of a curve (first and last points kept), for plots. */
export function thin<T>(points: T[], max: number): T[] {
  if (points.length <= max) return points;
  const out: T[] = [];
  for (let k = 0; k < max; k++) out.push(points[Math.round((k * (points.length - 1)) / (max - 1))]);
  return out;
}

/** ROC and PR curves for plots (null without both classes). */
export function curves(scores: Float64Array, labels: Uint8Array, max = 400) {
  let pos = 0;
  for (const l of labels) pos += l;
  if (pos === 0 || pos === labels.length) return null;
  const roc = rocCurve(scores, labels).map((p) => ({ fpr: p.fpr, tpr: p.tpr }));
  const pr = prCurve(scores, labels).map((p) => ({ recall: p.recall, precision: p.precision }));
  return { roc: thin(roc, max), pr: thin(pr, max), positive_rate: pos / labels.length };
}
