import type { ModelArtifact, OutOfRangePool } from './artifact';
import { Detector, DEFAULT_MAX_KEYS } from './detector';
import { defaultFeatures, SeriesFeatures, type FeatureSpec, type SeriesStateStore } from './features';
import { gate, newGateState, type GateOptions, type GateState, type RepeatGateOptions } from './gate';
import { LruMap } from './lru';
import { columnsOf, isHostMetrics } from './metrics';
import { RefitWindow, refitDetector } from './refit';
import { fitOnFeatures, matrixSha256 } from './train';

/**
 * The streaming detector: the one detection policy of the project. The poller (live,
 * bootstrap and backfill), the benchmarks (NAB, SMD) and the tests run this class; none
 * of them keeps a copy of any part of it.
 *
 * Per key (host) it keeps the feature history (features.ts: values relative to the
 * key's own recent past), its gate state and how many points it has seen. All keys share
 * one forest over those relative features, refitted on a schedule of stream time from
 * the most recent rows that raised no alert, so what it learns is what a deviation from
 * a host's own normal looks like, not any host's absolute level.
 *
 * Learning (`learning` set): a key with fewer than `learning.points` points, or any key
 * before the first fit, is "learning": the learned model raises no alert for it. A prior
 * covers it from its first point, alerting only on blatant values: the fleet model (a
 * forest over the raw values of the keys already learned, refitted with the learned model)
 * once there is a fleet, else the model given as `learning.prior` (the bundled model).
 *
 * No look-ahead, and no dependence on batching: rows are taken one at a time in the order
 * given (time, then key, is the order every caller uses), each scored by the models fitted
 * before it, and every refit happens at a row decided by the rows before it. So the
 * poller's cycles and one pass over the same rows give the same scores bit for bit.
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
  /** Out-of-range pooling recorded in every model (artifact `scoring.out_of_range_pool`; absent: `feature_mean`). */
  outOfRangePool?: OutOfRangePool;
  /** Smallest range of a feature in the out-of-range term, recorded in every model (artifact `scoring.out_of_range_min_span`; absent: 0). */
  outOfRangeMinSpan?: number;
  /** Novelty weight recorded in every model (see novelty.ts; 0 or absent: none). */
  noveltyWeight?: number;
  /** Refit when this much stream time has passed since the last fit (ms). 0: never refit on time. */
  refitIntervalMs: number;
  /**
   * When a refit on time falls (default `aligned`): `aligned`, at the first row past each
   * multiple of the interval in epoch stream time, so that every run over a stream refits
   * at the same rows and a learner restarted mid-stream (the service's bootstrap replays
   * only `LEARN_WINDOW_S`) converges to the uninterrupted one; `since-fit`, one interval after
   * the last fit (the NAB benchmark's files, each one stream from its start, never
   * restarted, with a 7-day interval whose calendar phase would otherwise decide whether
   * the first refit comes after one day or seven).
   */
  refitSchedule?: 'aligned' | 'since-fit';
  /** Rows in the sliding refit window (the most recent rows that raised no alert, all keys pooled). */
  refitWindow: number;
  /**
   * The alert rule. A RepeatGateOptions alone (the NAB benchmark's) is the repeat rule over
   * every score with no threshold or run condition; GateOptions add the consecutive raw
   * anomalies, surge levels (host metrics only) and cooldown of gate.ts.
   */
  gate: GateOptions | RepeatGateOptions;
  /** The prior's alert rule while a key learns (default: `gate` without its repeat rule). */
  priorGate?: GateOptions;
  /** Keys (hosts) with history and gate state; least recently used evicted. */
  maxKeys?: number;
  /** Recorded in every model. Absent: the stream time of the fit (still reproducible). */
  createdAt?: string;
  /** Caller that provides other inputs than the host metrics (see DetectorOptions.inputs). */
  anyInputs?: boolean;
  /** false: results carry no contributions (the NAB benchmark needs scores only). Default true. */
  contributions?: boolean;
  /** A refit due with fewer rows in the window than this is skipped (default 2). */
  minRefitRows?: number;
  /**
   * The learned model's repeat rule per input of the largest contribution (needs
   * contributions): an alert about one input does not suppress a later one about another.
   * Default false (one repeat rule per key).
   */
  repeatByTop?: boolean;
  /**
   * With the repeat rule's `excess` (gate.ts): the point's excess it reads, of the input the
   * rule is kept for: `robust_z` (default), its robust deviation from the key's median
   * (|sinh| of its robust_z feature, in MADs; none without that feature), or `value`, its raw value.
   */
  gateExcess?: 'value' | 'robust_z';
  /** Learning of new keys and the prior that covers them meanwhile (absent: every key is judged by the learned model at once). */
  learning?: LearningOptions;
}

