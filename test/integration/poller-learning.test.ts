import { Registry } from 'prom-client';
import { DEFAULT_GATE } from '../../src/core/gate';
import { DEFAULT_HOST_LEARNING, hostLearningOptions } from '../../src/core/host-learning';
import { METRIC_NAMES, NODE_METRICS } from '../../src/core/metrics';
import { StreamingDetector, type StreamingOptions } from '../../src/core/streaming';
import type { Detector } from '../../src/core/detector';
import type { MetricsStore } from '../../src/influx/types';
import { ModelStore, loadDetectorFile } from '../../src/model-store';
import { createMetrics } from '../../src/plugins/metrics';
import { PREDICTIONS_MEASUREMENT, readSpec, sharedReads } from '../../src/poller/poller';
import { addMetric, isComplete, presetMapping, telegrafPreset, type HostSteps } from '../../src/poller/telegraf';
import { MODEL_PATH } from '../helpers/fixtures';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { DB, predictions, storeFor, writeSimulatedRange } from '../helpers/influx-data';
import { testPoller } from '../helpers/poller';

/**
 * The learning default on a real influxd: the poller (bootstrap from history, then one
 * cycle per step) and one pass of the streaming detector over the same points give the
 * same scores and alerts, bit for bit: there is one detection path.
 */
const STEP = 10_000;
const STEPS = 240;
const END = Date.parse('2026-11-02T15:00:00Z');
const START = END - (STEPS - 1) * STEP;
const LIVE_FROM = 150; // steps before this are history at the poller's start

// Small and fast, the same policy: learn after 20 points, first fit at 40 rows, refit every 5 min.
const PARAMS = { ...DEFAULT_HOST_LEARNING, nEstimators: 25, learnPoints: 20, minFitRows: 40, refitIntervalMs: 300_000, refitWindow: 400 };
const options = (prior: Detector): StreamingOptions => hostLearningOptions({ prior, gate: DEFAULT_GATE, maxKeys: 100, params: PARAMS });

