import { fitScaler, transform } from '../../../src/core/scaler';
import { quantile, thresholdFromContamination } from '../../../src/core/stats';

describe('StandardScaler', () => {
  it('standardises with the population standard deviation', () => {
    const x = Float64Array.from([1, 10, 2, 20, 3, 30, 4, 40]);
    const s = fitScaler(x, 4, 2);
    expect(s.mean).toEqual([2.5, 25]);
    expect(s.scale[0]).toBeCloseTo(Math.sqrt(1.25), 12);
    const y = new Float64Array(8);
    transform(s, x, 4, y);
    expect(y[0]).toBeCloseTo(-1.5 / Math.sqrt(1.25), 12);
  });
  it('maps a zero-variance feature to 0, not NaN', () => {
    const x = Float64Array.from([5, 1, 5, 2, 5, 3]);
    const s = fitScaler(x, 3, 2);
    expect(s.scale[0]).toBe(1);
    const y = new Float64Array(6);
    transform(s, x, 3, y);
    expect(Array.from(y).every(Number.isFinite)).toBe(true);
    expect(y[0]).toBe(0);
  });
  it('stays accurate for large offsets (bytes/s counters)', () => {
    const x = Float64Array.from([1e12 + 1, 1e12 + 2, 1e12 + 3]);
    const s = fitScaler(x, 3, 1);
    expect(s.scale[0]).toBeCloseTo(Math.sqrt(2 / 3), 6);
  });
});

describe('thresholds', () => {
  it('interpolates quantiles like numpy', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([4, 1, 3, 2], 0.75)).toBe(3.25);
    expect(quantile([7], 0.3)).toBe(7);
  });
  it('puts about `contamination` of training scores above the threshold', () => {
    const scores = Array.from({ length: 10000 }, (_, i) => i / 10000);
    const t = thresholdFromContamination(scores, 0.05);
    expect(scores.filter((s) => s > t).length).toBe(500);
    expect(() => thresholdFromContamination(scores, 0.7)).toThrow(/contamination/);
  });
});
