import {
  kernelModule,
  rankRowBytes,
  rowWidth,
  SIMD_BLOCK_BYTES,
  SIMD_LUT_BYTES,
  simdBlockLevels,
  simdExitTables,
  treeNodeBytes,
  wasmApi,
  type KernelShape,
  type WasmMemory,
} from './forest-kernel-wasm';
import { averagePathLength } from './path-length';

/**
 * Isolation Forest traversal kernels. All produce, per point, the sum over trees (in
 * tree order) of the leaf's path value depth + c(size), and optionally, per feature,
 * the sum over trees (in tree order) of that tree's path gain for the feature: the
 * gains c(parent) - 1 - c(child) of the splits on the feature along the point's path,
 * added root to leaf. They give bit-identical results:
 *
 * - `scoreForestJs`: plain traversal of the trees (the fallback);
 * - `WasmForestKernel`: a WebAssembly module generated at runtime (forest-kernel-wasm.ts,
 *   no toolchain). The trees are padded to complete binary trees of the forest's depth
 *   (missing levels become splits that always go left), thresholds become integer
 *   ranks among each feature's distinct thresholds (x > thr iff rank(x) > rank(thr),
 *   rank(x) = count of thresholds below x, found once per point by a branch-free
 *   search), and each leaf slot carries its value and, for contributions, a row of its
 *   path's per-feature gains. A point then takes a fixed, branch-free walk per tree,
 *   several points interleaved: with SIMD (up to 8 features) one step per 3 levels
 *   (7 comparisons in one i16x8 compare, exit by table lookup), else one step per level
 *   (adding contribution rows with f64x2 where the runtime has SIMD).
 */

/** The arrays scoring needs, derived once from a forest's state. */
export interface FlatForest {
  nFeatures: number;
  roots: Int32Array;
  /** Split feature, -1 at leaves. */
  feat: Int32Array;
  /** Left child (right is left + 1), -1 at leaves. */
  left: Int32Array;
  /** Split value at internal nodes; depth + c(size) at leaves. */
  value: Float64Array;
  /** c(parent size) - 1 - c(size): expected path length the parent's split saved. */
  gain: Float64Array;
}

/** The subset of ForestState the kernels are built from. */
export interface ForestArrays {
  nFeatures: number;
  roots: ArrayLike<number>;
  feature: ArrayLike<number>;
  threshold: ArrayLike<number>;
  left: ArrayLike<number>;
  size: ArrayLike<number>;
}

/** Walks each tree once from its root to derive leaf values and gains. */
export function flattenForest(state: ForestArrays): FlatForest {
  const feat = Int32Array.from(state.feature);
  const left = Int32Array.from(state.left);
  const n = feat.length;
  const value = new Float64Array(n);
  const gain = new Float64Array(n);
  const size = state.size;
  const stack: number[] = [];
  for (let t = 0; t < state.roots.length; t++) {
    stack.push(state.roots[t], 0);
    while (stack.length > 0) {
      const depth = stack.pop() as number;
      const node = stack.pop() as number;
      if (feat[node] < 0) {
        value[node] = depth + averagePathLength(size[node]);
        continue;
      }
      value[node] = state.threshold[node];
      const l = left[node];
      const cParent = averagePathLength(size[node]);
      gain[l] = cParent - 1 - averagePathLength(size[l]);
      gain[l + 1] = cParent - 1 - averagePathLength(size[l + 1]);
      stack.push(l, depth + 1, l + 1, depth + 1);
    }
  }
  return { nFeatures: state.nFeatures, roots: Int32Array.from(state.roots), feat, left, value, gain };
}

/**
 * Reference kernel: sets out[p] (p < n) to the sum of leaf values over trees and, with
 * `contrib`, contrib[p * d + f] to the sum over trees of the tree's path gain for f.
 */
