import { Counter, Gauge, Registry } from 'prom-client';
import type { MetricsStore } from '../../src/influx/types';
import { LineWriter } from '../../src/poller/writer';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { DB, storeFor } from '../helpers/influx-data';

/**
 * Issue 11 item 5 against a real influxd: one hostile `ai_predictions` point with a string
 * score makes InfluxDB refuse every later float score (a field type conflict, HTTP 400
 * "partial write"). The writer must not retry that batch for ever: it counts and logs
 * the refused lines with InfluxDB's reason, lets the good lines through, says so in its
 * health, and goes on writing.
 */
describe('LineWriter against InfluxDB refusing lines', () => {
  let influxd: Influxd;
  let store: MetricsStore;
  beforeAll(async () => {
    influxd = await startInfluxd();
    store = storeFor(influxd);
    await store.createDatabase?.();
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await influxd?.cleanup();
  });

  it('drops and counts the refused lines of a partial write, writes the rest, does not retry, and reports why', async () => {
    const t = Date.now() - 60_000;
    await store.writeLines([`ai_predictions,host=x score="pwned" ${t}`]);
    const r = new Registry();
    const metrics = {
      written: new Counter({ name: 'w', help: 'w', registers: [r] }),
      writeErrors: new Counter({ name: 'e', help: 'e', registers: [r] }),
      dropped: new Counter({ name: 'd', help: 'd', registers: [r] }),
      buffered: new Gauge({ name: 'b', help: 'b', registers: [r] }),
      writeRefused: new Counter({ name: 'r', help: 'r', registers: [r] }),
    };
    const logs: Array<[object, string]> = [];
    const log = { warn: (o: object, m: string) => logs.push([o, m]), error: (o: object, m: string) => logs.push([o, m]) };
    const w = new LineWriter(store, { maxBuffer: 1000, batchSize: 100, baseBackoffMs: 50, maxBackoffMs: 200 }, metrics, log);
    w.enqueue([
      `ai_predictions,host=a score=0.5 ${t + 1}`,
      `anomaly_drift,feature=cpu_usage psi=0.1 ${t + 2}`,
      `ai_predictions,host=b score=0.6 ${t + 3}`,
      `anomaly_drift,feature=memory_usage psi=0.2 ${t + 4}`,
    ]);
    expect(await w.drain(3000)).toBe(0);
    // The good lines are in InfluxDB, the conflicting ones are not.
    const drift = (await influxd.rawQuery('SELECT "psi" FROM "anomaly_drift"', { db: DB })) as {
      results: Array<{ series?: Array<{ values: unknown[][] }> }>;
    };
    expect(drift.results[0].series?.[0].values).toHaveLength(2);
    expect(await metrics.writeRefused.get()).toMatchObject({ values: [{ value: 2 }] });
    expect((await metrics.written.get()).values[0].value).toBe(2);
    const [fields, msg] = logs.find(([, m]) => /refused/.test(m)) ?? [{}, ''];
    expect(msg).toMatch(/InfluxDB refused 2 of 4 lines/);
    expect(fields).toMatchObject({ reason: expect.stringMatching(/field type conflict/) });
    const h = w.health().check();
    expect(h.degraded).toBe(true);
    expect(h.body).toMatchObject({
      status: 'refusing_lines',
      refused_lines: 2,
      last_refusal: { lines: 2, reason: expect.stringMatching(/field type conflict.*"score".*ai_predictions/) },
    });
    // Later writes go on.
    w.enqueue([`anomaly_drift,feature=network_load psi=0.3 ${t + 5}`]);
    expect(await w.drain(3000)).toBe(0);
    expect((await metrics.written.get()).values[0].value).toBe(3);
    w.close();
  }, 30_000);
});
