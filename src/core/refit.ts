import { Detector, type DetectorOptions } from './detector';
import { fitOnFeatures } from './train';

/**
 * Periodic refit on recent normal points, as the prototype retrained every 5 minutes:
 * a sliding window of the most recent feature rows that raised no alert (all hosts
 * pooled; not only those under the threshold, since a refit's threshold is a quantile of
 * its own rows and would otherwise tighten at every refit), and a refit that trains a model of the same kind (features, trees,
 * subsample, contamination or explicit threshold, seed, out-of-range and novelty
 * weights) on it. The streaming detector of the NAB benchmark and the service's poller
 * both use this.
 */
export class RefitWindow {
  readonly width: number;
  readonly capacity: number;
  private readonly data: Float64Array;
  private head = 0;
  private filled = 0;

  constructor(width: number, capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 2) throw new RangeError(`the refit window needs at least 2 rows, got ${capacity}`);
    this.width = width;
    this.capacity = capacity;
    this.data = new Float64Array(width * capacity);
  }

  /** Rows held (at most `capacity`). */
  get size(): number {
    return this.filled;
  }

  /** Appends row `row` of a feature matrix (width columns), dropping the oldest when full. */
  remember(features: Float64Array, row: number): void {
    const w = this.width;
    this.data.set(features.subarray(row * w, row * w + w), this.head * w);
    this.head = (this.head + 1) % this.capacity;
    if (this.filled < this.capacity) this.filled++;
  }

  clear(): void {
    this.head = 0;
    this.filled = 0;
  }

  /** The rows held, oldest first (size x width). */
  rows(): Float64Array {
    const w = this.width;
    const out = new Float64Array(this.filled * w);
    const first = (this.head - this.filled + this.capacity) % this.capacity;
    for (let k = 0; k < this.filled; k++) {
      const r = (first + k) % this.capacity;
      out.set(this.data.subarray(r * w, r * w + w), k * w);
    }
    return out;
  }
}

/**
 * A model like `current`, trained on the window's rows. `createdAt` is recorded in the
 * artifact (and names its version with the content hash). `opts` are the new Detector's
 * (pass the state or inputs the caller's detectors use).
 */
export function refitDetector(
  current: Detector,
  window: RefitWindow,
  createdAt: string,
  opts: Omit<DetectorOptions, 'forest'> = {},
): Detector {
  if (window.width !== current.features.length)
    throw new RangeError(`refit window has ${window.width} columns, the model ${current.features.length} features`);
  if (window.size < 2) throw new RangeError('a refit needs at least 2 rows');
  const a = current.artifact;
  const p = a.training.params;
  const fit = fitOnFeatures(window.rows(), window.size, {
    nEstimators: Number(p.n_estimators),
    maxSamples: Number(p.max_samples),
    seed: a.training.seed,
    contamination: a.threshold.contamination ?? 0.01,
    threshold: a.threshold.method === 'explicit' ? a.threshold.value : undefined,
    features: [...a.features],
    // An artifact without `inputs` is one of the three host metrics, and so is its refit.
    inputs: a.inputs ? [...a.inputs] : undefined,
    outOfRangeWeight: a.scoring?.out_of_range_weight,
    outOfRangePool: a.scoring?.out_of_range_pool,
    outOfRangeMinSpan: a.scoring?.out_of_range_min_span,
    noveltyWeight: a.scoring?.novelty_weight,
    createdAt,
  });
  return new Detector(fit.artifact, { ...opts, forest: fit.forest });
}
