/**
 * Numenta Anomaly Benchmark (NAB v1.1) scoring, as done by NAB's `nab/sweeper.py`.
 * Pure functions: no I/O (see `nab-data.ts` for reading a NAB directory).
 *
 * Rows are scored by index, not elapsed time. Rows in the probationary period are
 * ignored entirely: they are neither detections nor misses, and a window whose rows all
 * fall in probation contributes nothing to a file's score.
 */

/** One NAB profile's cost matrix (`config/profiles.json`, `CostMatrix`). */
export interface CostMatrix {
  tpWeight: number;
  fpWeight: number;
  fnWeight: number;
  /** Present in NAB's profiles but unused by its scoring; kept for completeness. */
  tnWeight: number;
}

/** An anomaly window as inclusive `[start, end]` timestamps (epoch milliseconds). */
export type NabWindow = readonly [number, number];

/** One data file with a detector's anomaly scores and the file's label windows. */
export interface NabFile {
  /** Relative path such as `realAWSCloudwatch/x.csv`; used in messages only. */
  name: string;
  /** Row timestamps (epoch ms), in file order (NAB scores rows in file order; they may repeat or step back). */
  timestamps: readonly number[];
  /** The detector's anomaly score for each row. */
  scores: readonly number[];
  windows: readonly NabWindow[];
}

/** A window located in a file's rows: inclusive row indices. */
export interface WindowSpan {
  start: number;
  end: number;
}

/** Score and row counts at one threshold (NAB's `ThresholdScore`). */
export interface ThresholdScore {
  threshold: number;
  score: number;
  tp: number;
  tn: number;
  fp: number;
  fn: number;
  /** Scored rows, `tp + tn + fp + fn` (probation excluded). */
  total: number;
}

/** NAB's default probationary fraction. */
export const PROBATION_PERCENT = 0.15;

/** Threshold that NAB uses for "no detection at all". */
export const NO_DETECTION_THRESHOLD = 1.1;

/** `2*sigmoid(-5y) - 1`, and -1 from `y >= 3` on (the sweeper's cut-off, not the old scorer's `> 3`). */
export function scaledSigmoid(y: number): number {
  if (y >= 3) return -1;
  return 2 / (1 + Math.exp(5 * y)) - 1;
}

/** Largest true-positive value, `scaledSigmoid(-1)`; NAB divides TP weights by it so the earliest detection is worth `tpWeight`. */
const MAX_TP = scaledSigmoid(-1);

/** Number of leading rows not scored: `min(floor(p*N), p*5000)`. */
export function probationLength(rows: number, probationPercent = PROBATION_PERCENT): number {
  return Math.min(Math.floor(probationPercent * rows), probationPercent * 5000);
}

/**
 * Locates windows in the rows, in file order as NAB's sweeper does: a window opens at the
 * first row (after the previous window closed) whose timestamp is its start and closes at
 * the first row from there whose timestamp is its end, so a repeated end timestamp closes
 * it at its first occurrence (NAB looks the end up from the file's first row, which
 * differs only if the end timestamp also occurs before the window opens; NAB's width is
 * then negative). Timestamps need not increase (a few NAB files repeat a
 * timestamp or step back in time). A bound that is not a row timestamp (not in NAB's
 * labels) snaps inward: the window opens at the first row, in file order, whose timestamp
 * lies in it and closes at the last row of that run of in-window timestamps (for
 * increasing timestamps: from the first row at or after the start to the last at or
 * before the end). Windows holding no row are dropped. Overlapping windows are an error,
 * as in NAB's labeller.
 */