export interface LearningOptions {
  /** Points a key needs before the learned model may alert on it. */
  points: number;
  /** Rows the refit window needs before the first fit, when started without warm-up rows; also the fleet model's minimum. */
  minFitRows: number;
  /** The model that covers learning keys while there is no fleet model (the bundled model); absent: none. */
  prior?: Detector;
  /** The given prior's point is anomalous only at a severity (score / threshold) above this: blatant values only. */
  priorSeverity: number;
  /** The same for the fleet model (default: priorSeverity). */
  fleetSeverity?: number;
  /** Contamination of the fleet model (default: the learned model's). */
  fleetContamination?: number;
  /** Rows of a key with fewer points than this before them are not trained on (default 0). */
  minHistory?: number;
  /** Fit a fleet model (raw values of learned keys) with every refit. Default true. */
  fleet?: boolean;
  /**
   * Until a key has this many points, the learned model judges it against up to
   * `youngSeverity` times its threshold (absent: never): the full factor when the model
   * was trained on rows of older keys, none when all its rows were of young keys (a lone
   * new host's model, whose threshold is already a quantile of young rows), in proportion
   * between.
   */
  youngPoints?: number;
  youngSeverity?: number;
  /**
   * While the refit window is still filling (start-up), an alert of the learned model keeps
   * its key's next this many points out of the refit windows (absent or 0: only the alerted
   * rows): in a window of a few hundred rows (a lone new host's) the rest of a short
   * incident would be its most unusual rows and set the next threshold (a quantile of
   * them). Once the window is full, incident rows are a small share and are kept: leaving
   * them out there lowers every threshold (bench:learning: 2-4 false alerts per host per
   * day). A fixed count from the alert, not extended by later raw anomalies.
   */
  holdAfterAlert?: number;
  /**
   * Rows with any of these feature columns above `max` are not trained on (absent: none
   * left out for their values): the host learner names each metric's robust z and level
   * shift, so the rest of an incident that raised no alert (a CPU plateau, a memory ramp
   * under the threshold) does not widen the forest's training range and teach it that a
   * metric 10 robust deviations above the host's median is normal. A fixed cut on the
   * features, not on the scores: the rows left out do not depend on the threshold, so it
   * cannot shrink refit after refit.
   */
  trainBelow?: { columns: readonly number[]; max: number };
  /**
   * With trainBelow: once a key's run of raw anomalies has begun, a row beyond the cut
   * (one the refits would not train on) continues it whatever its score (absent: only raw
   * anomalies do). A memory ramp 15 robust deviations above its host's median, whose
   * level the host had reached the day before, scored at the threshold +-0.05 for 38
   * steps with 10 raw anomalies, never 3 in a row, and was missed.
   */
  runBeyondCut?: boolean;
  /**
   * A refit trains on at most this many rows of the window, evenly strided (oldest first),
   * so that its cost stays bounded however many hosts fill the window. Absent: every row.
   */
  fitRows?: number;
}

/** Per-row results of {@link StreamingDetector.process}. */
export interface StreamResult {
  n: number;
  /**
   * The score of each row, by the model that judged it (learned, or the prior while
   * learning); at an alert of the learned model with the repeat rule's `calibrate` on, the
   * calibrated score the gate reported (gate.ts).
   */
  scores: Float64Array;
  /** The threshold each row was judged against (for the prior: its blatant level). */
  thresholds: Float64Array;
  /** 1 where the score was above its threshold (before the gate). */
  anomalies: Uint8Array;
  /** 1 where the gate raised an alert. */
  alerts: Uint8Array;
  /** 1 where the row's key was still learning (judged by the prior, or by nothing). */
  learning: Uint8Array;
  /** n x inputs contributions of the judging model (see Detector); empty when the options turn them off. */
  contributions: Float64Array;
  /** Refits done before each row was scored (the model generation that judged it). */
  refits: Uint32Array;
  /** n x features: the learned model's unscaled features of each row (drift reads them). */
  features: Float64Array;
}

/** Rows of one batch: keys (hosts), times (epoch ms), raw inputs (n x inputs). */
export interface StreamRows {
  keys: readonly string[];
  times: ArrayLike<number>;
  raw: Float64Array;
  n: number;
}

