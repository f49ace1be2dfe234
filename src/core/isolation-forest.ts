import { flattenForest, getKernelMode, scoreForestJs, WasmForestKernel, type FlatForest, type KernelMode } from './forest-kernel';
import { averagePathLength } from './path-length';
import { Rng } from './random';

/** Training parameters of an Isolation Forest. */
export interface ForestParams {
  /** Number of trees (scikit-learn's n_estimators). */
  nEstimators: number;
  /** Subsample size per tree (psi, scikit-learn's max_samples); capped at the row count. */
  maxSamples: number;
  /** Seed of the PRNG: the same data and seed give the same forest, bit for bit. */
  seed: number;
}

export const DEFAULT_FOREST_PARAMS: ForestParams = { nEstimators: 100, maxSamples: 256, seed: 42 };

/**
 * The serialisable state of a forest. All trees share flat arrays; node `i` is a leaf
 * when `feature[i] === -1`, otherwise its children are `left[i]` and `left[i] + 1`
 * and a point goes left when `x[feature[i]] <= threshold[i]`. `size[i]` is the number
 * of training samples that reached the node.
 */
export interface ForestState {
  nFeatures: number;
  subsample: number;
  heightLimit: number;
  roots: number[];
  feature: number[];
  threshold: number[];
  left: number[];
  size: number[];
}

/**
 * Isolation Forest after Liu, Ting and Zhou (2008): each tree isolates a random
 * subsample of psi points with random axis-aligned splits up to height ceil(log2 psi);
 * a point's anomaly score is s(x) = 2^(-E[h(x)] / c(psi)).
 *
 * The nodes live in typed arrays. At load, each leaf's thresholds slot is replaced by
 * its path value (depth + c(size)) and each node gets the path length its parent's
 * split saved, so scoring and contributions need one pass. Scoring runs in a
 * WebAssembly kernel built for the forest on first use (see forest-kernel.ts); a plain
 * JS traversal gives bit-identical results where WebAssembly is unavailable or the
 * forest is too large for it.
 */
export class IsolationForest {
  readonly nFeatures: number;
  readonly subsample: number;
  readonly heightLimit: number;
  readonly nTrees: number;
  private readonly state: ForestState;
  private readonly flat: FlatForest;
  private readonly cPsi: number;
  /** The WebAssembly kernel, built on first use (null when unavailable) for kernelMode. */
  private kernel: WasmForestKernel | null = null;
  private kernelMode: KernelMode | undefined;

  private constructor(state: ForestState) {
    this.state = state;
    this.nFeatures = state.nFeatures;
    this.subsample = state.subsample;
    this.heightLimit = state.heightLimit;
    this.nTrees = state.roots.length;
    this.flat = flattenForest(state);
    this.cPsi = averagePathLength(state.subsample);
  }

  /** Rebuilds a forest from its serialised state (checked by the artifact loader). */
  static fromState(state: ForestState): IsolationForest {
    return new IsolationForest(state);
  }

  /** The serialisable state. */
  toState(): ForestState {
    return this.state;
  }

  /** c(psi): the normalising average path length. */
  get expectedPathLength(): number {
    return this.cPsi;
  }

