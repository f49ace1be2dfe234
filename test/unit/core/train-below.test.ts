import { DEFAULT_GATE } from '../../../src/core/gate';
import { DEFAULT_HOST_LEARNING, hostLearningFeatures, hostLearningOptions } from '../../../src/core/host-learning';
import { Rng } from '../../../src/core/random';
import { StreamingDetector, type StreamingOptions } from '../../../src/core/streaming';
import { valueStreamOptions } from '../../helpers/value-stream';

function options(points: number, trainBelow?: { columns: number[]; max: number }): StreamingOptions {
  return valueStreamOptions({ points, minFitRows: 2, priorSeverity: 1, ...(trainBelow ? { trainBelow } : {}) });
}

describe('rows above a feature cut are not trained on (learning.trainBelow)', () => {
  const r = new Rng(5);
  const warmN = 200;
  const n = 600;
  const times = Array.from({ length: warmN + n }, (_, i) => i * 10_000);
  // Two long incidents well above the noise, and one just above the cut.
  const values = Float64Array.from({ length: warmN + n }, (_, i) =>
    (i >= 400 && i < 430) || (i >= 600 && i < 640) ? 60 : i >= 700 && i < 705 ? 41 : 20 + r.normal(),
  );
  const warm = { keys: new Array<string>(warmN).fill('h'), times: times.slice(0, warmN), raw: values.slice(0, warmN), n: warmN };
  const live = { keys: new Array<string>(n).fill('h'), times: times.slice(warmN), raw: values.slice(warmN), n };

  it('leaves out of the window the rows of a learned key above the cut, alerted or not, and scores the same', () => {
    const plain = StreamingDetector.start(options(0), warm);
    const cut = StreamingDetector.start(options(0, { columns: [0], max: 40 }), warm);
    const a = plain.process(live);
    const b = cut.process(live);
    expect(Array.from(b.scores)).toEqual(Array.from(a.scores));
    expect(Array.from(b.alerts)).toEqual(Array.from(a.alerts));
    const alerts = a.alerts.reduce((s, v) => s + v, 0);
    expect(alerts).toBeGreaterThanOrEqual(2);
    // Without the cut, only the alerted rows are left out; with it, every row above 40.
    expect(plain.stats().windowRows).toBe(warmN + n - alerts);
    let below = 0;
    for (let i = 0; i < n; i++) if (live.raw[i] <= 40 && a.alerts[i] === 0) below++;
    expect(below).toBe(n - 75);
    expect(cut.stats().windowRows).toBe(warmN + below);
  });

  it('trains on the rows of a key still learning, whatever their values', () => {
    // Warm-up keys have 200 points: with 1,000 needed they are still learning.
    const cut = StreamingDetector.start(options(1000, { columns: [0], max: 40 }), warm);
    cut.process(live);
    expect(cut.stats().windowRows).toBe(warmN + n);
  });
});

describe('the host defaults of the cut', () => {
  it("names each metric's robust z and level shift, and keeps the fleet model's contamination apart", () => {
    const opts = hostLearningOptions({ gate: DEFAULT_GATE, maxKeys: 10 });
    const l = opts.learning;
    const names = hostLearningFeatures().map((f) => f.name);
    expect(l?.trainBelow?.max).toBe(DEFAULT_HOST_LEARNING.trainBelow);
    expect(l?.trainBelow?.columns.map((c) => names[c])).toEqual([
      'cpu_usage_robust_z',
      'cpu_usage_level_shift',
      'memory_usage_robust_z',
      'memory_usage_level_shift',
      'network_load_robust_z',
      'network_load_level_shift',
    ]);
    expect(l?.fleetContamination).toBe(DEFAULT_HOST_LEARNING.fleetContamination);
    const off = hostLearningOptions({ gate: DEFAULT_GATE, maxKeys: 10, params: { ...DEFAULT_HOST_LEARNING, trainBelow: 0 } });
    expect(off.learning?.trainBelow).toBeUndefined();
  });
});
