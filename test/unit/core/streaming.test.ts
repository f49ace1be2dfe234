import { Detector } from '../../../src/core/detector';
import { defaultFeatures, hostTemporalFeatures, type FeatureSpec } from '../../../src/core/features';
import { gate, newRepeatGateState, repeatGate, DEFAULT_GATE, newGateState, type RepeatGateOptions } from '../../../src/core/gate';
import { METRIC_NAMES } from '../../../src/core/metrics';
import { noveltyColumns, noveltyOf } from '../../../src/core/novelty';
import { averagePathLength } from '../../../src/core/path-length';
import { Rng } from '../../../src/core/random';
import { StreamingDetector, type StreamingOptions, type StreamRows } from '../../../src/core/streaming';
import { trainModel, trainOnFeatures } from '../../../src/core/train';
import { RefitWindow, refitDetector } from '../../../src/core/refit';

const MIN = 60_000;
const HOUR = 60 * MIN;

const valueFeatures: FeatureSpec[] = [
  { name: 'value', source: 'value', transform: 'raw', unit: 'v', min: -1e300, max: null },
  { name: 'value_z', source: 'value', transform: 'robust_z', unit: 'v', min: -1e300, max: null, params: { window: 48 } },
  { name: 'value_diff', source: 'value', transform: 'diff', unit: 'v', min: -1e300, max: null, params: { window: 48 } },
  {
    name: 'value_max',
    source: 'value',
    transform: 'rolling_max_excess',
    unit: 'v',
    min: 0,
    max: null,
    params: { window: 48, horizon: 200 },
  },
  {
    name: 'value_season',
    source: 'value',
    transform: 'seasonal_max_excess',
    unit: 'v',
    min: 0,
    max: null,
    params: { window: 48, period: 96, tolerance: 2 },
  },
];

function options(over: Partial<StreamingOptions> = {}): StreamingOptions {
  return {
    features: valueFeatures,
    inputs: ['value'],
    anyInputs: true,
    nEstimators: 20,
    maxSamples: 32,
    seed: 3,
    contamination: 0.02,
    outOfRangeWeight: 6,
    refitIntervalMs: 24 * HOUR,
    refitWindow: 300,
    gate: { level: 0, windowMs: 6 * HOUR, peak: true, margin: 0.01 },
    createdAt: '2026-01-01T00:00:00.000Z',
    ...over,
  };
}

/** 15-minute points with a daily cycle, noise, and a few incidents. */
function stream(n: number, seed: number): { times: number[]; values: Float64Array } {
  const r = new Rng(seed);
  const times = Array.from({ length: n }, (_, i) => i * 15 * MIN);
  const values = Float64Array.from(
    { length: n },
    (_, i) => 50 + 10 * Math.sin((2 * Math.PI * i) / 96) + r.normal() * 2 + (i === 500 ? 60 : 0) + (i > 700 && i < 720 ? 25 : 0),
  );
  return { times, values };
}

function rows(keys: string, times: number[], values: Float64Array, from: number, to: number): StreamRows {
  return { keys: new Array<string>(to - from).fill(keys), times: times.slice(from, to), raw: values.subarray(from, to), n: to - from };
}

function run(
  values: Float64Array,
  times: number[],
  opts = options(),
  warm = 150,
): { scores: number[]; alerts: number[]; refits: number; versions: string[] } {
  const s = StreamingDetector.start(opts, rows('h', times, values, 0, warm));
  const versions = [s.artifact.version];
  const scores: number[] = [];
  const alerts: number[] = [];
  // Feed in uneven batches, as a poller would.
  for (let from = warm; from < values.length;) {
    const to = Math.min(values.length, from + 1 + ((from * 7) % 40));
    const res = s.process(rows('h', times, values, from, to));
    scores.push(...res.scores);
    alerts.push(...res.alerts);
    if (s.artifact.version !== versions[versions.length - 1]) versions.push(s.artifact.version);
    from = to;
  }
  return { scores, alerts, refits: s.refits, versions };
}

