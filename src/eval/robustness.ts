import { artifactInputs, type ModelArtifact } from '../core/artifact';
import type { Detector } from '../core/detector';
import { METRIC_NAMES } from '../core/metrics';
import { Rng } from '../core/random';
import { quantile } from '../core/stats';
import { labelledFigures, scoreSet, type LabelledFigures, type RowSeries, type Scored } from './evaluate';
import { spearman } from './metrics';

/**
 * The prototype's robustness suite: perturb the evaluation rows, score them again with
 * the same Detector, and compare with the unperturbed run (and with the labels, where
 * the data has them). Perturbations are pure functions of their inputs and a seed.
 */

export interface RobustnessOptions {
  seed: number;
  /** Gaussian noise, in standardised units (multiples of each metric's training scale). */
  noiseSigmas: number[];
  /** Factors applied to every metric of the outlier rows. */
  outlierFactors: number[];
  /** Share of rows turned into outliers. */
  outlierFraction: number;
  /** Shift of every metric, in training standard deviations. */
  shifts: number[];
  /** Host and time of each row: a temporal model scores the perturbed rows as series. */
  series?: RowSeries;
}

export const DEFAULT_ROBUSTNESS: Omit<RobustnessOptions, 'seed'> = {
  noiseSigmas: [0.01, 0.05, 0.1],
  outlierFactors: [2, 5, 10],
  outlierFraction: 0.1,
  shifts: [0.1, 0.5, 1.0],
};

/** Width of the raw rows of the exported helpers when not given: the basic three. */
const BASIC_WIDTH: number = METRIC_NAMES.length;

/** Index of the feature that is input `m` of the model untransformed, or -1. */
function rawFeature(artifact: ModelArtifact, m: number): number {
  const name = artifactInputs(artifact)[m];
  return artifact.features.findIndex((f) => f.source === name && f.transform === 'raw');
}

/** One value per metric and where it came from. */
export interface PerMetric<S extends string> {
  values: number[];
  source: S[];
}

/**
 * The standard deviation of each metric in the training data (the scaler's scale of its
 * raw feature); when the model has no raw feature of a metric, the population standard
 * deviation of the evaluated rows.
 */
export function metricScales(artifact: ModelArtifact, raw: Float64Array, n: number): PerMetric<'training_scaler' | 'evaluation_data'> {
  const M = artifactInputs(artifact).length;
  const values: number[] = [];
  const source: Array<'training_scaler' | 'evaluation_data'> = [];
  for (let m = 0; m < M; m++) {
    const f = rawFeature(artifact, m);
    if (f >= 0) {
      values.push(artifact.scaler.scale[f]);
      source.push('training_scaler');
      continue;
    }
    let mean = 0;
    for (let i = 0; i < n; i++) mean += (raw[i * M + m] - mean) / (i + 1);
    let ss = 0;
    for (let i = 0; i < n; i++) ss += (raw[i * M + m] - mean) ** 2;
    const sd = Math.sqrt(ss / Math.max(1, n));
    values.push(sd > 0 ? sd : 1);
    source.push('evaluation_data');
  }
  return { values, source };
}

/**
 * The training median of each metric: decile 5 of the artifact's
 * `training.feature_quantiles` for its raw feature; the scaler mean when the quantiles
 * are unavailable; the evaluated rows' median when the model has no raw feature of it.
 */
export function trainingMedians(
  artifact: ModelArtifact,
  raw: Float64Array,
  n: number,
): PerMetric<'training_median' | 'training_mean' | 'evaluation_median'> {
  const M = artifactInputs(artifact).length;
  const values: number[] = [];
  const source: Array<'training_median' | 'training_mean' | 'evaluation_median'> = [];
  for (let m = 0; m < M; m++) {
    const f = rawFeature(artifact, m);
    const q = f >= 0 ? artifact.training.feature_quantiles?.[f] : undefined;
    if (q && q.length === 11) {
      values.push(q[5]);
      source.push('training_median');
    } else if (f >= 0) {
      values.push(artifact.scaler.mean[f]);
      source.push('training_mean');
    } else {
      const col = new Float64Array(n);
      for (let i = 0; i < n; i++) col[i] = raw[i * M + m];
      values.push(quantile(col, 0.5));
      source.push('evaluation_median');
    }
  }
  return { values, source };
}

/** n x `width` standard normal draws (drawn once, so every noise level uses the same ones). */
export function normalDraws(n: number, seed: number, width = BASIC_WIDTH): Float64Array {
  const rng = new Rng(seed);
  const z = new Float64Array(n * width);
  for (let i = 0; i < z.length; i++) z[i] = rng.normal();
  return z;
}

