import { ArtifactError, parseArtifact, serialize, sign, type ModelArtifact } from '../../../src/core/artifact';
import { Detector } from '../../../src/core/detector';
import {
  buildFeatures,
  checkFeatures,
  defaultFeatures,
  hostTemporalFeatures,
  SeriesFeatures,
  TRANSFORMS,
  type FeatureSpec,
  type FeatureTransform,
} from '../../../src/core/features';
import { METRIC_NAMES } from '../../../src/core/metrics';
import { Rng } from '../../../src/core/random';
import { trainModel } from '../../../src/core/train';

const W = 24;
const PARAMS: Record<FeatureTransform, FeatureSpec['params']> = {
  raw: undefined,
  robust_z: { window: W },
  diff: { window: W },
  level_shift: { window: W, span: 4 },
  rolling_max_excess: { window: W, horizon: 100 },
  rolling_min_excess: { window: W, horizon: 100 },
  seasonal_max_excess: { window: W, period: 20, tolerance: 2 },
  seasonal_min_excess: { window: W, period: 20, tolerance: 2 },
  volatility: { window: W, span: 6 },
  level_max_excess: { window: W, span: 5, horizon: 100 },
  level_min_excess: { window: W, span: 5, horizon: 100 },
};

/** One feature of every transform on channel `source`. */
function allFeatures(source = 'value'): FeatureSpec[] {
  return TRANSFORMS.map((t) => ({ name: `${source}_${t}`, source, transform: t, unit: 'u', min: -1e300, max: null, params: PARAMS[t] }));
}

/** A noisy series with a daily-like bump, a level shift and spikes. */
function series(n: number, seed: number): Float64Array {
  const r = new Rng(seed);
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = 10 + 3 * Math.sin((2 * Math.PI * i) / 20) + r.normal() + (i > n / 2 ? 8 : 0) + (i % 97 === 0 ? 30 : 0);
  return x;
}

