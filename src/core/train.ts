import { createHash } from 'node:crypto';
import { forestToJson, jsonSha256, sign, type ModelArtifact, type OutOfRangePool } from './artifact';
import { buildFeatures, canonicalFeature, defaultFeatures, SeriesFeatures, type FeatureSpec } from './features';
import { Detector } from './detector';
import { IsolationForest } from './isolation-forest';
import { isHostMetrics, METRIC_NAMES, metricDefs, type MetricDef } from './metrics';
import { fitScaler, transform } from './scaler';
import { quantileSorted, thresholdFromContamination } from './stats';

/** What `trainModel` needs besides the data. */
export interface TrainOptions {
  nEstimators: number;
  maxSamples: number;
  seed: number;
  /** Expected share of anomalies; sets the threshold as a quantile of training scores. */
  contamination: number;
  /** An explicit threshold on s(x); overrides contamination when given. */
  threshold?: number;
  features?: FeatureSpec[];
  /** ISO timestamp recorded in the artifact (pass a fixed one for reproducible builds). */
  createdAt: string;
  /** Figures to record, such as evaluation results. */
  metrics?: Record<string, number | null>;
  /** sha256 of the source data file, when known; otherwise the matrix is hashed. */
  dataSha256?: string;
  /**
   * Input channels (column order of `raw`). Default: the three host metrics, and the
   * artifact then records no `inputs` (the format of every earlier artifact).
   */
  inputs?: string[];
  /** Unit and valid range of each input, recorded as the artifact's `metrics` (with custom inputs only; default: metricDefs). */
  metricDefs?: readonly MetricDef[];
  /**
   * For temporal features: the key (host) and time (epoch ms) of each row. Features are
   * computed per key in row order, exactly as Detector.scoreSeries computes them.
   * Default: all rows one key, in row order.
   */
  keys?: readonly string[];
  times?: ArrayLike<number>;
  /** Records `scoring.out_of_range_weight` (see artifact.ts); 0 or absent: plain scores. */
  outOfRangeWeight?: number;
  /** Records `scoring.out_of_range_pool` when it is `input_max` (with a weight); absent or `feature_mean`: the original mean. */
  outOfRangePool?: OutOfRangePool;
  /** Records `scoring.out_of_range_min_span` when positive (with a weight); absent or 0: none. */
  outOfRangeMinSpan?: number;
  /** Records `scoring.novelty_weight` (see artifact.ts, novelty.ts); 0 or absent: none. */
  noveltyWeight?: number;
}

/** sha256 of a raw metric matrix's bytes (used when no file hash is given). */
export function matrixSha256(raw: Float64Array): string {
  return createHash('sha256')
    .update(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength))
    .digest('hex');
}

/**
 * Trains scaler, forest and threshold on `n` rows of raw inputs (row-major, in
 * METRIC_NAMES order unless `inputs` says otherwise) and returns a signed artifact.
 * Deterministic given its inputs.
 */
export function trainModel(raw: Float64Array, n: number, opts: TrainOptions): ModelArtifact {
  const features = opts.features ?? defaultFeatures();
  const inputs = opts.inputs ?? [...METRIC_NAMES];
  const x = new Float64Array(n * features.length);
  const series = new SeriesFeatures(features, inputs);
  if (series.temporal) {
    const keys = opts.keys ?? new Array<string>(n).fill('');
    const times = opts.times ?? Float64Array.from({ length: n }, (_, i) => i);
    series.compute(series.newStore(Math.max(1, new Set(keys).size)), keys, times, raw, n, x);
  } else buildFeatures(features, raw, n, x, inputs);
  return trainOnFeatures(x, n, { ...opts, features, inputs, dataSha256: opts.dataSha256 ?? matrixSha256(raw) });
}

/**
 * Trains on a feature matrix already computed (n x features, row-major; not modified),
 * as the streaming detector does when it refits on its window of recent normal rows.
 */
export function trainOnFeatures(features: Float64Array, n: number, opts: TrainOptions & { features: FeatureSpec[] }): ModelArtifact {
  return fitOnFeatures(features, n, opts).artifact;
}

/**
 * {@link trainOnFeatures}, also returning the fitted forest (the artifact's forest, as
 * an object), so that a caller that scores at once does not rebuild it.
 */
