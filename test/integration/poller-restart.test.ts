import { Registry } from 'prom-client';
import type { MetricsStore } from '../../src/influx/types';
import { ModelStore, loadDetectorFile } from '../../src/model-store';
import { createMetrics } from '../../src/plugins/metrics';
import type { SimulatedRow } from '../../src/data/simulate';
import { MODEL_PATH } from '../helpers/fixtures';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { DB, predictions, storeFor, writeSimulatedRange, type PredictionRow } from '../helpers/influx-data';
import { testPoller } from '../helpers/poller';

/**
 * A restart in the middle of an incident (real influxd): the gate's state comes back with
 * the watermarks (the steps before them are replayed through the detector), so the gated
 * output after the restart equals an uninterrupted run's, step for step.
 */
const STEP = 10_000;
const STEPS = 200;
const END = Date.parse('2026-11-02T15:00:00Z');
const START = END - (STEPS - 1) * STEP;

describe('restart during an incident (real influxd)', () => {
  let influxd: Influxd;
  let store: MetricsStore;
  let rows: SimulatedRow[];
  beforeAll(async () => {
    influxd = await startInfluxd();
    store = storeFor(influxd);
    rows = await writeSimulatedRange(store, { hosts: 3, steps: STEPS, stepS: 10, seed: 9, end: END });
  }, 60_000);
  afterAll(async () => {
    await store.close?.();
    await influxd.cleanup();
  });

  /** Runs pollers one cycle per step from step `first`; a new poller (a restart) at each step of `restarts`. */
  async function run(restarts: number[]): Promise<PredictionRow[]> {
    await influxd.rawQuery('DROP MEASUREMENT "ai_predictions"', { db: DB });
    const models = ModelStore.fromDetector(loadDetectorFile(MODEL_PATH), MODEL_PATH);
    let now = START + 20 * STEP + 1;
    const make = () => testPoller(store, models, { stepMs: STEP, clock: () => now, metrics: createMetrics(new Registry(), false) });
    let poller = make();
    for (let s = 20; s < STEPS; s++) {
      now = START + s * STEP + 1;
      if (restarts.includes(s)) {
        await poller.stop(10_000);
        poller = make();
      }
      await poller.runCycle();
    }
    expect(await poller.writer.drain(30_000)).toBe(0);
    await poller.stop(1000);
    return predictions(influxd);
  }

  it('keeps alerting through a restart as an uninterrupted run does', async () => {
    // Restart one and two steps into each labelled incident of the first host.
    const host = rows[0].host;
    const starts: number[] = [];
    rows
      .filter((r) => r.host === host)
      .forEach((r, s, all) => {
        if (r.anomaly === 1 && (s === 0 || all[s - 1].anomaly === 0) && s > 25) starts.push(s + 1, s + 2);
      });
    expect(starts.length).toBeGreaterThan(0);
    const uninterrupted = await run([]);
    const restarted = await run(starts);
    expect(restarted).toHaveLength(uninterrupted.length);
    const key = (r: PredictionRow) => `${r.host}@${r.time}`;
    const alerts = new Map(uninterrupted.map((r) => [key(r), r.is_anomaly]));
    for (const r of restarted) expect([key(r), r.is_anomaly]).toEqual([key(r), alerts.get(key(r))]);
    // The incidents did alert (the comparison is not one of empty runs).
    expect(uninterrupted.filter((r) => r.is_anomaly === 1).length).toBeGreaterThan(0);
  }, 120_000);

  it('ignores a prediction from the future as a watermark (it would silence its host) and counts it', async () => {
    await influxd.rawQuery('DROP MEASUREMENT "ai_predictions"', { db: DB });
    const host = rows[0].host;
    const future = END + 10 * 365 * 86400_000;
    await store.writeLines([`ai_predictions,host=${host},model_version=x score=0.5 ${future}`]);
    const metrics = createMetrics(new Registry(), false);
    const now = END + 1;
    const poller = testPoller(store, ModelStore.fromDetector(loadDetectorFile(MODEL_PATH), MODEL_PATH), {
      stepMs: STEP,
      clock: () => now,
      metrics,
    });
    const r = await poller.runCycle();
    expect(await poller.writer.drain(30_000)).toBe(0);
    await poller.stop(1000);
    // Every host scored its steps, the one with the future point too.
    expect((await predictions(influxd, host)).filter((p) => p.time <= END)).toHaveLength(STEPS);
    expect(r.scored).toBe(3 * STEPS);
    expect(await metrics.registry.getSingleMetricAsString('anomaly_detector_poll_points_skipped_total')).toMatch(
      /reason="future_prediction"} 1/,
    );
  }, 60_000);

  it('an outage longer than MAX_LOOKBACK_S loses nothing: the poller resumes from the watermarks in bounded reads', async () => {
    await influxd.rawQuery('DROP MEASUREMENT "ai_predictions"', { db: DB });
    let now = START + 20 * STEP + 1;
    const poller = testPoller(store, ModelStore.fromDetector(loadDetectorFile(MODEL_PATH), MODEL_PATH), {
      stepMs: STEP,
      clock: () => now,
      overrides: { maxLookbackMs: 30_000 },
    });
    const reports = [];
    for (let s = 20; s <= 50; s++) {
      now = START + s * STEP + 1;
      reports.push(await poller.runCycle());
    }
    // 70 s without a cycle (InfluxDB unreachable, or the process paused), lookback 30 s.
    now = START + 57 * STEP + 1;
    for (let k = 0; k < 4; k++) reports.push(await poller.runCycle());
    expect(await poller.writer.drain(30_000)).toBe(0);
    await poller.stop(1000);
    const written = await predictions(influxd, rows[0].host);
    const steps = new Set(written.map((p) => (p.time - START) / STEP));
    // The first cycle looks back 30 s (steps 18-20); from then on every step up to 57.
    for (let s = 18; s <= 57; s++) expect(steps.has(s)).toBe(true);
    // Each read is bounded by the lookback: no cycle read more than 4 steps of 3 hosts' 3 measurements.
    for (const r of reports) expect(r.to - r.from).toBeLessThanOrEqual(30_000 + 1);
  }, 60_000);

  it('a host whose first step is still settling does not break the next cycles (its watermark is not yet a time)', async () => {
    await influxd.rawQuery('DROP MEASUREMENT "ai_predictions"', { db: DB });
    // A new host whose first step has cpu and mem but no net yet (a rate needs two samples).
    const t0 = END + 10 * STEP;
    await store.writeLines([`cpu,host=fresh,cpu=cpu-total usage_idle=70 ${t0}`, `mem,host=fresh used_percent=40 ${t0}`]);
    let now = t0 + 1;
    const poller = testPoller(store, ModelStore.fromDetector(loadDetectorFile(MODEL_PATH), MODEL_PATH), {
      stepMs: STEP,
      clock: () => now,
      overrides: { settleMs: 30_000, maxLookbackMs: 60_000 },
    });
    await poller.runCycle();
    for (let k = 1; k <= 5; k++) {
      now = t0 + k * STEP + 1;
      await expect(poller.runCycle()).resolves.toMatchObject({ hosts: expect.any(Number) });
    }
    await poller.stop(1000);
  }, 60_000);
});