describe('learning each host: poller and one pass agree (real influxd)', () => {
  let influxd: Influxd;
  let store: MetricsStore;
  beforeAll(async () => {
    influxd = await startInfluxd();
    store = storeFor(influxd);
    const rows = await writeSimulatedRange(store, { hosts: 3, steps: STEPS, stepS: 10, seed: 5, end: END });
    // The node inputs of the same hosts and steps (counters that grow, two disks), for the node-set case.
    const lines: string[] = [];
    const counters = new Map<string, number[]>();
    for (const r of rows) {
      const c = counters.get(r.host) ?? [0, 0, 0, 0, 0, 0];
      counters.set(r.host, c);
      const k = Math.round((r.timestamp - START) / STEP);
      const w = (k * 7 + r.host.length) % 11;
      c[0] += 4096 * (w + 1);
      c[1] += 8192 + 100 * w;
      c[2] += 30 + w;
      c[3] += 512;
      c[4] += 3 + (w > 8 ? 5 : 0);
      const t = r.timestamp; // the store writes millisecond precision
      const busy = r.cpu_usage / 25;
      lines.push(
        `system,host=${r.host} load1=${busy + w / 10},load5=${busy},load15=${busy * 0.9} ${t}`,
        `diskio,host=${r.host},name=vda io_time=${c[2]}i,read_bytes=${c[0]}i,write_bytes=${c[1]}i ${t}`,
        `diskio,host=${r.host},name=vdb io_time=${c[2] >> 2}i,read_bytes=${c[3]}i,write_bytes=${c[3] * 2}i ${t}`,
        `swap,host=${r.host} used_percent=${w / 10} ${t}`,
        // netstat reports 6 s into the step (inputs are not in step): see the node-set case.
        `netstat,host=${r.host} tcp_established=${20 + w}i,tcp_time_wait=${w}i ${t + 6000}`,
        `nstat,host=${r.host},name=snmp TcpRetransSegs=${c[4]}i ${t}`,
      );
    }
    await store.writeLines(lines);
  }, 60_000);
  afterAll(async () => {
    await store.close?.();
    await influxd.cleanup();
  });

  // The bootstrap's reads bounded at the default rows, and at 10 rows (one step of the 3
  // hosts' three reads: a chunk per step, 131 of them): the same scores either way.
  it.each([
    ['the default bound', undefined],
    ['chunks of 10 rows', 10],
  ])(
    'bootstraps from history (%s), marks learning hosts, and scores every step as a single pass does',
    async (_, chunkRows) => {
      await influxd.rawQuery(`DROP MEASUREMENT ${PREDICTIONS_MEASUREMENT}`, { db: DB });
      const prior = loadDetectorFile(MODEL_PATH);
      const models = ModelStore.fromDetector(prior, MODEL_PATH);
      const metrics = createMetrics(new Registry(), false);
      let now = START + LIVE_FROM * STEP + 1;
      const poller = testPoller(store, models, {
        stepMs: STEP,
        clock: () => now,
        metrics,
        overrides: { maxLookbackMs: 20 * STEP, learn: { windowMs: 3600_000, chunkMs: 300_000, options, chunkRows } },
      });
      await poller.runCycle();
      const queries = Number(
        (await metrics.registry.getSingleMetricAsString('anomaly_detector_poll_queries_total'))
          .split('\n')
          .find((l) => l.startsWith('anomaly_detector_poll_queries_total{purpose="read"} '))
          ?.split(' ')[1],
      );
      // 131 steps of history in chunks of at most 30 steps (chunkMs), or of one step each; three reads a chunk, and the live read's.
      if (chunkRows === undefined) expect(queries).toBeLessThan(3 * 20);
      else expect(queries).toBeGreaterThanOrEqual(3 * 131);
      const health = poller.health().check().body as {
        learning: { enabled: boolean; hosts: number; bootstrap: { finished: boolean; rows: number } };
      };
      expect(health.learning).toMatchObject({ enabled: true, hosts: 3, bootstrap: { finished: true } });
      // History before the live loop's window (the 19 steps up to now) was learned, not written.
      expect(health.learning.bootstrap.rows).toBe(3 * (LIVE_FROM - 19));
      for (let s = LIVE_FROM + 1; s < STEPS; s++) {
        now = START + s * STEP + 1;
        await poller.runCycle();
      }
      expect(await poller.writer.drain(30_000)).toBe(0);
      await poller.stop(1000);
      const written = await predictions(influxd);
      expect(written).toHaveLength(3 * (STEPS - LIVE_FROM + 19));

      // One pass over the same points, joined the same way, in (time, host) order.
      const steps: HostSteps = new Map();
      const mapping = telegrafPreset();
      for (const metric of METRIC_NAMES)
        addMetric(steps, metric, mapping[metric], await store.readSeries(readSpec(mapping[metric], START, END + STEP, STEP)), STEP);
      const rows: Array<{ host: string; t: number; v: number[] }> = [];
      for (const [host, byStep] of steps)
        for (const [t, v] of byStep) if (isComplete(v)) rows.push({ host, t, v: [v.cpu_usage, v.memory_usage, v.network_load] });
      rows.sort((a, b) => a.t - b.t || (a.host < b.host ? -1 : 1));
      const engine = StreamingDetector.learner(options(prior));
      const res = engine.process({
        keys: rows.map((r) => r.host),
        times: rows.map((r) => r.t),
        raw: Float64Array.from(rows.flatMap((r) => r.v)),
        n: rows.length,
      });
      const ref = new Map(rows.map((r, i) => [`${r.host}@${r.t}`, i]));
      let learning = 0;
      let alerts = 0;
      for (const w of written) {
        const i = ref.get(`${w.host}@${w.time}`) as number;
        expect(i).toBeDefined();
        expect(w.score).toBe(res.scores[i]);
        expect(w.is_anomaly).toBe(res.alerts[i]);
        expect(w.learning).toBe(res.learning[i]);
        expect(w.shap_cpu).toBe(res.contributions[i * 3]);
        expect(w.model_version).toBe('learned');
        learning += Number(w.learning);
        alerts += Number(w.is_anomaly);
      }
      // Every host had 130 steps of history: none is learning in the written steps, and the
      // learned model refitted as the stream went.
      expect(learning).toBe(0);
      expect(engine.refits).toBeGreaterThan(2);
      expect(alerts).toBeLessThan(written.length / 5);
    },
    120_000,
  );

  it('over the node set (13 metrics, 8 shared reads) the poller and one pass agree too, every contrib_<metric> included', async () => {
    await influxd.rawQuery('DROP MEASUREMENT "ai_predictions"', { db: 'system_metrics' });
    const prior = loadDetectorFile(MODEL_PATH);
    const names = NODE_METRICS.map((d) => d.name);
    const nodeOptions = (p: Detector): StreamingOptions => ({
      ...hostLearningOptions({ prior: p, gate: DEFAULT_GATE, maxKeys: 100, metrics: names, params: PARAMS }),
    });
    const mapping = presetMapping('node');
    // Mid-step cycles, 5 s into each step, before netstat's point: each step is still
    // incomplete when first read and handled one cycle later, so each read starts inside the
    // one before (warm: no look-back), and a counter's first sample of a read takes its rate
    // from the samples earlier reads saw (one history per counter; a disk has three).
    let now = START + LIVE_FROM * STEP + STEP / 2;
    const poller = testPoller(store, ModelStore.fromDetector(prior, MODEL_PATH), {
      stepMs: STEP,
      clock: () => now,
      metrics: createMetrics(new Registry(), false),
      overrides: {
        mapping,
        settleMs: 3 * STEP,
        maxLookbackMs: 20 * STEP,
        learn: { windowMs: 3600_000, chunkMs: 300_000, options: nodeOptions },
      },
    });
    for (let s = LIVE_FROM; s < STEPS; s++) {
      now = START + s * STEP + STEP / 2;
      await poller.runCycle();
    }
    expect(await poller.writer.drain(30_000)).toBe(0);
    await poller.stop(1000);
    const written = await predictions(influxd);
    // Each host's first step has no rates yet: one step fewer of history, none fewer written;
    // the last step still waits for its netstat point when the cycles stop.
    expect(written).toHaveLength(3 * (STEPS - LIVE_FROM + 18));

    const steps: HostSteps = new Map();
    for (const r of sharedReads(mapping, names)) {
      const groups = await store.readSeries(readSpec(r.source, START, END + STEP, STEP));
      for (const metric of r.metrics) addMetric(steps, metric, mapping[metric], groups, STEP);
    }
    const rows: Array<{ host: string; t: number; v: number[] }> = [];
    for (const [host, byStep] of steps)
      for (const [t, v] of byStep) if (isComplete(v, names)) rows.push({ host, t, v: names.map((n) => v[n] as number) });
    rows.sort((a, b) => a.t - b.t || (a.host < b.host ? -1 : 1));
    const engine = StreamingDetector.learner(nodeOptions(prior));
    const res = engine.process({
      keys: rows.map((r) => r.host),
      times: rows.map((r) => r.t),
      raw: Float64Array.from(rows.flatMap((r) => r.v)),
      n: rows.length,
    });
    const ref = new Map(rows.map((r, i) => [`${r.host}@${r.t}`, i]));
    const m = names.length;
    for (const w of written) {
      const i = ref.get(`${w.host}@${w.time}`) as number;
      expect(i).toBeDefined();
      expect(w.score).toBe(res.scores[i]);
      expect(w.is_anomaly).toBe(res.alerts[i]);
      names.forEach((name, c) => {
        expect([name, w[`val_${name}`]]).toEqual([name, rows[i].v[c]]);
        expect([name, w[`contrib_${name}`]]).toEqual([name, res.contributions[i * m + c]]);
      });
    }
    // The node metrics speak: some learned contribution beyond the three is not 0.
    expect(written.some((w) => names.slice(3).some((n) => w[`contrib_${n}`] !== 0))).toBe(true);
  }, 120_000);
});
