import { Detector } from '../../../src/core/detector';
import { trainModel } from '../../../src/core/train';
import { gaussian } from '../../helpers/fixtures';

/** Out-of-range scoring never gives NaN, however far out a value is (a gap of Infinity after scaling). */
describe('out-of-range scoring at float extremes', () => {
  it('scores values whose scaled distance overflows as finite, maximal out-of-range scores', () => {
    const n = 500;
    // CPU with a spread of 0.01: 1.7e308 scaled by it overflows to Infinity.
    const raw = gaussian(n, 3, 4).map((v, i) => (i % 3 === 2 ? 1e5 + 1e4 * v : i % 3 === 0 ? 40 + 0.01 * v : 40 + 5 * v));
    const det = new Detector(
      trainModel(raw, n, {
        nEstimators: 20,
        maxSamples: 64,
        seed: 1,
        contamination: 0.01,
        createdAt: '2026-01-01T00:00:00.000Z',
        outOfRangeWeight: 8,
      }),
    );
    const { scores, contributions } = det.scoreRaw(Float64Array.from([1.7e308, 40, 1e5, 40, 40, 1e300]), 2);
    for (const s of scores) expect(Number.isFinite(s)).toBe(true);
    for (const c of contributions) expect(Number.isFinite(c)).toBe(true);
    expect(scores[0]).toBeGreaterThan(det.threshold);
  });
});