/** What a key carries besides its feature history. */
interface KeyState {
  /** Gate of the learned model, and of the prior while learning (kept apart: their scores differ in scale). */
  gate: GateState;
  priorGate: GateState;
  /** In-order points seen. */
  seen: number;
  lastTime: number;
  /** Points of the key still kept out of the refit windows after its last alert (learning.holdAfterAlert). */
  hold: number;
  /** With repeatByTop: the metric the current run of raw anomalies alerted on (-1: the run has not alerted, or there is no run). */
  alertTop: number;
}

const newKeyState = (): KeyState => ({
  gate: newGateState(),
  priorGate: newGateState(),
  seen: 0,
  lastTime: -Infinity,
  hold: 0,
  alertTop: -1,
});

/** A RepeatGateOptions alone is the repeat rule over every score: no threshold, run or surge condition. */
export function toGateOptions(g: GateOptions | RepeatGateOptions): GateOptions {
  return 'level' in g ? { consecutive: 0, surge: null, cooldownMs: 0, repeat: g } : g;
}

/** Counters of what the stream did, for /health and /metrics. */
export interface StreamStats {
  refits: number;
  refitFailures: number;
  lastRefitError: string | null;
  lastRefitTime: number | null;
  fleetRows: number;
  windowRows: number;
}

export class StreamingDetector {
  readonly opts: StreamingOptions;
  private readonly gateOpts: GateOptions;
  /** The prior's gate: the same rule without the repeat part (its scores are not the learned model's). */
  private readonly priorGateOpts: GateOptions;
  private current: Detector | null;
  private fleet: Detector | null = null;
  /** Stream time at which the fleet model is refitted (half an interval after the learned model). */
  private fleetDueAt = Infinity;
  /** The prior while there is no fleet model (learning.prior, replaced by setPrior). */
  private prior: Detector | null;
  /** The prior's columns in the stream's rows, when they are not all of them in order. */
  private priorCols: Int32Array | null = null;
  private readonly series: SeriesFeatures;
  /** Per-key feature history, shared by every model this stream fits. */
  readonly store: SeriesStateStore;
  /**
   * Recent feature rows (unscaled) that raised no alert, the refit's training data. Not
   * only rows under the threshold: a refit sets its threshold as a quantile of its rows,
   * so training on those alone would shrink the normal region at every refit.
   */
  private readonly window: RefitWindow;
  /** Raw rows of learned keys that raised no alert: the fleet model's training data. */
  private readonly fleetWindow: RefitWindow | null;
  private lastFit: number;
  /** Window size at the last fit: while learning, the model is refitted each time the window doubles. */
  private sizeAtFit = 0;
  /** Per row of the refit window (same ring): 1 if its key was young (learning.youngPoints); their count. */
  private readonly youngRows: Uint8Array;
  private youngHead = 0;
  private youngCount = 0;
  private youngSeen = 0;
  /** Share of young keys' rows in the current model's training window (0 before any fit). */
  private youngShareAtFit = 0;
  private readonly keys: LruMap<KeyState>;
  private readonly surgeCols: [number, number, number] | null;
  /** With the repeat rule's `excess`: per input, the feature column of its robust_z (-1: none; see excessOf). */
  private readonly excessCols: Int32Array | null;
  /** Refits done (the initial fit not counted). */
  refits = 0;
  refitFailures = 0;
  lastRefitError: string | null = null;
  lastRefitTime: number | null = null;

