import { DEFAULT_GATE } from '../../../src/core/gate';
import { DEFAULT_HOST_LEARNING, hostLearningOptions } from '../../../src/core/host-learning';
import { StreamingDetector } from '../../../src/core/streaming';
import { formatPoint, int } from '../../../src/influx/line-protocol';
import { planRows, predictionLines, runPlan, type CycleStep, type HostState } from '../../../src/poller/cycle';
import type { HostSteps, StepValues } from '../../../src/poller/telegraf';

/** The pure cycle step, without influxd: row choice, order, settling, and the lines. */
const S = 10_000;

function steps(spec: Record<string, Array<[number, Partial<StepValues>]>>): HostSteps {
  const out: HostSteps = new Map();
  for (const [host, list] of Object.entries(spec)) out.set(host, new Map(list.map(([k, v]) => [k * S, { ...v } as StepValues])));
  return out;
}
const full = (cpu: number): Partial<StepValues> => ({ cpu_usage: cpu, memory_usage: 40, network_load: 1000 });

function cycle(over: Partial<CycleStep> = {}): CycleStep {
  return {
    mode: 'live',
    from: 0,
    to: 100 * S,
    now: 100 * S,
    settleMs: 0,
    intervalMs: S,
    prime: false,
    primeFromStart: false,
    hosts: new Map(),
    owns: () => true,
    ...over,
  };
}