describe('streaming detector', () => {
  const n = 1000;
  const { times, values } = stream(n, 1);
  const ref = run(values, times);

  it('refits on schedule and swaps models while keeping the keys history', () => {
    // The warm-up's fit is at day 1.55 of stream time, the last point at day 10.4: a refit at
    // each multiple of the day in between (days 2 to 10), not a day after each fit.
    expect(ref.refits).toBe(9);
    expect(new Set(ref.versions).size).toBe(ref.versions.length);
    expect(ref.versions.length).toBeGreaterThan(1);
  });

  it('has no look-ahead: scores and alerts of point i do not change when later points change, across refits', () => {
    const r = new Rng(99);
    for (const cut of [150, 420, 777, 998]) {
      const changed = values.slice();
      for (let i = cut + 1; i < n; i++) changed[i] = 1000 * r.normal();
      const other = run(changed, times);
      const k = cut + 1 - 150;
      expect(other.scores.slice(0, k)).toEqual(ref.scores.slice(0, k));
      expect(other.alerts.slice(0, k)).toEqual(ref.alerts.slice(0, k));
      if (cut < 998) expect(other.scores.slice(k)).not.toEqual(ref.scores.slice(k));
    }
  });

  it('is deterministic for a seed, whatever the batch sizes, and the seed matters', () => {
    const again = run(values, times);
    expect(again).toEqual(ref);
    const s = StreamingDetector.start(options(), rows('h', times, values, 0, 150));
    const oneBatch = s.process(rows('h', times, values, 150, n));
    expect(Array.from(oneBatch.scores)).toEqual(ref.scores);
    expect(run(values, times, options({ seed: 4 })).scores).not.toEqual(ref.scores);
  });

  it('alerts on the incidents and suppresses repeats', () => {
    const alertAt = ref.alerts.flatMap((a, i) => (a ? [i + 150] : []));
    expect(alertAt).toContain(500);
    expect(alertAt.some((i) => i > 700 && i < 720)).toBe(true);
    // Never two alerts within the gate window unless the second is higher.
    for (let k = 1; k < alertAt.length; k++) {
      const [a, b] = [alertAt[k - 1], alertAt[k]];
      if (times[b] - times[a] < 6 * HOUR) expect(ref.scores[b - 150]).toBeGreaterThan(ref.scores[a - 150] + 0.01);
    }
    // Without suppression every point at or above level 0 would alert.
    const open = run(values, times, options({ gate: { level: 0, windowMs: 0, peak: false } }));
    expect(open.alerts.filter(Boolean).length).toBe(n - 150);
    expect(alertAt.length).toBeLessThan(0.1 * (n - 150));
  });

  it('bounds hosts: gate and feature state hold at most maxKeys keys', () => {
    const s = StreamingDetector.start(options({ maxKeys: 5 }), rows('h0', times, values, 0, 150));
    for (let t = 150; t < 400; t++) s.process({ keys: [`h${t % 17}`], times: [times[t]], raw: values.subarray(t, t + 1), n: 1 });
    expect(s.detector.state.size).toBe(5);
    expect(s.detector.state.evictions).toBeGreaterThan(0);
  });

  it('serves the host metrics: a service-side stream with the default inputs', () => {
    const r = new Rng(5);
    const m = METRIC_NAMES.length;
    const warm = 200;
    const raw = Float64Array.from({ length: (warm + 50) * m }, (_, k) => (k % m === 2 ? 1e5 : 30) + r.normal());
    const feats: FeatureSpec[] = [
      ...defaultFeatures(),
      { name: 'cpu_z', source: 'cpu_usage', transform: 'robust_z', unit: 'u', min: -1e300, max: null, params: { window: 30 } },
    ];
    const keys = Array.from({ length: warm + 50 }, (_, i) => `host-${i % 4}`);
    const ts = Array.from({ length: warm + 50 }, (_, i) => Math.floor(i / 4) * MIN);
    const s = StreamingDetector.start(options({ features: feats, inputs: [...METRIC_NAMES], anyInputs: false }), {
      keys: keys.slice(0, warm),
      times: ts.slice(0, warm),
      raw: raw.subarray(0, warm * m),
      n: warm,
    });
    const res = s.process({ keys: keys.slice(warm), times: ts.slice(warm), raw: raw.subarray(warm * m), n: 50 });
    expect(res.contributions.length).toBe(50 * m);
    expect(s.detector.inputs).toEqual(METRIC_NAMES);
  });
});

