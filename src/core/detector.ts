import { ArtifactError, artifactInputs, forestFromJson, type ModelArtifact } from './artifact';
import { buildFeatures, SeriesFeatures, type SeriesStateStore, sourceIndex, type FeatureSpec } from './features';
import { IsolationForest } from './isolation-forest';
import { METRIC_NAMES, sameNames } from './metrics';
import { noveltyColumns, noveltyOf } from './novelty';
import { transform } from './scaler';

/** Scores and per-input contributions of a batch, row-aligned with the input. */
export interface BatchScores {
  n: number;
  /** s(x) in (0, 1]; higher is more anomalous. */
  scores: Float64Array;
  /** n x inputs, row-major (METRIC_NAMES for the service); positive pushes towards anomalous. */
  contributions: Float64Array;
}

/** Options of {@link Detector}. */
export interface DetectorOptions {
  /**
   * The input channels the caller provides, in column order. The artifact must declare
   * exactly these, or the constructor throws ArtifactError: the service passes nothing
   * (the three host metrics), so a model built for other inputs can never be served.
   * `'any'` accepts the artifact's own inputs (benchmarks on other data).
   */
  inputs?: readonly string[] | 'any';
  /**
   * Per-key history for {@link Detector.scoreSeries}. Pass the previous detector's
   * `state` when swapping models with the same features, so hosts keep their history.
   */
  state?: SeriesStateStore;
  /** Capacity of a new state store, in keys (hosts); least recently used evicted. Default 10,000. */
  maxKeys?: number;
  /**
   * The artifact's forest already built (as trainOnFeatures' fitOnFeatures returns it),
   * so that a model fitted in this process is not rebuilt. Must be that artifact's forest.
   */
  forest?: IsolationForest;
}

export const DEFAULT_MAX_KEYS = 10_000;

/** Options of {@link Detector.scoreSeries}. */
export interface SeriesOptions {
  /** Receives the unscaled features (n x features). */
  featuresOut?: Float64Array;
  /** The history to read and extend (default: the detector's own). */
  state?: SeriesStateStore;
  /** false: skip the contributions (the result's are empty); a caller that only needs scores saves most of the scoring time. */
  contributions?: boolean;
}

/**
 * The one scoring path: raw inputs -> features -> scaler -> forest -> threshold and
 * contributions. HTTP, the poller, backfill and the benchmarks all call this class.
 * `scoreRaw` treats each row on its own; `scoreSeries` keeps bounded per-key history
 * for temporal features. Both end in the same {@link Detector.scoreFeatures}.
 */
export class Detector {
  readonly version: string;
  readonly threshold: number;
  readonly features: readonly FeatureSpec[];
  readonly inputs: readonly string[];
  readonly artifact: ModelArtifact;
  /** Per-key history used by scoreSeries (bounded; see DetectorOptions.maxKeys). */
  readonly state: SeriesStateStore;
  private readonly forest: IsolationForest;
  private readonly src: Int32Array;
  private readonly series: SeriesFeatures;
  private readonly identityFold: boolean;
  /** Training range of each feature in scaled units, for out-of-range scoring. */
  private readonly lo: Float64Array;
  private readonly hi: Float64Array;
  /** hi - lo, at least `scoring.out_of_range_min_span` (scaled like the features). */
  private readonly span: Float64Array;
  private readonly outOfRangeWeight: number;
  /** `input_max` pooling (artifact `scoring.out_of_range_pool`): the number of inputs that have features, else 0. */
  private readonly poolInputs: number;
  /** Novelty term (see novelty.ts): its weight and the features it reads. */
  private readonly noveltyWeight: number;
  private readonly noveltyCols: Int32Array;