export function scoreForestJs(forest: FlatForest, x: Float64Array, n: number, out: Float64Array, contrib?: Float64Array): void {
  const d = forest.nFeatures;
  const { roots, feat, left, value, gain } = forest;
  const nTrees = roots.length;
  out.fill(0, 0, n);
  if (contrib) contrib.fill(0, 0, n * d);
  const path = new Float64Array(d);
  // Trees outermost within a block of points: one tree's nodes stay in L1 cache.
  const BLOCK = 512;
  for (let b0 = 0; b0 < n; b0 += BLOCK) {
    const b1 = Math.min(n, b0 + BLOCK);
    for (let t = 0; t < nTrees; t++) {
      const root = roots[t];
      if (contrib) {
        for (let p = b0; p < b1; p++) {
          const base = p * d;
          let node = root;
          let f = feat[node];
          while (f >= 0) {
            node = left[node] + (x[base + f] > value[node] ? 1 : 0);
            path[f] += gain[node];
            f = feat[node];
          }
          out[p] += value[node];
          for (let k = 0; k < d; k++) {
            contrib[base + k] += path[k];
            path[k] = 0;
          }
        }
      } else {
        for (let p = b0; p < b1; p++) {
          const base = p * d;
          let node = root;
          let f = feat[node];
          while (f >= 0) {
            node = left[node] + (x[base + f] > value[node] ? 1 : 0);
            f = feat[node];
          }
          out[p] += value[node];
        }
      }
    }
  }
}

/**
 * Which kernel IsolationForest.score uses: 'auto' (the SIMD WebAssembly kernel when
 * the forest allows it, else the scalar one, else JS), 'scalar' (no SIMD) or 'js'.
 */
export type KernelMode = 'auto' | 'scalar' | 'js';
let kernelMode: KernelMode = 'auto';

/** Selects the kernel for forests scored from now on (for tests and benchmarks). */
export function setKernelMode(mode: KernelMode): void {
  kernelMode = mode;
}

export function getKernelMode(): KernelMode {
  return kernelMode;
}

/** Limits of the WebAssembly kernels; larger forests use the JS kernel. */
export const WASM_LIMITS = {
  /** Depth of the padded trees (2^depth leaf slots per tree). */
  maxDepth: 14,
  /** Features of the scalar kernel (the SIMD one takes up to 8). */
  maxFeatures: 64,
  /** Bytes of the padded node, leaf and per-leaf row tables and threshold search trees. */
  maxTableBytes: 64 * 1024 * 1024,
};

/** Points per call into the module (scratch is sized for this many), and with contributions. */
const BLOCK = 512;
const CONTRIB_BLOCK = 256;
/** Points traversed in lock step per tree by the scalar and SIMD kernels. */
const SCALAR_LANES = 6;
const SIMD_LANES = 8;
/** The SIMD kernel compares i16 ranks: at most this many distinct thresholds per feature. */
const SIMD_MAX_THRESHOLDS = 0x7ffe;
const SIMD_NEVER = 0x7fff;

const moduleCache = new Map<string, object | null>();

/** The compiled module for a shape (cached), or null when it does not compile. */
function compiled(shape: KernelShape): object | null {
  const api = wasmApi();
  if (!api) return null;
  const key = `${shape.kind}:${shape.d}:${shape.depth}:${shape.shift}:${shape.lanes}:${shape.vectorAdds === true}`;
  let mod = moduleCache.get(key);
  if (mod === undefined) {
    try {
      mod = new api.Module(kernelModule(shape));
    } catch {
      mod = null; // e.g. no SIMD support
    }
    moduleCache.set(key, mod);
  }
  return mod;
}

type RankFn = (n: number, xPtr: number, rankPtr: number, tablePtr: number, half: number) => void;
type ScoreFn = (n: number, rankPtr: number, accPtr: number, nTrees: number, nodesPtr: number, leavesPtr: number) => void;

/** Depth of the deepest leaf over all trees. */
function maxLeafDepth(forest: FlatForest): number {
  let max = 0;
  const stack: number[] = [];
  for (let t = 0; t < forest.roots.length; t++) {
    stack.push(forest.roots[t], 0);
    while (stack.length > 0) {
      const depth = stack.pop() as number;
      const node = stack.pop() as number;
      if (forest.feat[node] < 0) {
        if (depth > max) max = depth;
      } else stack.push(forest.left[node], depth + 1, forest.left[node] + 1, depth + 1);
    }
  }
  return max;
}