/** raw + sigma * scale[m] * z (noise in standardised units; one scale per metric column). */
export function addNoise(raw: Float64Array, n: number, scales: number[], sigma: number, z: Float64Array): Float64Array {
  const M = scales.length;
  const out = new Float64Array(n * M);
  for (let i = 0; i < n; i++) for (let m = 0; m < M; m++) out[i * M + m] = raw[i * M + m] + sigma * scales[m] * z[i * M + m];
  return out;
}

/** Metric `m` of every row (of `width` columns) replaced by `value` (a missing metric imputed). */
export function imputeMetric(raw: Float64Array, n: number, m: number, value: number, width = BASIC_WIDTH): Float64Array {
  const M = width;
  const out = Float64Array.from(raw.subarray(0, n * M));
  for (let i = 0; i < n; i++) out[i * M + m] = value;
  return out;
}

/** A seeded sample of max(1, round(fraction * n)) distinct rows, ascending. */
export function sampleRows(n: number, fraction: number, seed: number): Int32Array {
  const k = Math.min(n, Math.max(1, Math.round(fraction * n)));
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  const rng = new Rng(seed);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(n - i);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm.slice(0, k).sort();
}

/** Every metric of `rows` (of `width` columns) multiplied by `factor`; other rows unchanged. */
export function injectOutliers(raw: Float64Array, n: number, rows: ArrayLike<number>, factor: number, width = BASIC_WIDTH): Float64Array {
  const M = width;
  const out = Float64Array.from(raw.subarray(0, n * M));
  for (let k = 0; k < rows.length; k++) for (let m = 0; m < M; m++) out[rows[k] * M + m] *= factor;
  return out;
}

/** Every metric shifted by delta * scale[m] (a shift of delta standard deviations; one scale per metric column). */
export function shiftMetrics(raw: Float64Array, n: number, scales: number[], delta: number): Float64Array {
  const M = scales.length;
  const out = new Float64Array(n * M);
  for (let i = 0; i < n; i++) for (let m = 0; m < M; m++) out[i * M + m] = raw[i * M + m] + delta * scales[m];
  return out;
}

/** One perturbed run compared with the clean one. */
export interface ScenarioResult {
  suite: 'noise' | 'missing' | 'outliers' | 'shift';
  /** e.g. "sigma 0.05", "network_load imputed", "x5", "+0.5 sd". */
  scenario: string;
  parameter: number | string;
  rows_affected: number;
  flagged_fraction: number;
  /** Change of the flagged fraction from the clean run. */
  flagged_change: number;
  /** Share of rows whose flag is the same as in the clean run (stability, not accuracy). */
  flag_agreement: number;
  /** Spearman correlation of perturbed and clean scores. */
  score_spearman: number | null;
  /** Against the data's labels; null without labels and for the outlier suite. */
  labelled: Pick<LabelledFigures, 'precision' | 'recall' | 'f1' | 'roc_auc' | 'pr_auc'> | null;
  /** Outlier suite: share of the injected rows flagged. */
  detection_rate?: number;
  /** Outlier suite: share of the same rows flagged before injection. */
  baseline_rate?: number;
}

export interface RobustnessReport {
  seed: number;
  options: Omit<RobustnessOptions, 'seed'>;
  scales: Record<string, { value: number; source: string }>;
  imputation: Record<string, { value: number; source: string }>;
  clean: { flagged_fraction: number; labelled: ScenarioResult['labelled'] };
  noise: ScenarioResult[];
  missing: ScenarioResult[];
  outliers: ScenarioResult[];
  shift: ScenarioResult[];
  notes: string[];
}

function pickLabelled(l: LabelledFigures | null): ScenarioResult['labelled'] {
  return l ? { precision: l.precision, recall: l.recall, f1: l.f1, roc_auc: l.roc_auc, pr_auc: l.pr_auc } : null;
}

function mean01(flags: Uint8Array, rows?: ArrayLike<number>): number {
  let s = 0;
  if (rows) {
    for (let k = 0; k < rows.length; k++) s += flags[rows[k]];
    return rows.length > 0 ? s / rows.length : 0;
  }
  for (const f of flags) s += f;
  return flags.length > 0 ? s / flags.length : 0;
}

/**
 * Runs the suite on `n` rows: noise, one metric missing (each metric in turn, imputed
 * with its training median), outliers on a share of rows (detection rate), and a shift
 * of every metric (flagged fraction). `clean` is the unperturbed scoring, if already done.
 */
