import type { FeatureSpec } from '../../../src/core/features';
import { noveltyColumns, noveltyOf } from '../../../src/core/novelty';

const spec = (name: string, transform: FeatureSpec['transform']): FeatureSpec => ({
  name,
  source: 'value',
  transform,
  unit: 'u',
  min: -Number.MAX_VALUE,
  max: null,
});
const SPECS: FeatureSpec[] = [
  spec('value', 'raw'),
  spec('value_robust_z', 'robust_z'),
  spec('value_max', 'rolling_max_excess'),
  spec('value_min', 'rolling_min_excess'),
  spec('value_level_max', 'level_max_excess'),
  spec('value_level_min', 'level_min_excess'),
];

describe('novelty term', () => {
  const cols = noveltyColumns(SPECS);
  const d = SPECS.length;

  it('reads the rolling and level excesses only', () => {
    expect(Array.from(cols)).toEqual([2, 3, 4, 5]);
  });

  it('is 1 - exp(-sum of the positive excesses): a new extreme whose level is new too counts for more than either', () => {
    // Rows: nothing new; a new point maximum; a new point maximum with a new level maximum; only the raw and z large.
    const x = Float64Array.of(5, 1, 0, 0, 0, 0, 5, 1, 0.8, 0, 0, 0, 5, 1, 0.8, 0, 0.5, 0, 90, 40, 0, 0, 0, 0);
    expect(noveltyOf(x, 0, d, cols)).toBe(0);
    expect(noveltyOf(x, 1, d, cols)).toBeCloseTo(1 - Math.exp(-0.8), 14);
    expect(noveltyOf(x, 2, d, cols)).toBeCloseTo(1 - Math.exp(-1.3), 14);
    expect(noveltyOf(x, 2, d, cols)).toBeGreaterThan(noveltyOf(x, 1, d, cols));
    expect(noveltyOf(x, 3, d, cols)).toBe(0);
  });

  it('ignores negative values and stays below 1', () => {
    const x = Float64Array.of(0, 0, -3, -2, 40, 30);
    expect(noveltyOf(x, 0, d, cols)).toBeCloseTo(1 - Math.exp(-70), 14);
    expect(noveltyOf(x, 0, d, cols)).toBeLessThanOrEqual(1);
    expect(noveltyOf(Float64Array.of(0, 0, -3, -2, 0, 0), 0, d, cols)).toBe(0);
  });
});