  private constructor(opts: StreamingOptions, first: Detector | null, lastFit: number, store?: SeriesStateStore) {
    if (!(opts.refitWindow >= 2)) throw new RangeError('refitWindow must be at least 2');
    this.opts = opts;
    this.gateOpts = toGateOptions(opts.gate);
    this.priorGateOpts = opts.priorGate ?? { ...this.gateOpts, repeat: undefined };
    const surge = this.gateOpts.surge !== null || this.priorGateOpts.surge !== null;
    if (surge && !isHostMetrics(opts.inputs.slice(0, 3)))
      throw new RangeError('surge levels need the three host metrics as the first inputs');
    this.surgeCols = surge ? [0, 1, 2] : null;
    this.excessCols = this.gateOpts.repeat?.excess
      ? Int32Array.from(opts.inputs, (input) => opts.features.findIndex((f) => f.transform === 'robust_z' && f.source === input))
      : null;
    this.current = first;
    this.prior = null;
    this.setPrior(opts.learning?.prior ?? null);
    this.series = new SeriesFeatures(opts.features, opts.inputs);
    // Features are computed here, on this store, and handed to the models' scoreFeatures:
    // no model's own history is used, so a loaded model shares nothing with /detect.
    this.store = store ?? this.series.newStore(opts.maxKeys ?? DEFAULT_MAX_KEYS);
    this.keys = new LruMap<KeyState>(opts.maxKeys ?? DEFAULT_MAX_KEYS);
    this.window = new RefitWindow(opts.features.length, opts.refitWindow);
    this.youngRows = new Uint8Array(opts.learning?.youngPoints !== undefined ? opts.refitWindow : 0);
    const learning = opts.learning;
    this.fleetWindow = learning && learning.fleet !== false ? new RefitWindow(opts.inputs.length, opts.refitWindow) : null;
    this.lastFit = lastFit;
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
    let last = -Infinity;
    for (let i = 0; i < warm.n; i++) last = Math.max(last, warm.times[i]);
    const fit = fitOnFeatures(features, warm.n, {
      ...trainParams(opts, last),
      inputs: opts.inputs,
      dataSha256: matrixSha256(warm.raw.subarray(0, warm.n * opts.inputs.length)),
    });
    const first = new Detector(fit.artifact, { inputs: opts.anyInputs ? 'any' : opts.inputs, state, forest: fit.forest });
    const s = new StreamingDetector(opts, first, last, state);
    for (let i = Math.max(0, warm.n - opts.refitWindow); i < warm.n; i++) {
      s.window.remember(features, i);
      // Warm-up keys count as seen (below), not young.
      if (s.youngRows.length > 0) s.rememberYoung(false);
    }
    // Warm-up keys have their history: they count as seen.
    for (let i = 0; i < warm.n; i++) {
      const st = s.keys.get(warm.keys[i], newKeyState);
      if (warm.times[i] > st.lastTime) {
        st.seen++;
        st.lastTime = warm.times[i];
      }
    }
    s.sizeAtFit = s.window.size;
    return s;
  }

  /**
   * A stream that starts with no model: every key is learning (covered by the prior) until
   * the window holds `learning.minFitRows` rows; the service starts this way.
   */
  static learner(opts: StreamingOptions): StreamingDetector {
    if (!opts.learning) throw new RangeError('a learner needs learning options');
    if (!(opts.learning.minFitRows >= 2)) throw new RangeError('learning.minFitRows must be at least 2');
    return new StreamingDetector(opts, null, -Infinity);
  }

  /**
   * A stream around a model loaded from an artifact (a model named by the user): its
   * features, trees and threshold, refitted like it when `refitIntervalMs` is set.
   */
  static fromModel(
    detector: Detector,
    opts: Omit<
      StreamingOptions,
      | 'features'
      | 'inputs'
      | 'nEstimators'
      | 'maxSamples'
      | 'seed'
      | 'contamination'
      | 'outOfRangeWeight'
      | 'outOfRangePool'
      | 'outOfRangeMinSpan'
      | 'noveltyWeight'
    >,
    now: number,
  ): StreamingDetector {
    const a = detector.artifact;
    const p = a.training.params;
    const full: StreamingOptions = {
      ...opts,
      features: [...a.features],
      inputs: [...detector.inputs],
      nEstimators: Number(p.n_estimators),
      maxSamples: Number(p.max_samples),
      seed: a.training.seed,
      contamination: a.threshold.contamination ?? 0.01,
      outOfRangeWeight: a.scoring?.out_of_range_weight ?? 0,
      outOfRangePool: a.scoring?.out_of_range_pool,
      outOfRangeMinSpan: a.scoring?.out_of_range_min_span,
      noveltyWeight: a.scoring?.novelty_weight,
    };
    return new StreamingDetector(full, detector, now);
  }

  /** The learned model now in use (throws before the first fit; see `model`). */
  get detector(): Detector {
    if (!this.current) throw new Error('no model fitted yet');
    return this.current;
  }

  /** The learned model now in use, null before the first fit. */
  get model(): Detector | null {
    return this.current;
  }

  /** The artifact now in use. */
  get artifact(): ModelArtifact {
    if (!this.current) throw new Error('no model fitted yet');
    return this.current.artifact;
  }