export function runRobustness(
  det: Detector,
  raw: Float64Array,
  n: number,
  labels: Uint8Array | null,
  opts: RobustnessOptions,
  clean: Scored = scoreSet(det, raw, n, opts.series),
): RobustnessReport {
  const names = det.inputs;
  const M = names.length;
  const scales = metricScales(det.artifact, raw, n);
  const medians = trainingMedians(det.artifact, raw, n);
  const cleanFF = mean01(clean.flags);
  const hasBoth = labels !== null && labels.some((l) => l === 1) && labels.some((l) => l === 0);
  const compare = (
    suite: ScenarioResult['suite'],
    scenario: string,
    parameter: number | string,
    perturbed: Float64Array,
    affected: number,
    useLabels = true,
  ): ScenarioResult & { scored: Scored } => {
    const s = scoreSet(det, perturbed, n, opts.series);
    let agree = 0;
    for (let i = 0; i < n; i++) if (s.flags[i] === clean.flags[i]) agree++;
    const rho = spearman(s.scores, clean.scores);
    const ff = mean01(s.flags);
    return {
      suite,
      scenario,
      parameter,
      rows_affected: affected,
      flagged_fraction: ff,
      flagged_change: ff - cleanFF,
      flag_agreement: agree / n,
      score_spearman: Number.isFinite(rho) ? rho : null,
      labelled: labels && useLabels ? pickLabelled(labelledFigures(s.scores, s.flags, labels)) : null,
      scored: s,
    };
  };
  const strip = ({ scored: _s, ...r }: ScenarioResult & { scored: Scored }): ScenarioResult => r;

  const z = normalDraws(n, opts.seed, M);
  const noise = opts.noiseSigmas.map((sigma) =>
    strip(compare('noise', `sigma ${sigma}`, sigma, addNoise(raw, n, scales.values, sigma, z), n)),
  );

  const missing = names.map((name, m) =>
    strip(compare('missing', `${name} imputed`, name, imputeMetric(raw, n, m, medians.values[m], M), n)),
  );

  const rows = sampleRows(n, opts.outlierFraction, opts.seed + 1);
  const baseline = mean01(clean.flags, rows);
  const outliers = opts.outlierFactors.map((factor) => {
    const r = compare('outliers', `x${factor}`, factor, injectOutliers(raw, n, rows, factor, M), rows.length, false);
    return { ...strip(r), detection_rate: mean01(r.scored.flags, rows), baseline_rate: baseline };
  });

  const shift = opts.shifts.map((delta) => strip(compare('shift', `+${delta} sd`, delta, shiftMetrics(raw, n, scales.values, delta), n)));

  const notes = [
    `noise and shift are in standardised units: multiples of each metric's training standard deviation ` +
      `(${names.map((name, m) => `${name} ${fmt(scales.values[m])} from ${scales.source[m]}`).join(', ')})`,
    `a missing metric is imputed ` +
      `with ${names.map((name, m) => `${name} = ${fmt(medians.values[m])} (${medians.source[m].replace('_', ' ')})`).join(', ')}`,
    `outliers: every metric of ${rows.length} rows (${(100 * opts.outlierFraction).toFixed(0)}%, seeded) ` +
      `multiplied by the factor; detection rate = share of those rows flagged, baseline = share flagged before injection`,
    'flag agreement and score Spearman compare with the unperturbed run: they measure stability, not accuracy',
  ];
  if (!labels)
    notes.push(
      'no labels: accuracy under perturbation (F1, ROC-AUC) is not computed; only flagged fractions, ' +
        'stability and the outlier detection rate (whose truth is the injection itself)',
    );
  else if (!hasBoth) notes.push('the labels have a single class: ROC-AUC and PR-AUC are undefined (null)');
  return {
    seed: opts.seed,
    options: {
      noiseSigmas: opts.noiseSigmas,
      outlierFactors: opts.outlierFactors,
      outlierFraction: opts.outlierFraction,
      shifts: opts.shifts,
    },
    scales: Object.fromEntries(names.map((name, m) => [name, { value: scales.values[m], source: scales.source[m] }])),
    imputation: Object.fromEntries(names.map((name, m) => [name, { value: medians.values[m], source: medians.source[m] }])),
    clean: { flagged_fraction: cleanFF, labelled: labels ? pickLabelled(labelledFigures(clean.scores, clean.flags, labels)) : null },
    noise,
    missing,
    outliers,
    shift,
    notes,
  };
}

const fmt = (v: number): string => Number(v.toPrecision(5)).toString();
