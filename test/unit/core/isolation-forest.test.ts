import { averagePathLength } from '../../../src/core/path-length';
import { IsolationForest } from '../../../src/core/isolation-forest';
import { Rng } from '../../../src/core/random';
import { gaussian } from '../../helpers/fixtures';

describe('averagePathLength c(n)', () => {
  it('matches the paper and scikit-learn at small n', () => {
    expect(averagePathLength(0)).toBe(0);
    expect(averagePathLength(1)).toBe(0);
    expect(averagePathLength(2)).toBe(1);
    // 2 H(255) - 2 * 255 / 256, with H(i) ~ ln(i) + Euler's constant
    expect(averagePathLength(256)).toBeCloseTo(2 * (Math.log(255) + 0.5772156649015329) - (2 * 255) / 256, 12);
  });
  it('is increasing', () => {
    for (let n = 2; n < 2000; n++) expect(averagePathLength(n + 1)).toBeGreaterThan(averagePathLength(n));
  });
});

describe('IsolationForest', () => {
  const n = 2000;
  const d = 3;
  const x = gaussian(n, d, 1);

  it('is deterministic for the same data and seed, and differs for another seed', () => {
    const a = JSON.stringify(IsolationForest.fit(x, n, d, { nEstimators: 20, maxSamples: 64, seed: 5 }).toState());
    const b = JSON.stringify(IsolationForest.fit(x, n, d, { nEstimators: 20, maxSamples: 64, seed: 5 }).toState());
    const c = JSON.stringify(IsolationForest.fit(x, n, d, { nEstimators: 20, maxSamples: 64, seed: 6 }).toState());
    expect(a).toBe(b);
    expect(a).not.toBe(c);
  });

  it('uses subsample min(maxSamples, n) and height limit ceil(log2 psi)', () => {
    const f = IsolationForest.fit(x, n, d, { nEstimators: 10, maxSamples: 256, seed: 1 });
    expect(f.subsample).toBe(256);
    expect(f.heightLimit).toBe(8);
    const small = IsolationForest.fit(x.subarray(0, 100 * d), 100, d, { nEstimators: 10, maxSamples: 256, seed: 1 });
    expect(small.subsample).toBe(100);
    expect(small.heightLimit).toBe(7);
    // Every tree's root holds exactly the subsample.
    const s = f.toState();
    for (const r of s.roots) expect(s.size[r]).toBe(256);
  });

  it('scores in (0, 1] as 2^(-E[h]/c(psi)), outliers above inliers', () => {
    const f = IsolationForest.fit(x, n, d, { nEstimators: 100, maxSamples: 256, seed: 3 });
    const pts = Float64Array.from([0, 0, 0, 6, 0, 0, 0, -7, 0, 5, 5, 5]);
    const out = new Float64Array(4);
    f.score(pts, 4, out);
    for (let i = 0; i < 4; i++) {
      expect(out[i]).toBeGreaterThan(0);
      expect(out[i]).toBeLessThanOrEqual(1);
      const e = f.meanPathLength(pts.subarray(i * d, i * d + d));
      expect(out[i]).toBeCloseTo(Math.pow(2, -e / averagePathLength(256)), 12);
    }
    expect(out[1]).toBeGreaterThan(out[0] + 0.1);
    expect(out[2]).toBeGreaterThan(out[0] + 0.1);
    expect(out[3]).toBeGreaterThan(out[1]);
  });

  it('gives a higher score to a point with a shorter mean path (monotone)', () => {
    const f = IsolationForest.fit(x, n, d, { nEstimators: 50, maxSamples: 128, seed: 9 });
    const q = gaussian(300, d, 77);
    for (let i = 0; i < q.length; i++) q[i] *= 2.5;
    const s = new Float64Array(300);
    f.score(q, 300, s);
    const paths = Array.from({ length: 300 }, (_, i) => f.meanPathLength(q.subarray(i * d, i * d + d)));
    const order = paths.map((p, i) => [p, s[i]]).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < order.length; i++) expect(order[i][1]).toBeLessThanOrEqual(order[i - 1][1]);
  });

  it('handles constant features and duplicate rows without NaN', () => {
    const m = 500;
    const y = new Float64Array(m * 3);
    for (let i = 0; i < m; i++) {
      y[i * 3] = 1; // constant
      y[i * 3 + 1] = i % 2; // two values
      y[i * 3 + 2] = Math.floor(i / 100);
    }
    const f = IsolationForest.fit(y, m, 3, { nEstimators: 30, maxSamples: 64, seed: 2 });
    const s = new Float64Array(m);
    const c = new Float64Array(m * 3);
    f.score(y, m, s, c);
    for (const v of s) expect(Number.isFinite(v)).toBe(true);
    for (const v of c) expect(Number.isFinite(v)).toBe(true);
    // The constant feature is never split on, so it gets no credit.
    for (let i = 0; i < m; i++) expect(c[i * 3]).toBe(0);
  });

  it('rejects bad parameters with clear errors', () => {
    expect(() => IsolationForest.fit(x, 1, d)).toThrow(/at least 2 rows/);
    expect(() => IsolationForest.fit(x, n, d, { nEstimators: 0, maxSamples: 256, seed: 1 })).toThrow(/nEstimators/);
    expect(() => IsolationForest.fit(x, n, d, { nEstimators: 10, maxSamples: 1, seed: 1 })).toThrow(/maxSamples/);
  });

  it('scores one point and an empty batch', () => {
    const f = IsolationForest.fit(x, n, d, { nEstimators: 10, maxSamples: 32, seed: 1 });
    const out = new Float64Array(1);
    f.score(Float64Array.from([0.1, 0.2, 0.3]), 1, out);
    expect(out[0]).toBeGreaterThan(0);
    f.score(new Float64Array(0), 0, new Float64Array(0));
  });

  it('Rng gives uniform-looking integers', () => {
    const r = new Rng(123);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 100000; i++) counts[r.int(10)]++;
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(500);
  });
});