  /** Replaces the prior used while there is no fleet model (a reload of the bundled model). */
  setPrior(prior: Detector | null): void {
    // A prior of fewer inputs (the bundled model of the three, under a larger set) judges
    // its own columns of each row; one with inputs outside the set cannot judge at all.
    const cols = prior ? columnsOf(prior.inputs, this.opts.inputs) : null;
    this.prior = cols ? prior : null;
    const identity = cols !== null && cols.length === this.opts.inputs.length && cols.every((c, i) => c === i);
    this.priorCols = cols && !identity ? cols : null;
  }

  /** The fleet model (raw values of the learned keys), once fitted. */
  get fleetModel(): Detector | null {
    return this.fleet;
  }

  /** Points of history per key the features read. */
  get historyPoints(): number {
    return this.series.historyPoints;
  }

  /** Keys whose state is held, and how many of them are still learning. */
  keyCounts(): { keys: number; learning: number } {
    const points = this.opts.learning?.points ?? 0;
    let learning = 0;
    for (const st of this.keys.values()) if (this.current === null || st.seen < points) learning++;
    return { keys: this.keys.size, learning };
  }

  /** The latest time of a key's in-order points (-Infinity for a key not held). */
  lastTime(key: string): number {
    return this.keys.has(key) ? (this.keys.peek(key)?.lastTime ?? -Infinity) : -Infinity;
  }

  /** Bytes of learned state per key: feature history plus gate and counters. */
  get bytesPerKey(): number {
    // KeyState: two gate states (with the repeat rule's small queues) and two numbers.
    return this.store.bytesPerKey + 160;
  }

  stats(): StreamStats {
    return {
      refits: this.refits,
      refitFailures: this.refitFailures,
      lastRefitError: this.lastRefitError,
      lastRefitTime: this.lastRefitTime,
      fleetRows: this.fleetWindow?.size ?? 0,
      windowRows: this.window.size,
    };
  }

  /**
   * Scores rows in order (each key's rows in increasing time; the callers sort by time,
   * then key). A refit happens before the first row whose time is `refitIntervalMs` past
   * the last fit, and while learning also before the first row after the window has
   * doubled since the last fit (or reached `minFitRows`, for the first fit).
   */
  process(rows: StreamRows): StreamResult {
    const { n } = rows;
    const m = this.opts.inputs.length;
    const d = this.opts.features.length;
    const withContributions = this.opts.contributions ?? true;
    const out: StreamResult = {
      n,
      scores: new Float64Array(n),
      thresholds: new Float64Array(n),
      anomalies: new Uint8Array(n),
      alerts: new Uint8Array(n),
      learning: new Uint8Array(n),
      contributions: new Float64Array(withContributions ? n * m : 0),
      features: new Float64Array(n * d),
      refits: new Uint32Array(n),
    };
    const features = out.features;
    let start = 0;
    let attempted = -1;
    while (start < n) {
      // One fit attempt per row at most: a failed fit leaves the models as they were.
      if (attempted !== start && this.due(rows.times[start])) {
        attempted = start;
        this.refit(rows.times[start]);
        continue;
      }
      if (rows.times[start] >= this.fleetDueAt) this.fitFleet(rows.times[start]);
      // The segment ends before the next row at which a refit may be due: a time boundary,
      // or (each row adds at most one to the window) the window reaching its growth target.
      let end = start + 1;
      const growth = this.growthTarget();
      const maxLen = growth === Infinity ? n : Math.max(1, growth - this.window.size);
      while (end < n && end - start < maxLen && !this.timeDue(rows.times[end]) && rows.times[end] < this.fleetDueAt) end++;
      this.segment(rows, start, end, features, out);
      start = end;
    }
    return out;
  }

  /** Whether a refit on time is due at a row of time `t` (see StreamingOptions.refitSchedule). */
  private timeDue(t: number): boolean {
    const interval = this.opts.refitIntervalMs;
    if (this.current === null || !(interval > 0)) return false;
    return this.opts.refitSchedule === 'since-fit'
      ? t - this.lastFit >= interval
      : Math.floor(t / interval) > Math.floor(this.lastFit / interval);
  }

  /** Window size at which a fit is due (Infinity: none by size). */
  private growthTarget(): number {
    const l = this.opts.learning;
    if (!l) return Infinity;
    // After a failed first fit, try again when minFitRows more rows have come.
    if (this.current === null)
      return this.refitFailures > 0 ? Math.min(this.opts.refitWindow, this.sizeAtFit + l.minFitRows) : l.minFitRows;
    return this.sizeAtFit < this.opts.refitWindow ? Math.min(this.opts.refitWindow, 2 * this.sizeAtFit) : Infinity;
  }

