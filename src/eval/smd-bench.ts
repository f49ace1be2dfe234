/**
 * `anomaly-detector bench smd`: runs the streaming detector (the same Detector, features,
 * refits and gate the service uses) over every machine of an SMD folder: it learns from
 * the machine's train part (the warm-up), then streams its test part in order with no
 * look-ahead, and scores the scores and alerts against the operators' labels, point-wise
 * (no point adjustment: see the data's README).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { transformParams, type AnyTransform, type FeatureSpec } from '../core/features';
import type { GateOptions, RepeatGateOptions } from '../core/gate';
import { StreamingDetector, type StreamingOptions } from '../core/streaming';
import { averagePrecision, bestF1, binaryMetrics, rocAuc } from './metrics';

export { bestF1 };
import { listSmdMachines, readSmdMachine, SMD_METRIC_SETS, SmdDataError, type SmdMachine, type SmdMetricSet } from './smd-data';

/** One SMD step is one minute. */
export const SMD_STEP_MS = 60_000;
const DAY_STEPS = 1440;

/** Every knob of the benchmarked detector: one set for every machine, never per machine. */
export interface SmdBenchParams {
  /** Temporal transforms on every metric. */
  transforms: AnyTransform[];
  /** Include each metric's raw value as a feature. */
  includeRaw: boolean;
  /** Baseline window (points; shared by a metric's temporal features). */
  window: number;
  /** level_shift, level extremes and span_max / span_min span (points; volatility uses 2 x span). */
  span: number;
  /** Rolling extremes look-back (points). */
  horizon: number;
  /** span_max / span_min: points over which a value is held (default: span). */
  holdSpan?: number;
  nEstimators: number;
  maxSamples: number;
  seed: number;
  contamination: number;
  outOfRangeWeight: number;
  noveltyWeight: number;
  /** Refit interval in points (steps; converted to stream time). 0: never refit. */
  refitIntervalSteps: number;
  refitWindow: number;
  /**
   * The alert rule (see StreamingOptions.gate): GateOptions alert on runs of scores above
   * the model's threshold (the `contamination` quantile of the machine's own training
   * scores), a RepeatGateOptions alone on absolute score levels.
   */
  gate: GateOptions | RepeatGateOptions;
}

const HOUR_MS = 3_600_000;

/**
 * The one set for every machine and for both metric sets, chosen by leave-one-machine-out
 * and machine-1-* vs machine-2-* over the 14 SMD machines (bench/smd-tune.ts): each
 * metric raw, the maximum and minimum of its last 20 points (span_max, span_min: an
 * incident's points stay visible between its spikes) and its volatility (sd of the last
 * 12 points against the last 128), 100 trees of 4096 points fitted on the train part,
 * out-of-range weight 8, no refits (refits on the test stream learned long incidents and
 * lost best F1). 2 kB of history per metric. Alerts: a score above the machine's own
 * threshold (the 0.05 % quantile of its training scores) and at least 0.65; within a day
 * of an alert only a higher score alerts again.
 */
export const DEFAULT_SMD_PARAMS: SmdBenchParams = {
  transforms: ['span_max', 'span_min', 'volatility'],
  includeRaw: true,
  window: 128,
  span: 6,
  holdSpan: 20,
  horizon: 256,
  nEstimators: 100,
  maxSamples: 4096,
  seed: 1,
  contamination: 0.0005,
  outOfRangeWeight: 8,
  noveltyWeight: 0,
  refitIntervalSteps: 0,
  refitWindow: 2,
  gate: { consecutive: 1, surge: null, cooldownMs: 0, repeat: { level: 0.65, windowMs: 24 * HOUR_MS, peak: false } },
};

