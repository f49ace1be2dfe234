import { Registry } from 'prom-client';
import { createMetricsStore } from '../../src/influx';
import type { MetricsStore } from '../../src/influx/types';
import { ModelStore, loadDetectorFile } from '../../src/model-store';
import { createMetrics } from '../../src/plugins/metrics';
import { MODEL_PATH } from '../helpers/fixtures';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { DB, predictions, storeFor, writeSimulatedRange } from '../helpers/influx-data';
import { freePort } from '../helpers/ports';
import { testPoller } from '../helpers/poller';

/**
 * Writes fail (InfluxDB answers reads but not writes: here the writes go to a real client
 * of a port nothing listens on, then to the real influxd again) while the poller goes on
 * reading, with a write buffer of 30 lines for 3 hosts: scoring pauses instead of dropping
 * predictions, and once writes succeed every step is scored and written exactly once.
 */
const STEP = 10_000;
const STEPS = 60;
const HOSTS = 3;
const END = Date.parse('2026-11-03T12:00:00Z');
const START = END - (STEPS - 1) * STEP;

describe('write backpressure: a full buffer pauses scoring, nothing is dropped (real influxd)', () => {
  let influxd: Influxd;
  let store: MetricsStore;
  let dead: MetricsStore;
  beforeAll(async () => {
    influxd = await startInfluxd();
    store = storeFor(influxd);
    dead = createMetricsStore({ version: 'v1', url: `http://127.0.0.1:${await freePort()}`, database: DB, timeoutMs: 500 });
    await writeSimulatedRange(store, { hosts: HOSTS, steps: STEPS, stepS: 10, seed: 3, end: END });
  }, 60_000);
  afterAll(async () => {
    await store?.close?.();
    await dead?.close?.();
    await influxd?.cleanup();
  });

  it('scores every step once after the outage of writes, with no line dropped', async () => {
    let writes: MetricsStore = dead;
    // Reads from the influxd, writes to whichever store `writes` is.
    const split = new Proxy(store, {
      get: (target, prop) =>
        prop === 'writeLines' ? (lines: readonly string[]) => writes.writeLines(lines) : Reflect.get(target, prop, target),
    });
    const metrics = createMetrics(new Registry(), false);
    let now = START + 5 * STEP + 1;
    const poller = testPoller(split, ModelStore.fromDetector(loadDetectorFile(MODEL_PATH), MODEL_PATH), {
      stepMs: STEP,
      clock: () => now,
      metrics,
      overrides: {
        maxLookbackMs: 20 * STEP,
        writer: { maxBuffer: 10 * HOSTS, batchSize: 5, baseBackoffMs: 20, maxBackoffMs: 50 },
      },
    });
    // Writes fail for 30 steps: the buffer fills (10 steps of 3 hosts), then cycles pause.
    for (let s = 5; s < 35; s++) {
      now = START + s * STEP + 1;
      await poller.runCycle();
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(poller.writer.size).toBeLessThanOrEqual(10 * HOSTS);
    const paused = (await metrics.registry.getSingleMetric('anomaly_detector_poll_backpressure_cycles_total')?.get())?.values[0]?.value;
    expect(paused).toBeGreaterThan(10);
    expect(poller.health().check()).toMatchObject({ degraded: true, body: { scoring_paused: true } });
    // Writes work again: the backlog drains, the paused steps are read and scored.
    writes = store;
    for (let s = 35; s < STEPS + 25; s++) {
      now = START + Math.min(s, STEPS) * STEP + 1;
      await poller.runCycle();
      await poller.writer.drain(5_000);
    }
    expect(poller.health().check().body).toMatchObject({ scoring_paused: false, write_buffer: 0 });
    await poller.stop(2000);
    const dropped = (await metrics.registry.getSingleMetric('anomaly_detector_write_dropped_points_total')?.get())?.values[0]?.value;
    expect(dropped ?? 0).toBe(0);
    const written = await predictions(influxd);
    const keys = written.map((w) => `${w.host}@${w.time}`);
    expect(new Set(keys).size).toBe(keys.length);
    // Every step from the first cycle's read on, of every host.
    const first = Math.min(...written.map((w) => w.time));
    expect(first).toBeLessThanOrEqual(START + 5 * STEP);
    expect(written).toHaveLength(HOSTS * ((END - first) / STEP + 1));
  }, 120_000);

  it('on a first start (no host known yet) scores no more steps per cycle than the buffer holds: none dropped', async () => {
    // The budget per host divided the room by the hosts known before the read: none on a
    // first start, so the first cycle scored the whole lookback of every host and the write
    // buffer dropped what did not fit.
    await influxd.rawQuery(`DROP DATABASE "${DB}"`);
    await store.createDatabase?.();
    const hosts = 20;
    const steps = 40;
    await writeSimulatedRange(store, { hosts, steps, stepS: 10, seed: 4, end: END });
    const metrics = createMetrics(new Registry(), false);
    const now = END + STEP + 1;
    const poller = testPoller(store, ModelStore.fromDetector(loadDetectorFile(MODEL_PATH), MODEL_PATH), {
      stepMs: STEP,
      clock: () => now,
      metrics,
      overrides: { maxLookbackMs: 100 * STEP, writer: { maxBuffer: 5 * hosts, batchSize: 50, baseBackoffMs: 20, maxBackoffMs: 50 } },
    });
    const scored: number[] = [];
    for (let c = 0; c < 30; c++) {
      const r = await poller.runCycle();
      scored.push(r.scored);
      expect(await poller.writer.drain(5_000)).toBe(0);
    }
    await poller.stop(2000);
    const dropped = (await metrics.registry.getSingleMetric('anomaly_detector_write_dropped_points_total')?.get())?.values[0]?.value;
    expect(dropped ?? 0).toBe(0);
    expect(Math.max(...scored)).toBeLessThanOrEqual(5 * hosts);
    const written = await predictions(influxd);
    // Every step of every host, each once.
    expect(written).toHaveLength(hosts * steps);
    expect(new Set(written.map((w) => `${w.host}@${w.time}`)).size).toBe(hosts * steps);
  }, 120_000);
});
