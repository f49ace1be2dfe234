import type { ModelArtifact } from './artifact';
import { Detector, DEFAULT_MAX_KEYS } from './detector';
import { SeriesFeatures, type FeatureSpec } from './features';
import { newRepeatGateState, repeatGate, type RepeatGateOptions, type RepeatGateState } from './gate';
import { LruMap } from './lru';
import { RefitWindow, refitDetector } from './refit';
import { fitOnFeatures, matrixSha256 } from './train';

/**
 * A detector that runs on a stream: the same Detector (features, scaler, forest,
 * out-of-range scoring) with per-key history, refitted periodically on a sliding window
 * of recent rows that raised no alert, and repeat suppression through gate.ts.
 *
 * No look-ahead: a row is scored by the model fitted before it, on features of its
 * key's earlier points; it joins the history and (if it raised no alert) the refit window only
 * after it is scored.
 */
export interface StreamingOptions {
  features: FeatureSpec[];
  /** Input channels, the column order of raw rows. */
  inputs: string[];
  nEstimators: number;
  maxSamples: number;
  seed: number;
  /** Sets the model threshold (a quantile of the training scores). */
  contamination: number;
  /** Out-of-range scoring weight recorded in every model (0: plain Isolation Forest scores). */
  outOfRangeWeight: number;
  /** Novelty weight recorded in every model (see novelty.ts; 0 or absent: none). */
  noveltyWeight?: number;
  /** Refit when this much stream time has passed since the last fit (ms). 0: never refit. */
  refitIntervalMs: number;
  /** Rows in the sliding refit window (the most recent rows that raised no alert, all keys pooled). */
  refitWindow: number;
  /** Repeat suppression of alerts. */
  gate: RepeatGateOptions;
  /** Keys (hosts) with history and gate state; least recently used evicted. */
  maxKeys?: number;
  /** Recorded in every model (fixed, so that runs are reproducible). */
  createdAt: string;
  /** Caller that provides other inputs than the host metrics (see DetectorOptions.inputs). */
  anyInputs?: boolean;
  /** false: results carry no contributions (the NAB benchmark needs scores only). Default true. */
  contributions?: boolean;
}

/** Per-row results of {@link StreamingDetector.process}. */
export interface StreamResult {
  n: number;
  /** The model score of each row. */
  scores: Float64Array;
  /** 1 where the gate raised an alert. */
  alerts: Uint8Array;
  /** n x inputs contributions (see Detector); empty when the options turn them off. */
  contributions: Float64Array;
}

/** Rows of one batch: keys (hosts), times (epoch ms), raw inputs (n x inputs). */
export interface StreamRows {
  keys: readonly string[];
  times: ArrayLike<number>;
  raw: Float64Array;
  n: number;
}

export class StreamingDetector {
  readonly opts: StreamingOptions;
  private current: Detector;
  /**
   * Recent feature rows (unscaled) that raised no alert, the refit's training data
   * (refit.ts, as in the poller). Not only rows under the threshold: a refit sets its
   * threshold as a quantile of its rows, so training on those alone would shrink the
   * normal region at every refit.
   */
  private readonly window: RefitWindow;
  private lastFit: number;
  /** Repeat-gate state per key, bounded like the keys' history. */
  private readonly gates: LruMap<RepeatGateState>;
  /** Refits done (the initial fit not counted). */
  refits = 0;

  private constructor(opts: StreamingOptions, first: Detector, warmFeatures: Float64Array, warmRows: number, lastTime: number) {
    this.opts = opts;
    this.current = first;
    this.gates = new LruMap<RepeatGateState>(opts.maxKeys ?? DEFAULT_MAX_KEYS);
    this.window = new RefitWindow(opts.features.length, opts.refitWindow);
    for (let i = Math.max(0, warmRows - opts.refitWindow); i < warmRows; i++) this.window.remember(warmFeatures, i);
    this.lastFit = lastTime;
  }

