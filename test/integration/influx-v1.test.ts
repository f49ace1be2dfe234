/**
 * The v1 adapter against a real influxd (auth enabled): writes, grouped reads, latest
 * times, errors as InfluxDB states them, and a restart on the same port and data.
 */
import net from 'node:net';
import { formatPoint, int, type Point } from '../../src/influx/line-protocol';
import { InfluxError } from '../../src/influx/types';
import { InfluxV1Store, type InfluxV1Options } from '../../src/influx/v1';
import { freePort, startInfluxd, type Influxd } from '../helpers/influxd';

const DB = 'system_metrics';
const ADMIN = { username: 'admin', password: 's3cret\'"pw' };
const T0 = 1_700_000_000_000;
const HOSTS = ['web-1', 'web-2', 'db 1'];

let influxd: Influxd;
let store: InfluxV1Store;
const stores: InfluxV1Store[] = [];

function open(extra: Partial<InfluxV1Options> = {}): InfluxV1Store {
  const s = new InfluxV1Store({ url: influxd.url, database: DB, ...ADMIN, timeoutMs: 5000, ...extra });
  stores.push(s);
  return s;
}

/** Rejection of `p` as an InfluxError (fails the test when it resolves or throws something else). */
async function influxError(p: Promise<unknown>): Promise<InfluxError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InfluxError);
  return err as InfluxError;
}

beforeAll(async () => {
  influxd = await startInfluxd({ authEnabled: true });
  // With auth on and no users, influxd accepts only the creation of the first admin.
  await influxd.rawQuery(`CREATE USER "admin" WITH PASSWORD 's3cret\\'"pw' WITH ALL PRIVILEGES`);
  store = open();
  await store.createDatabase();
  const points: Point[] = [];
  for (const [h, host] of HOSTS.entries()) {
    for (let i = 0; i < 5; i++) {
      const time = T0 + i * 10_000;
      points.push({
        measurement: 'cpu',
        tags: { host, cpu: 'cpu-total' },
        fields: { usage_user: h * 10 + i + 0.5, usage_system: i },
        time,
      });
      // A per-core series of the same host: must not leak into cpu-total reads.
      points.push({ measurement: 'cpu', tags: { host, cpu: 'cpu0' }, fields: { usage_user: 99, usage_system: 99 }, time });
      points.push({ measurement: 'net', tags: { host, interface: 'eth0' }, fields: { bytes_recv: int(1_000_000 * (i + 1)) }, time });
    }
  }
  // usage_system missing on one point: reads as null.
  points.push({ measurement: 'cpu', tags: { host: 'web-1', cpu: 'cpu-total' }, fields: { usage_user: 7 }, time: T0 + 50_000 });
  await store.writeLines(points.map((p) => formatPoint(p)));
}, 120_000);

afterAll(async () => {
  for (const s of stores) await s.close();
  await influxd?.cleanup();
});