export function windowSpans(timestamps: readonly number[], windows: readonly NabWindow[]): WindowSpan[] {
  const sorted = [...windows].sort((a, b) => a[0] - b[0]);
  const spans: WindowSpan[] = [];
  let prevEnd = -Infinity;
  let cursor = 0;
  const rows = timestamps.length;
  for (const [t1, t2] of sorted) {
    if (!(t1 <= t2)) throw new Error(`NAB window ends before it starts: [${t1}, ${t2}]`);
    if (t1 <= prevEnd) throw new Error(`NAB windows overlap at ${t1}`);
    prevEnd = t2;
    let start = -1;
    for (let i = cursor; i < rows; i++) {
      if (timestamps[i] === t1) {
        start = i;
        break;
      }
    }
    if (start < 0) {
      for (let i = cursor; i < rows; i++) {
        if (timestamps[i] >= t1 && timestamps[i] <= t2) {
          start = i;
          break;
        }
      }
    }
    if (start < 0) continue;
    let end = -1;
    for (let i = start; i < rows; i++) {
      if (timestamps[i] === t2) {
        end = i;
        break;
      }
    }
    if (end < 0) {
      end = start;
      while (end + 1 < rows && timestamps[end + 1] >= t1 && timestamps[end + 1] <= t2) end++;
    }
    spans.push({ start, end });
    cursor = end + 1;
  }
  return spans;
}

/** Per-row facts for one file that do not depend on the profile or the threshold. */
export interface SweepRows {
  rows: number;
  /** Rows `[0, probation)` are not scored. */
  probation: number;
  spans: WindowSpan[];
  /** Index into `spans` of the window holding each row, or -1. */
  windowOf: Int32Array;
  /** `scaledSigmoid` of each row's relative position (before the profile's weights). */
  unweighted: Float64Array;
}

/**
 * NAB's `calcSweepScore` without the weights. In a window of width W ending at row R,
 * row i sits at `-(R - i + 1)/W`; after a window, at `|R - i|/(W - 1)` from the most
 * recent window's end; before any window, at 3 (value -1). A one-row window makes the
 * rows after it divide by zero: NAB crashes there, this gives them -1.
 */
export function sweepRows(timestamps: readonly number[], windows: readonly NabWindow[], probationPercent = PROBATION_PERCENT): SweepRows {
  const rows = timestamps.length;
  const spans = windowSpans(timestamps, windows);
  const windowOf = new Int32Array(rows).fill(-1);
  const unweighted = new Float64Array(rows);
  let next = 0;
  let prevEnd = -1;
  let prevWidth = 0;
  for (let i = 0; i < rows; i++) {
    if (next < spans.length && spans[next].start <= i) {
      const span = spans[next];
      const width = span.end - span.start + 1;
      windowOf[i] = next;
      unweighted[i] = scaledSigmoid(-(span.end - i + 1) / width);
      if (i === span.end) {
        prevEnd = i;
        prevWidth = width;
        next++;
      }
    } else {
      unweighted[i] = scaledSigmoid(prevEnd < 0 ? 3 : Math.abs(prevEnd - i) / (prevWidth - 1));
    }
  }
  return { rows, probation: probationLength(rows, probationPercent), spans, windowOf, unweighted };
}

/** The profile's weight of a detection at row i: TP weights are scaled by `tpWeight / scaledSigmoid(-1)`, FP weights by `fpWeight`. */
export function rowWeight(sweep: SweepRows, i: number, cost: CostMatrix): number {
  return sweep.windowOf[i] >= 0 ? (sweep.unweighted[i] * cost.tpWeight) / MAX_TP : sweep.unweighted[i] * cost.fpWeight;
}

/** Every row's detection weight under a profile (NAB's per-row `S(t)` column). */
export function rowWeights(sweep: SweepRows, cost: CostMatrix): Float64Array {
  const out = new Float64Array(sweep.rows);
  for (let i = 0; i < sweep.rows; i++) out[i] = rowWeight(sweep, i, cost);
  return out;
}

/**
 * Scores one file at a threshold (a detection is a scored row with score >= threshold):
 * each window with a scored row adds its best detection's weight, or `-fnWeight` if it
 * has none; every detection outside windows adds its (negative) weight. Counts are rows.
 */