  private due(t: number): boolean {
    return this.timeDue(t) || this.window.size >= this.growthTarget();
  }

  /** Scores rows [start, end) with the models as they are. */
  private segment(rows: StreamRows, start: number, end: number, features: Float64Array, out: StreamResult): void {
    const m = this.opts.inputs.length;
    const d = this.opts.features.length;
    const k = end - start;
    const withContributions = this.opts.contributions ?? true;
    const feats = features.subarray(start * d, end * d);
    const raw = rows.raw.subarray(start * m, end * m);
    const keys = rows.keys.slice(start, end);
    const times = Array.prototype.slice.call(rows.times, start, end) as number[];
    this.series.compute(this.store, keys, times, raw, k, feats);
    const model = this.current;
    const learned = model ? model.scoreFeatures(Float64Array.from(feats), k, withContributions) : null;
    const learning = this.opts.learning;
    // The cut on what is trained on; with runBeyondCut the gate's run reads it too.
    const cut = learning?.trainBelow;
    const gateCut = learning?.runBeyondCut === true ? cut : undefined;
    const points = learning?.points ?? 0;
    // Which rows a prior judges: their keys' states before the row.
    const states: KeyState[] = new Array<KeyState>(k);
    const judgedByPrior: number[] = [];
    for (let j = 0; j < k; j++) {
      const st = this.keys.get(keys[j], newKeyState);
      states[j] = st;
      if (learning && (model === null || st.seen < points)) judgedByPrior.push(j);
    }
    const prior = this.fleet ?? this.prior;
    let priorScores: Float64Array | null = null;
    let priorContrib: Float64Array | null = null;
    const cols = this.fleet ? null : this.priorCols;
    const pm = cols ? cols.length : m;
    if (prior && judgedByPrior.length > 0) {
      const pr = new Float64Array(judgedByPrior.length * pm);
      if (cols) judgedByPrior.forEach((j, q) => cols.forEach((c, x) => (pr[q * pm + x] = raw[j * m + c])));
      else judgedByPrior.forEach((j, q) => pr.set(raw.subarray(j * m, j * m + m), q * m));
      const res = prior.scoreRaw(pr, judgedByPrior.length);
      priorScores = res.scores;
      priorContrib = res.contributions;
    }
    // The fleet model and the given prior (trained on other hosts) have their own blatant levels.
    const severity = this.fleet ? (learning?.fleetSeverity ?? learning?.priorSeverity ?? 1) : (learning?.priorSeverity ?? 1);
    const sc = this.surgeCols;
    let q = 0;
    for (let j = 0; j < k; j++) {
      const i = start + j;
      const st = states[j];
      const t = times[j];
      const isLearning = learning !== undefined && (model === null || st.seen < points);
      const cpu = sc ? raw[j * m + sc[0]] : 0;
      const mem = sc ? raw[j * m + sc[1]] : 0;
      const net = sc ? raw[j * m + sc[2]] : 0;
      let alert = false;
      if (isLearning) {
        out.learning[i] = 1;
        if (priorScores && prior) {
          const score = priorScores[q];
          const threshold = prior.threshold * severity;
          out.scores[i] = score;
          out.thresholds[i] = threshold;
          const anomalous = score > threshold;
          out.anomalies[i] = anomalous ? 1 : 0;
          alert = gate(this.priorGateOpts, st.priorGate, anomalous, t, cpu, mem, net, score);
          if (withContributions && cols) {
            // The prior's contributions land on its own metrics; the others get none.
            out.contributions.fill(0, i * m, i * m + m);
            for (let x = 0; x < pm; x++) out.contributions[i * m + cols[x]] = (priorContrib as Float64Array)[q * pm + x];
          } else if (withContributions) out.contributions.set((priorContrib as Float64Array).subarray(q * m, q * m + m), i * m);
        } else if (learned && model) {
          out.scores[i] = learned.scores[j];
          out.thresholds[i] = model.threshold;
        } else out.thresholds[i] = 1; // nothing to judge by yet: score 0 of 1
        q++;
      } else if (learned && model) {
        const score = learned.scores[j];
        out.scores[i] = score;
        // A young key (fewer than youngPoints) is judged against a raised threshold: its
        // baseline and extremes still cover only a short past.
        const young = learning?.youngPoints !== undefined && st.seen < learning.youngPoints;
        const factor = young ? 1 + ((learning?.youngSeverity ?? 1) - 1) * (1 - this.youngShareAtFit) : 1;
        const threshold = model.threshold * factor;
        out.thresholds[i] = threshold;
        const raw = score > threshold;
        out.anomalies[i] = raw ? 1 : 0;
        const anomalous = raw || (gateCut !== undefined && st.gate.run > 0 && anyAbove(features, i * d, gateCut.columns, gateCut.max));
        // The repeat rule is kept per top metric: a CPU burn minutes after a network burst is another incident.
        // A run of raw anomalies that has alerted is one event: its later points are judged
        // by the rule of the metric it alerted on, even where another metric's share has
        // become the largest (a joint rise of CPU and memory would otherwise page once per
        // metric as their shares cross).
        let top = 0;
        if (this.opts.repeatByTop && learned.contributions.length > 0) {
          for (let c = 1; c < m; c++) if (learned.contributions[j * m + c] > learned.contributions[j * m + top]) top = c;
          if (!anomalous) st.alertTop = -1;
          else if (st.alertTop >= 0) top = st.alertTop;
        }
        const excess = this.excessCols ? this.excessOf(features, i * d, rows.raw[i * m + top], top) : NaN;
        alert = gate(this.gateOpts, st.gate, anomalous, t, cpu, mem, net, score, top, excess);
        if (alert && this.opts.repeatByTop) st.alertTop = top;
        // With the repeat rule's calibration, an alert reports its calibrated score (gate.ts).
        if (alert && this.gateOpts.repeat?.calibrate) out.scores[i] = st.gate.reported as number;
        if (withContributions) out.contributions.set(learned.contributions.subarray(j * m, j * m + m), i * m);
      }
      out.alerts[i] = alert ? 1 : 0;
      out.refits[i] = this.refits;
      const inOrder = t > st.lastTime;
      // A key's first points have features from a history of a few points (a MAD of almost
      // nothing makes any change look huge): they would teach the forest that huge
      // deviations are normal, so they are not trained on.
      // A learning key's rows are trained on even when the prior alerted (the prior's blatant
      // verdict is not the learned model's; a host busy from its first minute must still
      // get a model within its learning points).
      // The points after an alert of the learned model (learning.holdAfterAlert) are not trained on either.
      let held = false;
      if (!isLearning && inOrder && (learning?.holdAfterAlert ?? 0) > 0) {
        if (alert && this.window.size < this.opts.refitWindow) st.hold = learning?.holdAfterAlert ?? 0;
        else if (st.hold > 0) {
          st.hold--;
          held = true;
        }
      }
      if (
        (!alert || isLearning) &&
        !held &&
        st.seen >= (learning?.minHistory ?? 0) &&
        !(cut && !isLearning && anyAbove(features, i * d, cut.columns, cut.max))
      ) {
        this.window.remember(features, i);
        if (this.youngRows.length > 0) this.rememberYoung(st.seen < (learning?.youngPoints ?? 0));
        if (this.fleetWindow && !isLearning) this.fleetWindow.remember(rows.raw, i);
      }
      if (inOrder) {
        st.seen++;
        st.lastTime = t;
      }
    }
  }