describe('InfluxDB v1 adapter on a real influxd', () => {
  it('pings', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });

  it('reads one measurement grouped by host, in time order, with tag filters and nulls', async () => {
    const groups = await store.readSeries({
      measurement: 'cpu',
      fields: ['usage_user', 'usage_system'],
      where: { cpu: 'cpu-total' },
      groupBy: ['host'],
      from: T0 + 10_000,
      to: T0 + 60_000,
    });
    expect(groups.map((g) => g.tags.host).sort()).toEqual([...HOSTS].sort());
    for (const g of groups) {
      const h = HOSTS.indexOf(g.tags.host);
      const expected = [1, 2, 3, 4].map((i) => ({ time: T0 + i * 10_000, values: { usage_user: h * 10 + i + 0.5, usage_system: i } }));
      if (g.tags.host === 'web-1') expected.push({ time: T0 + 50_000, values: { usage_user: 7, usage_system: null as unknown as number } });
      expect(g.rows).toEqual(expected);
    }
  });

  it('bounds: from is inclusive, to is exclusive; host lists select several hosts', async () => {
    const groups = await store.readSeries({
      measurement: 'cpu',
      fields: ['usage_user'],
      where: { cpu: 'cpu-total', host: ['web-2', 'db 1'] },
      from: T0 + 20_000,
      to: T0 + 30_000,
    });
    expect(groups.sort((a, b) => a.tags.host.localeCompare(b.tags.host))).toEqual([
      { tags: { host: 'db 1' }, rows: [{ time: T0 + 20_000, values: { usage_user: 22.5 } }] },
      { tags: { host: 'web-2' }, rows: [{ time: T0 + 20_000, values: { usage_user: 12.5 } }] },
    ]);
    await expect(store.readSeries({ measurement: 'cpu', fields: ['usage_user'], where: { host: [] }, from: 0 })).resolves.toEqual([]);
  });

  it('applies per-host watermarks in one query', async () => {
    const groups = await store.readSeries({
      measurement: 'net',
      fields: ['bytes_recv'],
      from: T0,
      after: new Map([
        ['web-1', T0 + 30_000],
        ['web-2', T0 + 40_000],
      ]),
    });
    const byHost = Object.fromEntries(groups.map((g) => [g.tags.host, g.rows.map((r) => [r.time, r.values.bytes_recv])]));
    expect(byHost).toEqual({
      'web-1': [[T0 + 40_000, 5_000_000]],
      'db 1': [0, 1, 2, 3, 4].map((i) => [T0 + i * 10_000, 1_000_000 * (i + 1)]),
    });
  });

  it('finds the latest time per host, with and without a field, bounded by since', async () => {
    const preds = HOSTS.map((host, i) =>
      formatPoint({ measurement: 'ai_predictions', tags: { host }, fields: { score: 0.4, is_anomaly: false }, time: T0 + 1000 * (i + 1) }),
    );
    preds.push(formatPoint({ measurement: 'ai_predictions', tags: { host: 'web-1' }, fields: { score: 0.9 }, time: T0 - 5000 }));
    await store.writeLines(preds);
    const expected = new Map(HOSTS.map((h, i) => [h, T0 + 1000 * (i + 1)]));
    await expect(store.latestTimes('ai_predictions', 'host')).resolves.toEqual(expected);
    await expect(store.latestTimes('ai_predictions', 'host', { field: 'score' })).resolves.toEqual(expected);
    await expect(store.latestTimes('ai_predictions', 'host', { since: T0 + 2000 })).resolves.toEqual(
      new Map([
        ['web-2', T0 + 2000],
        ['db 1', T0 + 3000],
      ]),
    );
    await expect(store.latestTimes('no_such_measurement', 'host')).resolves.toEqual(new Map());
  });

  it('writes in batches and merges series split across response chunks', async () => {
    const small = open({ batchSize: 7, chunkSize: 25 });
    const lines = Array.from({ length: 160 }, (_, i) =>
      formatPoint({ measurement: 'batch', tags: { host: i % 2 ? 'odd' : 'even' }, fields: { v: i }, time: T0 + i }),
    );
    await small.writeLines(lines);
    await small.writeLines([]);
    const groups = await small.readSeries({ measurement: 'batch', fields: ['v'], from: T0 });
    expect(groups).toHaveLength(2);
    for (const g of groups) {
      expect(g.rows).toHaveLength(80);
      expect(g.rows.every((r, k) => r.values.v === (g.tags.host === 'odd' ? 2 * k + 1 : 2 * k) && r.time === T0 + r.values.v!)).toBe(true);
    }
  });

  it('sends credentials as u/p parameters when asked', async () => {
    await expect(open({ authMethod: 'query' }).latestTimes('cpu', 'host')).resolves.toEqual(
      new Map(HOSTS.map((h) => [h, T0 + (h === 'web-1' ? 50_000 : 40_000)])),
    );
  });

  it('honours a retention policy for writes and reads', async () => {
    await store.query(`CREATE RETENTION POLICY "week" ON "${DB}" DURATION 7d REPLICATION 1`);
    const rp = open({ retentionPolicy: 'week' });
    const now = Date.now();
    await rp.writeLines([formatPoint({ measurement: 'rp_test', tags: { host: 'a' }, fields: { v: 1 }, time: now })]);
    await expect(rp.readSeries({ measurement: 'rp_test', fields: ['v'], from: now - 1 })).resolves.toEqual([
      { tags: { host: 'a' }, rows: [{ time: now, values: { v: 1 } }] },
    ]);
    await expect(store.readSeries({ measurement: 'rp_test', fields: ['v'], from: now - 1 })).resolves.toEqual([]);
  });

  describe('errors carry the status and InfluxDB message', () => {
    it('wrong password and missing credentials: 401 authorization failed', async () => {
      for (const bad of [
        open({ password: 'wrong' }),
        open({ password: 'wrong', authMethod: 'query' }),
        open({ username: undefined, password: undefined }),
      ]) {
        const err = await influxError(bad.readSeries({ measurement: 'cpu', fields: ['usage_user'], from: 0 }));
        expect(err.status).toBe(401);
        expect(err.operation).toBe('query');
        expect(err.message).toMatch(
          /^InfluxDB query failed: HTTP 401: .*(authorization failed|unable to parse authentication credentials)/,
        );
        expect(err.message).not.toContain('wrong');
        const werr = await influxError(bad.writeLines(['cpu v=1']));
        expect(werr.status).toBe(401);
      }
    });

    it('unknown database: query and write name it', async () => {
      const nodb = open({ database: 'nope' });
      const q = await influxError(nodb.readSeries({ measurement: 'cpu', fields: ['usage_user'], from: 0 }));
      expect(q.message).toBe('InfluxDB query failed: database not found: nope');
      expect(q.influxMessage).toBe('database not found: nope');
      const w = await influxError(nodb.writeLines(['cpu v=1']));
      expect(w.status).toBe(404);
      expect(w.message).toBe('InfluxDB write failed: HTTP 404: database not found: "nope"');
    });

    it('bad InfluxQL and field type conflicts: 400 with the parser message', async () => {
      const q = await influxError(store.query('SELEC nothing'));
      expect(q.status).toBe(400);
      expect(q.influxMessage).toMatch(/^error parsing query: found SELEC/);
      const w = await influxError(store.writeLines([`cpu,host=web-1,cpu=cpu-total usage_user="text" ${T0}`]));
      expect(w.status).toBe(400);
      expect(w.influxMessage).toMatch(/field type conflict/);
    });

    it('refused connections and timeouts have no status but a code', async () => {
      const closed = open({ url: `http://127.0.0.1:${await freePort()}` });
      const refused = await influxError(closed.ping());
      expect(refused.status).toBeUndefined();
      expect(refused.code).toBe('ECONNREFUSED');

      // A socket that accepts and never answers.
      const sockets: net.Socket[] = [];
      const silent = net.createServer((s) => sockets.push(s));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      try {
        const slow = open({ url: `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`, timeoutMs: 200 });
        const started = Date.now();
        const err = await influxError(slow.readSeries({ measurement: 'cpu', fields: ['v'], from: 0 }));
        expect(err.message).toBe('InfluxDB query failed: timed out after 200 ms');
        expect(err.code).toBe('ETIMEDOUT');
        expect(Date.now() - started).toBeLessThan(3000);
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise((r) => silent.close(r));
      }
    });
  });

  it('survives an influxd restart on the same port with its data', async () => {
    const marker = [formatPoint({ measurement: 'outage', tags: { host: 'web-1' }, fields: { v: 1 }, time: T0 })];
    await store.writeLines(marker);
    await influxd.stop();
    expect((await influxError(store.ping())).code).toBe('ECONNREFUSED');
    expect((await influxError(store.writeLines(marker))).operation).toBe('write');
    const url = influxd.url;
    await influxd.restart();
    expect(influxd.url).toBe(url);
    await store.ping();
    await store.writeLines([formatPoint({ measurement: 'outage', tags: { host: 'web-1' }, fields: { v: 2 }, time: T0 + 1 })]);
    await expect(store.readSeries({ measurement: 'outage', fields: ['v'], from: 0 })).resolves.toEqual([
      {
        tags: { host: 'web-1' },
        rows: [
          { time: T0, values: { v: 1 } },
          { time: T0 + 1, values: { v: 2 } },
        ],
      },
    ]);
    // Data written before the restart is all still there.
    const cpu = await store.readSeries({ measurement: 'cpu', fields: ['usage_user'], where: { cpu: 'cpu-total' }, from: 0 });
    expect(cpu.reduce((n, g) => n + g.rows.length, 0)).toBe(16);
  });
});