  /**
   * Fits the first model on warm-up rows (NAB: the probation period), which also become
   * the keys' history and the first refit window. Nothing is scored or gated.
   */
  static start(opts: StreamingOptions, warm: StreamRows): StreamingDetector {
    if (warm.n < 2) throw new RangeError('the streaming detector needs at least 2 warm-up rows');
    if (!(opts.refitWindow >= 2)) throw new RangeError('refitWindow must be at least 2');
    // The warm-up rows' features are computed once, into the store the first detector
    // then keeps: training and scoring share one history.
    const series = new SeriesFeatures(opts.features, opts.inputs);
    const state = series.newStore(opts.maxKeys ?? DEFAULT_MAX_KEYS);
    const features = new Float64Array(warm.n * opts.features.length);
    series.compute(state, warm.keys, warm.times, warm.raw, warm.n, features);
    const fit = fitOnFeatures(features, warm.n, { ...trainParams(opts), inputs: opts.inputs, dataSha256: matrixSha256(warm.raw.subarray(0, warm.n * opts.inputs.length)) });
    const first = new Detector(fit.artifact, { inputs: opts.anyInputs ? 'any' : opts.inputs, state, forest: fit.forest });
    let last = -Infinity;
    for (let i = 0; i < warm.n; i++) last = Math.max(last, warm.times[i]);
    return new StreamingDetector(opts, first, features, warm.n, last);
  }

  /** The model now in use. */
  get detector(): Detector {
    return this.current;
  }

  /** The artifact now in use. */
  get artifact(): ModelArtifact {
    return this.current.artifact;
  }

  /**
   * Scores a batch in time order (rows sorted by time; each key's rows increasing),
   * refitting at the first row whose time is refitIntervalMs past the last fit.
   */
  process(rows: StreamRows): StreamResult {
    const { n } = rows;
    const m = this.opts.inputs.length;
    const d = this.opts.features.length;
    const scores = new Float64Array(n);
    const alerts = new Uint8Array(n);
    const withContributions = this.opts.contributions ?? true;
    const contributions = new Float64Array(withContributions ? n * m : 0);
    const features = new Float64Array(n * d);
    let start = 0;
    while (start < n) {
      let end = start;
      const interval = this.opts.refitIntervalMs;
      if (interval > 0 && rows.times[start] - this.lastFit >= interval) {
        this.refit(rows.times[start]);
        continue;
      }
      while (end < n && !(interval > 0 && rows.times[end] - this.lastFit >= interval)) end++;
      const keys = rows.keys.slice(start, end);
      const times = Array.prototype.slice.call(rows.times, start, end) as number[];
      const seg = this.current.scoreSeries(keys, times, rows.raw.subarray(start * m, end * m), end - start, { featuresOut: features.subarray(start * d, end * d), contributions: withContributions });
      scores.set(seg.scores, start);
      if (withContributions) contributions.set(seg.contributions, start * m);
      for (let i = start; i < end; i++) {
        const alert = repeatGate(this.opts.gate, this.gates.get(rows.keys[i], newRepeatGateState), scores[i], rows.times[i]);
        alerts[i] = alert ? 1 : 0;
        if (!alert) this.window.remember(features, i);
      }
      start = end;
    }
    return { n, scores, alerts, contributions };
  }

  /** Fits a new model on the window (oldest row first) and swaps it in, keeping the keys' history. */
  private refit(time: number): void {
    this.lastFit = time;
    if (this.window.size < 2) return;
    this.current = refitDetector(this.current, this.window, this.opts.createdAt, { inputs: this.opts.anyInputs ? 'any' : this.opts.inputs, state: this.current.state });
    this.refits++;
  }
}

function trainParams(o: StreamingOptions) {
  return { nEstimators: o.nEstimators, maxSamples: o.maxSamples, seed: o.seed, contamination: o.contamination, features: o.features, createdAt: o.createdAt, outOfRangeWeight: o.outOfRangeWeight, noveltyWeight: o.noveltyWeight };
}
