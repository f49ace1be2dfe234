import { parseArtifact, serialize } from '../../../src/core/artifact';
import { ALL_TRANSFORMS, LATER_TRANSFORMS, SeriesFeatures, TRANSFORMS, type FeatureSpec } from '../../../src/core/features';
import { Rng } from '../../../src/core/random';
import { trainModel } from '../../../src/core/train';

const spec = (transform: 'span_max' | 'span_min', span: number, window = 2): FeatureSpec => ({
  name: `v_${transform}`,
  source: 'v',
  transform,
  unit: 'value',
  min: -Number.MAX_VALUE,
  max: null,
  params: { window, span },
});

describe('span_max / span_min (appended transforms)', () => {
  it('leave the earlier transforms and their codes as they were', () => {
    expect(TRANSFORMS).toHaveLength(11);
    expect(ALL_TRANSFORMS.slice(0, TRANSFORMS.length)).toEqual([...TRANSFORMS]);
    expect(ALL_TRANSFORMS.slice(TRANSFORMS.length)).toEqual([...LATER_TRANSFORMS]);
    expect(TRANSFORMS).not.toContain('span_max');
  });

  it('are the max and min of the last span points, x included (0 with no history)', () => {
    const r = new Rng(7);
    const n = 300;
    const raw = Float64Array.from({ length: n }, () => r.next());
    for (const span of [1, 5, 20]) {
      for (const window of [2, 64]) {
        const specs = [spec('span_max', span, window), spec('span_min', span, window)];
        const sf = new SeriesFeatures(specs, ['v']);
        const out = new Float64Array(n * 2);
        sf.compute(
          sf.newStore(1),
          new Array<string>(n).fill('k'),
          Float64Array.from({ length: n }, (_, i) => i),
          raw,
          n,
          out,
        );
        expect(out[0]).toBe(0);
        expect(out[1]).toBe(0);
        for (let i = 1; i < n; i++) {
          const last = Array.from(raw.subarray(Math.max(0, i - span + 1), i + 1));
          expect(out[2 * i]).toBe(Math.max(...last));
          expect(out[2 * i + 1]).toBe(Math.min(...last));
        }
      }
    }
  });

  it('go through an artifact and back', () => {
    const r = new Rng(9);
    const n = 200;
    const raw = Float64Array.from({ length: n }, () => r.next());
    const features = [
      { name: 'v', source: 'v', transform: 'raw' as const, unit: 'value', min: -Number.MAX_VALUE, max: null },
      spec('span_max', 10),
      spec('span_min', 10),
    ];
    const a = trainModel(raw, n, {
      nEstimators: 10,
      maxSamples: 64,
      seed: 1,
      contamination: 0.01,
      features,
      inputs: ['v'],
      createdAt: '2026-01-01T00:00:00.000Z',
    });
    const back = parseArtifact(serialize(a));
    expect(back.features.map((f) => f.transform)).toEqual(['raw', 'span_max', 'span_min']);
  });
});