export function scoreFile(file: NabFile, threshold: number, cost: CostMatrix, probationPercent = PROBATION_PERCENT): ThresholdScore {
  if (file.scores.length !== file.timestamps.length) {
    throw new Error(`${file.name}: ${file.scores.length} anomaly scores for ${file.timestamps.length} rows`);
  }
  const sweep = sweepRows(file.timestamps, file.windows, probationPercent);
  const best = new Float64Array(sweep.spans.length).fill(NaN);
  const scored = new Uint8Array(sweep.spans.length);
  let fpScore = 0;
  let tp = 0;
  let tn = 0;
  let fp = 0;
  let fn = 0;
  for (let i = sweep.probation; i < sweep.rows; i++) {
    const w = sweep.windowOf[i];
    const detected = file.scores[i] >= threshold;
    if (w >= 0) {
      scored[w] = 1;
      if (detected) {
        tp++;
        const weight = rowWeight(sweep, i, cost);
        if (!(best[w] >= weight)) best[w] = weight;
      } else fn++;
    } else if (detected) {
      fp++;
      fpScore += rowWeight(sweep, i, cost);
    } else tn++;
  }
  let score = fpScore;
  for (let w = 0; w < best.length; w++) if (scored[w]) score += Number.isNaN(best[w]) ? -cost.fnWeight : best[w];
  return { threshold, score, tp, tn, fp, fn, total: tp + tn + fp + fn };
}

/** Scorable rows of several files, sorted once by anomaly score (descending) for threshold sweeps. */
export interface PreparedSweep {
  /** Anomaly score of each active point, descending; NaN scores are never detections and are left out. */
  scores: Float64Array;
  /** Corpus-wide window id of each point, or -1 outside windows. */
  window: Int32Array;
  unweighted: Float64Array;
  /** Windows with at least one scored row (they start at `-fnWeight`). */
  scoredWindows: Int32Array;
  /** Corpus-wide window count (windows without rows included). */
  windowIds: number;
  /** Windows in the files' labels: the count NAB normalises by. */
  labelledWindows: number;
  /** Scored rows inside / outside windows (every one a FN / TN with no detection). */
  inWindowRows: number;
  outsideRows: number;
}

/** Builds the sorted point list over files (NAB's optimiser pools all files' rows). */
export function prepareSweep(files: readonly NabFile[], probationPercent = PROBATION_PERCENT): PreparedSweep {
  const sweeps = files.map((file) => {
    if (file.scores.length !== file.timestamps.length) {
      throw new Error(`${file.name}: ${file.scores.length} anomaly scores for ${file.timestamps.length} rows`);
    }
    return sweepRows(file.timestamps, file.windows, probationPercent);
  });
  const capacity = sweeps.reduce((n, sw) => n + sw.rows - sw.probation, 0);
  const s = new Float64Array(capacity);
  const w = new Int32Array(capacity);
  const u = new Float64Array(capacity);
  const scoredWindows: number[] = [];
  let n = 0;
  let windowIds = 0;
  let labelledWindows = 0;
  let inWindowRows = 0;
  let outsideRows = 0;
  for (let k = 0; k < files.length; k++) {
    const fileScores = files[k].scores;
    const sweep = sweeps[k];
    const seen = new Uint8Array(sweep.spans.length);
    for (let i = sweep.probation; i < sweep.rows; i++) {
      const local = sweep.windowOf[i];
      if (local >= 0) {
        inWindowRows++;
        if (!seen[local]) scoredWindows.push(windowIds + local);
        seen[local] = 1;
      } else outsideRows++;
      if (Number.isNaN(fileScores[i])) continue;
      s[n] = fileScores[i];
      w[n] = local >= 0 ? windowIds + local : -1;
      u[n] = sweep.unweighted[i];
      n++;
    }
    windowIds += sweep.spans.length;
    labelledWindows += files[k].windows.length;
  }
  const order = descendingOrder(s.subarray(0, n));
  // Plain loops: TypedArray.from with a map function is far slower in V8.
  const scores = new Float64Array(n);
  const window = new Int32Array(n);
  const unweighted = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    scores[j] = s[order[j]];
    window[j] = w[order[j]];
    unweighted[j] = u[order[j]];
  }
  return {
    scores,
    window,
    unweighted,
    scoredWindows: Int32Array.from(scoredWindows),
    windowIds,
    labelledWindows,
    inWindowRows,
    outsideRows,
  };
}