/** Distinct non-NaN thresholds of each feature, ascending (-0 and 0 are one). */
function distinctThresholds(forest: FlatForest): Float64Array[] {
  const { feat, value } = forest;
  const d = forest.nFeatures;
  const counts = new Int32Array(d);
  for (let i = 0; i < feat.length; i++) if (feat[i] >= 0 && !Number.isNaN(value[i])) counts[feat[i]]++;
  const perFeature = Array.from({ length: d }, (_, f) => new Float64Array(counts[f]));
  counts.fill(0);
  for (let i = 0; i < feat.length; i++) {
    const f = feat[i];
    if (f >= 0 && !Number.isNaN(value[i])) perFeature[f][counts[f]++] = value[i];
  }
  return perFeature.map((sorted) => {
    sorted.sort();
    // Keep the first of each run of equal values (-0 sorts before 0, and -0 === 0).
    let m = 0;
    for (let i = 0; i < sorted.length; i++) if (m === 0 || sorted[m - 1] !== sorted[i]) sorted[m++] = sorted[i];
    return sorted.subarray(0, m);
  });
}

/** Byte offsets of the kernel's memory regions. */
interface Layout {
  nodes: number;
  leaves: number;
  rows: number;
  tables: number;
  x: number;
  rank: number;
  acc: number;
  total: number;
}

/**
 * The WebAssembly kernel of one forest: its module instance and memory. The padded
 * trees, per-leaf values and gains, and per-feature sorted thresholds are built once;
 * each call copies blocks of points in, ranks them, traverses and copies results out.
 */
export class WasmForestKernel {
  /** 'simd' or 'scalar'. */
  readonly kind: 'simd' | 'scalar';
  /** Size of the kernel's WebAssembly memory (tables and scratch). */
  readonly memoryBytes: number;
  private readonly f64: Float64Array;
  private readonly rankFn: RankFn;
  private readonly scoreFn: ScoreFn;
  private readonly scoreRowsFn: ScoreFn;
  private readonly scoreAcrossFn: ScoreFn;
  private readonly scoreRowsAcrossFn: ScoreFn;

  private constructor(
    kind: 'simd' | 'scalar',
    private readonly d: number,
    private readonly nTrees: number,
    private readonly half: number,
    private readonly lanes: number,
    private readonly ptr: Layout,
    memory: WasmMemory,
    fns: Record<string, unknown>,
  ) {
    this.kind = kind;
    this.memoryBytes = memory.buffer.byteLength;
    this.f64 = new Float64Array(memory.buffer);
    this.rankFn = fns.rank as RankFn;
    this.scoreFn = fns.score as ScoreFn;
    this.scoreRowsFn = fns.scoreRows as ScoreFn;
    this.scoreAcrossFn = fns.scoreAcross as ScoreFn;
    this.scoreRowsAcrossFn = fns.scoreRowsAcross as ScoreFn;
  }

