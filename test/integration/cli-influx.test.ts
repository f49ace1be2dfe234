import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { predictions, storeFor, writeSimulatedRange } from '../helpers/influx-data';
import type { SimulatedRow } from '../../src/data/simulate';

describe('backfill and export against a real influxd', () => {
  let influxd: Influxd;
  let rows: SimulatedRow[];
  const STEPS = 120;

  beforeAll(async () => {
    influxd = await startInfluxd();
    const store = storeFor(influxd);
    rows = await writeSimulatedRange(store, { hosts: 3, steps: STEPS, stepS: 10, seed: 21 });
    await store.close();
  }, 60000);
  afterAll(() => influxd?.cleanup());

  const range = () => [
    '--from',
    new Date(rows[0].timestamp).toISOString(),
    '--to',
    new Date(rows[rows.length - 1].timestamp + 1).toISOString(),
  ];

  it('backfill scores the range once per host and step, and a rerun overwrites instead of duplicating', async () => {
    const env = { INFLUX_URL: influxd.url };
    const first = runCli(['backfill', ...range()], env, 120000);
    expect(first.stderr).not.toMatch(/Error|error:/);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(new RegExp(`backfilled ${3 * STEPS} predictions`));
    const before = await predictions(influxd);
    expect(before).toHaveLength(3 * STEPS);
    const again = runCli(['backfill', ...range()], env, 120000);
    expect(again.code).toBe(0);
    const after = await predictions(influxd);
    expect(after).toHaveLength(3 * STEPS);
    expect(after.map((p) => [p.host, p.time, p.score])).toEqual(before.map((p) => [p.host, p.time, p.score]));
    for (const host of ['host-01', 'host-02', 'host-03']) {
      expect((await predictions(influxd, host)).map((p) => p.time)).toEqual(rows.filter((r) => r.host === host).map((r) => r.timestamp));
    }
  }, 180000);

  it('export writes the training CSV with the simulated values and labels', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'iad-export-')), 'export.csv');
    const r = runCli(['export', ...range(), '--out', out, '--labels'], { INFLUX_URL: influxd.url }, 120000);
    expect(r.code).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('timestamp,host,cpu_usage,memory_usage,network_load,anomaly');
    expect(lines).toHaveLength(1 + rows.length);
    const got = new Map(
      lines.slice(1).map((l) => {
        const [ts, host, cpu, mem, net, label] = l.split(',');
        return [`${host} ${Date.parse(ts)}`, { cpu: Number(cpu), mem: Number(mem), net: Number(net), label: Number(label) }];
      }),
    );
    for (const row of rows) {
      const g = got.get(`${row.host} ${row.timestamp}`);
      expect(g).toBeDefined();
      expect(g?.cpu).toBeCloseTo(row.cpu_usage, 6);
      expect(g?.mem).toBeCloseTo(row.memory_usage, 6);
      expect(Math.abs((g?.net ?? 0) - row.network_load)).toBeLessThanOrEqual(0.1);
      expect(g?.label).toBe(row.anomaly);
    }
  });

  it('says how to configure InfluxDB when INFLUX_URL is missing', () => {
    const r = runCli(['backfill', '--from', '2026-01-01T00:00:00Z'], {});
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('anomaly-detector: INFLUX_URL is not set (see docs/configuration.md)');
  });
});