describe('out-of-range scoring', () => {
  it('leaves points inside the training range alone, raises points outside it, and keeps contributions exact', () => {
    const r = new Rng(8);
    const n = 500;
    const d = 3;
    const specs: FeatureSpec[] = ['a', 'b', 'c'].map((name) => ({
      name,
      source: name,
      transform: 'raw' as const,
      unit: '',
      min: -1e300,
      max: null,
    }));
    const x = Float64Array.from({ length: n * d }, () => r.normal());
    const base = {
      nEstimators: 30,
      maxSamples: 64,
      seed: 1,
      contamination: 0.05,
      features: specs,
      inputs: ['a', 'b', 'c'],
      createdAt: '2026-01-01T00:00:00Z',
    };
    const plain = new Detector(trainOnFeatures(x, n, base), { inputs: 'any' });
    const ext = new Detector(trainOnFeatures(x, n, { ...base, outOfRangeWeight: 3 }), { inputs: 'any' });
    const pts = Float64Array.of(0.1, -0.2, 0.3, 5, 0, 0, 50, 0, 0, 50, 50, 50);
    const p = plain.scoreFeatures(pts.slice(), 4);
    const e = ext.scoreFeatures(pts.slice(), 4);
    expect(e.scores[0]).toBe(p.scores[0]);
    expect(e.scores[1]).toBeGreaterThan(p.scores[1]);
    expect(e.scores[2]).toBeGreaterThan(e.scores[1]);
    expect(e.scores[3]).toBeGreaterThan(e.scores[2]);
    const c = averagePathLength(64);
    for (let i = 0; i < 4; i++) {
      const sum = e.contributions[i * d] + e.contributions[i * d + 1] + e.contributions[i * d + 2];
      expect(sum).toBeCloseTo(c + c * Math.log2(e.scores[i]), 9);
    }
    // The feature that left the range gets the extra credit.
    expect(e.contributions[d * 2]).toBeGreaterThan(p.contributions[d * 2]);
  });
});

describe('novelty scoring', () => {
  const levelFeatures: FeatureSpec[] = [
    ...valueFeatures,
    {
      name: 'value_min',
      source: 'value',
      transform: 'rolling_min_excess',
      unit: 'v',
      min: 0,
      max: null,
      params: { window: 48, horizon: 200 },
    },
    {
      name: 'value_level_max',
      source: 'value',
      transform: 'level_max_excess',
      unit: 'v',
      min: 0,
      max: null,
      params: { window: 48, span: 4, horizon: 200 },
    },
    {
      name: 'value_level_min',
      source: 'value',
      transform: 'level_min_excess',
      unit: 'v',
      min: 0,
      max: null,
      params: { window: 48, span: 4, horizon: 200 },
    },
  ];

  it('blends (1 - b) * forest score + b * (1 - exp(-largest excess)), and b = 0 is the plain score', () => {
    const r = new Rng(21);
    const n = 400;
    const d = valueFeatures.length;
    // Excess features are 0 on the training rows except a few.
    const x = Float64Array.from({ length: n * d }, (_, k) => (k % d === 3 ? (r.next() < 0.05 ? r.next() : 0) : r.normal()));
    const base = {
      nEstimators: 30,
      maxSamples: 64,
      seed: 1,
      contamination: 0.05,
      features: valueFeatures,
      inputs: ['value'],
      createdAt: '2026-01-01T00:00:00Z',
      outOfRangeWeight: 6,
    };
    const plain = new Detector(trainOnFeatures(x, n, base), { inputs: 'any' });
    const art = trainOnFeatures(x, n, { ...base, noveltyWeight: 0.3 });
    expect(art.scoring).toEqual({ out_of_range_weight: 6, novelty_weight: 0.3 });
    const blended = new Detector(art, { inputs: 'any' });
    const pts = Float64Array.of(0.1, 0.2, -0.1, 0, 0.3, 0.1, 0.2, -0.1, 2.5, 0.3, 0.1, 0.2, -0.1, 0.4, 0.3);
    const p = plain.scoreFeatures(pts.slice(), 3);
    const b = blended.scoreFeatures(pts.slice(), 3);
    const cols = noveltyColumns(valueFeatures);
    expect(Array.from(cols)).toEqual([3]);
    for (let i = 0; i < 3; i++) {
      expect(noveltyOf(pts, i, d, cols)).toBeCloseTo(1 - Math.exp(-Math.max(0, pts[i * d + 3])), 12);
      expect(b.scores[i]).toBeCloseTo(0.7 * p.scores[i] + 0.3 * noveltyOf(pts, i, d, cols), 12);
    }
    // A new extreme raises the score; no excess lowers it towards (1 - b) * forest score.
    expect(b.scores[1]).toBeGreaterThan(b.scores[0]);
    expect(b.scores[0]).toBeCloseTo(0.7 * p.scores[0], 12);
    // The threshold is a quantile of the blended training scores.
    expect(art.threshold.value).not.toBe(plain.threshold);
  });

  it('keeps the stream free of look-ahead with novelty and level extremes', () => {
    const n = 700;
    const { times, values } = stream(n, 4);
    const opts = options({ features: levelFeatures, noveltyWeight: 0.3 });
    const ref = run(values, times, opts);
    expect(ref.scores.every((v) => v >= 0 && v <= 1)).toBe(true);
    const r = new Rng(5);
    for (const cut of [150, 333, 699]) {
      const changed = values.slice();
      for (let i = cut + 1; i < n; i++) changed[i] = 500 * r.normal();
      const other = run(changed, times, opts);
      const k = cut + 1 - 150;
      expect(other.scores.slice(0, k)).toEqual(ref.scores.slice(0, k));
      expect(other.alerts.slice(0, k)).toEqual(ref.alerts.slice(0, k));
    }
    // The novelty term changes the scores (the artifact records it).
    expect(run(values, times, options({ features: levelFeatures })).scores).not.toEqual(ref.scores);
  });
});