  /**
   * Builds the kernel, or returns undefined when WebAssembly or the limits do not
   * allow it. `allowSimd: false` forces the scalar kernel.
   */
  static create(forest: FlatForest, allowSimd = true): WasmForestKernel | undefined {
    const api = wasmApi();
    if (!api) return undefined;
    const d = forest.nFeatures;
    const nTrees = forest.roots.length;
    if (d < 1 || d > WASM_LIMITS.maxFeatures || nTrees < 1) return undefined;
    const depth = maxLeafDepth(forest);
    if (depth > WASM_LIMITS.maxDepth) return undefined;
    const width = 2 ** depth;
    const distinct = distinctThresholds(forest);
    let maxCount = 0;
    for (const u of distinct) maxCount = Math.max(maxCount, u.length);
    let half = 1;
    while (2 * half < maxCount + 1) half *= 2;

    const shift = d > 1 ? 32 - Math.clz32(4 * (d - 1)) : 0;
    let shape: KernelShape | undefined;
    let mod: object | null = null;
    if (allowSimd && d <= 8 && maxCount <= SIMD_MAX_THRESHOLDS) {
      shape = { kind: 'simd', d, depth, shift: 0, lanes: SIMD_LANES };
      mod = compiled(shape);
    }
    if (!mod) {
      if (maxCount >= 2 ** (32 - shift) - 1) return undefined;
      // With SIMD allowed, the scalar kernel adds contribution rows with f64x2 (same sums);
      // without SIMD support that module does not compile and the plain one is used.
      for (const vectorAdds of allowSimd ? [true, false] : [false]) {
        shape = { kind: 'scalar', d, depth, shift, lanes: SCALAR_LANES, vectorAdds };
        mod = compiled(shape);
        if (mod) break;
      }
    }
    if (!mod || !shape) return undefined;
    const simd = shape.kind === 'simd';
    const W = rowWidth(d);
    const nodeBytes = treeNodeBytes(shape);
    if (nTrees * (nodeBytes + width * 8 * (1 + W)) + d * 2 * half * 8 > WASM_LIMITS.maxTableBytes) return undefined;

    const align = (v: number): number => Math.ceil(v / 64) * 64;
    const ptr: Layout = { nodes: SIMD_LUT_BYTES, leaves: 0, rows: 0, tables: 0, x: 0, rank: 0, acc: 0, total: 0 };
    ptr.leaves = align(ptr.nodes + nTrees * nodeBytes);
    ptr.rows = align(ptr.leaves + nTrees * width * 8);
    ptr.tables = align(ptr.rows + nTrees * width * W * 8);
    ptr.x = align(ptr.tables + d * 2 * half * 8);
    ptr.rank = align(ptr.x + BLOCK * d * 8);
    ptr.acc = align(ptr.rank + BLOCK * rankRowBytes(shape));
    ptr.total = align(ptr.acc + BLOCK * W * 8);

    let memory: WasmMemory;
    let fns: Record<string, unknown>;
    try {
      memory = new api.Memory({ initial: Math.ceil(ptr.total / 65536) });
      fns = new api.Instance(mod, { env: { mem: memory } }).exports;
    } catch {
      return undefined;
    }

    const buf = memory.buffer;
    const f64 = new Float64Array(buf);
    // Each feature's thresholds as a complete search tree in Eytzinger order (see rankFunc):
    // heap entry i (1 <= i < 2 half) at level L holds the k-th smallest, k its in-order
    // position (2 (i - 2^L) + 1) 2^(levels - 1 - L) - 1; entries past the end are +Infinity.
    const topLevel = 31 - Math.clz32(half); // half = 2^topLevel: the leaves' level
    for (let f = 0; f < d; f++) {
      const tab = ptr.tables / 8 + f * 2 * half;
      const sorted = distinct[f];
      for (let i = 1; i < 2 * half; i++) {
        const level = 31 - Math.clz32(i);
        const k = ((2 * (i - (1 << level)) + 1) << (topLevel - level)) - 1;
        f64[tab + i] = k < sorted.length ? sorted[k] : Infinity;
      }
    }
    /** Index of v (present, not NaN) in feature f's distinct thresholds. */
    const rankOf = (f: number, v: number): number => {
      const u = distinct[f];
      let lo = 0;
      let hi = u.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (u[mid] < v) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };

    // Node setters: heap index j (root 1) at the given level of tree t.
    let setNode: (t: number, j: number, level: number, f: number, rank: number) => void;
    if (simd) {
      new Uint8Array(buf, 0, SIMD_LUT_BYTES).set(simdExitTables());
      const blocksPerTree = nodeBytes / SIMD_BLOCK_BYTES;
      const levels = simdBlockLevels(depth);
      const thr = new Int16Array(buf, ptr.nodes, (nTrees * nodeBytes) / 2);
      const idx = new Uint8Array(buf, ptr.nodes, nTrees * nodeBytes);
      // Unused lanes and padding nodes never go right; their swizzle picks feature 0.
      for (let b = 0; b < nTrees * blocksPerTree; b++) {
        thr.fill(SIMD_NEVER, b * 16, b * 16 + 8);
        for (let q = 0; q < 8; q++) {
          idx[b * 32 + 16 + 2 * q] = 0;
          idx[b * 32 + 17 + 2 * q] = 1;
        }
      }
      const firstBlock: number[] = [];
      for (let lv = 0, blocks = 0; lv < levels.length; lv++) {
        firstBlock.push(blocks);
        blocks += 8 ** lv;
      }
      setNode = (t, j, level, f, rank) => {
        const lv = Math.floor(level / 3);
        const r = level - 3 * lv; // level within the block
        const blockRoot = j >> r;
        const lane = (1 << r) - 1 + (j & ((1 << r) - 1));
        const block = t * blocksPerTree + firstBlock[lv] + blockRoot - 8 ** lv;
        thr[block * 16 + lane] = rank < 0 ? SIMD_NEVER : rank;
        idx[block * 32 + 16 + 2 * lane] = 2 * f;
        idx[block * 32 + 17 + 2 * lane] = 2 * f + 1;
      };
    } else {
      const never = (0xffffffff & ~((1 << shift) - 1)) >>> 0; // above any point's rank
      const nodes = new Uint32Array(buf, ptr.nodes, nTrees * width);
      nodes.fill(never);
      setNode = (t, j, _level, f, rank) => {
        nodes[t * width + j] = rank < 0 ? never : ((rank << shift) | (4 * f)) >>> 0;
      };
    }

    const leafBase = ptr.leaves / 8;
    const rowBase = ptr.rows / 8;
    const { feat, left, value, gain } = forest;
    // Depth-first walk of each tree. pathGain holds, per level, the per-feature path gains
    // of the node visited at that level, accumulated root to leaf as scoreForestJs does: a
    // node's row is its parent's row plus its own gain on the parent's split feature. The
    // parent's row stays intact while its left subtree is walked (that writes deeper levels).
    const pathGain = new Float64Array((depth + 1) * d);
    const stack = new Int32Array(4 * (depth + 2)); // (node, heap index j, level, parent's feature)
    for (let t = 0; t < nTrees; t++) {
      let sp = 0;
      stack[sp++] = forest.roots[t];
      stack[sp++] = 1;
      stack[sp++] = 0;
      stack[sp++] = -1;
      while (sp > 0) {
        const parentFeature = stack[--sp];
        const level = stack[--sp];
        const j = stack[--sp];
        const node = stack[--sp];
        const path = level * d;
        if (parentFeature < 0) pathGain.fill(0, 0, d);
        else {
          for (let k = 0; k < d; k++) pathGain[path + k] = pathGain[path - d + k];
          pathGain[path + parentFeature] += gain[node];
        }
        const f = feat[node];
        const v = value[node];
        if (f < 0) {
          const slot = t * width + (j << (depth - level)) - width; // all-left descent to the bottom
          f64[leafBase + slot] = v;
          const row = rowBase + slot * W;
          f64[row] = v;
          for (let k = 0; k < d; k++) f64[row + 1 + k] = pathGain[path + k];
          continue;
        }
        setNode(t, j, level, f, Number.isNaN(v) ? -1 : rankOf(f, v));
        const l = left[node];
        // Right child below the left one on the stack: the left subtree is walked first.
        stack[sp++] = l + 1;
        stack[sp++] = 2 * j + 1;
        stack[sp++] = level + 1;
        stack[sp++] = f;
        stack[sp++] = l;
        stack[sp++] = 2 * j;
        stack[sp++] = level + 1;
        stack[sp++] = f;
      }
    }
    return new WasmForestKernel(shape.kind, d, nTrees, half, shape.lanes, ptr, memory, fns);
  }