describe('planRows', () => {
  it("orders the rows by time, then host, and moves each host's watermark", () => {
    const hosts = new Map<string, HostState>();
    const plan = planRows(
      steps({
        b: [
          [2, full(1)],
          [1, full(2)],
        ],
        a: [
          [2, full(3)],
          [1, full(4)],
        ],
      }),
      cycle({ hosts }),
    );
    expect(plan.keys).toEqual(['a', 'b', 'a', 'b']);
    expect(plan.times).toEqual([S, S, 2 * S, 2 * S]);
    expect(Array.from(plan.raw.filter((_, i) => i % 3 === 0))).toEqual([4, 2, 3, 1]);
    expect([...plan.write]).toEqual([1, 1, 1, 1]);
    expect(hosts.get('a')?.watermark).toBe(2 * S);
    expect(hosts.get('b')?.watermark).toBe(2 * S);
  });

  it("skips steps at or before the watermark, and other shards' hosts", () => {
    const hosts = new Map<string, HostState>([['a', { watermark: S, seenAt: 0 }]]);
    const plan = planRows(
      steps({
        a: [
          [1, full(1)],
          [2, full(2)],
        ],
        other: [[2, full(3)]],
      }),
      cycle({ hosts, owns: (h) => h !== 'other' }),
    );
    expect(plan.keys).toEqual(['a']);
    expect(plan.times).toEqual([2 * S]);
    expect(hosts.has('other')).toBe(false);
  });

  it('waits settleMs for a step missing a metric, then skips it and counts it; later steps wait behind it', () => {
    const hosts = new Map<string, HostState>();
    const data = steps({
      a: [
        [1, full(1)],
        [2, { cpu_usage: 5 }],
        [3, full(3)],
      ],
    });
    let plan = planRows(data, cycle({ hosts, now: 10 * S, settleMs: 30_000 }));
    expect(plan.times).toEqual([S]);
    expect(plan.skipped.incomplete).toBe(0);
    plan = planRows(data, cycle({ hosts, now: 10 * S + 30_000, settleMs: 30_000 }));
    expect(plan.times).toEqual([3 * S]);
    expect(plan.skipped.incomplete).toBe(1);
    expect(hosts.get('a')?.watermark).toBe(3 * S);
  });

  it('settles in one cycle every step that has waited settleMs, so a host missing a metric for good lags by settleMs only', () => {
    const hosts = new Map<string, HostState>();
    const missing = (k: number): [number, Partial<StepValues>] => [k, { cpu_usage: 5, memory_usage: 40 }];
    const data = steps({ a: [missing(1), missing(2), missing(3), missing(4), missing(5)] });
    // All five seen at once (a buffer flushed late): they wait 30 s from then, then all go.
    let plan = planRows(data, cycle({ hosts, now: 6 * S, settleMs: 30_000 }));
    expect(plan.skipped.incomplete).toBe(0);
    plan = planRows(data, cycle({ hosts, now: 6 * S + 29_999, settleMs: 30_000 }));
    expect(plan.skipped.incomplete).toBe(0);
    plan = planRows(data, cycle({ hosts, now: 6 * S + 30_000, settleMs: 30_000 }));
    expect(plan.skipped.incomplete).toBe(5);
    expect(hosts.get('a')?.watermark).toBe(5 * S);
    // Live: a new incomplete step every 10 s settles 30 s after its end, one cycle each.
    for (let k = 6; k < 40; k++) {
      data.get('a')?.set(k * S, { cpu_usage: 5, memory_usage: 40 } as StepValues);
      const now = (k + 1) * S + 30_000;
      plan = planRows(data, cycle({ hosts, now, settleMs: 30_000 }));
      expect(hosts.get('a')?.watermark).toBe(k * S);
      expect(now - (hosts.get('a')?.watermark as number)).toBeLessThanOrEqual(S + 30_000);
    }
  });

  it('skips invalid steps (out of the point rules) and counts them', () => {
    const plan = planRows(
      steps({
        a: [
          [1, full(101)],
          [2, full(50)],
        ],
      }),
      cycle(),
    );
    expect(plan.times).toEqual([2 * S]);
    expect(plan.skipped.invalid).toBe(1);
  });

  it('counts a step that arrives after a later step of its host was handled (late) once, and never a step already handled', () => {
    const hosts = new Map<string, HostState>();
    // Host a's step 2 is missing when step 3 is scored; b is complete throughout.
    const data = steps({
      a: [
        [1, full(1)],
        [3, full(3)],
      ],
      b: [
        [1, full(1)],
        [2, full(2)],
        [3, full(3)],
      ],
    });
    let plan = planRows(data, cycle({ hosts, now: 4 * S }));
    expect(plan.times).toEqual([S, S, 2 * S, 3 * S, 3 * S]);
    expect(plan.skipped).toEqual({ incomplete: 0, invalid: 0, late: 0 });
    expect(hosts.get('a')?.gaps).toEqual([2 * S, 2 * S, 4 * S]);
    // Re-read (reads start at the oldest watermark): nothing of a or b is counted again.
    plan = planRows(data, cycle({ hosts, now: 5 * S }));
    expect(plan.n).toBe(0);
    expect(plan.skipped.late).toBe(0);
    // Step 2 of a arrives: counted late, not scored; and only once.
    data.get('a')?.set(2 * S, full(2) as StepValues);
    data.get('a')?.set(4 * S, full(4) as StepValues);
    plan = planRows(data, cycle({ hosts, now: 5 * S }));
    expect(plan.keys).toEqual(['a']);
    expect(plan.times).toEqual([4 * S]);
    expect(plan.skipped.late).toBe(1);
    expect(hosts.get('a')?.gaps).toBeUndefined();
    plan = planRows(data, cycle({ hosts, now: 6 * S }));
    expect(plan.skipped.late).toBe(0);
  });

  it('a gap is split by a late step inside it, forgotten once the reads start after it, and only steps of the read open one', () => {
    const hosts = new Map<string, HostState>([['a', { watermark: S, seenAt: 0 }]]);
    // Watermark at 1, the read starts at 3: steps 2 (not read) and 3, 4 (read, absent) passed for step 5.
    const data = steps({ a: [[5, full(5)]] });
    planRows(data, cycle({ hosts, from: 3 * S, now: 6 * S }));
    expect(hosts.get('a')?.gaps).toEqual([3 * S, 4 * S, 6 * S]);
    data.get('a')?.set(3 * S, full(3) as StepValues);
    data.get('a')?.set(2 * S, full(2) as StepValues);
    const plan = planRows(data, cycle({ hosts, from: 2 * S, now: 6 * S }));
    // Step 2 was never read absent: not counted (it may have been there all along); step 3 is late.
    expect(plan.skipped.late).toBe(1);
    expect(hosts.get('a')?.gaps).toEqual([4 * S, 4 * S, 6 * S]);
    planRows(steps({ a: [[6, full(6)]] }), cycle({ hosts, from: 6 * S, now: 7 * S }));
    expect(hosts.get('a')?.gaps).toBeUndefined();
  });

  it('neither an incomplete step waiting nor primed history counts as late', () => {
    const hosts = new Map<string, HostState>();
    const data = steps({
      a: [
        [1, full(1)],
        [3, { cpu_usage: 5 }],
      ],
    });
    // Step 3 waits (settleMs): the watermark stays at 1, no gap is opened for step 2.
    planRows(data, cycle({ hosts, now: 4 * S, settleMs: 30_000 }));
    expect(hosts.get('a')?.watermark).toBe(S);
    expect(hosts.get('a')?.gaps).toBeUndefined();
    data.get('a')?.set(2 * S, full(2) as StepValues);
    const plan = planRows(data, cycle({ hosts, now: 5 * S, settleMs: 30_000 }));
    expect(plan.times).toEqual([2 * S]);
    expect(plan.skipped.late).toBe(0);
    // Primed history at or before a restored watermark is history, not late.
    const primed = planRows(
      steps({
        a: [
          [1, full(1)],
          [2, full(2)],
          [3, full(3)],
        ],
      }),
      cycle({ hosts: new Map([['a', { watermark: 2 * S, seenAt: 0 }]]), prime: true }),
    );
    expect([...primed.write]).toEqual([0, 0, 1]);
    expect(primed.skipped.late).toBe(0);
  });

  it('priming adds the steps already handled as history (not written); learn mode feeds everything and moves nothing', () => {
    const hosts = new Map<string, HostState>([['a', { watermark: 3 * S, seenAt: 0 }]]);
    const data = steps({
      a: [
        [1, full(1)],
        [3, full(3)],
        [4, full(4)],
      ],
    });
    const plan = planRows(data, cycle({ hosts, from: 2 * S, prime: true }));
    expect(plan.times).toEqual([S, 3 * S, 4 * S]);
    expect([...plan.write]).toEqual([0, 0, 1]);
    const fromStart = planRows(
      data,
      cycle({ hosts: new Map([['a', { watermark: 3 * S, seenAt: 0 }]]), from: 2 * S, prime: true, primeFromStart: true }),
    );
    expect(fromStart.times).toEqual([3 * S, 4 * S]);
    const learnHosts = new Map<string, HostState>();
    const learn = planRows(data, cycle({ hosts: learnHosts, mode: 'learn', from: 0, to: 4 * S }));
    expect(learn.times).toEqual([S, 3 * S]);
    expect([...learn.write]).toEqual([0, 0]);
    expect(learnHosts.size).toBe(0);
  });
});

