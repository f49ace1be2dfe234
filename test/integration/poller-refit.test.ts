import { Registry } from 'prom-client';
import { parseArtifact, serialize, sign, type ModelArtifact } from '../../src/core/artifact';
import { Detector } from '../../src/core/detector';
import type { MetricsStore } from '../../src/influx/types';
import { ModelStore, loadDetectorFile } from '../../src/model-store';
import { createMetrics } from '../../src/plugins/metrics';
import { MODEL_PATH } from '../helpers/fixtures';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { DB, predictions, storeFor, writeSimulatedRange } from '../helpers/influx-data';
import { testPoller } from '../helpers/poller';

/**
 * Periodic refit in the service (real influxd): the poller retrains on recent normal
 * points, swaps the model in, keeps tagging predictions with the loaded model's version
 * (a refit adds the field model_refit, not a new tag value) and starts again from a
 * model loaded by a reload.
 */
const STEP = 10_000;
const STEPS = 120;
const END = Date.parse('2026-11-02T15:00:00Z');
const START = END - (STEPS - 1) * STEP;

describe('poller refit on recent normal points (real influxd)', () => {
  let influxd: Influxd;
  let store: MetricsStore;
  beforeAll(async () => {
    influxd = await startInfluxd();
    store = storeFor(influxd);
    await writeSimulatedRange(store, { hosts: 3, steps: STEPS, stepS: 10, seed: 21, end: END });
  }, 60_000);
  afterAll(async () => {
    await store.close?.();
    await influxd.cleanup();
  });

  it('refits at row times (stream time) when due, tags rows with the loaded version plus model_refit, and restarts from a reloaded model', async () => {
    const loaded = loadDetectorFile(MODEL_PATH);
    const models = ModelStore.fromDetector(loaded, MODEL_PATH);
    const metrics = createMetrics(new Registry(), false);
    let now = START + 40 * STEP + 1;
    const poller = testPoller(store, models, {
      stepMs: STEP,
      clock: () => now,
      metrics,
      overrides: { refit: { intervalMs: 200_000, windowPoints: 150, minPoints: 50 } },
    });
    const refitOf = () =>
      (poller.health().check().body as { refit: { refits: number; base_version: string; window_points: number } }).refit;
    await poller.runCycle();
    expect(refitOf()).toMatchObject({ refits: 0 }); // not due yet: the stream started at `now`
    now = START + 70 * STEP + 1;
    await poller.runCycle();
    // Due at the first multiple of 200 s of stream time after the start (14:46:50): 14:50:00,
    // the row of step 59 (the next: 14:53:20, step 79).
    expect(refitOf()).toMatchObject({ refits: 1, base_version: loaded.version });
    expect(refitOf().window_points).toBeGreaterThan(50);
    expect(refitOf().window_points).toBeLessThanOrEqual(150);
    // The loaded model stays the served one (/detect); the refits are the poller's stream's.
    expect(models.current?.detector).toBe(loaded);
    expect(await metrics.registry.getSingleMetricAsString('anomaly_detector_model_reloads_total')).toMatch(/outcome="refit"} 1/);
    now = START + 90 * STEP + 1;
    await poller.runCycle();
    expect(refitOf()).toMatchObject({ refits: 2 });
    // A reload (here: the same file again) replaces the stream: refits start over.
    models.swap({ detector: loadDetectorFile(MODEL_PATH), loadedAt: new Date(), source: MODEL_PATH });
    now = END + STEP;
    await poller.runCycle();
    expect(refitOf()).toMatchObject({ refits: 0, base_version: loaded.version });
    expect(await poller.writer.drain(30_000)).toBe(0);
    const rows = await predictions(influxd);
    expect(rows).toHaveLength(3 * STEPS);
    for (const r of rows) {
      expect(r.model_version).toBe(loaded.version);
      const step = (r.time - START) / STEP;
      expect(r.model_refit).toBe(step < 59 || step > 90 ? 0 : step < 79 ? 1 : 2);
      expect(r.learning).toBe(0);
    }
    await poller.stop(1000);
  }, 120_000);

  it('a refit that fails is logged and counted; the cycle succeeds and the model keeps serving', async () => {
    // A model whose recorded parameters cannot be trained again (the schema allows any
    // string there): verification passes, the refit throws.
    const good = loadDetectorFile(MODEL_PATH).artifact;
    const { sha256: _s, ...unsigned } = JSON.parse(JSON.stringify(good)) as ModelArtifact;
    unsigned.training.params = { ...unsigned.training.params, n_estimators: 'many' };
    const odd = new Detector(parseArtifact(serialize(sign(unsigned))));
    await influxd.rawQuery('DROP MEASUREMENT "ai_predictions"', { db: DB });
    const models = ModelStore.fromDetector(odd, 'odd');
    const metrics = createMetrics(new Registry(), false);
    let now = START + 40 * STEP + 1;
    const poller = testPoller(store, models, {
      stepMs: STEP,
      clock: () => now,
      metrics,
      overrides: { refit: { intervalMs: 1, windowPoints: 150, minPoints: 10 } },
    });
    await poller.runCycle();
    now += STEP;
    const r = await poller.runCycle();
    expect(r.scored).toBeGreaterThan(0);
    expect(models.current?.detector).toBe(odd);
    // The cycle succeeded; health says the refits fail (degraded, still serving).
    const health = poller.health().check();
    expect(health.degraded).toBe(true);
    expect((health.body as { status: string }).status).toBe('degraded');
    expect((health.body as { refit: { last_error: string; refits: number; failures: number } }).refit).toMatchObject({
      refits: 0,
      failures: expect.any(Number),
      last_error: expect.stringMatching(/nEstimators|estimators/i),
    });
    expect(await metrics.registry.getSingleMetricAsString('anomaly_detector_model_reloads_total')).toMatch(/outcome="refit_failed"} [1-9]/);
    expect(await metrics.registry.getSingleMetricAsString('anomaly_detector_refit_failures_total')).toMatch(
      /anomaly_detector_refit_failures_total [1-9]/,
    );
    expect(await poller.writer.drain(30_000)).toBe(0);
    await poller.stop(1000);
  }, 120_000);
});