/** The feature list: per metric, raw (if asked) then each transform. */
export function smdFeatures(metrics: readonly string[], p: SmdBenchParams): FeatureSpec[] {
  const params = (t: AnyTransform) => {
    if (t === 'seasonal_max_excess' || t === 'seasonal_min_excess')
      throw new RangeError('bench smd: seasonal features are not used (the per-host state must stay small)');
    const hold = p.holdSpan ?? p.span;
    return transformParams(
      t,
      { window: p.window, span: p.span, horizon: p.horizon },
      { volatility: 2 * p.span, span_max: hold, span_min: hold },
    );
  };
  const out: FeatureSpec[] = [];
  for (const m of metrics) {
    if (p.includeRaw) out.push({ name: m, source: m, transform: 'raw', unit: 'unitless [0, 1]', min: -Number.MAX_VALUE, max: null });
    for (const t of p.transforms) {
      if (t === 'raw') continue;
      out.push({
        name: `${m}_${t}`,
        source: m,
        transform: t,
        unit: t === 'volatility' ? 'log ratio' : t === 'span_max' || t === 'span_min' ? 'unitless [0, 1]' : 'robust units (asinh)',
        min: -Number.MAX_VALUE,
        max: null,
        params: params(t),
      });
    }
  }
  return out;
}

/** Streaming options for one machine. */
export function smdStreamingOptions(metrics: readonly string[], p: SmdBenchParams): StreamingOptions {
  return {
    features: smdFeatures(metrics, p),
    inputs: [...metrics],
    anyInputs: true,
    nEstimators: p.nEstimators,
    maxSamples: p.maxSamples,
    seed: p.seed,
    contamination: p.contamination,
    outOfRangeWeight: p.outOfRangeWeight,
    noveltyWeight: p.noveltyWeight,
    refitIntervalMs: p.refitIntervalSteps * SMD_STEP_MS,
    refitWindow: p.refitWindow,
    gate: p.gate,
    maxKeys: 1,
    contributions: false,
    createdAt: '2026-01-01T00:00:00.000Z',
  };
}

/** What the stream gave for one machine's test part. */
export interface SmdRun {
  machine: string;
  steps: Float64Array;
  scores: Float64Array;
  alerts: Uint8Array;
  /** The threshold of the last model (the gate's raw-anomaly level). */
  threshold: number;
  refits: number;
  /** Bytes of feature history the machine's key holds (SeriesStateStore.bytesPerKey). */
  stateBytesPerKey: number;
  /** All learned state per key: feature history plus gate state (StreamingDetector.bytesPerKey). */
  bytesPerKey: number;
  seconds: number;
}

/**
 * Streams one machine: the train part fits the first model and fills the key's history
 * (nothing scored), then every test row is scored by the model and features of earlier
 * rows only, and gated. The key is the machine's name.
 */
export function runSmdMachine(machine: SmdMachine, params: SmdBenchParams): SmdRun {
  const key = machine.name;
  const keysOf = (count: number): string[] => new Array<string>(count).fill(key);
  const timesOf = (steps: Float64Array): number[] => Array.from(steps, (s) => s * SMD_STEP_MS);
  const t0 = process.hrtime.bigint();
  const { train, test } = machine;
  const stream = StreamingDetector.start(smdStreamingOptions(machine.metrics, params), {
    keys: keysOf(train.n),
    times: timesOf(train.steps),
    raw: train.raw,
    n: train.n,
  });
  const res = stream.process({ keys: keysOf(test.n), times: timesOf(test.steps), raw: test.raw, n: test.n });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    machine: machine.name,
    steps: test.steps,
    scores: res.scores,
    alerts: res.alerts,
    threshold: stream.detector.threshold,
    refits: stream.refits,
    stateBytesPerKey: stream.store.bytesPerKey,
    bytesPerKey: stream.bytesPerKey,
    seconds,
  };
}

/** Labelled segments: maximal runs of 1, as [start, end) row ranges. */
export function labelSegments(labels: ArrayLike<number>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < labels.length;) {
    if (labels[i] !== 1) {
      i++;
      continue;
    }
    let j = i;
    while (j < labels.length && labels[j] === 1) j++;
    out.push([i, j]);
    i = j;
  }
  return out;
}

