/**
 * Population stability index of recent values against the training distribution,
 * binned by the training deciles stored in the artifact. PSI < 0.1: stable; 0.1-0.25:
 * moderate shift; > 0.25: the model sees data unlike its training data.
 */
export function psi(deciles: readonly number[], values: ArrayLike<number>, count = values.length): number {
  const bins = deciles.length - 1;
  if (count === 0 || bins < 1) return 0;
  const inner = deciles.slice(1, -1);
  const actual = new Float64Array(bins);
  for (let i = 0; i < count; i++) actual[binOf(inner, values[i])]++;
  // Deciles of a feature with repeated values collapse; weigh each bin by its share.
  const expected = expectedShares(deciles);
  const eps = 1e-4;
  let sum = 0;
  for (let b = 0; b < bins; b++) {
    const a = Math.max(actual[b] / count, eps);
    const e = Math.max(expected[b], eps);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/** Index of the bin (0..inner.length) that holds v: the number of inner edges below v. */
function binOf(inner: readonly number[], v: number): number {
  let lo = 0;
  let hi = inner.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (inner[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Training share of each bin. Each decile interval holds 1/bins of the training data;
 * where deciles repeat (a feature with many equal values) the interval's values all
 * equal the edge and land where binOf puts that value, so collapsed bins merge.
 */
function expectedShares(deciles: readonly number[]): Float64Array {
  const bins = deciles.length - 1;
  const inner = deciles.slice(1, -1);
  const shares = new Float64Array(bins);
  for (let k = 0; k < bins; k++) shares[binOf(inner, deciles[k] + (deciles[k + 1] - deciles[k]) / 2)] += 1 / bins;
  return shares;
}

/** A fixed-size ring of recent rows of one or more features. */
export class RecentWindow {
  private readonly data: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(
    readonly width: number,
    readonly capacity: number,
  ) {
    this.data = new Float64Array(width * capacity);
  }

  /** Appends one row (`width` values starting at `offset` of `src`). */
  push(src: ArrayLike<number>, offset = 0): void {
    const base = this.next * this.width;
    for (let f = 0; f < this.width; f++) this.data[base + f] = src[offset + f];
    this.next = (this.next + 1) % this.capacity;
    if (this.filled < this.capacity) this.filled++;
  }

  get size(): number {
    return this.filled;
  }

  /** The values of column `f` currently held. */
  column(f: number): Float64Array {
    const out = new Float64Array(this.filled);
    for (let i = 0; i < this.filled; i++) out[i] = this.data[i * this.width + f];
    return out;
  }
}