/**
 * The straightforward tree growth that IsolationForest.fit must reproduce exactly (the
 * same RNG calls, nodes and thresholds): every node takes the range of every feature
 * over its samples, and the features with a non-empty range are the split candidates.
 */
function referenceFit(x: Float64Array, n: number, d: number, nEstimators: number, maxSamples: number, seed: number) {
  const psi = Math.min(maxSamples, n);
  const heightLimit = Math.ceil(Math.log2(psi));
  const rng = new Rng(seed);
  const feature: number[] = [];
  const threshold: number[] = [];
  const left: number[] = [];
  const size: number[] = [];
  const roots: number[] = [];
  const perm = Array.from({ length: n }, (_, i) => i);
  for (let t = 0; t < nEstimators; t++) {
    const idx: number[] = [];
    for (let i = 0; i < psi; i++) {
      const j = i + rng.int(n - i);
      [perm[i], perm[j]] = [perm[j], perm[i]];
      idx.push(perm[i]);
    }
    const tFeat: number[] = [];
    const tThr: number[] = [];
    const tLeft: number[] = [];
    const tSize: number[] = [];
    let used = 1;
    const stack: number[][] = [[0, 0, psi, 0]];
    while (stack.length > 0) {
      const [node, start, end, depth] = stack.pop() as number[];
      tSize[node] = end - start;
      tFeat[node] = -1;
      tThr[node] = 0;
      tLeft[node] = -1;
      if (depth >= heightLimit || end - start <= 1) continue;
      const lo = new Array<number>(d).fill(Infinity);
      const hi = new Array<number>(d).fill(-Infinity);
      for (let i = start; i < end; i++) {
        for (let f = 0; f < d; f++) {
          const v = x[idx[i] * d + f];
          if (v < lo[f]) lo[f] = v;
          if (v > hi[f]) hi[f] = v;
        }
      }
      const candidates: number[] = [];
      for (let f = 0; f < d; f++) if (hi[f] > lo[f]) candidates.push(f);
      if (candidates.length === 0) continue;
      const f = candidates[rng.int(candidates.length)];
      let thr = lo[f] + rng.next() * (hi[f] - lo[f]);
      if (!(thr < hi[f])) thr = lo[f];
      let i = start;
      let j = end - 1;
      while (i <= j) {
        if (x[idx[i] * d + f] <= thr) i++;
        else {
          [idx[i], idx[j]] = [idx[j], idx[i]];
          j--;
        }
      }
      const l = used;
      used += 2;
      tFeat[node] = f;
      tThr[node] = thr;
      tLeft[node] = l;
      stack.push([l + 1, i, end, depth + 1], [l, start, i, depth + 1]);
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
  return { nFeatures: d, subsample: psi, heightLimit, roots, feature, threshold, left, size };
}

describe('IsolationForest.fit against the reference growth', () => {
  it('grows the same trees on continuous, mostly-constant, tied, signed-zero and NaN features', () => {
    const rng = new Rng(11);
    const n = 900;
    const d = 7;
    const x = new Float64Array(n * d);
    for (let i = 0; i < n; i++) {
      x[i * d] = rng.normal();
      x[i * d + 1] = rng.next() < 0.02 ? rng.normal() : 0; // mostly zero, as the excess features
      x[i * d + 2] = Math.floor(rng.next() * 3); // few distinct values
      x[i * d + 3] = 5; // constant
      x[i * d + 4] = rng.next() < 0.5 ? -0 : 0; // signed zeros only: constant
      x[i * d + 5] = rng.next() < 0.1 ? NaN : rng.normal(); // some NaN
      x[i * d + 6] = rng.next() < 0.97 ? NaN : rng.next() < 0.5 ? -0 : 1; // mostly NaN
    }
    for (const [maxSamples, seed] of [
      [64, 1],
      [256, 7],
      [17, 3],
      [2, 9],
    ]) {
      const got = IsolationForest.fit(x, n, d, { nEstimators: 30, maxSamples, seed }).toState();
      const want = referenceFit(x, n, d, 30, maxSamples, seed);
      expect(got).toEqual(want);
      // toEqual treats -0 and 0 alike; the thresholds must match bit for bit.
      expect(Float64Array.from(got.threshold).map((v) => 1 / v)).toEqual(Float64Array.from(want.threshold).map((v) => 1 / v));
    }
  });
});