/** Everything measured on one machine (point-wise, no point adjustment). */
export interface SmdMachineMetrics {
  machine: string;
  rows: number;
  anomalies: number;
  rocAuc: number;
  prAuc: number;
  bestF1: number;
  /** The detector's own alerts. */
  precision: number;
  recall: number;
  f1: number;
  /** Share of rows alerted. */
  alertShare: number;
  segments: number;
  segmentsDetected: number;
  /** Mean steps (minutes) from a detected segment's start to its first alert (null: none detected). */
  meanDelaySteps: number | null;
  /** Alerts outside every labelled segment, per day of test data. */
  falseAlertsPerDay: number;
}

/** Scores one machine's run against its labels. */
export function smdMetrics(
  machine: string,
  scores: ArrayLike<number>,
  alerts: ArrayLike<number>,
  labels: ArrayLike<number>,
): SmdMachineMetrics {
  const n = labels.length;
  if (scores.length !== n || alerts.length !== n)
    throw new RangeError(`${machine}: ${scores.length} scores and ${alerts.length} alerts for ${n} labels`);
  const bm = binaryMetrics(alerts, labels);
  const segments = labelSegments(labels);
  let detected = 0;
  let delay = 0;
  for (const [s, e] of segments) {
    for (let i = s; i < e; i++) {
      if (alerts[i] === 1) {
        detected++;
        delay += i - s;
        break;
      }
    }
  }
  let alerted = 0;
  for (let i = 0; i < n; i++) alerted += alerts[i] === 1 ? 1 : 0;
  return {
    machine,
    rows: n,
    anomalies: bm.tp + bm.fn,
    rocAuc: rocAuc(scores, labels),
    prAuc: averagePrecision(scores, labels),
    bestF1: bestF1(scores, labels).f1,
    precision: bm.precision,
    recall: bm.recall,
    f1: bm.f1,
    alertShare: n > 0 ? alerted / n : 0,
    segments: segments.length,
    segmentsDetected: detected,
    meanDelaySteps: detected > 0 ? delay / detected : null,
    falseAlertsPerDay: n > 0 ? bm.fp / (n / DAY_STEPS) : 0,
  };
}

/** Numeric fields averaged over machines (each over the machines where it is defined; meanDelaySteps over machines with a detection). */
export type SmdAverage = Omit<SmdMachineMetrics, 'machine' | 'meanDelaySteps'> & { meanDelaySteps: number | null };

const AVERAGED = [
  'rows',
  'anomalies',
  'rocAuc',
  'prAuc',
  'bestF1',
  'precision',
  'recall',
  'f1',
  'alertShare',
  'segments',
  'segmentsDetected',
  'falseAlertsPerDay',
] as const;

/**
 * The mean over machines of every figure (an unweighted mean: each machine counts once),
 * over the machines where it is defined: a machine with no labelled anomaly has no ROC-AUC
 * or PR-AUC (nor best F1), and must not make the average of the others undefined.
 */
export function averageMetrics(rows: readonly SmdMachineMetrics[]): SmdAverage {
  const out = {} as SmdAverage;
  for (const k of AVERAGED) {
    const vals = rows.map((r) => r[k]).filter((v) => Number.isFinite(v));
    out[k] = vals.length ? vals.reduce((s, v) => s + v, 0) / vals.length : NaN;
  }
  const delays = rows.map((r) => r.meanDelaySteps).filter((d): d is number => d !== null);
  out.meanDelaySteps = delays.length ? delays.reduce((s, d) => s + d, 0) / delays.length : null;
  return out;
}

