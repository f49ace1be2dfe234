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
