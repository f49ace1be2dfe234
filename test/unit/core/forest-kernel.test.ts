import { flattenForest, scoreForestJs, setKernelMode, WasmForestKernel, type KernelMode } from '../../../src/core/forest-kernel';
import { IsolationForest, type ForestState } from '../../../src/core/isolation-forest';
import { averagePathLength } from '../../../src/core/path-length';
import { Rng } from '../../../src/core/random';

/**
 * Reference traversal straight from the serialised state, written independently of the
 * kernels: sums of leaf path values (depth + c(size)) in tree order, and contributions
 * credited split by split (c(parent) - 1 - c(child) to the split's feature).
 */
function reference(s: ForestState, x: Float64Array, n: number): { sums: Float64Array; contrib: Float64Array } {
  const d = s.nFeatures;
  const sums = new Float64Array(n);
  const contrib = new Float64Array(n * d);
  for (let p = 0; p < n; p++) {
    for (const root of s.roots) {
      let node = root;
      let depth = 0;
      while (s.feature[node] >= 0) {
        const f = s.feature[node];
        const child = x[p * d + f] <= s.threshold[node] || Number.isNaN(x[p * d + f]) ? s.left[node] : s.left[node] + 1;
        contrib[p * d + f] += averagePathLength(s.size[node]) - 1 - averagePathLength(s.size[child]);
        node = child;
        depth++;
      }
      sums[p] += depth + averagePathLength(s.size[node]);
    }
  }
  return { sums, contrib };
}

function normals(n: number, seed: number, scale = 1): Float64Array {
  const r = new Rng(seed);
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = r.normal() * scale;
  return x;
}

/** Query points: random, training rows, exact thresholds, signed zeros, NaN and infinities. */
function queries(s: ForestState, train: Float64Array, nTrain: number, m: number, seed: number): Float64Array {
  const d = s.nFeatures;
  const r = new Rng(seed);
  const q = normals(m * d, seed + 1, 2.5);
  const specials = [0, -0, NaN, Infinity, -Infinity, 1e300, -1e300, Number.MIN_VALUE];
  const internal = s.feature.map((f, i) => (f >= 0 ? i : -1)).filter((i) => i >= 0);
  for (let p = 0; p < m; p++) {
    const kind = p % 5;
    for (let f = 0; f < d; f++) {
      const k = p * d + f;
      if (kind === 1) q[k] = train[r.int(nTrain) * d + f];
      else if (kind === 2 && internal.length > 0) {
        // a threshold of this feature when we find one, to exercise ties (x == thr goes left)
        const node = internal[r.int(internal.length)];
        q[k] = s.feature[node] === f ? s.threshold[node] : train[r.int(nTrain) * d + f];
      } else if (kind === 3 && r.next() < 0.3) q[k] = specials[r.int(specials.length)];
    }
  }
  return q;
}

function run(
  forest: IsolationForest,
  mode: KernelMode,
  x: Float64Array,
  n: number,
): { scores: Float64Array; contrib: Float64Array; plain: Float64Array } {
  setKernelMode(mode);
  try {
    const d = forest.nFeatures;
    const scores = new Float64Array(n);
    const contrib = new Float64Array(n * d);
    forest.score(x, n, scores, contrib);
    const plain = new Float64Array(n);
    forest.score(x, n, plain);
    return { scores, contrib, plain };
  } finally {
    setKernelMode('auto');
  }
}

function expectBitIdentical(a: Float64Array, b: Float64Array): void {
  expect(a.length).toBe(b.length);
  const bytesA = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const bytesB = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (!bytesA.equals(bytesB)) {
    const i = a.findIndex((v, k) => !Object.is(v, b[k]));
    throw new Error(`differ at ${i}: ${a[i]} vs ${b[i]}`);
  }
}