  /**
   * Fits a new model on the window (oldest row first) and swaps it in, keeping the keys'
   * history; with learning, the fleet model too. A failed fit keeps the previous models
   * and is counted.
   */
  private fitFleet(time: number): void {
    this.fleetDueAt = Infinity;
    const fw = this.fleetWindow;
    const l = this.opts.learning;
    if (!fw || !l || fw.size < l.minFitRows) return;
    try {
      const { rows, n } = strided(fw, l.fitRows ?? fw.size);
      const fit = fitOnFeatures(rows, n, {
        ...trainParams(this.opts, time),
        contamination: l.fleetContamination ?? this.opts.contamination,
        features: rawFeatures(this.opts.inputs),
        noveltyWeight: 0,
        outOfRangeWeight: 8,
        outOfRangePool: undefined,
        outOfRangeMinSpan: undefined,
        inputs: this.opts.inputs,
      });
      // The forest just fitted (the artifact's): not rebuilt from the artifact, and its kernel is the one the fit's threshold built.
      this.fleet = new Detector(fit.artifact, { inputs: this.opts.anyInputs ? 'any' : this.opts.inputs, forest: fit.forest });
    } catch (e) {
      this.refitFailures++;
      this.lastRefitError = (e as Error).message;
    }
  }

  /** The excess the repeat rule's `excess` reads (see StreamingOptions.gateExcess) of the row at `at` of `features`, for `input`. */
  private excessOf(features: Float64Array, at: number, value: number, input: number): number {
    if (this.opts.gateExcess === 'value') return value;
    const c = (this.excessCols as Int32Array)[input];
    return c < 0 ? NaN : Math.abs(Math.sinh(features[at + c]));
  }

