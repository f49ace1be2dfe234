/**
 * `anomaly-detector bench nab`: runs the streaming detector (the same Detector, features,
 * refits and gate the service uses) over every series of a NAB directory, writes the
 * results in NAB's layout, and scores them with the NAB scorer next to the published
 * detectors.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TRANSFORMS, transformParams, type FeatureSpec, type FeatureTransform } from '../core/features';
import type { RepeatGateOptions } from '../core/gate';
import { StreamingDetector, type StreamingOptions } from '../core/streaming';
import {
  categoryOf,
  describeFiles,
  listDataFiles,
  listDetectors,
  loadDetectorFiles,
  NabDataError,
  parseNabTimestamp,
  readLabels,
  readProfiles,
  resultFile,
  resultsPath,
  scoreDetector,
  sortRows,
  type LeaderboardRow,
  type TimestampCache,
} from './nab-data';
import { type CostMatrix, type NabFile, type NabWindow, probationLength, scoreFile, sweepRows } from './nab-scorer';

/** Our detector's name in NAB's layout and the leaderboard. */
export const DETECTOR_NAME = 'streamingIsolationForest';

/** The one input channel of a NAB series. */
export const NAB_INPUT = 'value';

/** Every knob of the benchmarked detector. One set for the whole corpus, never per file. */
export interface NabBenchParams {
  /** Temporal transforms on the value (raw is always included). */
  transforms: FeatureTransform[];
  /** Baseline window (points). */
  window: number;
  /** level_shift and volatility span (points). */
  span: number;
  /** Rolling extremes look-back (points). */
  horizon: number;
  /** Seasonal period and tolerance (points). */
  period: number;
  tolerance: number;
  nEstimators: number;
  maxSamples: number;
  seed: number;
  contamination: number;
  outOfRangeWeight: number;
  /** Share of the novelty term in the score (see core/novelty.ts; 0: forest score only). */
  noveltyWeight: number;
  refitIntervalMs: number;
  refitWindow: number;
  gate: RepeatGateOptions;
  /** What the gate's `excess` rule reads (StreamingOptions.gateExcess; default robust_z). */
  gateExcess?: 'value' | 'robust_z';
  /** Include the raw value as a feature (default true). */
  includeRaw?: boolean;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * The parameters reported with the leaderboard, chosen once for the whole corpus: a
 * baseline of half a day of 5-minute points, extremes (of points and of 6-point levels) over
 * two weeks, a daily season (+- 30 minutes), 100 trees of 64 points, out-of-range weight 8,
 * a novelty share of 0.3 in the score (see core/novelty.ts), a refit every 7 days of
 * stream time on up to the last 4032 normal rows (two weeks), and repeat suppression: a
 * score alerts only above everything of the last 12 hours, and within a day of an alert
 * only 0.03 above it, or (scoring no higher) at a value above 1.05 times every value since
 * that alert (the gate's `excess` on the raw value: a second incident that goes further
 * than the first scores lower, its extremes measured from the first's); an alert reports
 * its score less 0.2 times the mean score of the series' alerts of the last 7 days (the
 * gate's `calibrate`: a series that keeps alerting high reports less, so the one
 * corpus-wide threshold lets fewer of its alerts through).
 */
export const DEFAULT_NAB_PARAMS: NabBenchParams = {
  // Every temporal transform, in features.ts order.
  transforms: TRANSFORMS.filter((t) => t !== 'raw'),
  window: 144,
  span: 6,
  horizon: 4032,
  period: 288,
  tolerance: 6,
  nEstimators: 100,
  maxSamples: 64,
  seed: 1,
  contamination: 0.01,
  outOfRangeWeight: 8,
  noveltyWeight: 0.3,
  refitIntervalMs: 7 * DAY,
  refitWindow: 4032,
  gate: {
    level: 0,
    windowMs: DAY,
    peak: true,
    margin: 0.03,
    peakWindowMs: 12 * HOUR,
    calibrate: { weight: 0.2, forMs: 7 * DAY },
    excess: { factor: 1.05 },
  },
  gateExcess: 'value',
};

/** The feature list for a univariate series. */
export function nabFeatures(p: NabBenchParams): FeatureSpec[] {
  const unit = 'robust units (asinh)';
  const values = { window: p.window, span: p.span, horizon: p.horizon, period: p.period, tolerance: p.tolerance };
  const params = (t: FeatureTransform) => transformParams(t, values, { volatility: 2 * p.span });
  const raw: FeatureSpec = { name: NAB_INPUT, source: NAB_INPUT, transform: 'raw', unit: 'value', min: -Number.MAX_VALUE, max: null };
  return [
    ...(p.includeRaw === false ? [] : [raw]),
    ...p.transforms
      .filter((t) => t !== 'raw')
      .map((t): FeatureSpec => ({
        name: `${NAB_INPUT}_${t}`,
        source: NAB_INPUT,
        transform: t,
        unit: t === 'volatility' ? 'log ratio' : unit,
        min: -Number.MAX_VALUE,
        max: null,
        params: params(t),
      })),
  ];
}

/** Streaming options for one NAB series. */
export function streamingOptions(p: NabBenchParams): StreamingOptions {
  return {
    features: nabFeatures(p),
    inputs: [NAB_INPUT],
    anyInputs: true,
    nEstimators: p.nEstimators,
    maxSamples: p.maxSamples,
    seed: p.seed,
    contamination: p.contamination,
    outOfRangeWeight: p.outOfRangeWeight,
    noveltyWeight: p.noveltyWeight,
    refitIntervalMs: p.refitIntervalMs,
    // Each file is one stream from its start: a week after the last fit, not on the calendar's weeks.
    refitSchedule: 'since-fit',
    refitWindow: p.refitWindow,
    gateExcess: p.gateExcess,
    gate: p.gate,
    maxKeys: 1,
    // NAB reads scores only: the explanations are not computed.
    contributions: false,
    createdAt: '2026-01-01T00:00:00.000Z',
  };
}

/** One NAB data file: raw timestamp text, epoch ms and values. */
export interface NabSeries {
  relPath: string;
  timestampText: string[];
  times: number[];
  values: Float64Array;
}

/** Reads `DIR/data/<relPath>` (`timestamp,value`), rows in file order. */
export function readNabSeries(nabDir: string, relPath: string): NabSeries {
  const path = join(nabDir, 'data', relPath);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new NabDataError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const lines = text.split(/\r?\n/);
  const header = lines[0].split(',').map((h) => h.trim());
  const ti = header.indexOf('timestamp');
  const vi = header.indexOf('value');
  if (ti < 0 || vi < 0) throw new NabDataError(`${path}: expected columns timestamp and value (header: ${lines[0]})`);
  const timestampText: string[] = [];
  const values: number[] = [];
  for (let k = 1; k < lines.length; k++) {
    if (lines[k].trim() === '') continue;
    const cells = lines[k].split(',');
    const v = Number(cells[vi]);
    if (cells[vi] === undefined || cells[vi].trim() === '' || !Number.isFinite(v))
      throw new NabDataError(`${path}: line ${k + 1} has no numeric value`);
    timestampText.push(cells[ti]);
    values.push(v);
  }
  // Timestamps may repeat or step back (clock changes): NAB scores rows in file order,
  // and so does the scorer; the stream gets its own increasing clock (streamTimes).
  // Probation (at least 2 rows) fits the first model; at least one row must be left to score.
  if (values.length < 3) throw new NabDataError(`${path}: ${values.length} data row(s); a series needs at least 3`);
  const times = timestampText.map(parseNabTimestamp);
  return { relPath, timestampText, times, values: Float64Array.from(values) };
}

/**
 * The stream's clock for a series in file order: the file's times where they increase;
 * a row whose timestamp repeats or steps back (clock changes; a few NAB files have them)
 * is a further point, one typical step (the median increasing step) after the previous
 * one. The detector needs increasing times per key (it treats a non-increasing time as a
 * late duplicate), and its time-based rules (refit interval, gate windows) then see the
 * points' real spacing.
 */
export function streamTimes(fileTimes: readonly number[]): number[] {
  const n = fileTimes.length;
  const steps: number[] = [];
  for (let i = 1; i < n; i++) if (fileTimes[i] > fileTimes[i - 1]) steps.push(fileTimes[i] - fileTimes[i - 1]);
  steps.sort((a, b) => a - b);
  const typical = steps.length > 0 ? steps[steps.length >> 1] : 1;
  const out = fileTimes.slice();
  for (let i = 1; i < n; i++) {
    const step = fileTimes[i] - fileTimes[i - 1];
    out[i] = out[i - 1] + (step > 0 ? step : typical);
  }
  return out;
}

/** Our output for one series: NAB's anomaly_score per row, plus what the stream did. */
export interface SeriesRun {
  relPath: string;
  /** Gated score: the model score where the gate alerted (calibrated, with the gate's `calibrate`), else 0 (probation rows: 0). */
  anomalyScores: Float64Array;
  probation: number;
  refits: number;
  seconds: number;
}

/**
 * Streams one series: the probation rows fit the first model (nothing is scored there),
 * then every later row is scored by the model and features of earlier rows only.
 */
export function runSeries(series: NabSeries, params: NabBenchParams): SeriesRun {
  const n = series.values.length;
  const probation = Math.max(2, Math.floor(probationLength(n)));
  const keysOf = (count: number): string[] => new Array<string>(count).fill(series.relPath);
  const times = streamTimes(series.times);
  const t0 = process.hrtime.bigint();
  const stream = StreamingDetector.start(streamingOptions(params), {
    keys: keysOf(probation),
    times: times.slice(0, probation),
    raw: series.values.subarray(0, probation),
    n: probation,
  });
  const rest = n - probation;
  const res = stream.process({ keys: keysOf(rest), times: times.slice(probation), raw: series.values.subarray(probation), n: rest });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const anomalyScores = new Float64Array(n);
  for (let i = 0; i < rest; i++) anomalyScores[probation + i] = res.alerts[i] ? res.scores[i] : 0;
  return { relPath: series.relPath, anomalyScores, probation, refits: stream.refits, seconds };
}

/** Writes one series' results as NAB does (`timestamp,anomaly_score`). */
export function writeResult(outDir: string, detector: string, series: NabSeries, scores: ArrayLike<number>): string {
  const path = resultFile(outDir, detector, series.relPath);
  mkdirSync(dirname(path), { recursive: true });
  const lines = ['timestamp,anomaly_score'];
  for (let i = 0; i < series.timestampText.length; i++) lines.push(`${series.timestampText[i]},${scores[i]}`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

/** Reads results written by {@link writeResult} back as a NabFile (the scorer's input). */
export function readResult(outDir: string, detector: string, series: NabSeries, windows: NabFile['windows']): NabFile {
  const path = resultFile(outDir, detector, series.relPath);
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  if (lines[0] !== 'timestamp,anomaly_score') throw new NabDataError(`${path}: unexpected header ${lines[0]}`);
  const scores = lines.slice(1).map((l, i) => {
    const [ts, s] = l.split(',');
    if (ts !== series.timestampText[i])
      throw new NabDataError(`${path}: row ${i + 2} has timestamp ${ts}, the data file ${series.timestampText[i]}`);
    return Number(s);
  });
  if (scores.length !== series.times.length)
    throw new NabDataError(`${path}: ${scores.length} rows, the data file has ${series.times.length}`);
  return { name: series.relPath, timestamps: series.times, scores, windows };
}

/** What operators ask of a detector, at the standard profile's threshold. */
export interface OperatorStats {
  threshold: number;
  windows: number;
  windowsDetected: number;
  falseAlarms: number;
  /** False alarms per day of scored (post-probation) data. */
  falseAlarmsPerDay: number;
  /** Mean minutes from each detected window's labelled anomaly to its first detection (negative: before it). */
  meanDelayMinutes: number | null;
  /** Mean minutes from each detected window's start to its first detection. */
  meanDelayFromWindowStartMinutes: number | null;
}

/** Windows detected, false alarms and delays of a detector's files at a threshold. */
export function operatorStats(files: readonly NabFile[], threshold: number, labelInstants?: Map<string, number[]>): OperatorStats {
  let windows = 0;
  let detected = 0;
  let falseAlarms = 0;
  let scoredMs = 0;
  const delays: number[] = [];
  const fromStart: number[] = [];
  for (const f of files) {
    const sw = sweepRows(f.timestamps, f.windows);
    windows += f.windows.length;
    if (sw.rows > sw.probation) scoredMs += f.timestamps[sw.rows - 1] - f.timestamps[sw.probation];
    for (let i = sw.probation; i < sw.rows; i++) if (sw.windowOf[i] < 0 && f.scores[i] >= threshold) falseAlarms++;
    for (const span of sw.spans) {
      let first = -1;
      for (let i = Math.max(span.start, sw.probation); i <= span.end; i++) {
        if (f.scores[i] >= threshold) {
          first = i;
          break;
        }
      }
      if (first < 0) continue;
      detected++;
      const t = f.timestamps[first];
      fromStart.push((t - f.timestamps[span.start]) / MINUTE);
      const instant = labelInstants?.get(f.name)?.find((u) => u >= f.timestamps[span.start] && u <= f.timestamps[span.end]);
      if (instant !== undefined) delays.push((t - instant) / MINUTE);
    }
  }
  const mean = (a: number[]): number | null => (a.length ? a.reduce((s, v) => s + v, 0) / a.length : null);
  return {
    threshold,
    windows,
    windowsDetected: detected,
    falseAlarms,
    falseAlarmsPerDay: scoredMs > 0 ? falseAlarms / (scoredMs / DAY) : 0,
    meanDelayMinutes: mean(delays),
    meanDelayFromWindowStartMinutes: mean(fromStart),
  };
}

/** Labelled anomaly instants (`labels/combined_labels.json`), if the directory has them. */
export function readLabelInstants(nabDir: string): Map<string, number[]> | undefined {
  let json: Record<string, string[]>;
  try {
    json = JSON.parse(readFileSync(join(nabDir, 'labels', 'combined_labels.json'), 'utf8')) as Record<string, string[]>;
  } catch {
    return undefined;
  }
  return new Map(Object.entries(json).map(([k, v]) => [k, v.map(parseNabTimestamp)]));
}

/** Options of {@link runNabBench}. */
export interface NabBenchOptions {
  nabDir: string;
  /** Where results go, in NAB's layout. */
  outDir: string;
  /** Data files (`category/file.csv`); default every labelled file under DIR/data. */
  files?: readonly string[];
  params?: NabBenchParams;
  /** Also score the published detectors under DIR/results (default true; none if the folder is missing). */
  published?: boolean;
  /** Progress lines (one per file). */
  log?: (line: string) => void;
  /** Timed passes over all series after the first (median reported; default 3, 0: time the first pass). */
  timingPasses?: number;
}

/** A detector on one category's files (thresholds optimised on them), and at its all-files standard threshold. */
export interface CategoryRow extends LeaderboardRow {
  /**
   * Standard profile at the detector's threshold optimised on all files: the raw score
   * and false alarms of this category's files (for a category without windows, the only
   * figure there is: the cost of its false alarms).
   */
  atAllFilesThreshold: { threshold: number; score: number; falseAlarms: number };
}

/** The leaderboard of one category. */
export interface CategoryBoard {
  category: string;
  files: string[];
  windows: number;
  /** Ours and every published detector with results for some of its files, best standard score first. */
  rows: CategoryRow[];
}

/** Everything the bench measured. */
export interface NabBenchResult {
  detector: string;
  files: string[];
  params: NabBenchParams;
  /**
   * Ours and the published detectors on all files, best standard score first. A
   * published detector is scored on the files it has results for; its row's `missing`
   * lists the others.
   */
  leaderboard: LeaderboardRow[];
  ours: LeaderboardRow;
  /** One board per category present, in file order. */
  categories: CategoryBoard[];
  stats: OperatorStats;
  /**
   * Streaming speed: all rows of all files through start (features, first fit) and
   * process (features, scoring, gate, refits), one thread. `seconds` and
   * `pointsPerSecond` are the median of the timing passes (the first, cold pass is
   * `firstPassPointsPerSecond`); `scoredPointsPerSecond` counts post-probation rows only.
   */
  throughput: {
    points: number;
    scoredPoints: number;
    seconds: number;
    pointsPerSecond: number;
    scoredPointsPerSecond: number;
    firstPassPointsPerSecond: number;
    /**
     * CPU time (user + system, all of the process's threads, so garbage collection
     * included) of the median timing pass, and points per CPU second: on a shared
     * machine the wall-clock figure also counts the time other processes held the core.
     */
    cpuSeconds: number;
    pointsPerCpuSecond: number;
    passes: number;
    fits: number;
  };
  resultFiles: string[];
}

/** The labelled data files of a NAB directory (a file missing from the labels is logged and left out). */
export function labelledFiles(nabDir: string, labels: Map<string, NabWindow[]>, log?: (line: string) => void): string[] {
  const all = listDataFiles(nabDir);
  for (const f of all) if (!labels.has(f)) log?.(`${f}: not in labels/combined_windows.json; skipped`);
  const files = all.filter((f) => labels.has(f));
  if (files.length === 0) throw new NabDataError(`${join(nabDir, 'data')}: no labelled data files`);
  return files;
}

/** Reads the series named (every one must have an entry in the labels, possibly with no windows). */
export function readAllSeries(nabDir: string, files: readonly string[], labels: Map<string, NabWindow[]>): NabSeries[] {
  for (const f of files)
    if (!labels.has(f)) throw new NabDataError(`${join(nabDir, 'labels', 'combined_windows.json')}: no windows for ${f}`);
  return files.map((f) => readNabSeries(nabDir, f));
}

/**
 * The published detectors' results for the files they have (`results/<det>/...`), by
 * detector; a directory without `results/` has none.
 */
export function loadPublished(nabDir: string, files: readonly string[], labels: Map<string, NabWindow[]>): Map<string, NabFile[]> {
  const out = new Map<string, NabFile[]>();
  if (!existsSync(join(nabDir, 'results'))) return out;
  const cache: TimestampCache = new Map();
  for (const detector of listDetectors(nabDir)) {
    const present = files.filter((f) => existsSync(resultsPath(nabDir, detector, f)));
    if (present.length > 0) out.set(detector, loadDetectorFiles(nabDir, detector, present, labels, cache));
  }
  return out;
}

/** A detector's row over `files` (those it has), with the rest listed as missing. */
function rowOn(
  detector: string,
  have: readonly NabFile[],
  files: readonly string[],
  profiles: Record<string, CostMatrix>,
): LeaderboardRow | null {
  const wanted = new Set(files);
  const mine = have.filter((f) => wanted.has(f.name));
  if (mine.length === 0) return null;
  const row = scoreDetector(detector, mine, profiles);
  const got = new Set(row.files);
  row.missing = files.filter((f) => !got.has(f));
  return row;
}

/** The standard profile's raw score and false alarms of `files` at a threshold. */
export function scoreAt(
  files: readonly NabFile[],
  threshold: number,
  cost: CostMatrix,
): { threshold: number; score: number; falseAlarms: number } {
  let score = 0;
  let falseAlarms = 0;
  for (const f of files) {
    const r = scoreFile(f, threshold, cost);
    score += r.score;
    falseAlarms += r.fp;
  }
  return { threshold, score, falseAlarms };
}

/** Leaderboards over all files and per category, from every detector's files. */
export function boards(
  byDetector: Map<string, NabFile[]>,
  files: readonly string[],
  profiles: Record<string, CostMatrix>,
): { all: LeaderboardRow[]; categories: CategoryBoard[] } {
  const first = Object.keys(profiles)[0];
  const standardName = profiles.standard ? 'standard' : first;
  const all: LeaderboardRow[] = [];
  for (const [detector, have] of byDetector) {
    const row = rowOn(detector, have, files, profiles);
    if (row) all.push(row);
  }
  sortRows(all, first);
  const categories: CategoryBoard[] = [];
  for (const category of [...new Set(files.map(categoryOf))]) {
    const catFiles = files.filter((f) => categoryOf(f) === category);
    const rows: CategoryRow[] = [];
    for (const allRow of all) {
      const have = (byDetector.get(allRow.detector) ?? []).filter((f) => categoryOf(f.name) === category);
      const row = rowOn(allRow.detector, have, catFiles, profiles);
      if (row) rows.push({ ...row, atAllFilesThreshold: scoreAt(have, allRow.profiles[standardName].threshold, profiles[standardName]) });
    }
    sortRows(rows, first);
    // Without windows there is no normalised score: fewer false alarms ranks first.
    if (rows.every((r) => r.profiles[first].normalised === null))
      rows.sort((a, b) => b.atAllFilesThreshold.score - a.atAllFilesThreshold.score);
    const windows = countWindows(byDetector, catFiles);
    categories.push({ category, files: catFiles, windows, rows });
  }
  return { all, categories };
}

function countWindows(byDetector: Map<string, NabFile[]>, files: readonly string[]): number {
  const wanted = new Set(files);
  const seen = new Map<string, number>();
  for (const have of byDetector.values()) for (const f of have) if (wanted.has(f.name)) seen.set(f.name, f.windows.length);
  let n = 0;
  for (const v of seen.values()) n += v;
  return n;
}

/** Runs the benchmark: stream, write, read back, score with the NAB scorer. */
export function runNabBench(opts: NabBenchOptions): NabBenchResult {
  const params = opts.params ?? DEFAULT_NAB_PARAMS;
  const profiles = readProfiles(opts.nabDir);
  const labels = readLabels(opts.nabDir);
  const files = opts.files ? [...opts.files] : labelledFiles(opts.nabDir, labels, opts.log);
  if (files.length === 0) throw new NabDataError(`${join(opts.nabDir, 'data')}: no labelled data files`);
  const series = readAllSeries(opts.nabDir, files, labels);
  let firstSeconds = 0;
  let points = 0;
  let scoredPoints = 0;
  let fits = 0;
  const resultFiles: string[] = [];
  for (const s of series) {
    const run = runSeries(s, params);
    firstSeconds += run.seconds;
    points += s.values.length;
    scoredPoints += s.values.length - run.probation;
    fits += 1 + run.refits;
    resultFiles.push(writeResult(opts.outDir, DETECTOR_NAME, s, run.anomalyScores));
    opts.log?.(`${s.relPath}: ${s.values.length} rows, ${run.refits} refit(s), ${(run.seconds * 1000).toFixed(0)} ms`);
  }
  // The runs are deterministic, so further passes only measure speed (the first pass
  // also pays for compiling the code).
  const passes = opts.timingPasses ?? 3;
  const times: number[] = [];
  const cpuTimes: number[] = [];
  for (let k = 0; k < passes; k++) {
    const cpu0 = process.cpuUsage();
    times.push(series.reduce((sum, s) => sum + runSeries(s, params).seconds, 0));
    const cpu = process.cpuUsage(cpu0);
    cpuTimes.push((cpu.user + cpu.system) / 1e6);
  }
  times.sort((a, b) => a - b);
  cpuTimes.sort((a, b) => a - b);
  const seconds = passes > 0 ? times[(passes - 1) >> 1] : firstSeconds;
  const cpuSeconds = passes > 0 ? cpuTimes[(passes - 1) >> 1] : 0;
  // Score what was written, as the published detectors' files are scored.
  const ourFiles = series.map((s) => readResult(opts.outDir, DETECTOR_NAME, s, labels.get(s.relPath) ?? []));
  const byDetector = new Map<string, NabFile[]>([[DETECTOR_NAME, ourFiles]]);
  if (opts.published !== false)
    for (const [d, f] of loadPublished(opts.nabDir, files, labels)) if (d !== DETECTOR_NAME) byDetector.set(d, f);
  const { all, categories } = boards(byDetector, files, profiles);
  const ours = all.find((r) => r.detector === DETECTOR_NAME) as LeaderboardRow;
  const first = Object.keys(profiles)[0];
  const standard = ours.profiles.standard ?? ours.profiles[first];
  return {
    detector: DETECTOR_NAME,
    files,
    params,
    leaderboard: all,
    ours,
    categories,
    stats: operatorStats(ourFiles, standard.threshold, readLabelInstants(opts.nabDir)),
    throughput: {
      points,
      scoredPoints,
      seconds,
      pointsPerSecond: seconds > 0 ? points / seconds : 0,
      scoredPointsPerSecond: seconds > 0 ? scoredPoints / seconds : 0,
      firstPassPointsPerSecond: firstSeconds > 0 ? points / firstSeconds : 0,
      cpuSeconds,
      pointsPerCpuSecond: cpuSeconds > 0 ? points / cpuSeconds : 0,
      passes,
      fits,
    },
    resultFiles,
  };
}

const fmtScore = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(1));

/** The report printed by the command. */
export function formatNabBench(r: NabBenchResult): string {
  const profiles = Object.keys(r.ours.profiles);
  const width = Math.max(...r.leaderboard.map((row) => row.detector.length), 'detector'.length) + 4;
  const line = (row: LeaderboardRow): string =>
    `${(row.detector === r.detector ? `${row.detector} *` : row.detector).padEnd(width)}` +
    `${profiles.map((p) => fmtScore(row.profiles[p].normalised).padStart(20)).join('')}`;
  const complete = r.leaderboard.filter((row) => row.missing.length === 0);
  const partial = r.leaderboard.filter((row) => row.missing.length > 0);
  const lines = [
    `NAB leaderboard on ${r.files.length} file(s) (${describeFiles(r.files, r.files)}); normalised scores, thresholds optimised on these files`,
    `${'detector'.padEnd(width)}${profiles.map((p) => p.padStart(20)).join('')}`,
    ...complete.map(line),
  ];
  if (partial.length > 0) {
    lines.push(
      `Left out of the board above (no results for some files; each scored on its own files only, so not comparable: see the per-category boards):`,
    );
    for (const row of partial)
      lines.push(`${line(row)}   on ${row.files.length} of ${r.files.length}; no results for ${describeFiles(row.missing, r.files)}`);
  }
  lines.push('', `Per category (normalised ${profiles.join(' / ')}, thresholds optimised on the category):`);
  for (const b of r.categories) {
    if (b.windows === 0) {
      lines.push(
        `${b.category} (${b.files.length} file(s), no windows: standard score and false alarms at each detector's all-files threshold)`,
      );
      for (const row of b.rows)
        lines.push(
          `  ${(row.detector === r.detector ? `${row.detector} *` : row.detector).padEnd(width)}` +
            `${row.atAllFilesThreshold.score.toFixed(2).padStart(8)}  (${row.atAllFilesThreshold.falseAlarms} false alarm(s))`,
        );
      continue;
    }
    lines.push(`${b.category} (${b.files.length} file(s), ${b.windows} window(s))`);
    for (const row of b.rows) {
      const note = row.missing.length > 0 ? `   on ${row.files.length} of ${b.files.length} file(s)` : '';
      lines.push(
        `  ${(row.detector === r.detector ? `${row.detector} *` : row.detector).padEnd(width)}` +
          `${profiles.map((p) => fmtScore(row.profiles[p].normalised).padStart(8)).join('')}${note}`,
      );
    }
  }
  lines.push(
    '',
    `${r.detector} at the standard threshold (${r.stats.threshold.toFixed(4)}):`,
    `  windows detected      ${r.stats.windowsDetected} of ${r.stats.windows}`,
    `  false alarms          ${r.stats.falseAlarms} (${r.stats.falseAlarmsPerDay.toFixed(3)} per day)`,
    `  mean detection delay  ${relMinutes(r.stats.meanDelayMinutes, 'the labelled anomaly')} ` +
      `(${relMinutes(r.stats.meanDelayFromWindowStartMinutes, 'the window opens')})`,
    `streaming: ${r.throughput.points} points (${r.throughput.scoredPoints} scored, ${r.throughput.fits} ` +
      `model fits) in ${r.throughput.seconds.toFixed(3)} s = ${fmtRate(r.throughput.pointsPerSecond)} points/s ` +
      `(${fmtRate(r.throughput.scoredPointsPerSecond)} scored points/s; median of ${r.throughput.passes} pass(es), ` +
      `first pass ${fmtRate(r.throughput.firstPassPointsPerSecond)}); features, scoring, gate and fits, one ` +
      `thread${
        r.throughput.cpuSeconds > 0
          ? `; ${fmtRate(r.throughput.pointsPerCpuSecond)} points per CPU second (${r.throughput.cpuSeconds.toFixed(3)} s of CPU time)`
          : ''
      }`,
  );
  return `${lines.join('\n')}\n`;
}

function fmtRate(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}

/** "12 min after X" or "68 min before X" (n/a without detections). */
function relMinutes(m: number | null, what: string): string {
  if (m === null) return 'n/a';
  const r = Math.round(m);
  return r < 0 ? `${-r} min before ${what}` : `${r} min after ${what}`;
}