  constructor(artifact: ModelArtifact, opts: DetectorOptions = {}) {
    this.artifact = artifact;
    this.version = artifact.version;
    this.threshold = artifact.threshold.value;
    this.features = artifact.features;
    this.inputs = artifactInputs(artifact);
    const expected = opts.inputs ?? METRIC_NAMES;
    if (expected !== 'any' && !sameNames(expected, this.inputs)) {
      throw new ArtifactError(
        `model ${artifact.version} takes inputs (${this.inputs.join(', ')}), but this caller provides (${expected.join(', ')})`,
      );
    }
    this.forest = opts.forest ?? IsolationForest.fromState(forestFromJson(artifact.forest));
    if (this.forest.nFeatures !== artifact.features.length)
      throw new ArtifactError(
        `model ${artifact.version}: forest has ${this.forest.nFeatures} features, model declares ${artifact.features.length}`,
      );
    this.src = sourceIndex(artifact.features, this.inputs);
    this.series = new SeriesFeatures(artifact.features, this.inputs);
    if (opts.state && !this.series.fits(opts.state))
      throw new ArtifactError(`model ${artifact.version}: its features keep a different per-host history than the state handed over`);
    this.state = opts.state ?? this.series.newStore(opts.maxKeys ?? DEFAULT_MAX_KEYS);
    const d = this.features.length;
    this.identityFold = d === this.inputs.length && this.src.every((s, i) => s === i);
    const { mean, scale } = artifact.scaler;
    const q = artifact.training.feature_quantiles;
    this.lo = Float64Array.from(q, (col, f) => (col[0] - mean[f]) / scale[f]);
    this.hi = Float64Array.from(q, (col, f) => (col[col.length - 1] - mean[f]) / scale[f]);
    this.outOfRangeWeight = artifact.scoring?.out_of_range_weight ?? 0;
    const minSpan = artifact.scoring?.out_of_range_min_span ?? 0;
    this.span = Float64Array.from(this.hi, (h, f) => Math.max(h - this.lo[f], minSpan / scale[f]));
    this.poolInputs = artifact.scoring?.out_of_range_pool === 'input_max' ? new Set(this.src).size : 0;
    this.noveltyWeight = artifact.scoring?.novelty_weight ?? 0;
    this.noveltyCols = noveltyColumns(this.features);
  }

  /** True if some feature needs the key's history (scoreSeries gives it; scoreRaw does not). */
  get temporal(): boolean {
    return this.series.temporal;
  }

  /**
   * Scores `n` rows of raw inputs (row-major, in `inputs` order; validated by the
   * caller), each row on its own. For temporal features this is the "no history" case:
   * they read 0 (see features.ts), so only the raw features speak. Contributions of
   * derived features are folded into their source input.
   */
  scoreRaw(raw: Float64Array, n: number, featuresOut?: Float64Array): BatchScores {
    const x = new Float64Array(n * this.features.length);
    // The source index is computed once per model, not per request.
    buildFeatures(this.features, raw, n, x, this.inputs, this.src);
    if (featuresOut) featuresOut.set(x);
    return this.scoreFeatures(x, n);
  }

  /**
   * Scores rows of several keys (hosts) with their history: `keys[i]` and `times[i]`
   * (epoch ms) label row i. Rows are processed in the order given, each key's rows in
   * increasing time, and each row's features use that key's earlier points only (at
   * most the window each feature declares) before the row joins the history. A key
   * never seen, or evicted from the bounded store, starts with no history: its temporal
   * features read 0 until it has points (a new host is judged on its raw values first).
   * A row not later than its key's latest point is scored as if it had no history and
   * does not change the state; so is a row whose time is NaN (no host or time given).
   * `opts.featuresOut` (n x features), if given, receives the unscaled features (the
   * streaming detector refits on them, drift reads them). `opts.state` uses that store
   * instead of the detector's own (see {@link Detector.stateFor}): the HTTP routes and the
   * poller keep separate histories.
   */
  scoreSeries(keys: readonly string[], times: ArrayLike<number>, raw: Float64Array, n: number, opts: SeriesOptions = {}): BatchScores {
    if (keys.length < n || times.length < n) throw new RangeError(`scoreSeries: ${n} rows need ${n} keys and times`);
    const x = new Float64Array(n * this.features.length);
    this.series.compute(opts.state ?? this.state, keys, times, raw, n, x);
    if (opts.featuresOut) opts.featuresOut.set(x);
    return this.scoreFeatures(x, n, opts.contributions ?? true);
  }

  /**
   * Adds rows to their keys' history without scoring them (same rules as scoreSeries):
   * a reader that restores history, such as the poller after a restart, feeds the points
   * before the first one it scores.
   */
  remember(keys: readonly string[], times: ArrayLike<number>, raw: Float64Array, n: number, state: SeriesStateStore = this.state): void {
    if (keys.length < n || times.length < n) throw new RangeError(`remember: ${n} rows need ${n} keys and times`);
    this.series.compute(state, keys, times, raw, n, new Float64Array(n * this.features.length));
  }

