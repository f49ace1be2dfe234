import { averagePathLength } from '../../../src/core/path-length';
import { IsolationForest, type ForestState } from '../../../src/core/isolation-forest';
import { Rng } from '../../../src/core/random';
import { gaussian } from '../../helpers/fixtures';

/**
 * Path-dependent conditional expectation of -h(x) given the features in `subset`: follow
 * x on known features, average the children by training share on unknown ones.
 */
function expectedPath(s: ForestState, node: number, depth: number, point: ArrayLike<number>, subset: number): number {
  const f = s.feature[node];
  if (f < 0) return depth + averagePathLength(s.size[node]);
  const l = s.left[node];
  if (subset & (1 << f)) return expectedPath(s, point[f] <= s.threshold[node] ? l : l + 1, depth + 1, point, subset);
  const wl = s.size[l] / s.size[node];
  return wl * expectedPath(s, l, depth + 1, point, subset) + (1 - wl) * expectedPath(s, l + 1, depth + 1, point, subset);
}

/** Exact Shapley values of v(S) = -E[h(x) | x_S] averaged over trees, by enumeration. */
function bruteForceShapley(forest: IsolationForest, point: ArrayLike<number>): number[] {
  const s = forest.toState();
  const d = s.nFeatures;
  const fact = (k: number): number => (k <= 1 ? 1 : k * fact(k - 1));
  const v = new Array<number>(1 << d).fill(0);
  for (let S = 0; S < 1 << d; S++) {
    let sum = 0;
    for (const r of s.roots) sum += expectedPath(s, r, 0, point, S);
    v[S] = -sum / s.roots.length;
  }
  const phi = new Array<number>(d).fill(0);
  for (let i = 0; i < d; i++) {
    for (let S = 0; S < 1 << d; S++) {
      if (S & (1 << i)) continue;
      let k = 0;
      for (let j = 0; j < d; j++) if (S & (1 << j)) k++;
      phi[i] += ((fact(k) * fact(d - k - 1)) / fact(d)) * (v[S | (1 << i)] - v[S]);
    }
  }
  return phi;
}

const argmax = (a: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
};

describe('per-feature contributions', () => {
  const n = 3000;
  const d = 3;
  const x = gaussian(n, d, 11);
  const forest = IsolationForest.fit(x, n, d, { nEstimators: 100, maxSamples: 256, seed: 4 });

  it('add up to the path-length deficit c(psi) - E[h(x)] to 1e-9', () => {
    const m = 1000;
    const q = gaussian(m, d, 12);
    for (let i = 0; i < q.length; i++) q[i] *= 3;
    const s = new Float64Array(m);
    const c = new Float64Array(m * d);
    forest.score(q, m, s, c);
    for (let i = 0; i < m; i++) {
      const deficit = forest.expectedPathLength - forest.meanPathLength(q.subarray(i * d, i * d + d));
      expect(Math.abs(c[i * d] + c[i * d + 1] + c[i * d + 2] - deficit)).toBeLessThan(1e-9);
      // ...and the deficit fixes the score.
      expect(s[i]).toBeCloseTo(Math.pow(2, -(forest.expectedPathLength - deficit) / forest.expectedPathLength), 12);
    }
  });

  it('give the largest contribution to the feature a point is extreme in', () => {
    const r = new Rng(99);
    for (let k = 0; k < 300; k++) {
      const f = k % d;
      const p = [r.normal() * 0.5, r.normal() * 0.5, r.normal() * 0.5];
      p[f] = (r.next() < 0.5 ? -1 : 1) * (5 + 3 * r.next());
      const c = new Float64Array(d);
      forest.score(Float64Array.from(p), 1, new Float64Array(1), c);
      expect(argmax(c)).toBe(f);
      expect(c[f]).toBeGreaterThan(0);
    }
  });

  it('agree with brute-force Shapley values on the top feature for >= 95% of points extreme in one feature', () => {
    const r = new Rng(2024);
    let agree = 0;
    let total = 0;
    for (let trial = 0; trial < 8; trial++) {
      const m = 200 + trial * 50;
      const data = gaussian(m, d, 500 + trial);
      const small = IsolationForest.fit(data, m, d, { nEstimators: 10, maxSamples: 32 + 8 * trial, seed: trial });
      for (let k = 0; k < 30; k++) {
        const f = r.int(d);
        const p = [r.normal() * 0.7, r.normal() * 0.7, r.normal() * 0.7];
        p[f] = (r.next() < 0.5 ? -1 : 1) * (3 + 4 * r.next());
        const c = new Float64Array(d);
        small.score(Float64Array.from(p), 1, new Float64Array(1), c);
        const phi = bruteForceShapley(small, p);
        total++;
        if (argmax(c) === argmax(phi)) agree++;
      }
    }
    expect(agree / total).toBeGreaterThanOrEqual(0.95);
  });
});