describe('repeat gate', () => {
  const opts: RepeatGateOptions = { level: 0.6, windowMs: 100, peak: false };

  it('alerts at the level, then only on a higher score within the window', () => {
    const s = newRepeatGateState();
    const seq = [
      [0.5, 0],
      [0.7, 10],
      [0.65, 20],
      [0.71, 30],
      [0.7, 120],
      [0.9, 300],
    ].map(([score, t]) => repeatGate(opts, s, score, t));
    expect(seq).toEqual([false, true, false, true, false, true]);
  });

  it('with peak, alerts only on a score above every score of the window, alert or not', () => {
    const s = newRepeatGateState();
    const p = { ...opts, level: 0, peak: true };
    const seq = [0.5, 0.8, 0.7, 0.75, 0.79, 0.81].map((score, t) => repeatGate(p, s, score, t * 10));
    expect(seq).toEqual([true, true, false, false, false, true]);
    // After the window has passed, a lower score can alert again.
    expect(repeatGate(p, s, 0.6, 1000)).toBe(true);
  });

  it('with a margin, a rise must beat the last alert by more than the margin', () => {
    const s = newRepeatGateState();
    const p = { ...opts, margin: 0.05 };
    expect([0.7, 0.74, 0.76, 0.8].map((score, t) => repeatGate(p, s, score, t))).toEqual([true, false, true, false]);
  });

  it('with decay, an equal incident later in the window can alert again', () => {
    const p: RepeatGateOptions = { level: 0, windowMs: 1000, peak: true, margin: 0.05, decayPerMs: 0.001 };
    const s = newRepeatGateState();
    expect(repeatGate(p, s, 0.8, 0)).toBe(true);
    expect(repeatGate(p, s, 0.8, 10)).toBe(false);
    expect(repeatGate(p, s, 0.8, 500)).toBe(true);
    const still = newRepeatGateState();
    expect([0, 10, 500].map((t) => repeatGate({ ...p, decayPerMs: 0 }, still, 0.8, t))).toEqual([true, false, false]);
  });

  it('with a shorter peak window, the peak test forgets sooner than the alert memory', () => {
    const p: RepeatGateOptions = { level: 0, windowMs: 1000, peak: true, margin: 0.05, peakWindowMs: 100 };
    const s = newRepeatGateState();
    // 0.9 alerts; 0.5 at t=50 is below the 100 ms peak window; a later 0.92 is below the
    // last alert + margin (alert memory 1000 ms); 0.96 beats both.
    expect(
      [
        [0.9, 0],
        [0.5, 50],
        [0.92, 300],
        [0.96, 400],
      ].map(([score, t]) => repeatGate(p, s, score, t)),
    ).toEqual([true, false, false, true]);
    // After the alert memory has passed, a score above the last 100 ms alerts even if lower than old peaks.
    expect(repeatGate(p, s, 0.3, 1500)).toBe(true);
    // With the default (peak window = windowMs) the same sequence is held back longer.
    const q = newRepeatGateState();
    const d = { ...p, peakWindowMs: undefined };
    expect(
      [
        [0.9, 0],
        [0.5, 50],
        [0.92, 300],
        [0.96, 400],
        [0.3, 1350],
      ].map(([score, t]) => repeatGate(d, q, score, t)),
    ).toEqual([true, false, false, true, false]);
  });

  it('with calibrate, an alert reports its score less weight times the mean of the earlier alerts within forMs', () => {
    const p: RepeatGateOptions = { level: 0, windowMs: 0, peak: false, calibrate: { weight: 0.5, forMs: 100 } };
    const s = newRepeatGateState();
    const reported = [
      [0.8, 0],
      [0.6, 50],
      [0.9, 90],
      [0.5, 300],
    ].map(([score, t]) => (repeatGate(p, s, score, t) ? (s.lastReported as number) : NaN));
    // The first alert has no earlier one; the second 0.6 - 0.5 * 0.8; the third 0.9 - 0.5 * 0.7;
    // the fourth comes after forMs of every earlier alert: unchanged.
    expect(reported[0]).toBe(0.8);
    expect(reported[1]).toBeCloseTo(0.2, 12);
    expect(reported[2]).toBeCloseTo(0.55, 12);
    expect(reported[3]).toBe(0.5);
    // Which points alert does not change.
    const plain = newRepeatGateState();
    expect([0.8, 0.6, 0.9, 0.5].map((v, i) => repeatGate({ ...p, calibrate: undefined }, plain, v, [0, 50, 90, 300][i]))).toEqual([
      true,
      true,
      true,
      true,
    ]);
  });

  it('with calibrate, the streaming detector reports the calibrated score at alerts only, and alerts at the same rows', () => {
    const { times, values } = stream(1000, 4);
    const g: RepeatGateOptions = { level: 0, windowMs: 6 * HOUR, peak: true, margin: 0.01 };
    const plain = run(values, times, options({ gate: g }));
    const cal = run(values, times, options({ gate: { ...g, calibrate: { weight: 0.3, forMs: 3 * 24 * HOUR } } }));
    expect(cal.alerts).toEqual(plain.alerts);
    let lowered = 0;
    plain.scores.forEach((v, i) => {
      if (!plain.alerts[i]) expect(cal.scores[i]).toBe(v);
      else {
        expect(cal.scores[i]).toBeLessThanOrEqual(v);
        if (cal.scores[i] < v) lowered++;
      }
    });
    expect(lowered).toBeGreaterThan(0);
  });

  it('leaves the poller gate as it was', () => {
    const s = newGateState();
    expect([true, true, true].map((raw, i) => gate(DEFAULT_GATE, s, raw, i, 50, 50, 1e5))).toEqual([false, false, true]);
  });
});

