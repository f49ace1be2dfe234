import { Registry } from 'prom-client';
import { DEFAULT_GATE } from '../../src/core/gate';
import { DEFAULT_HOST_LEARNING, hostLearningOptions } from '../../src/core/host-learning';
import { METRIC_NAMES } from '../../src/core/metrics';
import { StreamingDetector, type StreamingOptions } from '../../src/core/streaming';
import type { Detector } from '../../src/core/detector';
import type { MetricsStore } from '../../src/influx/types';
import { ModelStore, loadDetectorFile } from '../../src/model-store';
import { createMetrics } from '../../src/plugins/metrics';
import { readSpec } from '../../src/poller/poller';
import { addMetric, isComplete, telegrafPreset, type HostSteps } from '../../src/poller/telegraf';
import { MODEL_PATH } from '../helpers/fixtures';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { predictions, storeFor, writeSimulatedRange } from '../helpers/influx-data';
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
const options = (prior: Detector): StreamingOptions =>
  hostLearningOptions({
    prior,
    gate: DEFAULT_GATE,
    maxKeys: 100,
    params: { ...DEFAULT_HOST_LEARNING, nEstimators: 25, learnPoints: 20, minFitRows: 40, refitIntervalMs: 300_000, refitWindow: 400 },
  });

describe('learning each host: poller and one pass agree (real influxd)', () => {
  let influxd: Influxd;
  let store: MetricsStore;
  beforeAll(async () => {
    influxd = await startInfluxd();
    store = storeFor(influxd);
    await writeSimulatedRange(store, { hosts: 3, steps: STEPS, stepS: 10, seed: 5, end: END });
  }, 60_000);
  afterAll(async () => {
    await store.close?.();
    await influxd.cleanup();
  });

  it('bootstraps from history, marks learning hosts, and scores every step as a single pass does', async () => {
    const prior = loadDetectorFile(MODEL_PATH);
    const models = ModelStore.fromDetector(prior, MODEL_PATH);
    const metrics = createMetrics(new Registry(), false);
    let now = START + LIVE_FROM * STEP + 1;
    const poller = testPoller(store, models, {
      stepMs: STEP,
      clock: () => now,
      metrics,
      overrides: { maxLookbackMs: 20 * STEP, learn: { windowMs: 3600_000, chunkMs: 300_000, options } },
    });
    await poller.runCycle();
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
  }, 120_000);
});