  /** Same contract as scoreForestJs. */
  score(x: Float64Array, n: number, out: Float64Array, contrib?: Float64Array): void {
    const { d, f64, ptr } = this;
    const W = rowWidth(d);
    const xOff = ptr.x / 8;
    const accOff = ptr.acc / 8;
    // With contributions, smaller blocks keep a tree's rows and the points' rows in L1.
    const block = contrib ? CONTRIB_BLOCK : BLOCK;
    for (let b0 = 0; b0 < n; b0 += block) {
      const m = Math.min(block, n - b0);
      f64.set(x.subarray(b0 * d, (b0 + m) * d), xOff);
      this.rankFn(m, ptr.x, ptr.rank, ptr.tables, this.half);
      // Fewer points than lanes would leave the lanes over points empty: each point walks
      // `lanes` trees at once instead (the same sums, in tree order). One point, 200 trees
      // of 256, with contributions: 2.6-2.9 us hot and 11-13 us with the caches evicted,
      // against 4.1-4.6 and 22-29 us tree after tree (docs/benchmarks.md).
      const across = m < this.lanes;
      if (contrib) {
        f64.fill(0, accOff, accOff + m * W);
        (across ? this.scoreRowsAcrossFn : this.scoreRowsFn)(m, ptr.rank, ptr.acc, this.nTrees, ptr.nodes, ptr.rows);
        for (let p = 0; p < m; p++) {
          const r = accOff + p * W;
          out[b0 + p] = f64[r];
          const c = (b0 + p) * d;
          for (let k = 0; k < d; k++) contrib[c + k] = f64[r + 1 + k];
        }
      } else {
        f64.fill(0, accOff, accOff + m);
        (across ? this.scoreAcrossFn : this.scoreFn)(m, ptr.rank, ptr.acc, this.nTrees, ptr.nodes, ptr.leaves);
        out.set(f64.subarray(accOff, accOff + m), b0);
      }
    }
  }
}