export function fitOnFeatures(
  features: Float64Array,
  n: number,
  opts: TrainOptions & { features: FeatureSpec[] },
): { artifact: ModelArtifact; forest: IsolationForest } {
  const specs = opts.features;
  const d = specs.length;
  if (features.length < n * d) throw new RangeError(`expected ${n * d} feature values, got ${features.length}`);
  const x = Float64Array.from(features.subarray(0, n * d));
  const col = new Float64Array(n);
  const featureQuantiles = specs.map((_, f) => {
    for (let i = 0; i < n; i++) col[i] = x[i * d + f];
    col.sort();
    return Array.from({ length: 11 }, (_, k) => quantileSorted(col, k / 10));
  });
  const scaler = fitScaler(x, n, d);
  transform(scaler, x, n, x);
  const forest = IsolationForest.fit(x, n, d, { nEstimators: opts.nEstimators, maxSamples: opts.maxSamples, seed: opts.seed });
  const forestJson = forestToJson(forest.toState());
  // Artifacts of the three host metrics with plain scoring keep the original layout.
  const custom = opts.inputs !== undefined && !isHostMetrics(opts.inputs);
  const scoring =
    opts.outOfRangeWeight || opts.noveltyWeight
      ? {
          out_of_range_weight: opts.outOfRangeWeight ?? 0,
          ...(opts.outOfRangeWeight && opts.outOfRangePool === 'input_max' ? { out_of_range_pool: 'input_max' as const } : {}),
          ...(opts.outOfRangeWeight && opts.outOfRangeMinSpan ? { out_of_range_min_span: opts.outOfRangeMinSpan } : {}),
          ...(opts.noveltyWeight ? { novelty_weight: opts.noveltyWeight } : {}),
        }
      : undefined;
  const canonical = specs.map(canonicalFeature);
  let threshold: ModelArtifact['threshold'];
  if (opts.threshold !== undefined) {
    threshold = { value: opts.threshold, method: 'explicit', contamination: null };
  } else {
    // The threshold is a quantile of the scores the Detector gives these rows, computed
    // by the Detector itself (the one scoring path: novelty blend and out-of-range
    // extension included) on the model as fitted so far.
    const draft = {
      version: 'draft',
      ...(custom ? { inputs: opts.inputs } : {}),
      features: canonical,
      scaler,
      forest: forestJson,
      threshold: { value: NaN, method: 'explicit', contamination: null },
      ...(scoring ? { scoring } : {}),
      training: { feature_quantiles: featureQuantiles },
    } as unknown as ModelArtifact;
    const { scores } = new Detector(draft, { inputs: 'any', forest }).scoreFeatures(
      Float64Array.from(features.subarray(0, n * d)),
      n,
      false,
    );
    threshold = {
      value: thresholdFromContamination(scores, opts.contamination),
      method: 'contamination',
      contamination: opts.contamination,
    };
  }
  // The forest is most of the JSON and both hashes below cover it: serialise it once.
  const texts = new Map([[forestJson, JSON.stringify(forestJson)]]);
  const body = {
    features: canonical,
    scaler,
    forest: forestJson,
    threshold,
  };
  // The version names the model's content, so the same training gives the same version.
  const named = custom || scoring ? { inputs: opts.inputs, ...body, scoring } : body;
  const version = `${opts.createdAt.slice(0, 10).replace(/-/g, '')}-${jsonSha256(named, texts).slice(0, 12)}`;
  const artifact = sign(
    {
      format: 'infra-anomaly-detector/model',
      format_version: 1,
      version,
      ...(custom ? { inputs: opts.inputs, metrics: metricDefs(opts.inputs as string[], opts.metricDefs) } : {}),
      ...body,
      ...(scoring ? { scoring } : {}),
      training: {
        rows: n,
        data_sha256: opts.dataSha256 ?? matrixSha256(features.subarray(0, n * d)),
        seed: opts.seed,
        params: {
          n_estimators: opts.nEstimators,
          max_samples: opts.maxSamples,
          subsample: forest.subsample,
          contamination: opts.threshold !== undefined ? null : opts.contamination,
        },
        metrics: opts.metrics ?? {},
        feature_quantiles: featureQuantiles,
        created_at: opts.createdAt,
      },
    },
    texts,
  );
  return { artifact, forest };
}
