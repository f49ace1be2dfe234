import { METRIC_NAMES } from '../core/metrics';
import { Rng } from '../core/random';
import { DataError } from '../data/csv';

/** `random`: a seeded shuffle; `time`: oldest rows train, newest rows test. */
export type SplitMode = 'random' | 'time';

export interface SplitFractions {
  train: number;
  val: number;
  test: number;
}

export const DEFAULT_FRACTIONS: SplitFractions = { train: 0.7, val: 0.15, test: 0.15 };

/** Row indices of each part. */
export interface Split {
  mode: SplitMode;
  seed: number;
  train: Int32Array;
  val: Int32Array;
  test: Int32Array;
  /**
   * Time split only: the last training timestamp and the first validation and test
   * timestamps (epoch ms), so a reader can check there is no overlap.
   */
  bounds: { train_end: number; val_start: number; val_end: number; test_start: number } | null;
  note: string;
}

/** Target sizes of the three parts: train and validation rounded, test the rest. */
export function partSizes(n: number, f: SplitFractions = DEFAULT_FRACTIONS): [number, number, number] {
  const sum = f.train + f.val + f.test;
  if (!(f.train > 0 && f.val > 0 && f.test > 0) || Math.abs(sum - 1) > 1e-9)
    throw new Error(`split fractions must be positive and sum to 1, got ${f.train}/${f.val}/${f.test}`);
  const nTrain = Math.round(n * f.train);
  const nVal = Math.round(n * f.val);
  return [nTrain, nVal, n - nTrain - nVal];
}

/**
 * Splits `n` rows into train, validation and test parts (70/15/15 by default).
 *
 * `random` shuffles with the seeded Rng (each part is returned in row order).
 * `time` orders rows by timestamp (ties by row order) and cuts only between distinct
 * timestamps, so every training row is strictly older than every validation row and
 * every validation row strictly older than every test row: rows that share a
 * timestamp (several hosts at one instant) never straddle a boundary.
 */
export function splitRows(
  n: number,
  opts: { mode: SplitMode; seed: number; timestamps?: ArrayLike<number>; fractions?: SplitFractions },
): Split {
  const [nTrain, nVal] = partSizes(n, opts.fractions);
  if (nTrain < 2 || nVal < 1 || n - nTrain - nVal < 1)
    throw new DataError(`${n} rows are too few to split into training, validation and test parts`);
  if (opts.mode === 'random') {
    const perm = Int32Array.from({ length: n }, (_, i) => i);
    const rng = new Rng(opts.seed);
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    return {
      mode: 'random',
      seed: opts.seed,
      train: perm.slice(0, nTrain).sort(),
      val: perm.slice(nTrain, nTrain + nVal).sort(),
      test: perm.slice(nTrain + nVal).sort(),
      bounds: null,
      note: `random split (seed ${opts.seed}): ${nTrain}/${nVal}/${n - nTrain - nVal} rows`,
    };
  }
  const ts = opts.timestamps;
  if (!ts || ts.length !== n) throw new Error('a time split needs one timestamp per row');
  for (let i = 0; i < n; i++)
    if (!Number.isFinite(ts[i])) throw new DataError(`--split time needs a readable timestamp on every row (row ${i + 1} has none)`);
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => ts[a] - ts[b] || a - b);
  // Move a cut forward past rows sharing the timestamp just before it.
  const cutAfterTies = (cut: number): number => {
    let c = cut;
    while (c < n && c > 0 && ts[order[c]] === ts[order[c - 1]]) c++;
    return c;
  };
  const c1 = cutAfterTies(nTrain);
  const c2 = cutAfterTies(Math.max(c1 + 1, c1 + nVal));
  if (c1 >= n || c2 >= n || c2 <= c1)
    throw new DataError('--split time: too few distinct timestamps to leave rows for validation and test');
  const train = order.slice(0, c1);
  const val = order.slice(c1, c2);
  const test = order.slice(c2);
  return {
    mode: 'time',
    seed: opts.seed,
    train,
    val,
    test,
    bounds: { train_end: ts[order[c1 - 1]], val_start: ts[order[c1]], val_end: ts[order[c2 - 1]], test_start: ts[order[c2]] },
    note:
      `time split: ${train.length}/${val.length}/${test.length} rows; training up ` +
      `to ${iso(ts[order[c1 - 1]])}, validation from ${iso(ts[order[c1]])}, test from ${iso(ts[order[c2]])}`,
  };
}

const iso = (t: number): string => (t > 1e11 ? new Date(t).toISOString() : `row ${t}`);

/** The rows `idx` of a row-major matrix with `width` columns. */
export function takeRows(x: Float64Array, width: number, idx: ArrayLike<number>): Float64Array {
  const out = new Float64Array(idx.length * width);
  for (let k = 0; k < idx.length; k++) out.set(x.subarray(idx[k] * width, idx[k] * width + width), k * width);
  return out;
}

/** The entries `idx` of an array. */
export function takeValues<T>(v: ArrayLike<T>, idx: ArrayLike<number>): T[] {
  return Array.from({ length: idx.length }, (_, k) => v[idx[k]]);
}

/** One part of a data set, row-aligned. */
export interface Part {
  n: number;
  /** The metric columns of `raw`, in order (absent: the basic three, METRIC_NAMES). */
  metrics?: readonly string[];
  /** n x metrics.length, row-major. */
  raw: Float64Array;
  labels: Uint8Array | null;
  timestamps: number[];
  hosts: string[];
}

/** Cuts one part out of a data set. */
export function takePart(
  ds: { metrics?: readonly string[]; raw: Float64Array; labels: Uint8Array | null; timestamps: number[]; hosts: string[] },
  idx: ArrayLike<number>,
): Part {
  const metrics = ds.metrics ?? METRIC_NAMES;
  return {
    n: idx.length,
    metrics,
    raw: takeRows(ds.raw, metrics.length, idx),
    labels: ds.labels ? Uint8Array.from(takeValues(ds.labels, idx)) : null,
    timestamps: takeValues(ds.timestamps, idx),
    hosts: takeValues(ds.hosts, idx),
  };
}