  /**
   * Grows a forest on `n` rows of `d` features stored row-major in `x`.
   */
  static fit(x: Float64Array, n: number, d: number, params: ForestParams = DEFAULT_FOREST_PARAMS): IsolationForest {
    if (n < 2) throw new Error(`an Isolation Forest needs at least 2 rows, got ${n}`);
    if (x.length !== n * d) throw new Error(`data has ${x.length} values, expected ${n} x ${d}`);
    if (!Number.isInteger(params.nEstimators) || params.nEstimators < 1) throw new Error('nEstimators must be a positive integer');
    if (!Number.isInteger(params.maxSamples) || params.maxSamples < 2) throw new Error('maxSamples must be an integer >= 2');
    const psi = Math.min(params.maxSamples, n);
    const heightLimit = Math.ceil(Math.log2(psi));
    const rng = new Rng(params.seed);
    const maxNodes = 2 * psi - 1;
    const feature: number[] = [];
    const threshold: number[] = [];
    const left: number[] = [];
    const size: number[] = [];
    const roots: number[] = [];
    const perm = new Int32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    // The tree's samples as offsets of their rows in x, in the order the splits partition.
    const idx = new Int32Array(psi);
    const tFeat = new Int32Array(maxNodes);
    const tThr = new Float64Array(maxNodes);
    const tLeft = new Int32Array(maxNodes);
    const tSize = new Int32Array(maxNodes);
    // Features that vary (have two distinct non-NaN values) among a node's samples, in
    // increasing order: the split candidates, nVary[depth] of them at vary[depth * d].
    // A feature constant at a node is constant at its descendants, so a node only checks
    // its parent's list. Depth-first order keeps the parent's level intact for both children.
    const vary = new Int32Array((heightLimit + 1) * d);
    const nVary = new Int32Array(heightLimit + 1);
    const stack = new Int32Array(4 * (heightLimit + 2));

    for (let t = 0; t < params.nEstimators; t++) {
      // Subsample without replacement: partial Fisher-Yates over the running permutation.
      for (let i = 0; i < psi; i++) {
        const j = i + rng.int(n - i);
        const row = perm[j];
        perm[j] = perm[i];
        perm[i] = row;
        idx[i] = row * d;
      }
      let used = 1;
      // Explicit stack of (node, start, end, depth); children are visited left first.
      let sp = 0;
      stack[sp++] = 0;
      stack[sp++] = 0;
      stack[sp++] = psi;
      stack[sp++] = 0;
      while (sp > 0) {
        const depth = stack[--sp];
        const end = stack[--sp];
        const start = stack[--sp];
        const node = stack[--sp];
        const count = end - start;
        tSize[node] = count;
        tFeat[node] = -1;
        tThr[node] = 0;
        tLeft[node] = -1;
        if (depth >= heightLimit || count <= 1) continue;
        // Candidates: the features of the parent's list (all at the root) that vary here.
        const parentList = depth === 0 ? -1 : (depth - 1) * d;
        const parentCount = depth === 0 ? d : nVary[depth - 1];
        const list = depth * d;
        let nc = 0;
        for (let c = 0; c < parentCount; c++) {
          const f = parentList < 0 ? c : vary[parentList + c];
          let first = NaN;
          for (let i = start; i < end; i++) {
            const v = x[idx[i] + f];
            if (first !== first)
              first = v; // the first non-NaN value (NaN until one is seen)
            else if (v < first || v > first) {
              vary[list + nc++] = f;
              break;
            }
          }
        }
        nVary[depth] = nc;
        if (nc === 0) continue; // all samples identical: cannot be split further
        const f = vary[list + rng.int(nc)];
        // Range of the chosen feature over the node's samples (NaN ignored).
        let lo = Infinity;
        let hi = -Infinity;
        for (let i = start; i < end; i++) {
          const v = x[idx[i] + f];
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        let thr = lo + rng.next() * (hi - lo);
        if (!(thr < hi)) thr = lo;
        // Partition idx[start, end) so that x <= thr comes first.
        let i = start;
        let j = end - 1;
        while (i <= j) {
          if (x[idx[i] + f] <= thr) i++;
          else {
            const tmp = idx[i];
            idx[i] = idx[j];
            idx[j] = tmp;
            j--;
          }
        }
        const l = used;
        used += 2;
        tFeat[node] = f;
        tThr[node] = thr;
        tLeft[node] = l;
        stack[sp++] = l + 1;
        stack[sp++] = i;
        stack[sp++] = end;
        stack[sp++] = depth + 1;
        stack[sp++] = l;
        stack[sp++] = start;
        stack[sp++] = i;
        stack[sp++] = depth + 1;
      }
      const offset = feature.length;
      roots.push(offset);
      for (let k = 0; k < used; k++) {
        feature.push(tFeat[k]);
        threshold.push(tFeat[k] < 0 ? 0 : tThr[k]);
        left.push(tFeat[k] < 0 ? -1 : tLeft[k] + offset);
        size.push(tSize[k]);
      }
    }
    return new IsolationForest({ nFeatures: d, subsample: psi, heightLimit, roots, feature, threshold, left, size });
  }

  /**
   * Scores `n` rows of `x` (row-major, nFeatures wide) into `out` (length n).
   * With `contrib` (length n * nFeatures), also writes each point's per-feature
   * contributions: the expected path length each feature's splits saved, averaged over
   * trees. They sum to c(psi) - E[h(x)]; positive values push towards anomalous.
   */
  score(x: Float64Array, n: number, out: Float64Array, contrib?: Float64Array): void {
    const d = this.nFeatures;
    if (x.length < n * d) throw new Error(`expected ${n * d} values, got ${x.length}`);
    if (out.length < n) throw new Error('output buffer too small');
    if (contrib && contrib.length < n * d) throw new Error('contribution buffer too small');
    const nTrees = this.nTrees;
    const mode = getKernelMode();
    if (mode === 'js') {
      scoreForestJs(this.flat, x, n, out, contrib);
    } else {
      if (this.kernelMode !== mode) {
        this.kernel = WasmForestKernel.create(this.flat, mode === 'auto') ?? null;
        this.kernelMode = mode;
      }
      if (this.kernel) this.kernel.score(x, n, out, contrib);
      else scoreForestJs(this.flat, x, n, out, contrib);
    }
    const invT = 1 / nTrees;
    const invC = 1 / this.cPsi;
    for (let p = 0; p < n; p++) {
      const meanPath = out[p] * invT;
      out[p] = Math.pow(2, -meanPath * invC);
    }
    if (contrib) for (let k = 0; k < n * d; k++) contrib[k] *= invT;
  }

  /** Mean path length E[h(x)] of one point (for tests and explanations). */
  meanPathLength(point: ArrayLike<number>): number {
    const { roots, feat, left, value } = this.flat;
    let sum = 0;
    for (let t = 0; t < roots.length; t++) {
      let node = roots[t];
      while (feat[node] >= 0) node = left[node] + (point[feat[node]] > value[node] ? 1 : 0);
      sum += value[node];
    }
    return sum / roots.length;
  }
}