describe('predictionLines', () => {
  it("writes one point per written row with the judging model's fields and the learning flag", () => {
    const plan = planRows(
      steps({
        a: [
          [1, full(10)],
          [2, full(11)],
        ],
        'b x': [[1, full(12)]],
      }),
      cycle(),
    );
    const engine = StreamingDetector.learner(
      hostLearningOptions({ gate: DEFAULT_GATE, maxKeys: 10, params: { ...DEFAULT_HOST_LEARNING, nEstimators: 5 } }),
    );
    const res = engine.process(plan);
    const out = predictionLines(plan, res, 'learned');
    expect(out.n).toBe(3);
    expect(out.lines).toHaveLength(3);
    // Row 1 is host "b x" at step 1 (time, then host: "a" < "b x").
    const line = out.lines[1];
    expect(line.startsWith('ai_predictions,host=b\\ x,model_version=learned ')).toBe(true);
    for (const f of [
      'learning=1i',
      'is_anomaly=0i',
      'cpu_val=12',
      'mem_val=40',
      'net_val=1000',
      `score=${res.scores[1]}`,
      `threshold=${res.thresholds[1]}`,
    ])
      expect(line).toContain(f);
    expect(line.endsWith(` ${S}`) || line.endsWith(` ${S * 1e6}`)).toBe(true);
  });

  it("writes exactly formatPoint's text (the fast path), and counts a host line protocol cannot carry", () => {
    const spec: Record<string, Array<[number, Partial<StepValues>]>> = {};
    for (const h of ['a', 'b x', 'c,d=e', 'bad\nhost'])
      spec[h] = Array.from({ length: 50 }, (_, k): [number, Partial<StepValues>] => [k, full(20 + ((k * 7 + h.length) % 13))]);
    const plan = planRows(steps(spec), cycle({ to: 100 * S }));
    const engine = StreamingDetector.learner(
      hostLearningOptions({
        gate: DEFAULT_GATE,
        maxKeys: 10,
        params: { ...DEFAULT_HOST_LEARNING, nEstimators: 5, learnPoints: 10, minFitRows: 20 },
      }),
    );
    const res = engine.process(plan);
    const cache = new Map<string, string | null>();
    const out = predictionLines(plan, res, 'learned', cache);
    expect(out.unwritable).toBe(50);
    expect(out.lines).toHaveLength(150);
    let i = 0;
    for (let k = 0; k < plan.n; k++) {
      if (plan.keys[k].includes('\n')) continue;
      const t = res.thresholds[k];
      const want = formatPoint({
        measurement: 'ai_predictions',
        tags: { host: plan.keys[k], model_version: 'learned' },
        fields: {
          is_anomaly: int(res.alerts[k]),
          raw_anomaly: int(res.anomalies[k]),
          score: res.scores[k],
          severity: t > 0 ? res.scores[k] / t : 0,
          threshold: t,
          cpu_val: plan.raw[k * 3],
          mem_val: plan.raw[k * 3 + 1],
          net_val: plan.raw[k * 3 + 2],
          shap_cpu: res.contributions[k * 3],
          shap_memory: res.contributions[k * 3 + 1],
          shap_network: res.contributions[k * 3 + 2],
          val_cpu_usage: plan.raw[k * 3],
          contrib_cpu_usage: res.contributions[k * 3],
          val_memory_usage: plan.raw[k * 3 + 1],
          contrib_memory_usage: res.contributions[k * 3 + 1],
          val_network_load: plan.raw[k * 3 + 2],
          contrib_network_load: res.contributions[k * 3 + 2],
          model_refit: int(res.refits[k]),
          learning: int(res.learning[k]),
        },
        time: plan.times[k],
      });
      expect(out.lines[i++]).toBe(want);
    }
    // The cache gives the same lines the second time.
    expect(predictionLines(plan, res, 'learned', cache).lines).toEqual(out.lines);
  });
});

