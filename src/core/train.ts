import { createHash } from 'node:crypto';
import { forestToJson, sign, type ModelArtifact } from './artifact';
import { buildFeatures, defaultFeatures, type FeatureSpec } from './features';
import { IsolationForest } from './isolation-forest';
import { fitScaler, transform } from './scaler';
import { quantile, thresholdFromContamination } from './stats';

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
}

/** sha256 of a raw metric matrix's bytes (used when no file hash is given). */
export function matrixSha256(raw: Float64Array): string {
  return createHash('sha256').update(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)).digest('hex');
}

/**
 * Trains scaler, forest and threshold on `n` rows of raw metrics (row-major, in
 * METRIC_NAMES order) and returns a signed artifact. Deterministic given its inputs.
 */
export function trainModel(raw: Float64Array, n: number, opts: TrainOptions): ModelArtifact {
  const features = opts.features ?? defaultFeatures();
  const d = features.length;
  const x = new Float64Array(n * d);
  buildFeatures(features, raw, n, x);
  const featureQuantiles = features.map((_, f) => {
    const col = new Float64Array(n);
    for (let i = 0; i < n; i++) col[i] = x[i * d + f];
    col.sort();
    return Array.from({ length: 11 }, (_, k) => quantile(col, k / 10));
  });
  const scaler = fitScaler(x, n, d);
  transform(scaler, x, n, x);
  const forest = IsolationForest.fit(x, n, d, { nEstimators: opts.nEstimators, maxSamples: opts.maxSamples, seed: opts.seed });
  let threshold: ModelArtifact['threshold'];
  if (opts.threshold !== undefined) {
    threshold = { value: opts.threshold, method: 'explicit', contamination: null };
  } else {
    const scores = new Float64Array(n);
    forest.score(x, n, scores);
    threshold = { value: thresholdFromContamination(scores, opts.contamination), method: 'contamination', contamination: opts.contamination };
  }
  const forestJson = forestToJson(forest.toState());
  const body = {
    features,
    scaler,
    forest: forestJson,
    threshold,
  };
  // The version names the model's content, so the same training gives the same version.
  const version = `${opts.createdAt.slice(0, 10).replace(/-/g, '')}-${createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 12)}`;
  return sign({
    format: 'infra-anomaly-detector/model',
    format_version: 1,
    version,
    ...body,
    training: {
      rows: n,
      data_sha256: opts.dataSha256 ?? matrixSha256(raw),
      seed: opts.seed,
      params: { n_estimators: opts.nEstimators, max_samples: opts.maxSamples, subsample: forest.subsample, contamination: opts.threshold !== undefined ? null : opts.contamination },
      metrics: opts.metrics ?? {},
      feature_quantiles: featureQuantiles,
      created_at: opts.createdAt,
    },
  });
}