function compute(specs: FeatureSpec[], inputs: string[], keys: string[], times: number[], raw: Float64Array, maxKeys = 100): Float64Array {
  const sf = new SeriesFeatures(specs, inputs);
  const out = new Float64Array(keys.length * specs.length);
  sf.compute(sf.newStore(maxKeys), keys, times, raw, keys.length, out);
  return out;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Reference implementation of the baseline: median and MAD of the previous `w` points, by sorting. */
function baseline(x: ArrayLike<number>, i: number, w: number): { median: number; scale: number } {
  const win = Array.from(x)
    .slice(Math.max(0, i - w), i)
    .sort((a, b) => a - b);
  const med = (a: number[]): number => (a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2);
  const m = med(win);
  const mad = med(win.map((v) => Math.abs(v - m)).sort((a, b) => a - b));
  return { median: m, scale: Math.max(1.4826 * mad, 1e-3 * Math.abs(m), 1e-9) };
}

describe('feature transforms', () => {
  it('raw features are the input columns, as before temporal features existed', () => {
    const raw = Float64Array.from(range(12).map((v) => v * 1.5));
    const out = new Float64Array(12);
    buildFeatures(defaultFeatures(), raw, 4, out);
    expect(Array.from(out)).toEqual(Array.from(raw));
  });

  it('robust_z and diff match a sorting reference (median, MAD, odd and even windows, ties)', () => {
    const r = new Rng(3);
    // Rounded values give ties; 60 points cover partial, even (24) and full windows.
    const x = Float64Array.from(range(60).map(() => Math.round(r.normal() * 3)));
    for (const w of [24, 25]) {
      const specs: FeatureSpec[] = [
        { name: 'z', source: 'v', transform: 'robust_z', unit: '', min: 0, max: null, params: { window: w } },
        { name: 'd', source: 'v', transform: 'diff', unit: '', min: 0, max: null, params: { window: w } },
      ];
      const out = compute(specs, ['v'], new Array(60).fill('k'), range(60), x);
      expect(out[0]).toBe(0);
      expect(out[1]).toBe(0);
      for (let i = 1; i < 60; i++) {
        const b = baseline(x, i, w);
        expect(out[2 * i]).toBeCloseTo(Math.asinh((x[i] - b.median) / b.scale), 12);
        expect(out[2 * i + 1]).toBeCloseTo(Math.asinh((x[i] - x[i - 1]) / b.scale), 12);
      }
    }
  });

  it('long streams with ties and jumps: robust_z and the rolling extremes equal their references bit for bit', () => {
    // Many slides of the sorted window (the leaving and the entering value far apart or
    // equal) and many completed blocks of the rolling look-back, wrapping its slots.
    const r = new Rng(21);
    const n = 3000;
    const x = Float64Array.from(range(n).map((i) => Math.round(r.normal() * 2) + (i % 500 < 40 ? 25 : 0) + (i % 37 === 0 ? -30 : 0)));
    const horizon = 130;
    const block = Math.ceil(horizon / 64);
    const nb = Math.ceil(horizon / block);
    for (const w of [7, 8]) {
      const specs: FeatureSpec[] = [
        { name: 'z', source: 'v', transform: 'robust_z', unit: '', min: 0, max: null, params: { window: w } },
        { name: 'hi', source: 'v', transform: 'rolling_max_excess', unit: '', min: 0, max: null, params: { window: w, horizon } },
        { name: 'lo', source: 'v', transform: 'rolling_min_excess', unit: '', min: 0, max: null, params: { window: w, horizon } },
      ];
      const out = compute(specs, ['v'], new Array(n).fill('k'), range(n), x);
      for (let i = 1; i < n; i++) {
        const b = baseline(x, i, w);
        expect(out[3 * i]).toBe(Math.asinh((x[i] - b.median) / b.scale));
        // The look-back: the completed blocks held (at most nb) and the current one.
        const done = Math.floor(i / block);
        const prev = Array.from(x.slice((done - Math.min(done, nb)) * block, i));
        const hi = Math.max(...prev);
        const lo = Math.min(...prev);
        expect(out[3 * i + 1]).toBe(x[i] > hi ? Math.asinh((x[i] - hi) / b.scale) : 0);
        expect(out[3 * i + 2]).toBe(x[i] < lo ? Math.asinh((lo - x[i]) / b.scale) : 0);
      }
    }
  });

  it('level_shift, extremes, seasonal excesses and volatility follow their definitions', () => {
    const x = series(300, 5);
    const specs = allFeatures('v');
    const d = specs.length;
    const out = compute(specs, ['v'], new Array(300).fill('k'), range(300), x);
    const col = (t: FeatureTransform, i: number): number => out[i * d + TRANSFORMS.indexOf(t)];
    for (const i of [30, 97, 151, 194, 299]) {
      const b = baseline(x, i, W);
      const prev = Array.from(x.slice(0, i));
      const mean4 = (x[i] + x[i - 1] + x[i - 2] + x[i - 3]) / 4;
      expect(col('raw', i)).toBe(x[i]);
      expect(col('level_shift', i)).toBeCloseTo(Math.asinh((mean4 - b.median) / b.scale), 10);
      // The rolling look-back covers the last 100 points at least (whole blocks of 2 more).
      const hi = Math.max(...prev.slice(Math.max(0, i - 100)));
      const hiWide = Math.max(...prev.slice(Math.max(0, i - 102)));
      const ex = col('rolling_max_excess', i);
      if (x[i] > hiWide) expect(ex).toBeGreaterThan(0);
      if (x[i] <= hi) expect(ex).toBe(0);
      const season = prev.slice(i - 22, i - 17);
      expect(col('seasonal_max_excess', i)).toBeCloseTo(
        x[i] > Math.max(...season) ? Math.asinh((x[i] - Math.max(...season)) / b.scale) : 0,
        10,
      );
      expect(col('seasonal_min_excess', i)).toBeCloseTo(
        x[i] < Math.min(...season) ? Math.asinh((Math.min(...season) - x[i]) / b.scale) : 0,
        10,
      );
      const last6 = Array.from(x.slice(i - 5, i + 1));
      const m6 = last6.reduce((a, v) => a + v, 0) / 6;
      const sd6 = Math.sqrt(last6.reduce((a, v) => a + (v - m6) ** 2, 0) / 6);
      const win = prev.slice(i - W);
      const mw = win.reduce((a, v) => a + v, 0) / W;
      const sdw = Math.sqrt(win.reduce((a, v) => a + (v - mw) ** 2, 0) / W);
      expect(col('volatility', i)).toBeCloseTo(Math.log((sd6 + 1e-3 * b.scale) / (sdw + 1e-3 * b.scale)), 8);
    }
    // A spike above everything before it shows up in the extremes.
    expect(col('rolling_max_excess', 194)).toBeGreaterThan(1);
  });

  it('level extremes compare the level with the earlier levels it does not overlap', () => {
    const n = 400;
    const x = series(n, 7);
    const specs = allFeatures('v');
    const d = specs.length;
    const out = compute(specs, ['v'], new Array(n).fill('k'), range(n), x);
    const col = (t: FeatureTransform, i: number): number => out[i * d + TRANSFORMS.indexOf(t)];
    const k = 5;
    const level = (j: number): number => {
      const from = Math.max(0, j - k + 1);
      let sum = 0;
      for (let u = from; u <= j; u++) sum += x[u];
      return sum / (j - from + 1);
    };
    let rises = 0;
    let falls = 0;
    for (let i = 8; i < n; i++) {
      const b = baseline(x, i, W);
      const li = level(i);
      // Levels ending k or more points back: at least the last 100 of them, at most 102.
      const last = i - k;
      if (last < 0) continue;
      const narrow = range(n)
        .filter((j) => j <= last && j >= Math.max(0, last - 99))
        .map(level);
      const wide = range(n)
        .filter((j) => j <= last && j >= Math.max(0, last - 101))
        .map(level);
      const up = col('level_max_excess', i);
      const down = col('level_min_excess', i);
      if (li <= Math.max(...narrow)) expect(up).toBe(0);
      if (li > Math.max(...wide)) {
        rises++;
        if (Math.max(...narrow) === Math.max(...wide)) expect(up).toBeCloseTo(Math.asinh((li - Math.max(...wide)) / b.scale), 10);
      }
      if (li >= Math.min(...narrow)) expect(down).toBe(0);
      if (li < Math.min(...wide)) {
        falls++;
        if (Math.min(...narrow) === Math.min(...wide)) expect(down).toBeCloseTo(Math.asinh((Math.min(...wide) - li) / b.scale), 10);
      }
    }
    // The series' level shift and spikes give new level extremes.
    expect(rises).toBeGreaterThan(0);
    expect(falls).toBeGreaterThan(0);
  });

  it('has no look-ahead: features of row i do not change when later rows change', () => {
    const n = 400;
    const specs = allFeatures('v');
    const d = specs.length;
    const keys = new Array<string>(n).fill('h');
    const base = series(n, 11);
    const ref = compute(specs, ['v'], keys, range(n), base);
    const r = new Rng(12);
    for (const cut of [1, 57, 199, 398]) {
      const changed = base.slice();
      for (let i = cut + 1; i < n; i++) changed[i] = r.normal() * 1000;
      const out = compute(specs, ['v'], keys, range(n), changed);
      expect(Array.from(out.subarray(0, (cut + 1) * d))).toEqual(Array.from(ref.subarray(0, (cut + 1) * d)));
      expect(Array.from(out.subarray((cut + 1) * d))).not.toEqual(Array.from(ref.subarray((cut + 1) * d)));
    }
  });

  it('a key with no history gets neutral temporal features (0) and its raw value', () => {
    const specs = allFeatures('v');
    const out = compute(specs, ['v'], ['new-host'], [0], Float64Array.of(42));
    expect(Array.from(out)).toEqual(TRANSFORMS.map((t) => (t === 'raw' ? 42 : 0)));
  });

  it('keeps keys apart: interleaved hosts get the features each would get alone', () => {
    const a = series(150, 1);
    const b = series(150, 2).map((v) => v * 100);
    const specs = allFeatures('v');
    const d = specs.length;
    const keys: string[] = [];
    const times: number[] = [];
    const raw = new Float64Array(300);
    for (let i = 0; i < 150; i++) {
      keys.push('a', 'b');
      times.push(i, i);
      raw[2 * i] = a[i];
      raw[2 * i + 1] = b[i];
    }
    const both = compute(specs, ['v'], keys, times, raw);
    const alone = compute(specs, ['v'], new Array(150).fill('a'), range(150), a);
    for (let i = 0; i < 150; i++)
      expect(Array.from(both.subarray(2 * i * d, (2 * i + 1) * d))).toEqual(Array.from(alone.subarray(i * d, (i + 1) * d)));
  });

  it('scores a late or duplicate row as if it had no history, without changing the state', () => {
    const specs = allFeatures('v');
    const sf = new SeriesFeatures(specs, ['v']);
    const store = sf.newStore(4);
    const out = new Float64Array(specs.length * 3);
    sf.compute(store, ['k', 'k', 'k'], [0, 10, 20], Float64Array.of(1, 2, 3), 3, out);
    const late = new Float64Array(specs.length);
    sf.compute(store, ['k'], [15], Float64Array.of(100), 1, late);
    expect(Array.from(late)).toEqual(TRANSFORMS.map((t) => (t === 'raw' ? 100 : 0)));
    // The next in-order point sees 1, 2, 3 only: the same as without the late row.
    const next = new Float64Array(specs.length);
    sf.compute(store, ['k'], [30], Float64Array.of(4), 1, next);
    const fresh = new Float64Array(specs.length * 4);
    sf.compute(sf.newStore(4), ['k', 'k', 'k', 'k'], [0, 10, 20, 30], Float64Array.of(1, 2, 3, 4), 4, fresh);
    expect(Array.from(next)).toEqual(Array.from(fresh.subarray(3 * specs.length)));
  });

  it('is deterministic', () => {
    const x = series(500, 9);
    const specs = allFeatures('v');
    const keys = new Array<string>(500).fill('k');
    expect(Array.from(compute(specs, ['v'], keys, range(500), x))).toEqual(Array.from(compute(specs, ['v'], keys, range(500), x)));
  });

  it('rejects non-finite inputs with the row and channel', () => {
    const sf = new SeriesFeatures(allFeatures('v'), ['v']);
    expect(() =>
      sf.compute(sf.newStore(1), ['k', 'k'], [0, 1], Float64Array.of(1, NaN), 2, new Float64Array(2 * TRANSFORMS.length)),
    ).toThrow(/row 1: v is not a finite number/);
  });
});

describe('bounded per-key state', () => {
  it('holds at most maxKeys keys, evicting the least recently used, and its memory does not grow with the stream', () => {
    const specs = allFeatures('v');
    const sf = new SeriesFeatures(specs, ['v']);
    const store = sf.newStore(3);
    const out = new Float64Array(specs.length);
    const perKey = store.bytesPerKey;
    expect(perKey).toBeGreaterThan(0);
    expect(perKey).toBeLessThan(8 * 1024);
    for (let t = 0; t < 5000; t++) sf.compute(store, [`h${t % 3}`], [t], Float64Array.of(Math.sin(t)), 1, out);
    expect(store.size).toBe(3);
    expect(store.bytesPerKey).toBe(perKey);
    expect(store.evictions).toBe(0);
    // Last uses: h2 (t=4997), h0, h1; touching h2 leaves h0 the least recently used.
    sf.compute(store, ['h2'], [6000], Float64Array.of(0), 1, out);
    sf.compute(store, ['h9'], [6000], Float64Array.of(0), 1, out);
    expect(store.size).toBe(3);
    expect(store.evictions).toBe(1);
    expect(store.has('h0')).toBe(false);
    expect(store.has('h1') && store.has('h2') && store.has('h9')).toBe(true);
    // An evicted key comes back with no history.
    sf.compute(store, ['h0'], [7000], Float64Array.of(5), 1, out);
    expect(Array.from(out)).toEqual(TRANSFORMS.map((t) => (t === 'raw' ? 5 : 0)));
  });

  it('keeps only the sides of the rolling extremes its features read, with the same values as keeping both', () => {
    const all = allFeatures('v');
    const maxOnly = all.filter((s) => s.transform !== 'rolling_min_excess' && s.transform !== 'level_min_excess');
    const x = series(3000, 11);
    const keys = new Array<string>(3000).fill('k');
    const full = compute(all, ['v'], keys, range(3000), x);
    const some = compute(maxOnly, ['v'], keys, range(3000), x);
    for (let i = 0; i < 3000; i++)
      for (let f = 0; f < maxOnly.length; f++) expect(some[i * maxOnly.length + f]).toBe(full[i * all.length + all.indexOf(maxOnly[f])]);
    // The minima of the point blocks and of the level blocks are not held: one double per block each.
    // A look-back of 100 points in blocks of ceil(100 / 64) = 2 points: 50 blocks.
    const bytes = (specs: FeatureSpec[]): number => new SeriesFeatures(specs, ['v']).newStore(1).bytesPerKey;
    expect(bytes(all) - bytes(maxOnly)).toBe(2 * 8 * 50);
  });

  it('refuses parameters that would make the state unbounded', () => {
    const big: FeatureSpec = { name: 'z', source: 'v', transform: 'robust_z', unit: '', min: 0, max: null, params: { window: 1_000_000 } };
    expect(checkFeatures([big], ['v'])?.[1]).toMatch(/window in \[2, 4096\]/);
  });
});

describe('feature specs in the artifact', () => {
  const r = new Rng(21);
  const n = 400;
  const raw = Float64Array.from({ length: n * 3 }, () => 20 + r.normal());
  const temporal: FeatureSpec[] = [
    ...defaultFeatures(),
    {
      name: 'cpu_z',
      source: 'cpu_usage',
      transform: 'robust_z',
      unit: 'robust units (asinh)',
      min: -1e300,
      max: null,
      params: { window: 48 },
    },
    {
      name: 'net_diff',
      source: 'network_load',
      transform: 'diff',
      unit: 'robust units (asinh)',
      min: -1e300,
      max: null,
      params: { window: 48 },
    },
  ];
  const opts = { nEstimators: 10, maxSamples: 64, seed: 1, contamination: 0.05, createdAt: '2026-01-01T00:00:00.000Z' };

  it('round-trips a host-metric model with temporal features and serves it (inputs default to the three metrics)', () => {
    const a = trainModel(raw, n, { ...opts, features: temporal, keys: new Array(n).fill('h'), times: range(n) });
    expect(a.inputs).toBeUndefined();
    const back = parseArtifact(serialize(a));
    expect(back).toEqual(a);
    const det = new Detector(back);
    expect(det.temporal).toBe(true);
    const res = det.scoreSeries(new Array(n).fill('h'), range(n), raw, n);
    expect(res.contributions.length).toBe(n * METRIC_NAMES.length);
  });

  it('a model of other inputs loads but cannot be served in place of the host metrics', () => {
    const x = Float64Array.from({ length: n }, () => r.normal());
    const specs: FeatureSpec[] = [
      { name: 'value', source: 'value', transform: 'raw', unit: 'v', min: -1e300, max: null },
      { name: 'value_z', source: 'value', transform: 'robust_z', unit: 'v', min: -1e300, max: null, params: { window: 48 } },
    ];
    const a = parseArtifact(serialize(trainModel(x, n, { ...opts, features: specs, inputs: ['value'], outOfRangeWeight: 2 })));
    expect(a.inputs).toEqual(['value']);
    expect(a.scoring).toEqual({ out_of_range_weight: 2 });
    const nov = parseArtifact(serialize(trainModel(x, n, { ...opts, features: specs, inputs: ['value'], noveltyWeight: 0.25 })));
    expect(nov.scoring).toEqual({ out_of_range_weight: 0, novelty_weight: 0.25 });
    let err: unknown;
    try {
      new Detector(a);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ArtifactError);
    expect((err as Error).message).toMatch(/takes inputs \(value\), but this caller provides \(cpu_usage, memory_usage, network_load\)/);
    expect(new Detector(a, { inputs: ['value'] }).inputs).toEqual(['value']);
    expect(new Detector(a, { inputs: 'any' }).scoreRaw(x, n).contributions.length).toBe(n);
    // History can pass to a model with the same features, never to one with others.
    const keep = new Detector(a, { inputs: 'any' });
    expect(new Detector(a, { inputs: 'any', state: keep.state }).state).toBe(keep.state);
    const other = new SeriesFeatures([specs[0], { ...specs[1], params: { window: 10 } }], ['value']).newStore(1);
    expect(() => new Detector(a, { inputs: 'any', state: other })).toThrow(/different per-host history/);
  });

  it.each([
    [
      'a source that is not an input',
      (a: ModelArtifact) => ((a.features[3] as { source: string }).source = 'disk'),
      /invalid at features.3.source: "disk" is not one of the inputs/,
    ],
    [
      'a missing param',
      (a: ModelArtifact) => delete a.features[3].params,
      /invalid at features.3.params.window: transform robust_z needs an integer window/,
    ],
    [
      'a param the transform does not take',
      (a: ModelArtifact) => ((a.features[3].params as Record<string, number>).period = 5),
      /invalid at features.3.params.period: transform robust_z does not take period/,
    ],
    [
      'params on a raw feature',
      (a: ModelArtifact) => (a.features[0].params = { window: 5 }),
      /invalid at features.0.params: transform raw takes no params/,
    ],
    [
      'two windows on one channel',
      (a: ModelArtifact) => (
        a.features.push({ ...a.features[3], name: 'cpu_z2', params: { window: 10 } }),
        a.scaler.mean.push(0),
        a.scaler.scale.push(1)
      ),
      /must share one window/,
    ],
    [
      'an unknown transform',
      (a: ModelArtifact) => ((a.features[3] as { transform: string }).transform = 'fft'),
      /invalid at features.3.transform/,
    ],
    [
      'duplicate inputs',
      (a: ModelArtifact) => (a.inputs = ['cpu_usage', 'cpu_usage', 'network_load']),
      /invalid at inputs: duplicate input names/,
    ],
    [
      'a novelty weight above 1',
      (a: ModelArtifact) => (a.scoring = { out_of_range_weight: 0, novelty_weight: 1.5 }),
      /invalid at scoring.novelty_weight: must be in \[0, 1\]/,
    ],
    [
      'two level spans on one channel',
      (a: ModelArtifact) => (
        a.features.push(
          { ...a.features[3], name: 'cpu_lv1', transform: 'level_max_excess', params: { window: 48, span: 3, horizon: 50 } },
          { ...a.features[3], name: 'cpu_lv2', transform: 'level_min_excess', params: { window: 48, span: 4, horizon: 50 } },
        ),
        a.scaler.mean.push(0, 0),
        a.scaler.scale.push(1, 1)
      ),
      /level extremes of cpu_usage must share one span/,
    ],
  ])('rejects %s with one line naming the field', (_name, mutate, pattern) => {
    const a = JSON.parse(serialize(trainModel(raw, n, { ...opts, features: temporal }))) as ModelArtifact;
    mutate(a);
    const { sha256: _s, ...unsigned } = a;
    expect(() => parseArtifact(serialize(sign(unsigned)), 'model artifact x.json')).toThrow(pattern);
  });
});

describe('history for the service (stores per reader, priming, points without history)', () => {
  const specs = hostTemporalFeatures(20, 3);
  const n = 120;
  const r = new Rng(33);
  const raw = Float64Array.from({ length: n * 3 }, (_, k) => [30, 50, 4e5][k % 3] * (1 + 0.05 * r.normal()));
  const keys = new Array<string>(n).fill('h');
  const times = range(n).map((i) => i * 10_000);
  const det = new Detector(
    trainModel(raw, n, {
      nEstimators: 20,
      maxSamples: 64,
      seed: 2,
      contamination: 0.05,
      createdAt: '2026-01-01T00:00:00.000Z',
      features: specs,
      keys,
      times,
    }),
  );

  it('declares raw + robust_z, diff and level_shift per metric, with a history of `window` points', () => {
    expect(specs.map((s) => s.name).slice(0, 4)).toEqual(['cpu_usage', 'memory_usage', 'network_load', 'cpu_usage_robust_z']);
    expect(specs).toHaveLength(12);
    expect(det.historyPoints).toBe(20);
    expect(
      new Detector(
        trainModel(raw, n, { nEstimators: 5, maxSamples: 32, seed: 1, contamination: 0.05, createdAt: '2026-01-01T00:00:00.000Z' }),
      ).historyPoints,
    ).toBe(0);
  });

  it('a row with time NaN is scored as with no history and leaves the store untouched', () => {
    const store = det.stateFor(undefined, 10);
    det.scoreSeries(keys.slice(0, 50), times.slice(0, 50), raw.subarray(0, 150), 50, { state: store });
    expect(store.size).toBe(1);
    const spike = Float64Array.of(80, 50, 4e5);
    const noTime = det.scoreSeries(['other'], [NaN], spike, 1, { state: store });
    expect(store.size).toBe(1);
    expect(noTime.scores[0]).toBe(det.scoreRaw(spike, 1).scores[0]);
    const withHistory = det.scoreSeries(['h'], [50 * 10_000], spike, 1, { state: store });
    expect(withHistory.scores[0]).toBeGreaterThan(noTime.scores[0]);
  });

  it('remember() then scoreSeries gives the scores of one continuous pass (what the poller does after a restart)', () => {
    const all = det.scoreSeries(keys, times, raw, n, { state: det.stateFor(undefined) });
    const store = det.stateFor(undefined);
    // Only the last historyPoints points before the first scored one are needed.
    const from = 80;
    const h = det.historyPoints;
    det.remember(keys.slice(from - h, from), times.slice(from - h, from), raw.subarray((from - h) * 3, from * 3), h, store);
    const rest = det.scoreSeries(keys.slice(from), times.slice(from), raw.subarray(from * 3), n - from, { state: store });
    for (let i = 0; i < n - from; i++) expect(rest.scores[i]).toBeCloseTo(all.scores[from + i], 12);
    // Without the history the first scores differ: the test can tell.
    const cold = det.scoreSeries(keys.slice(from), times.slice(from), raw.subarray(from * 3), n - from, { state: det.stateFor(undefined) });
    expect(cold.scores[0]).not.toBeCloseTo(all.scores[from], 6);
  });

  it('stateFor keeps a store across models with the same temporal features and replaces it otherwise', () => {
    const store = det.stateFor(undefined, 7);
    const same = new Detector(
      trainModel(raw, n, {
        nEstimators: 10,
        maxSamples: 32,
        seed: 9,
        contamination: 0.1,
        createdAt: '2026-01-01T00:00:00.000Z',
        features: specs,
        keys,
        times,
      }),
    );
    expect(same.stateFor(store)).toBe(store);
    const other = new Detector(
      trainModel(raw, n, {
        nEstimators: 10,
        maxSamples: 32,
        seed: 9,
        contamination: 0.1,
        createdAt: '2026-01-01T00:00:00.000Z',
        features: hostTemporalFeatures(30, 3),
        keys,
        times,
      }),
    );
    const fresh = other.stateFor(store);
    expect(fresh).not.toBe(store);
    expect(fresh.maxKeys).toBe(7);
    expect(fresh.size).toBe(0);
  });
});

describe('artifact key order', () => {
  it('a model trained on specs built with any key order verifies after a round trip (the checksum covers canonical JSON)', () => {
    const n = 200;
    const r = new Rng(8);
    const raw = Float64Array.from({ length: n * 3 }, () => 20 + r.normal());
    const shuffled: FeatureSpec[] = hostTemporalFeatures(12, 3).map((s) => {
      const { params, ...rest } = s;
      const entries = Object.entries(rest).reverse();
      return {
        ...(params ? { params: Object.fromEntries(Object.entries(params).reverse()) } : {}),
        ...Object.fromEntries(entries),
      } as FeatureSpec;
    });
    expect(Object.keys(shuffled[3])[0]).toBe('params');
    const a = trainModel(raw, n, {
      nEstimators: 5,
      maxSamples: 32,
      seed: 1,
      contamination: 0.05,
      createdAt: '2026-01-01T00:00:00.000Z',
      features: shuffled,
      keys: new Array(n).fill('h'),
      times: range(n),
    });
    expect(parseArtifact(serialize(a))).toEqual(a);
    const b = trainModel(raw, n, {
      nEstimators: 5,
      maxSamples: 32,
      seed: 1,
      contamination: 0.05,
      createdAt: '2026-01-01T00:00:00.000Z',
      features: hostTemporalFeatures(12, 3),
      keys: new Array(n).fill('h'),
      times: range(n),
    });
    expect(serialize(b)).toBe(serialize(a));
  });
});
