import { startInfluxd, type Influxd } from '../helpers/influxd';
import { DB, predictions, storeFor, waitUntil, writeSimulatedRange } from '../helpers/influx-data';
import { startService, type ServiceProcess } from '../helpers/process';
import type { MetricsStore } from '../../src/influx/types';
import type { SimulatedRow } from '../../src/data/simulate';
import { averagePathLength } from '../../src/core/path-length';
import { readFileSync } from 'node:fs';
import { MODEL_PATH } from '../helpers/fixtures';

const STEP_S = 10;
// c(psi) of the bundled model: the contributions of a point add up to c(psi) (1 + log2 s).
const C_PSI = averagePathLength((JSON.parse(readFileSync(MODEL_PATH, 'utf8')) as { forest: { subsample: number } }).forest.subsample);
const STEPS = 180;
const END = Date.UTC(2026, 10, 2, 15, 0, 0);
const LOOKBACK_S = Math.ceil((Date.now() - END) / 1000) + 3600;
const FIELDS = [
  'cpu_val',
  'is_anomaly',
  'mem_val',
  'net_val',
  'raw_anomaly',
  'score',
  'severity',
  'shap_cpu',
  'shap_memory',
  'shap_network',
  'threshold',
];

describe('InfluxDB loop end to end (real influxd, real service process)', () => {
  let influxd: Influxd;
  let store: MetricsStore;
  let svc: ServiceProcess | undefined;
  let rows: SimulatedRow[];

  beforeAll(async () => {
    influxd = await startInfluxd();
    store = storeFor(influxd);
    // A fixed past window (the simulated load follows the time of day), so the data and
    // the flags are the same on every run; the lookback reaches back to it.
    rows = await writeSimulatedRange(store, { hosts: 4, steps: STEPS, stepS: STEP_S, seed: 11, end: END });
  }, 120000);

  afterAll(async () => {
    await svc?.stop();
    await store?.close();
    await influxd?.cleanup();
  });

  it('writes one prediction per host per step, flags the labelled incidents, and no duplicates', async () => {
    // A named model: the bundled model judges every host (the learning default has its own test).
    svc = await startService({
      INFLUX_URL: influxd.url,
      MODEL_PATH,
      DRIFT_PSI_WARN: '10',
      POLL_INTERVAL_S: '1',
      COLLECTION_INTERVAL_S: String(STEP_S),
      DRIFT_INTERVAL_S: '1',
      MAX_LOOKBACK_S: String(LOOKBACK_S),
    });
    const hosts = [...new Set(rows.map((r) => r.host))];
    await waitUntil(async () => (await predictions(influxd)).length >= hosts.length * STEPS, 60000, 'all predictions');
    // Let a few more cycles run: they must not add or rescore anything.
    await new Promise((r) => setTimeout(r, 3000));
    const health = (await (await fetch(`${svc.url}/health`)).json()) as {
      status: string;
      influx: { enabled: boolean; status: string; lag_s: number };
    };
    expect(health.status).toBe('ok');
    expect(health.influx).toMatchObject({ enabled: true, status: 'ok' });
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`anomaly_detector_points_scored_total\\{source="poller"\\} ${hosts.length * STEPS}\\b`));
    expect(metrics).toMatch(/anomaly_detector_feature_psi\{feature="cpu_usage"\} [0-9.e-]+/);

    for (const host of hosts) {
      const got = await predictions(influxd, host);
      const expected = rows.filter((r) => r.host === host);
      // Exactly one row per step, at the metrics' timestamps.
      expect(got.map((p) => p.time)).toEqual(expected.map((r) => r.timestamp));
      for (const p of got) {
        expect(p.host).toBe(host);
        expect(typeof p.model_version).toBe('string');
        for (const f of FIELDS) expect(typeof p[f]).toBe('number');
      }
      // Values are what Telegraf reported: cpu = 100 - usage_idle, network = rate of eth0 (lo excluded).
      got.forEach((p, i) => {
        expect(p.cpu_val as number).toBeCloseTo(expected[i].cpu_usage, 6);
        expect(p.mem_val as number).toBeCloseTo(expected[i].memory_usage, 6);
        expect(Math.abs((p.net_val as number) - expected[i].network_load)).toBeLessThanOrEqual(0.1);
        const sum = (p.shap_cpu as number) + (p.shap_memory as number) + (p.shap_network as number);
        // Contributions add up to the path-length deficit c(psi) (1 + log2 s) that fixes the score.
        expect(Math.abs(sum - C_PSI * (1 + Math.log2(p.score as number)))).toBeLessThan(1e-6);
      });
      // Flags: the gated alert fires inside the host's incident, rarely outside.
      const inIncident = got.filter((_, i) => expected[i].anomaly === 1);
      const outside = got.filter((_, i) => expected[i].anomaly === 0);
      expect(inIncident.length).toBeGreaterThan(0);
      expect(inIncident.some((p) => p.is_anomaly === 1)).toBe(true);
      expect(outside.filter((p) => p.is_anomaly === 1).length / outside.length).toBeLessThan(0.05);
    }
    const drift = (await influxd.rawQuery('SELECT count("psi") FROM "ai_drift"', { db: DB })) as { results: Array<{ series?: unknown[] }> };
    expect(drift.results[0].series?.length).toBe(1);
  }, 120000);
});
