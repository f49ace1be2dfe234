import { Detector } from '../../src/core/detector';
import { hostTemporalFeatures } from '../../src/core/features';
import { METRIC_NAMES } from '../../src/core/metrics';
import { trainModel } from '../../src/core/train';
import { DEFAULT_SIMULATION, simulate } from '../../src/data/simulate';
import type { MetricsStore } from '../../src/influx/types';
import { ModelStore } from '../../src/model-store';
import type { CycleReport, HistoryState, Poller } from '../../src/poller/poller';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { DB, predictions, storeFor, writeSimulatedRange } from '../helpers/influx-data';
import { testPoller } from '../helpers/poller';

/**
 * A model with temporal features served by the poller (real influxd): each host's
 * history is read from InfluxDB after a restart, so the scores after the restart are
 * those of one uninterrupted run; backfill reads the history before its range the same way.
 */
const STEP = 10_000;
const STEPS = 120;
const END = Date.parse('2026-11-02T15:00:00Z');
const START = END - (STEPS - 1) * STEP;

function temporalModel(): Detector {
  const rows = simulate({
    ...DEFAULT_SIMULATION,
    hosts: 3,
    steps: 600,
    stepS: 10,
    seed: 77,
    start: START - 86_400_000,
    incidentsPerDay: 0,
  });
  const raw = new Float64Array(rows.length * 3);
  rows.forEach((r, i) => METRIC_NAMES.forEach((m, c) => (raw[i * 3 + c] = r[m])));
  // simulate() orders rows by time, then host: each host's rows are in time order.
  return new Detector(
    trainModel(raw, rows.length, {
      nEstimators: 50,
      maxSamples: 128,
      seed: 5,
      contamination: 0.02,
      createdAt: '2026-01-01T00:00:00.000Z',
      features: hostTemporalFeatures(20, 3),
      keys: rows.map((r) => r.host),
      times: rows.map((r) => r.timestamp),
    }),
  );
}

function pollerAt(store: MetricsStore, det: Detector, clock: () => number, models = ModelStore.fromDetector(det, 'test:temporal')): Poller {
  return testPoller(store, models, { stepMs: STEP, clock });
}

/**
 * The reference: one backfill pass over the whole range, its report and its scores by
 * host and time; ai_predictions is emptied before and after.
 */
async function wholePass(
  influxd: Influxd,
  store: MetricsStore,
  det: Detector,
): Promise<{ report: CycleReport; scores: Map<string, number> }> {
  await influxd.rawQuery('DROP MEASUREMENT "ai_predictions"', { db: DB });
  const whole = pollerAt(store, det, () => END + STEP);
  const report = await whole.backfill(START - STEP, END + STEP);
  await flush(whole);
  const scores = await scoresByHostTime(influxd);
  await influxd.rawQuery('DROP MEASUREMENT "ai_predictions"', { db: DB });
  return { report, scores };
}

async function scoresByHostTime(influxd: Influxd): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const p of await predictions(influxd)) out.set(`${p.host}@${p.time}`, p.score as number);
  return out;
}

async function flush(p: Poller): Promise<void> {
  expect(await p.writer.drain(30_000)).toBe(0);
}

describe('poller with a temporal model (real influxd)', () => {
  let influxd: Influxd;
  let store: MetricsStore;
  const det = temporalModel();
  beforeAll(async () => {
    influxd = await startInfluxd();
    store = storeFor(influxd);
    await writeSimulatedRange(store, { hosts: 3, steps: STEPS, stepS: 10, seed: 11, end: END });
    // One invalid step (CPU 150%) inside the history the restarted poller reads: the live
    // path skips it, so priming must too.
    await store.writeLines([`cpu,cpu=cpu-total,host=host-02 usage_idle=-50 ${START + 45 * STEP}`]);
  }, 60_000);
  afterAll(async () => {
    await store.close?.();
    await influxd.cleanup();
  });

  it('after a restart, scores exactly as one uninterrupted run (history primed from InfluxDB), and drift covers every model feature', async () => {
    // Reference: one pass over the whole range.
    const { report: r0, scores: reference } = await wholePass(influxd, store, det);
    expect(r0.scored).toBe(3 * STEPS - 1);
    expect(r0.skipped).toBe(1);
    expect(reference.size).toBe(3 * STEPS - 1);

    // Live: a first service scores up to the middle and stops; a second one restarts.
    const mid = START + 60 * STEP;
    const first = pollerAt(store, det, () => mid + 1);
    expect((await first.runCycle()).scored).toBe(3 * 61 - 1);
    await flush(first);
    await first.stop(1000);
    const second = pollerAt(store, det, () => END + STEP);
    const r2 = await second.runCycle();
    expect(r2.scored).toBe(3 * (STEPS - 61));
    await flush(second);
    const live = await scoresByHostTime(influxd);
    expect(live.size).toBe(3 * STEPS - 1);
    let compared = 0;
    for (const [key, score] of reference) {
      expect(live.get(key)).toBeCloseTo(score, 12);
      compared++;
    }
    expect(compared).toBe(3 * STEPS - 1);
    // The PSI is computed for every feature of the model, not only the raw metrics.
    const health = second.health().check().body as { drift: { psi: Record<string, number> } };
    expect(Object.keys(health.drift.psi).sort()).toEqual(det.features.map((f) => f.name).sort());
    await second.stop(1000);
  }, 120_000);

  it('backfill of a later range reads the history before it: the same scores as the whole pass', async () => {
    const { scores: reference } = await wholePass(influxd, store, det);
    const part = pollerAt(store, det, () => END + STEP);
    const history: HistoryState = { primed: false };
    const from = START + 80 * STEP;
    const r = await part.backfill(from, END + STEP, new Map(), history);
    await flush(part);
    expect(r.scored).toBe(3 * (STEPS - 80));
    expect(history.primed).toBe(true);
    const got = await scoresByHostTime(influxd);
    expect(got.size).toBe(3 * (STEPS - 80));
    for (const [key, score] of got) expect(score).toBeCloseTo(reference.get(key) as number, 12);
  }, 120_000);

  it('a reload to a raw model and back to a temporal one primes the history again instead of reading stale points', async () => {
    const { scores: reference } = await wholePass(influxd, store, det);
    let now = START + 30 * STEP + 1;
    const models = ModelStore.fromDetector(det, 'test:temporal');
    const p = pollerAt(store, det, () => now, models);
    await p.runCycle();
    // A raw model serves for 50 steps, then the temporal model comes back.
    const rawModel = new Detector(
      trainModel(
        Float64Array.from({ length: 300 }, (_, k) => [30, 50, 4e5][k % 3] * (1 + 0.01 * (k % 7))),
        100,
        { nEstimators: 10, maxSamples: 64, seed: 1, contamination: 0.05, createdAt: '2026-01-01T00:00:00.000Z' },
      ),
    );
    models.swap({ detector: rawModel, loadedAt: new Date(), source: 'raw' });
    now = START + 80 * STEP + 1;
    await p.runCycle();
    models.swap({ detector: det, loadedAt: new Date(), source: 'temporal' });
    now = END + STEP;
    const r = await p.runCycle();
    expect(r.scored).toBe(3 * (STEPS - 81));
    await flush(p);
    const got = await scoresByHostTime(influxd);
    let compared = 0;
    for (const [key, score] of got) {
      const t = Number(key.slice(key.indexOf('@') + 1));
      if (t <= START + 80 * STEP) continue;
      expect(score).toBeCloseTo(reference.get(key) as number, 12);
      compared++;
    }
    expect(compared).toBe(3 * (STEPS - 81));
    await p.stop(1000);
  }, 120_000);
});