/** Scores, contributions and score-only output of all kernels agree with each other and the reference. */
function checkForest(forest: IsolationForest, x: Float64Array, n: number, autoKind?: 'simd' | 'scalar' | 'js'): void {
  const s = forest.toState();
  const d = s.nFeatures;
  // Which kernels serve this forest (else all modes would run the JS one).
  const expected = autoKind ?? (d <= 8 ? 'simd' : 'scalar');
  expect(WasmForestKernel.create(flattenForest(s))?.kind ?? 'js').toBe(expected);
  expect(WasmForestKernel.create(flattenForest(s), false)?.kind ?? 'js').toBe(expected === 'js' ? 'js' : 'scalar');
  const ref = reference(s, x, n);
  const js = run(forest, 'js', x, n);
  const scalar = run(forest, 'scalar', x, n);
  const auto = run(forest, 'auto', x, n);
  for (const r of [scalar, auto]) {
    expectBitIdentical(r.scores, js.scores);
    expectBitIdentical(r.plain, js.plain);
    expectBitIdentical(r.contrib, js.contrib);
  }
  expectBitIdentical(js.plain, js.scores);
  // Fewer points than a kernel's lanes (8 SIMD, 6 scalar) walk several trees at once: the
  // same results, for every count below 8.
  for (const mode of ['scalar', 'auto'] as const)
    for (let few = 1; few <= Math.min(n, 7); few++) {
      const r = run(forest, mode, x, few);
      expectBitIdentical(r.scores, js.scores.subarray(0, few));
      expectBitIdentical(r.plain, js.plain.subarray(0, few));
      expectBitIdentical(r.contrib, js.contrib.subarray(0, few * d));
    }
  const T = s.roots.length;
  const c = averagePathLength(s.subsample);
  // Scores: the same sums in the same order, so exactly the reference.
  const want = ref.sums.map((sum) => Math.pow(2, -(sum * (1 / T)) * (1 / c)));
  expectBitIdentical(js.scores, want);
  // Contributions: the kernels sum each tree's path first, so equal to rounding.
  let worst = 0;
  for (let k = 0; k < n * d; k++) {
    const w = ref.contrib[k] * (1 / T);
    worst = Math.max(worst, Math.abs(js.contrib[k] - w) / Math.max(1, Math.abs(w)));
  }
  expect(worst).toBeLessThanOrEqual(1e-12);
}