describe('refit window', () => {
  it('keeps the last `capacity` rows, oldest first', () => {
    const w = new RefitWindow(2, 3);
    const x = Float64Array.from({ length: 10 }, (_, i) => i);
    for (let r = 0; r < 5; r++) w.remember(x, r);
    expect(w.size).toBe(3);
    expect(Array.from(w.rows())).toEqual([4, 5, 6, 7, 8, 9]);
    w.clear();
    expect(w.size).toBe(0);
    expect(() => new RefitWindow(2, 1)).toThrow(/at least 2 rows/);
  });

  it('refits a model of the same kind: features, parameters, explicit threshold kept', () => {
    const n = 300;
    const raw = Float64Array.from({ length: n * 3 }, (_, k) => [30, 50, 4e5][k % 3] * (1 + 0.01 * (k % 11)));
    const base = new Detector(
      trainModel(raw, n, {
        nEstimators: 20,
        maxSamples: 64,
        seed: 4,
        contamination: 0.05,
        threshold: 0.61,
        createdAt: '2026-01-01T00:00:00.000Z',
      }),
    );
    const w = new RefitWindow(3, 100);
    for (let r = 0; r < 100; r++) w.remember(raw, r);
    const next = refitDetector(base, w, '2026-02-01T00:00:00.000Z');
    expect(next.threshold).toBe(0.61);
    expect(next.artifact.training.rows).toBe(100);
    expect(next.artifact.training.params).toEqual(base.artifact.training.params);
    expect(next.artifact.training.created_at).toBe('2026-02-01T00:00:00.000Z');
    expect(next.version).not.toBe(base.version);
    expect(() => refitDetector(base, new RefitWindow(4, 10), 'x')).toThrow(/4 columns/);
  });
});

