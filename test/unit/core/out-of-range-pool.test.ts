import { parseArtifact, serialize } from '../../../src/core/artifact';
import { Detector } from '../../../src/core/detector';
import type { FeatureSpec } from '../../../src/core/features';
import { averagePathLength } from '../../../src/core/path-length';
import { Rng } from '../../../src/core/random';
import { trainOnFeatures } from '../../../src/core/train';

/** Two inputs, four raw features each (a, a2, a3, a4 from input a; b, b2, b3, b4 from b). */
const specs: FeatureSpec[] = ['a', 'b'].flatMap((src) =>
  [1, 2, 3, 4].map((k) => ({
    name: k === 1 ? src : `${src}${k}`,
    source: src,
    transform: 'raw' as const,
    unit: '',
    min: -1e300,
    max: null,
  })),
);
const d = specs.length;
const base = {
  nEstimators: 30,
  maxSamples: 64,
  seed: 1,
  contamination: 0.05,
  features: specs,
  inputs: ['a', 'b'],
  createdAt: '2026-01-01T00:00:00Z',
  outOfRangeWeight: 2,
};

function training(n: number): Float64Array {
  const r = new Rng(5);
  // The last feature of each input is constant (0) in training, like an excess over extremes.
  return Float64Array.from({ length: n * d }, (_, k) => (k % 4 === 3 ? 0 : r.normal()));
}

describe('out-of-range pooling (scoring.out_of_range_pool, out_of_range_min_span)', () => {
  const n = 300;
  const x = training(n);

  it('records nothing new by default, so older artifacts and new ones without the options score alike', () => {
    const plain = trainOnFeatures(x, n, base);
    expect(plain.scoring).toEqual({ out_of_range_weight: 2 });
    const mean = trainOnFeatures(x, n, { ...base, outOfRangePool: 'feature_mean', outOfRangeMinSpan: 0 });
    expect(mean.sha256).toBe(plain.sha256);
  });

  it('input_max: one input far out of range on one feature counts 1/inputs, not 1/features; contributions still sum exactly', () => {
    const art = trainOnFeatures(x, n, { ...base, outOfRangePool: 'input_max' });
    expect(art.scoring).toEqual({ out_of_range_weight: 2, out_of_range_pool: 'input_max' });
    const round = parseArtifact(serialize(art));
    expect(round.scoring?.out_of_range_pool).toBe('input_max');
    const pooled = new Detector(round, { inputs: 'any' });
    const mean = new Detector(trainOnFeatures(x, n, base), { inputs: 'any' });
    // Row 0 inside the range; row 1: feature a far out; row 2: a, a2 and a3 far out (the pool charges the largest only).
    const pts = Float64Array.of(0.1, -0.2, 0.3, 0, 0, 0.1, 0.2, 0, 9, 0, 0, 0, 0, 0, 0, 0, 9, 9, 12, 0, 0, 0, 0, 0);
    const p = pooled.scoreFeatures(pts.slice(), 3);
    const m = mean.scoreFeatures(pts.slice(), 3);
    expect(p.scores[0]).toBe(m.scores[0]);
    expect(p.scores[1]).toBeGreaterThan(m.scores[1]);
    expect(p.scores[2]).toBeGreaterThan(p.scores[1]);
    const c = averagePathLength(64);
    for (let i = 0; i < 3; i++) {
      const sum = p.contributions[i * 2] + p.contributions[i * 2 + 1];
      expect(sum).toBeCloseTo(c + c * Math.log2(p.scores[i]), 9);
    }
    expect(p.contributions[2]).toBeGreaterThan(p.contributions[3]);
  });

  it('out_of_range_min_span: a small step past a feature that was constant in training is not a share of 1', () => {
    const art = trainOnFeatures(x, n, { ...base, outOfRangePool: 'input_max', outOfRangeMinSpan: 2 });
    expect(parseArtifact(serialize(art)).scoring).toEqual({
      out_of_range_weight: 2,
      out_of_range_pool: 'input_max',
      out_of_range_min_span: 2,
    });
    const floored = new Detector(art, { inputs: 'any' });
    const bare = new Detector(trainOnFeatures(x, n, { ...base, outOfRangePool: 'input_max' }), { inputs: 'any' });
    // Feature a4 (constant 0 in training) at 0.1, then at 50.
    const pts = Float64Array.of(0, 0, 0, 0.1, 0, 0, 0, 0, 0, 0, 0, 50, 0, 0, 0, 0);
    const f = floored.scoreFeatures(pts.slice(), 2);
    const b = bare.scoreFeatures(pts.slice(), 2);
    expect(f.scores[0]).toBeLessThan(b.scores[0]);
    // Far out, the floor hardly matters: 50 / (2 + 50) against 1.
    expect(f.scores[1]).toBeGreaterThan(f.scores[0]);
    expect(f.scores[1]).toBeLessThanOrEqual(b.scores[1]);
    expect(f.scores[1]).toBeGreaterThan(0.95 * b.scores[1]);
  });
});