  /** Keeps the young flag of the row just remembered, in step with the window's ring. */
  private rememberYoung(young: boolean): void {
    const ring = this.youngRows;
    // Once the ring has wrapped, this row replaces the oldest (as in the window).
    if (this.youngSeen >= ring.length) this.youngCount -= ring[this.youngHead];
    ring[this.youngHead] = young ? 1 : 0;
    this.youngCount += ring[this.youngHead];
    this.youngHead = (this.youngHead + 1) % ring.length;
    this.youngSeen++;
  }

  private refit(time: number): void {
    this.lastFit = time;
    this.sizeAtFit = this.window.size;
    const youngShare = this.youngRows.length > 0 && this.window.size > 0 ? this.youngCount / this.window.size : 0;
    if (this.window.size < Math.max(2, this.opts.minRefitRows ?? 2)) return;
    const inputs = this.opts.anyInputs ? ('any' as const) : this.opts.inputs;
    const createdAt = this.opts.createdAt ?? isoTime(time);
    try {
      const cap = this.opts.learning?.fitRows;
      if (this.current && (cap === undefined || this.window.size <= cap)) {
        this.current = refitDetector(this.current, this.window, createdAt, { inputs, state: this.store });
        this.refits++;
      } else {
        const { rows, n } = strided(this.window, cap ?? this.window.size);
        const fit = fitOnFeatures(rows, n, { ...trainParams(this.opts, time), inputs: this.opts.inputs });
        if (this.current) this.refits++;
        this.current = new Detector(fit.artifact, { inputs, state: this.store, forest: fit.forest });
      }
      this.youngShareAtFit = youngShare;
      // The fleet model: at once while the window grows (start-up), else half an interval
      // later, so that the two fits of a refit do not land in the same cycle.
      const interval = this.opts.refitIntervalMs;
      if (this.fleetWindow && (this.fleet === null || interval <= 0 || this.sizeAtFit < this.opts.refitWindow)) this.fitFleet(time);
      else if (this.fleetWindow) this.fleetDueAt = time + interval / 2;
      this.lastRefitError = null;
      this.lastRefitTime = time;
    } catch (e) {
      this.refitFailures++;
      this.lastRefitError = (e as Error).message;
    }
  }
}

/** At most `cap` rows of the window, every k-th from the oldest (all of them when it holds no more). */
function strided(window: RefitWindow, cap: number): { rows: Float64Array; n: number } {
  const all = window.rows();
  const size = window.size;
  if (size <= cap) return { rows: all, n: size };
  const w = window.width;
  const stride = Math.ceil(size / cap);
  const n = Math.ceil(size / stride);
  const rows = new Float64Array(n * w);
  for (let k = 0; k < n; k++) rows.set(all.subarray(k * stride * w, k * stride * w + w), k * w);
  return { rows, n };
}

function isoTime(t: number): string {
  return Number.isFinite(t) ? new Date(t).toISOString() : '1970-01-01T00:00:00.000Z';
}

/** Raw features of the inputs (the fleet model): the host metrics' own declarations where they are the inputs. */
function rawFeatures(inputs: readonly string[]): FeatureSpec[] {
  if (isHostMetrics(inputs)) return defaultFeatures();
  return inputs.map((name) => ({ name, source: name, transform: 'raw' as const, unit: 'value', min: -Number.MAX_VALUE, max: null }));
}

function trainParams(o: StreamingOptions, time: number) {
  return {
    nEstimators: o.nEstimators,
    maxSamples: o.maxSamples,
    seed: o.seed,
    contamination: o.contamination,
    features: o.features,
    createdAt: o.createdAt ?? isoTime(time),
    outOfRangeWeight: o.outOfRangeWeight,
    outOfRangePool: o.outOfRangePool,
    outOfRangeMinSpan: o.outOfRangeMinSpan,
    noveltyWeight: o.noveltyWeight,
  };
}

/** Whether any of `columns` of the row at `at` is above `max` (the training cut). */
function anyAbove(features: Float64Array, at: number, columns: readonly number[], max: number): boolean {
  for (const c of columns) if (features[at + c] > max) return true;
  return false;
}