describe('scores without contributions', () => {
  it('gives the same scores, bit for bit, and an empty contribution matrix', () => {
    const n = 400;
    const r = new Rng(31);
    const raw = Float64Array.from({ length: n * 3 }, (_, k) => [30, 50, 4e5][k % 3] * (1 + 0.1 * r.normal()));
    const keys = Array.from({ length: n }, (_, i) => `h${i % 4}`);
    const times = Array.from({ length: n }, (_, i) => Math.floor(i / 4) * 1000);
    const a = trainModel(raw, n, {
      nEstimators: 30,
      maxSamples: 64,
      seed: 2,
      contamination: 0.05,
      createdAt: '2026-01-01T00:00:00.000Z',
      features: hostTemporalFeatures(12, 3),
      keys,
      times,
      outOfRangeWeight: 4,
    });
    const spiky = Float64Array.from(raw, (v, k) => (k % 97 === 0 ? v * 3 : v));
    const full = new Detector(a).scoreSeries(keys, times, spiky, n);
    const bare = new Detector(a).scoreSeries(keys, times, spiky, n, { contributions: false });
    expect(Array.from(bare.scores)).toEqual(Array.from(full.scores));
    expect(bare.contributions.length).toBe(0);
    expect(full.contributions.length).toBe(n * 3);
  });
});

describe('refits on steady traffic', () => {
  it('keep the raw-anomaly rate near the contamination refit after refit (the window holds every row without an alert)', () => {
    // Stationary noise, a refit every 100 points on the last 1,000, no alerts (level 2).
    const r = new Rng(44);
    const n = 6000;
    const times = Array.from({ length: n }, (_, i) => i * MIN);
    const values = Float64Array.from({ length: n }, () => 50 + 5 * r.normal());
    const opts = options({
      features: [valueFeatures[0]],
      outOfRangeWeight: 0,
      contamination: 0.05,
      refitIntervalMs: 100 * MIN,
      refitWindow: 1000,
      gate: { level: 2, windowMs: 0, peak: false },
    });
    const s = StreamingDetector.start(opts, rows('h', times, values, 0, 1000));
    const rates: number[] = [];
    for (let from = 1000; from < n; from += 500) {
      const res = s.process(rows('h', times, values, from, from + 500));
      let above = 0;
      for (const score of res.scores) if (score > s.detector.threshold) above++;
      rates.push(above / 500);
    }
    expect(s.refits).toBeGreaterThanOrEqual(45);
    // With only the rows under the threshold kept, this climbed past 0.2 within 20 refits.
    for (const rate of rates) expect(rate).toBeLessThan(0.1);
    expect(rates.slice(-3).reduce((a, b) => a + b, 0) / 3).toBeGreaterThan(0.02);
  });
});

describe('streaming detector: the repeat rule by value (gate excess)', () => {
  // A spike at 400 and a larger one 7.5 hours later, within the repeat window of the first:
  // the second's extremes are measured from the first's, so it scores no higher.
  const { times, values } = stream(1000, 5);
  values[400] += 30;
  values[430] += 60;
  const g: RepeatGateOptions = { level: 0, windowMs: 12 * HOUR, peak: true, margin: 0.01, peakWindowMs: 3 * HOUR };
  const at = (alerts: number[], row: number) => alerts[row - 150];

  it('passes the value (gateExcess value) or the robust deviation (default) of the point to the gate', () => {
    const plain = run(values, times, options({ gate: g }));
    expect(at(plain.alerts, 400)).toBe(1);
    expect(at(plain.alerts, 430)).toBe(0);
    expect(plain.scores[430 - 150]).toBeLessThanOrEqual(plain.scores[400 - 150]);
    for (const gateExcess of ['value', 'robust_z'] as const) {
      const byValue = run(values, times, options({ gate: { ...g, excess: { factor: 1.05 } }, gateExcess }));
      expect(at(byValue.alerts, 430)).toBe(1);
    }
  });
});