/**
 * Indices that sort `values` descending: a native numeric sort of the distinct values, then
 * a counting sort by rank (a comparator sort is several times slower).
 */
function descendingOrder(values: Float64Array): Uint32Array {
  const sorted = Float64Array.from(values).sort().reverse();
  let distinct = 0;
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[distinct - 1]) sorted[distinct++] = sorted[i];
  const ranks = sorted.subarray(0, distinct);
  const rankOf = new Uint32Array(values.length);
  const starts = new Uint32Array(distinct + 1);
  for (let i = 0; i < values.length; i++) {
    let lo = 0;
    let hi = distinct - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ranks[mid] > values[i]) lo = mid + 1;
      else hi = mid;
    }
    rankOf[i] = lo;
    starts[lo + 1]++;
  }
  for (let r = 0; r < distinct; r++) starts[r + 1] += starts[r];
  const order = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) order[starts[rankOf[i]]++] = i;
  return order;
}

/**
 * Summed score at every candidate threshold, highest threshold first: "no detection"
 * (1.1, or Infinity if some score reaches 1.1), then each distinct anomaly score. One
 * pass over the sorted points, like NAB's `calcScoreByThreshold`.
 */
export function sweepThresholds(prep: PreparedSweep, cost: CostMatrix): ThresholdScore[] {
  const best = new Float64Array(prep.windowIds);
  for (const w of prep.scoredWindows) best[w] = -cost.fnWeight;
  let fpScore = 0;
  let tp = 0;
  let fp = 0;
  let fn = prep.inWindowRows;
  let tn = prep.outsideRows;
  const total = fn + tn;
  const score = (): number => {
    let s = fpScore;
    for (const w of prep.scoredWindows) s += best[w];
    return s;
  };
  const n = prep.scores.length;
  const none = n > 0 && prep.scores[0] >= NO_DETECTION_THRESHOLD ? Infinity : NO_DETECTION_THRESHOLD;
  const out: ThresholdScore[] = [{ threshold: none, score: score(), tp, tn, fp, fn, total }];
  for (let i = 0; i < n;) {
    const threshold = prep.scores[i];
    for (; i < n && prep.scores[i] === threshold; i++) {
      const w = prep.window[i];
      if (w >= 0) {
        tp++;
        fn--;
        const weight = (prep.unweighted[i] * cost.tpWeight) / MAX_TP;
        if (weight > best[w]) best[w] = weight;
      } else {
        fp++;
        tn--;
        fpScore += prep.unweighted[i] * cost.fpWeight;
      }
    }
    out.push({ threshold, score: score(), tp, tn, fp, fn, total });
  }
  return out;
}

/** The threshold with the highest summed score; ties go to the higher threshold, as NAB's stable sort does. */
export function optimiseThreshold(prep: PreparedSweep, cost: CostMatrix): ThresholdScore {
  let best: ThresholdScore | undefined;
  for (const row of sweepThresholds(prep, cost)) if (best === undefined || row.score > best.score) best = row;
  return best as ThresholdScore;
}

/** `100 * (S - S_null) / (S_perfect - S_null)` with `S_perfect = windows*tpWeight` and `S_null = -windows*fnWeight`. */
export function normaliseScore(score: number, windows: number, cost: CostMatrix): number {
  const perfect = windows * cost.tpWeight;
  const nul = -windows * cost.fnWeight;
  if (perfect === nul) throw new Error('cannot normalise a NAB score over files without windows');
  return (100 * (score - nul)) / (perfect - nul);
}
