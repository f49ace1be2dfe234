import { NODE_METRICS } from '../../../src/core/metrics';
import { DEFAULT_GATE } from '../../../src/core/gate';
import { hostLearningOptions } from '../../../src/core/host-learning';
import { StreamingDetector } from '../../../src/core/streaming';
import { loadDetectorFile } from '../../../src/model-store';
import { MODEL_PATH } from '../../helpers/fixtures';

/**
 * The prior while hosts learn, with no fleet yet (a fresh start on one busy host): the
 * bundled model alerts only on blatant values, once, not on a host that is merely busy.
 */
function run(level: [number, number, number], steps: number) {
  const engine = StreamingDetector.learner(hostLearningOptions({ prior: loadDetectorFile(MODEL_PATH), gate: DEFAULT_GATE, maxKeys: 10 }));
  const raw = new Float64Array(steps * 3);
  for (let i = 0; i < steps; i++) raw.set([level[0] - (i % 3) * 0.1, level[1] - (i % 2) * 0.1, level[2] + (i % 5) * 100], i * 3);
  return engine.process({
    keys: new Array<string>(steps).fill('h'),
    times: Array.from({ length: steps }, (_, i) => i * 10_000),
    raw,
    n: steps,
  });
}

describe('host learning: the prior with no fleet', () => {
  it('does not page a host that starts out busy (CPU at 100 %, memory low)', () => {
    const res = run([100, 7, 5e4], 50);
    expect(Array.from(res.learning).every((l) => l === 1)).toBe(true);
    expect(res.alerts.reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('alerts once within three steps on CPU and memory at 100 %, then suppresses the repeats', () => {
    const res = run([100, 100, 1e5], 50);
    const first = res.alerts.indexOf(1);
    expect(first).toBeGreaterThanOrEqual(0);
    expect(first).toBeLessThanOrEqual(2);
    expect(res.alerts.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(3);
  });

  it('learns a host the prior alerts on at every step like any other: learned after its 60 points', () => {
    // The prior's rule without repeat suppression: it alerts on every blatant step.
    const opts = {
      ...hostLearningOptions({ prior: loadDetectorFile(MODEL_PATH), gate: DEFAULT_GATE, maxKeys: 10 }),
      priorGate: DEFAULT_GATE,
    };
    const engine = StreamingDetector.learner(opts);
    const n = 80;
    const raw = Float64Array.from({ length: n * 3 }, (_, i) => (i % 3 === 2 ? 1e5 + (i % 7) * 100 : 100 - (i % 5) * 0.1));
    const res = engine.process({ keys: new Array<string>(n).fill('h'), times: Array.from({ length: n }, (_, i) => i * 10_000), raw, n });
    expect(res.alerts.slice(0, 60).reduce((a, b) => a + b, 0)).toBeGreaterThan(50);
    expect(Array.from(res.learning).indexOf(0)).toBe(60);
  });
});

describe('host learning: a lone new host', () => {
  it('is learned after 60 points, stays quiet, and alerts on a memory jump and a network burst within 3 steps, the jumping metric on top', () => {
    const engine = StreamingDetector.learner(hostLearningOptions({ prior: loadDetectorFile(MODEL_PATH), gate: DEFAULT_GATE, maxKeys: 10 }));
    let seed = 1;
    const rnd = (): number => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const n = 180;
    const raw = new Float64Array(n * 3);
    const kind: string[] = [];
    for (let i = 0; i < n; i++) {
      const cpu = Math.min(100, 35 + 20 * (rnd() - 0.5) + (rnd() < 0.05 ? 30 : 0));
      let mem = 2.1 + 0.1 * (rnd() - 0.5);
      let net = 5e4 * (0.8 + 0.4 * rnd());
      kind.push(i >= 130 && i < 142 ? 'memory' : i >= 160 && i < 170 ? 'network' : '');
      if (kind[i] === 'memory') mem = 27.6;
      if (kind[i] === 'network') net = 3e7;
      raw.set([cpu, mem, net], i * 3);
    }
    const res = engine.process({ keys: new Array<string>(n).fill('h'), times: Array.from({ length: n }, (_, i) => i * 10_000), raw, n });
    expect(Array.from(res.learning).indexOf(0)).toBe(60);
    expect(Array.from(res.alerts.slice(0, 130)).reduce((a, b) => a + b, 0)).toBe(0);
    for (const [metric, start, col] of [
      ['memory', 130, 1],
      ['network', 160, 2],
    ] as const) {
      const first = Array.from(res.alerts).findIndex((a, i) => a === 1 && kind[i] === metric);
      expect(first - start).toBeGreaterThanOrEqual(0);
      expect(first - start).toBeLessThan(3);
      const c = [0, 1, 2].map((k) => res.contributions[first * 3 + k]);
      expect(c.indexOf(Math.max(...c))).toBe(col);
    }
  });
});

describe('host learning: incidents minutes apart on one host', () => {
  it('alerts on a memory balloon, a network burst and a CPU burn within 3 steps each, the right metric on top (the repeat rule is per metric)', () => {
    const engine = StreamingDetector.learner(hostLearningOptions({ prior: loadDetectorFile(MODEL_PATH), gate: DEFAULT_GATE, maxKeys: 10 }));
    let seed = 7;
    const rnd = (): number => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    // An idle host (as bench:real-host's after its busy first minutes), then three loads 5 minutes apart.
    const n = 230;
    const raw = new Float64Array(n * 3);
    const kind: string[] = [];
    for (let i = 0; i < n; i++) {
      let cpu = 0.8 + 0.4 * (rnd() - 0.5);
      let mem = 1.1 + 0.02 * (rnd() - 0.5);
      let net = 5.23e4 + 300 * rnd();
      kind.push(i >= 130 && i < 142 ? 'memory' : i >= 160 && i < 169 ? 'network' : i >= 190 && i < 202 ? 'cpu' : '');
      if (kind[i] === 'memory') mem = 26.2;
      if (kind[i] === 'network') net = 3e7;
      if (kind[i] === 'cpu') cpu = 100;
      raw.set([cpu, mem, net], i * 3);
    }
    const res = engine.process({ keys: new Array<string>(n).fill('h'), times: Array.from({ length: n }, (_, i) => i * 10_000), raw, n });
    expect(Array.from(res.alerts.slice(60, 130)).reduce((a, b) => a + b, 0)).toBe(0);
    for (const [metric, start, col] of [
      ['memory', 130, 1],
      ['network', 160, 2],
      ['cpu', 190, 0],
    ] as const) {
      const first = Array.from(res.alerts).findIndex((a, i) => a === 1 && kind[i] === metric);
      expect(first - start).toBeGreaterThanOrEqual(0);
      expect(first - start).toBeLessThan(3);
      const c = [0, 1, 2].map((k) => res.contributions[first * 3 + k]);
      expect(c.indexOf(Math.max(...c))).toBe(col);
    }
  });
});

describe('host learning: one event is one alert', () => {
  it('a joint rise of CPU and memory alerts once while its raw anomalies last, whichever metric is on top at each step; a later burst of another metric still alerts', () => {
    const engine = StreamingDetector.learner(hostLearningOptions({ prior: loadDetectorFile(MODEL_PATH), gate: DEFAULT_GATE, maxKeys: 10 }));
    let seed = 11;
    const rnd = (): number => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const n = 230;
    const raw = new Float64Array(n * 3);
    for (let i = 0; i < n; i++) {
      let cpu = 20 + 2 * (rnd() - 0.5);
      let mem = 40 + 1 * (rnd() - 0.5);
      let net = 5e5 + 5e3 * rnd();
      // Both up together, each by a similar amount with noise, so their shares cross.
      if (i >= 130 && i < 150) {
        cpu = i % 2 === 0 ? 80 : 50;
        mem = i % 2 === 0 ? 55 : 85;
      }
      if (i >= 190 && i < 199) net = 3e7;
      raw.set([cpu, mem, net], i * 3);
    }
    const res = engine.process({ keys: new Array<string>(n).fill('h'), times: Array.from({ length: n }, (_, i) => i * 10_000), raw, n });
    const top = (i: number): number => {
      const c = [0, 1, 2].map((k) => res.contributions[i * 3 + k]);
      return c.indexOf(Math.max(...c));
    };
    const joint = Array.from({ length: 20 }, (_, k) => 130 + k);
    // The raw anomalies run through the rise, with CPU and memory each on top at some step.
    expect(joint.every((i) => res.anomalies[i] === 1)).toBe(true);
    expect(new Set(joint.map(top))).toEqual(new Set([0, 1]));
    expect(joint.reduce((k, i) => k + res.alerts[i], 0)).toBe(1);
    const burst = Array.from(res.alerts.slice(190, 199)).indexOf(1);
    expect(burst).toBeGreaterThanOrEqual(0);
    expect(burst).toBeLessThan(3);
    expect(top(190 + burst)).toBe(2);
  });
});

describe('host learning over the node set', () => {
  const names = NODE_METRICS.map((d) => d.name);
  const m = names.length;
  const rowsOf = (steps: number, hosts: number) => {
    const raw = new Float64Array(steps * hosts * m);
    const keys: string[] = [];
    const times: number[] = [];
    for (let i = 0; i < steps; i++)
      for (let h = 0; h < hosts; h++) {
        const r = i * hosts + h;
        keys.push(`h${h}`);
        times.push(i * 10_000);
        for (let c = 0; c < m; c++) raw[r * m + c] = (c === 0 || c === 1 ? 30 : 1000) + ((i * 7 + c * 3 + h) % 11);
      }
    return { keys, times, raw, n: steps * hosts };
  };

  it("the bundled model of the three judges learning hosts on its own columns; the others get no contribution; then each host's learned model", () => {
    const prior = loadDetectorFile(MODEL_PATH);
    const engine = StreamingDetector.learner(hostLearningOptions({ prior, gate: DEFAULT_GATE, maxKeys: 10, metrics: names }));
    expect(engine.opts.features).toHaveLength(4 * m);
    const rows = rowsOf(100, 2);
    const res = engine.process(rows);
    const learning = Array.from(res.learning);
    const first = learning.indexOf(0);
    expect(first).toBeGreaterThan(0);
    // The prior's own scores and contributions of the three columns.
    const three = new Float64Array(first * 3);
    for (let i = 0; i < first; i++) three.set(rows.raw.subarray(i * m, i * m + 3), i * 3);
    const want = prior.scoreRaw(three, first);
    for (let i = 0; i < first; i++) {
      expect(res.scores[i]).toBe(want.scores[i]);
      expect(Array.from(res.contributions.subarray(i * m, i * m + 3))).toEqual(Array.from(want.contributions.subarray(i * 3, i * 3 + 3)));
      expect(Array.from(res.contributions.subarray(i * m + 3, i * m + m))).toEqual(new Array(m - 3).fill(0));
    }
    // Learned: every metric can contribute.
    const last = rows.n - 1;
    expect(res.learning[last]).toBe(0);
    expect(Array.from(res.contributions.subarray(last * m + 3, last * m + m)).some((c) => c !== 0)).toBe(true);
  });

  it('a prior with a metric outside the set is not used (nothing judges a learning host before the first fit)', () => {
    const prior = loadDetectorFile(MODEL_PATH);
    const opts = hostLearningOptions({ prior, gate: DEFAULT_GATE, maxKeys: 10, metrics: ['load1', 'load5'] });
    expect(opts.learning?.prior).toBeUndefined();
  });
});