  /**
   * The history store to use with this model: `prev` when it was made for the same
   * per-host state (a reload of a model with the same features keeps every host's
   * history), else a new store of `prev`'s capacity (or `maxKeys`).
   */
  stateFor(prev: SeriesStateStore | undefined, maxKeys = DEFAULT_MAX_KEYS): SeriesStateStore {
    if (prev && this.series.fits(prev)) return prev;
    return this.series.newStore(prev?.maxKeys ?? maxKeys);
  }

  /** Points of history per host the features read (0 for a model without temporal features). */
  get historyPoints(): number {
    return this.series.historyPoints;
  }

  /**
   * The shared tail of both paths: scales a feature matrix (n x features, overwritten)
   * and scores it, folding contributions into inputs. With a novelty weight (see
   * novelty.ts) the score blends in the novelty term of the unscaled features; the
   * contributions explain the forest's part. With `withContributions` false the scores
   * are the same and the contributions are left out (empty).
   */
  scoreFeatures(x: Float64Array, n: number, withContributions = true): BatchScores {
    const d = this.features.length;
    const m = this.inputs.length;
    const blend = this.noveltyWeight > 0 && this.noveltyCols.length > 0;
    const novelty = blend ? new Float64Array(n) : null;
    if (novelty) for (let i = 0; i < n; i++) novelty[i] = noveltyOf(x, i, d, this.noveltyCols);
    transform(this.artifact.scaler, x, n, x);
    const scores = new Float64Array(n);
    const fc = withContributions ? new Float64Array(n * d) : null;
    this.forest.score(x, n, scores, fc ?? undefined);
    if (this.outOfRangeWeight > 0) this.extendOutOfRange(x, n, scores, fc);
    if (novelty) {
      const b = this.noveltyWeight;
      for (let i = 0; i < n; i++) scores[i] = (1 - b) * scores[i] + b * novelty[i];
    }
    if (fc === null) return { n, scores, contributions: new Float64Array(0) };
    let contributions = fc;
    if (!this.identityFold) {
      contributions = new Float64Array(n * m);
      for (let i = 0; i < n; i++) for (let f = 0; f < d; f++) contributions[i * m + this.src[f]] += fc[i * d + f];
    }
    return { n, scores, contributions };
  }

  /**
   * Out-of-range scoring (artifact `scoring.out_of_range_weight`): with p the root
   * isolation probability, the path length h becomes p + (1 - p) h. Contributions stay
   * exact: each becomes (1 - p) c_f plus feature f's share p_f of p times (c(psi) - 1),
   * so they still sum to c(psi) - h'. A range narrower than `out_of_range_min_span`
   * counts as that wide. With `out_of_range_pool` `input_max`, p pools each
   * input's largest share (mean over the inputs) and only that feature of each input is
   * charged with its part of p.
   */
  private extendOutOfRange(x: Float64Array, n: number, scores: Float64Array, fc: Float64Array | null): void {
    const d = this.features.length;
    const w = this.outOfRangeWeight;
    const c = this.forest.expectedPathLength;
    const { lo, hi, span, src } = this;
    const pool = this.poolInputs;
    const share = new Float64Array(d);
    // input_max: per input, the feature of its largest share (-1: none out of range).
    const best = pool > 0 ? new Int32Array(this.inputs.length) : null;
    for (let i = 0; i < n; i++) {
      let p = 0;
      if (best) best.fill(-1);
      for (let f = 0; f < d; f++) {
        const v = x[i * d + f];
        const gap = v > hi[f] ? v - hi[f] : v < lo[f] ? lo[f] - v : 0;
        // An infinite gap (a value beyond float range after scaling) is all share, never NaN.
        share[f] = gap > 0 ? (gap === Infinity ? 1 : gap / (span[f] + gap)) : 0;
        if (best) {
          if (share[f] > 0 && (best[src[f]] < 0 || share[f] > share[best[src[f]]])) best[src[f]] = f;
        } else p += share[f];
      }
      if (best) {
        // Only each input's largest share counts: zero the others.
        for (let f = 0; f < d; f++) if (best[src[f]] !== f) share[f] = 0;
        for (let f = 0; f < d; f++) p += share[f];
      }
      if (p === 0) continue;
      const q = Math.min(1, (w * p) / (best ? pool : d));
      const scale = q / p;
      p = q;
      const h = -c * Math.log2(scores[i]);
      scores[i] = Math.pow(2, -(p + (1 - p) * h) / c);
      if (fc) for (let f = 0; f < d; f++) fc[i * d + f] = (1 - p) * fc[i * d + f] + share[f] * scale * (c - 1);
    }
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