describe('runPlan', () => {
  it('gives the same results in slices as in one call, bit for bit (refits inside included)', () => {
    const spec: Record<string, Array<[number, Partial<StepValues>]>> = {};
    for (const h of ['a', 'b', 'c'])
      spec[h] = Array.from({ length: 120 }, (_, k): [number, Partial<StepValues>] => [k, full(20 + ((k * 7 + h.charCodeAt(0)) % 13))]);
    const plan = planRows(steps(spec), cycle({ to: 200 * S }));
    const opts = () =>
      hostLearningOptions({
        gate: DEFAULT_GATE,
        maxKeys: 10,
        params: { ...DEFAULT_HOST_LEARNING, nEstimators: 5, learnPoints: 20, minFitRows: 30 },
      });
    const whole = StreamingDetector.learner(opts()).process(plan);
    const sliced = runPlan(StreamingDetector.learner(opts()), plan, { keepFeatures: true, sliceRows: 17 });
    expect(sliced).not.toBeNull();
    for (const k of ['scores', 'thresholds', 'alerts', 'learning', 'contributions', 'features', 'refits'] as const)
      expect(Array.from(sliced?.[k] ?? [])).toEqual(Array.from(whole[k]));
    expect(Math.max(...whole.refits)).toBeGreaterThan(0);
    expect(runPlan(StreamingDetector.learner(opts()), plan, { keepFeatures: false, discard: true, sliceRows: 17 })).toBeNull();
  });
});
