import { forestFromJson, type ModelArtifact } from './artifact';
import { buildFeatures, sourceIndex, type FeatureSpec } from './features';
import { IsolationForest } from './isolation-forest';
import { METRIC_NAMES } from './metrics';
import { transform } from './scaler';

/** Scores and per-metric contributions of a batch, row-aligned with the input. */
export interface BatchScores {
  n: number;
  /** s(x) in (0, 1]; higher is more anomalous. */
  scores: Float64Array;
  /** n x METRIC_NAMES.length, row-major; positive pushes towards anomalous. */
  contributions: Float64Array;
}

/**
 * The one scoring path: raw metrics -> features -> scaler -> forest -> threshold and
 * contributions. HTTP, the poller, backfill and the benchmarks all call this class.
 */
export class Detector {
  readonly version: string;
  readonly threshold: number;
  readonly features: readonly FeatureSpec[];
  readonly artifact: ModelArtifact;
  private readonly forest: IsolationForest;
  private readonly src: Int32Array;

  constructor(artifact: ModelArtifact) {
    this.artifact = artifact;
    this.version = artifact.version;
    this.threshold = artifact.threshold.value;
    this.features = artifact.features;
    this.forest = IsolationForest.fromState(forestFromJson(artifact.forest));
    this.src = sourceIndex(artifact.features);
  }

  /**
   * Scores `n` rows of raw metrics (row-major, in METRIC_NAMES order; validated by the
   * caller). Contributions of derived features are folded into their source metric.
   */
  scoreRaw(raw: Float64Array, n: number): BatchScores {
    const d = this.features.length;
    const m = METRIC_NAMES.length;
    const x = new Float64Array(n * d);
    buildFeatures(this.features, raw, n, x);
    transform(this.artifact.scaler, x, n, x);
    const scores = new Float64Array(n);
    const fc = new Float64Array(n * d);
    this.forest.score(x, n, scores, fc);
    let contributions = fc;
    if (!(d === m && this.src.every((s, i) => s === i))) {
      contributions = new Float64Array(n * m);
      for (let i = 0; i < n; i++) for (let f = 0; f < d; f++) contributions[i * m + this.src[f]] += fc[i * d + f];
    }
    return { n, scores, contributions };
  }

  /** True when a score is above the model's threshold. */
  isAnomaly(score: number): boolean {
    return score > this.threshold;
  }

  /** score / threshold: 1 at the threshold, above 1 for anomalies. */
  severity(score: number): number {
    return score / this.threshold;
  }
}