/** Writes `<out>/<machine>.csv`: `step,score,alert` for every test row. */
export function writeSmdResult(outDir: string, run: SmdRun): string {
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, `${run.machine}.csv`);
  const lines = ['step,score,alert'];
  for (let i = 0; i < run.scores.length; i++) lines.push(`${run.steps[i]},${run.scores[i]},${run.alerts[i]}`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

/** Options of {@link runSmdBench}. */
export interface SmdBenchOptions {
  smdDir: string;
  outDir: string;
  metrics: SmdMetricSet;
  /** Machine folder names (default: every machine under smdDir). */
  machines?: readonly string[];
  params?: SmdBenchParams;
  log?: (line: string) => void;
}

/** Everything the bench measured. */
export interface SmdBenchResult {
  metrics: SmdMetricSet;
  columns: string[];
  params: SmdBenchParams;
  machines: SmdMachineMetrics[];
  average: SmdAverage;
  /** Feature history per key (bytes; the same for every machine). */
  stateBytesPerKey: number;
  /** Feature history plus gate state per key (bytes). */
  bytesPerKey: number;
  refits: number;
  seconds: number;
  resultFiles: string[];
}

/** Runs the benchmark over the machines, one at a time (memory: one machine's data). */
export function runSmdBench(opts: SmdBenchOptions): SmdBenchResult {
  const params = opts.params ?? DEFAULT_SMD_PARAMS;
  const columns = [...SMD_METRIC_SETS[opts.metrics]];
  const names = opts.machines ? [...opts.machines] : listSmdMachines(opts.smdDir);
  if (names.length === 0) throw new SmdDataError(`${opts.smdDir}: no machine folders (each needs train.csv.gz and test.csv.gz)`);
  const machines: SmdMachineMetrics[] = [];
  const resultFiles: string[] = [];
  let stateBytesPerKey = 0;
  let bytesPerKey = 0;
  let refits = 0;
  let seconds = 0;
  for (const name of names) {
    const data = readSmdMachine(opts.smdDir, name, columns);
    const run = runSmdMachine(data, params);
    resultFiles.push(writeSmdResult(opts.outDir, run));
    const m = smdMetrics(name, run.scores, run.alerts, data.test.labels);
    machines.push(m);
    stateBytesPerKey = run.stateBytesPerKey;
    bytesPerKey = run.bytesPerKey;
    refits += run.refits;
    seconds += run.seconds;
    opts.log?.(
      `${name}: ${data.train.n} train + ${data.test.n} test rows, ${run.refits} refit(s), ${(run.seconds * 1000).toFixed(0)} ms, ROC-AUC ${fmt(m.rocAuc)}`,
    );
  }
  return {
    metrics: opts.metrics,
    columns,
    params,
    machines,
    average: averageMetrics(machines),
    stateBytesPerKey,
    bytesPerKey,
    refits,
    seconds,
    resultFiles,
  };
}

function fmt(v: number | null, digits = 3): string {
  return v === null || Number.isNaN(v) ? 'n/a' : v.toFixed(digits);
}

/** The table printed by the command. */
export function formatSmdBench(r: SmdBenchResult): string {
  const head = ['machine', 'ROC-AUC', 'PR-AUC', 'bestF1', 'prec', 'recall', 'F1', 'alerted', 'segments', 'delay', 'FA/day'];
  const widths = [14, 8, 8, 8, 7, 7, 7, 8, 10, 7, 7];
  const row = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('');
  const cells = (name: string, m: SmdAverage | SmdMachineMetrics): string[] => [
    name,
    fmt(m.rocAuc),
    fmt(m.prAuc),
    fmt(m.bestF1),
    fmt(m.precision),
    fmt(m.recall),
    fmt(m.f1),
    `${(100 * m.alertShare).toFixed(2)}%`,
    'machine' in m ? `${m.segmentsDetected}/${m.segments}` : `${m.segmentsDetected.toFixed(1)}/${m.segments.toFixed(1)}`,
    fmt(m.meanDelaySteps, 1),
    fmt(m.falseAlertsPerDay, 2),
  ];
  const lines = [
    `SMD, ${r.machines.length} machine(s), metrics ${r.metrics} (${r.columns.length}); point-wise, no point adjustment`,
    "(prec, recall, F1, alerted: the detector's own alerts; bestF1: the oracle threshold on the scores; " +
      'delay: minutes from segment start; FA/day: alerts outside labelled segments)',
    row(head),
    ...r.machines.map((m) => row(cells(m.machine, m))),
    row(cells('average', r.average)),
    `learned state per key: ${r.stateBytesPerKey} bytes of feature history (${r.bytesPerKey} with the gate ` +
      `state); ${r.refits} refit(s); ${r.seconds.toFixed(1)} s streaming`,
  ];
  return `${lines.join('\n')}\n`;
}