describe('forest kernels (WebAssembly SIMD, WebAssembly scalar, JS)', () => {
  const cases = [
    { nTrain: 3000, d: 3, trees: 100, psi: 256, seed: 1 },
    { nTrain: 500, d: 1, trees: 7, psi: 64, seed: 2 },
    { nTrain: 300, d: 2, trees: 13, psi: 300, seed: 3 },
    { nTrain: 1000, d: 5, trees: 20, psi: 100, seed: 4 },
    { nTrain: 800, d: 8, trees: 9, psi: 512, seed: 5 },
    { nTrain: 600, d: 11, trees: 6, psi: 128, seed: 6 },
    { nTrain: 5, d: 3, trees: 4, psi: 256, seed: 7 },
    { nTrain: 2, d: 2, trees: 3, psi: 2, seed: 8 },
    { nTrain: 2000, d: 4, trees: 3, psi: 2048, seed: 9 },
  ];
  it.each(cases)('agree on random forests: $nTrain rows, $d features, $trees trees, psi $psi', ({ nTrain, d, trees, psi, seed }) => {
    const train = normals(nTrain * d, seed);
    const forest = IsolationForest.fit(train, nTrain, d, { nEstimators: trees, maxSamples: psi, seed });
    const m = 1037; // crosses the 512-point blocks and leaves a remainder for the lanes
    checkForest(forest, queries(forest.toState(), train, nTrain, m, seed * 7), m);
  });

  it('agree with duplicate rows and constant features', () => {
    const m = 700;
    const d = 4;
    const y = new Float64Array(m * d);
    for (let i = 0; i < m; i++) {
      y[i * d] = 1; // constant
      y[i * d + 1] = i % 2;
      y[i * d + 2] = Math.floor(i / 100);
      y[i * d + 3] = i < 350 ? 0.5 : -0.25 * (i % 3);
    }
    const forest = IsolationForest.fit(y, m, d, { nEstimators: 30, maxSamples: 64, seed: 2 });
    checkForest(forest, y, m);
    const c = run(forest, 'auto', y, m).contrib;
    for (let i = 0; i < m; i++) expect(Object.is(c[i * d], 0)).toBe(true);
    // All rows identical: every tree is a single leaf (depth 0).
    const same = new Float64Array(50 * d).fill(3);
    const stump = IsolationForest.fit(same, 50, d, { nEstimators: 5, maxSamples: 16, seed: 1 });
    checkForest(stump, y, m);
  });

  it('handle n = 0, 1 and odd sizes, and longer buffers than n', () => {
    const d = 3;
    const train = normals(2000 * d, 10);
    const forest = IsolationForest.fit(train, 2000, d, { nEstimators: 50, maxSamples: 256, seed: 10 });
    for (const n of [0, 1, 2, 3, 7, 8, 9, 511, 512, 513, 1025]) {
      const x = normals((n + 3) * d, 100 + n);
      checkForest(forest, x, n);
      // Nothing beyond n is written.
      const out = new Float64Array(n + 2).fill(-1);
      const contrib = new Float64Array((n + 2) * d).fill(-1);
      forest.score(x, n, out, contrib);
      expect(out[n]).toBe(-1);
      expect(contrib[n * d]).toBe(-1);
      let worst = 0;
      for (let p = 0; p < n; p++) {
        const e = forest.meanPathLength(x.subarray(p * d, p * d + d));
        worst = Math.max(worst, Math.abs(out[p] - Math.pow(2, -e / forest.expectedPathLength)));
      }
      expect(worst).toBeLessThan(1e-12);
    }
  });

  it('handle hand-made states: single-leaf trees, NaN and signed-zero thresholds, uneven depths', () => {
    const chain = (depth: number, size: number): TreeSpec =>
      depth === 0 ? { size } : { f: depth % 2, thr: depth * 0.25 - 1, size, l: chain(depth - 1, size - 1), r: { size: 1 } };
    const trees: TreeSpec[] = [
      { size: 10 },
      { f: 1, thr: -0, size: 10, l: { size: 4 }, r: { f: 0, thr: NaN, size: 6, l: { size: 3 }, r: { size: 3 } } },
      {
        f: 0,
        thr: 0,
        size: 10,
        l: chain(5, 6),
        r: { f: 1, thr: Infinity, size: 4, l: { size: 2 }, r: { f: 1, thr: -Infinity, size: 2, l: { size: 1 }, r: { size: 1 } } },
      },
      chain(7, 10),
    ];
    const forest = IsolationForest.fromState(buildState(2, 10, trees));
    const m = 301;
    const x = new Float64Array(m * 2);
    const r = new Rng(5);
    const specials = [0, -0, NaN, Infinity, -Infinity, -1, -0.75, -0.5, 0.25, 1];
    for (let i = 0; i < x.length; i++) x[i] = r.next() < 0.5 ? specials[r.int(specials.length)] : r.normal();
    checkForest(forest, x, m);
    expect(WasmForestKernel.create(flattenForest(forest.toState()))?.kind).toBe('simd');
    expect(WasmForestKernel.create(flattenForest(forest.toState()), false)?.kind).toBe('scalar');
  });

  it('fall back to JS for trees deeper than 14 levels, with the same results', () => {
    const chain = (depth: number, size: number): TreeSpec =>
      depth === 0 ? { size } : { f: depth % 3, thr: Math.sin(depth), size, l: chain(depth - 1, size - 1), r: { size: 1 } };
    const state = buildState(3, 40, [chain(16, 40), chain(3, 40)]);
    expect(WasmForestKernel.create(flattenForest(state))).toBeUndefined();
    const x = normals(99 * 3, 6);
    checkForest(IsolationForest.fromState(state), x, 99, 'js');
  });

  it('fall back to JS without WebAssembly, with the same results', () => {
    const train = normals(400 * 3, 21);
    const state = IsolationForest.fit(train, 400, 3, { nEstimators: 10, maxSamples: 64, seed: 21 }).toState();
    const x = normals(77 * 3, 22);
    const withWasm = run(IsolationForest.fromState(state), 'auto', x, 77);
    const g = globalThis as { WebAssembly?: unknown };
    const saved = g.WebAssembly;
    delete g.WebAssembly;
    try {
      expect(WasmForestKernel.create(flattenForest(state))).toBeUndefined();
      const without = run(IsolationForest.fromState(state), 'auto', x, 77);
      expectBitIdentical(without.scores, withWasm.scores);
      expectBitIdentical(without.contrib, withWasm.contrib);
    } finally {
      g.WebAssembly = saved;
    }
  });

  it('use the SIMD kernel for up to 8 features and the scalar one beyond, or with > 32766 thresholds on a feature', () => {
    const kindOf = (n: number, d: number, trees: number, psi: number): string | undefined => {
      const f = IsolationForest.fit(normals(n * d, d), n, d, { nEstimators: trees, maxSamples: psi, seed: 1 });
      return WasmForestKernel.create(flattenForest(f.toState()))?.kind;
    };
    expect(kindOf(500, 8, 5, 64)).toBe('simd');
    expect(kindOf(500, 9, 5, 64)).toBe('scalar');
    // One feature, 50 trees of 4096: about 34,000 distinct thresholds.
    const n = 20000;
    const train = normals(n, 11);
    const big = IsolationForest.fit(train, n, 1, { nEstimators: 50, maxSamples: 4096, seed: 3 });
    expect(WasmForestKernel.create(flattenForest(big.toState()))?.kind).toBe('scalar');
    checkForest(big, queries(big.toState(), train, n, 257, 12), 257, 'scalar');
  });

  it('sum JS kernel path values in tree order (scoreForestJs contract)', () => {
    const train = normals(300 * 2, 13);
    const f = IsolationForest.fit(train, 300, 2, { nEstimators: 5, maxSamples: 32, seed: 13 });
    const flat = flattenForest(f.toState());
    const x = normals(20 * 2, 14);
    const sums = new Float64Array(20);
    const contrib = new Float64Array(40);
    scoreForestJs(flat, x, 20, sums, contrib);
    const ref = reference(f.toState(), x, 20);
    expectBitIdentical(sums, ref.sums);
    for (let i = 0; i < 40; i++) expect(contrib[i]).toBeCloseTo(ref.contrib[i], 12);
    const kernel = WasmForestKernel.create(flat);
    expect(kernel).toBeDefined();
    const sums2 = new Float64Array(20);
    const contrib2 = new Float64Array(40);
    kernel?.score(x, 20, sums2, contrib2);
    expectBitIdentical(sums2, sums);
    expectBitIdentical(contrib2, contrib);
  });
});

type TreeSpec = { size: number } | { f: number; thr: number; size: number; l: TreeSpec; r: TreeSpec };

/** A ForestState from nested tree specs (children stored as adjacent pairs). */
function buildState(nFeatures: number, subsample: number, trees: TreeSpec[]): ForestState {
  const s: ForestState = {
    nFeatures,
    subsample,
    heightLimit: Math.ceil(Math.log2(subsample)),
    roots: [],
    feature: [],
    threshold: [],
    left: [],
    size: [],
  };
  const alloc = (): number => {
    s.feature.push(-1);
    s.threshold.push(0);
    s.left.push(-1);
    s.size.push(0);
    return s.feature.length - 1;
  };
  const place = (spec: TreeSpec, at: number): void => {
    s.size[at] = spec.size;
    if (!('f' in spec)) return;
    s.feature[at] = spec.f;
    s.threshold[at] = spec.thr;
    const l = alloc();
    alloc();
    s.left[at] = l;
    place(spec.l, l);
    place(spec.r, l + 1);
  };
  for (const t of trees) {
    const root = alloc();
    s.roots.push(root);
    place(t, root);
  }
  return s;
}
