import { Detector } from '../core/detector';
import type { FeatureSpec } from '../core/features';
import type { MetricDef } from '../core/metrics';
import { trainModel } from '../core/train';
import { labelledFigures, scoreSet, seriesOf, type LabelledFigures } from './evaluate';
import type { Part } from './split';

/** The hyper-parameter values searched (every combination). */
export interface GridSpec {
  contamination: number[];
  nEstimators: number[];
  maxSamples: number[];
}

export const DEFAULT_GRID: GridSpec = { contamination: [0.01, 0.05, 0.1], nEstimators: [100, 200], maxSamples: [128, 256, 512] };

export interface GridPoint {
  contamination: number;
  nEstimators: number;
  maxSamples: number;
}

/**
 * How the grid's winner is chosen:
 * - `validation_f1`: highest F1 on the validation part against its labels (ties: higher
 *   validation PR-AUC, then the earlier grid point);
 * - `flagged_fraction_closest_to_contamination`: without labels (the prototype's rule),
 *   the point whose flagged share of the validation part is closest to its own
 *   contamination setting (ties: the earlier grid point).
 */
export type SelectionRule = 'validation_f1' | 'flagged_fraction_closest_to_contamination';

/** One grid point's figures on the validation part. */
export interface GridResult extends GridPoint {
  step: number;
  /** Subsample size actually used (maxSamples capped at the training rows). */
  subsample: number;
  version: string;
  threshold: number;
  val_flagged_fraction: number;
  /** |val_flagged_fraction - contamination|. */
  fraction_gap: number;
  /** Validation figures against labels; null without labels. */
  val: LabelledFigures | null;
  train_ms: number;
}

export interface Selection {
  index: number;
  rule: SelectionRule;
  /** One sentence: which rule and why. */
  explanation: string;
}

/** Every combination, contamination outermost and subsample innermost. */
export function gridPoints(spec: GridSpec): GridPoint[] {
  const out: GridPoint[] = [];
  for (const contamination of spec.contamination)
    for (const nEstimators of spec.nEstimators)
      for (const maxSamples of spec.maxSamples) out.push({ contamination, nEstimators, maxSamples });
  if (out.length === 0) throw new Error('the grid is empty');
  return out;
}

/** Short label of a grid point for tables and plots. */
export function pointLabel(p: GridPoint): string {
  return `c=${p.contamination} n=${p.nEstimators} s=${p.maxSamples}`;
}

/**
 * Picks the winner. With usable labels (both classes present in the validation part)
 * the rule is validation F1; otherwise the prototype's label-free rule, and the
 * explanation says why.
 */
export function selectBest(
  results: readonly GridResult[],
  labels: { present: boolean; valPositives: number; valNegatives: number },
): Selection {
  if (results.length === 0) throw new Error('no grid results to choose from');
  const usable = labels.present && labels.valPositives > 0 && labels.valNegatives > 0 && results.every((r) => r.val !== null);
  if (usable) {
    let best = 0;
    for (let i = 1; i < results.length; i++) {
      const a = results[i].val as LabelledFigures;
      const b = results[best].val as LabelledFigures;
      if (a.f1 > b.f1 || (a.f1 === b.f1 && (a.pr_auc ?? -1) > (b.pr_auc ?? -1))) best = i;
    }
    const v = results[best].val as LabelledFigures;
    return {
      index: best,
      rule: 'validation_f1',
      explanation:
        `chose ${pointLabel(results[best])} by the highest validation F1 against the data's labels ` +
        `(F1 ${v.f1.toFixed(4)}, precision ${v.precision.toFixed(4)}, recall ${v.recall.toFixed(4)})`,
    };
  }
  let best = 0;
  for (let i = 1; i < results.length; i++) if (results[i].fraction_gap < results[best].fraction_gap) best = i;
  const why = !labels.present
    ? 'the data has no labels'
    : labels.valPositives === 0
      ? 'the validation part has no labelled anomaly'
      : 'the validation part has no labelled normal row';
  const r = results[best];
  return {
    index: best,
    rule: 'flagged_fraction_closest_to_contamination',
    explanation:
      `${why}, so chose ${pointLabel(r)} by the prototype's label-free rule: validation flagged ` +
      `fraction closest to the contamination setting (${r.val_flagged_fraction.toFixed(4)} vs ${r.contamination}); ` +
      `this says nothing about accuracy`,
  };
}

/** Everything a grid run needs besides the grid. */
export interface GridRunOptions {
  seed: number;
  createdAt: string;
  dataSha256: string;
  /** Model features (default: the three raw metrics); temporal ones are computed per host in time order. */
  features?: FeatureSpec[];
  /**
   * The metric columns of the parts' rows, with units and ranges (recorded in the
   * artifacts). Absent: the basic three, and the artifacts keep their original layout.
   */
  metrics?: readonly MetricDef[];
  /** Called after each point (for the progress bar). */
  onStep?: (done: number, total: number, r: GridResult) => void;
}

/**
 * Trains one model per grid point on the training part and scores the validation
 * part with the Detector (the one scoring path). Deterministic except `train_ms`.
 * Models are not kept (retrain the winner: same inputs, same bytes).
 */
export function runGrid(train: Part, val: Part, spec: GridSpec, opts: GridRunOptions): GridResult[] {
  const points = gridPoints(spec);
  const results: GridResult[] = [];
  points.forEach((p, step) => {
    const t0 = process.hrtime.bigint();
    const artifact = trainModel(train.raw, train.n, {
      nEstimators: p.nEstimators,
      maxSamples: p.maxSamples,
      seed: opts.seed,
      contamination: p.contamination,
      createdAt: opts.createdAt,
      dataSha256: opts.dataSha256,
      features: opts.features,
      ...(opts.metrics ? { inputs: opts.metrics.map((d) => d.name), metricDefs: opts.metrics } : {}),
      keys: train.hosts,
      times: train.timestamps,
    });
    const trainMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const det = new Detector(artifact, { inputs: 'any' });
    const { scores, flags } = scoreSet(det, val.raw, val.n, seriesOf(val));
    let flagged = 0;
    for (let i = 0; i < val.n; i++) flagged += flags[i];
    const ff = flagged / val.n;
    const r: GridResult = {
      step,
      ...p,
      subsample: artifact.forest.subsample,
      version: artifact.version,
      threshold: artifact.threshold.value,
      val_flagged_fraction: ff,
      fraction_gap: Math.abs(ff - p.contamination),
      val: val.labels ? labelledFigures(scores, flags, val.labels) : null,
      train_ms: trainMs,
    };
    results.push(r);
    opts.onStep?.(step + 1, points.length, r);
  });
  return results;
}
