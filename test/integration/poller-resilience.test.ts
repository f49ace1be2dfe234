import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from '../helpers/cli';
import { ROOT, normalPoint } from '../helpers/fixtures';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { DB, predictions, storeFor, waitUntil, writeSimulatedRange } from '../helpers/influx-data';
import { startService, type ServiceProcess } from '../helpers/process';

const FAST = {
  POLL_INTERVAL_S: '1',
  COLLECTION_INTERVAL_S: '1',
  SETTLE_S: '5',
  INFLUX_TIMEOUT_S: '2',
  POLL_MAX_BACKOFF_S: '2',
  LOG_LEVEL: 'info',
};

/** Telegraf stand-in: live simulated hosts, one step per second, buffering while InfluxDB is down. */
function liveSimulator(influxd: Influxd, hosts: number, seconds: number): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'simulate',
      '--influx',
      influxd.url,
      '--live',
      '--step',
      '1',
      '--hosts',
      String(hosts),
      '--duration',
      String(seconds),
      '--seed',
      '5',
    ],
    { cwd: ROOT, stdio: 'ignore' },
  );
  return { child, done: new Promise((r) => child.on('exit', r)) };
}

/** Epoch ms of every cpu point of a host: the steps that must be scored. */
async function cpuTimes(influxd: Influxd): Promise<Map<string, number[]>> {
  const body = (await influxd.rawQuery('SELECT "usage_idle" FROM "cpu" GROUP BY "host"', { db: DB })) as {
    results: Array<{ series?: Array<{ tags: { host: string }; values: Array<[string, number]> }> }>;
  };
  const out = new Map<string, number[]>();
  for (const s of body.results[0].series ?? [])
    out.set(
      s.tags.host,
      s.values.map((v) => Date.parse(v[0])),
    );
  return out;
}

/** Every host's predictions cover exactly its cpu steps (no gap, no extra). */
async function expectExactlyOnce(influxd: Influxd): Promise<number> {
  const steps = await cpuTimes(influxd);
  expect(steps.size).toBeGreaterThan(0);
  let total = 0;
  for (const [host, times] of steps) {
    const got = (await predictions(influxd, host)).map((p) => p.time);
    expect(got).toEqual(times);
    total += got.length;
  }
  return total;
}

async function caughtUp(influxd: Influxd): Promise<boolean> {
  const steps = await cpuTimes(influxd);
  for (const [host, times] of steps) {
    const got = await predictions(influxd, host);
    if (got.length === 0 || got[got.length - 1].time < times[times.length - 1]) return false;
  }
  return steps.size > 0;
}

const scoredTotals = (log: string): number[] =>
  log
    .split('\n')
    .filter((l) => l.includes('"poller stopped"'))
    .map((l) => (JSON.parse(l) as { scored_total: number }).scored_total);

describe('InfluxDB loop resilience (real influxd)', () => {
  let influxd: Influxd;
  beforeEach(async () => {
    influxd = await startInfluxd();
  }, 60000);
  afterEach(async () => {
    await influxd.cleanup();
  });

  it('survives a 15 s InfluxDB outage: /detect answers, /health degrades, then every point is scored once', async () => {
    const sim = liveSimulator(influxd, 2, 40);
    let svc: ServiceProcess | undefined;
    try {
      await waitUntil(async () => (await cpuTimes(influxd).catch(() => new Map())).size === 2, 20000, 'simulated hosts');
      svc = await startService({ INFLUX_URL: influxd.url, ...FAST });
      await waitUntil(async () => (await predictions(influxd)).length > 4, 20000, 'first predictions');
      await influxd.stop();
      const statuses: string[] = [];
      const outageEnd = Date.now() + 15000;
      while (Date.now() < outageEnd) {
        const d = await fetch(`${svc.url}/detect`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ points: [normalPoint(0)] }),
        });
        expect(d.status).toBe(200);
        statuses.push(((await (await fetch(`${svc.url}/health`)).json()) as { status: string }).status);
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(statuses).toContain('degraded');
      await influxd.restart();
      await sim.done;
      await waitUntil(() => caughtUp(influxd), 30000, 'predictions to catch up after the outage');
      await new Promise((r) => setTimeout(r, 2000));
      const total = await expectExactlyOnce(influxd);
      expect(((await (await fetch(`${svc.url}/health`)).json()) as { status: string }).status).toBe('ok');
      await svc.stop();
      expect(scoredTotals(svc.output())).toEqual([total]);
    } finally {
      sim.child.kill();
      await svc?.stop();
    }
  }, 150000);

  it('a restart of the service mid-run neither skips nor rescores', async () => {
    const sim = liveSimulator(influxd, 3, 25);
    let a: ServiceProcess | undefined;
    let b: ServiceProcess | undefined;
    try {
      await waitUntil(async () => (await cpuTimes(influxd).catch(() => new Map())).size === 3, 20000, 'simulated hosts');
      a = await startService({ INFLUX_URL: influxd.url, ...FAST });
      await new Promise((r) => setTimeout(r, 6000));
      expect(await a.stop()).toBe(0);
      await new Promise((r) => setTimeout(r, 4000));
      b = await startService({ INFLUX_URL: influxd.url, ...FAST });
      await sim.done;
      await waitUntil(() => caughtUp(influxd), 30000, 'predictions to catch up after the restart');
      await new Promise((r) => setTimeout(r, 2000));
      const total = await expectExactlyOnce(influxd);
      await b.stop();
      const [first] = scoredTotals(a.output());
      const [second] = scoredTotals(b.output());
      expect(first).toBeGreaterThan(0);
      expect(second).toBeGreaterThan(0);
      expect(first + second).toBe(total);
      expect(b.output()).toContain('watermarks restored from ai_predictions');
    } finally {
      sim.child.kill();
      await a?.stop();
      await b?.stop();
    }
  }, 150000);

  it('handles hostile host names: exact tags in ai_predictions, no injection', async () => {
    const names = [
      'web,01',
      'db 02',
      'a=b',
      'quote"host',
      "it's",
      'C:\\temp',
      'hôte-ü-日本-🚀',
      "x' OR '1'='1",
      '"; DROP DATABASE system_metrics; --',
      "y\\' OR 1=1 --",
    ];
    const store = storeFor(influxd);
    await writeSimulatedRange(store, { hosts: names.length, steps: 30, stepS: 10, seed: 3, names });
    const svc = await startService({ INFLUX_URL: influxd.url, POLL_INTERVAL_S: '1', COLLECTION_INTERVAL_S: '10' });
    try {
      await waitUntil(async () => (await predictions(influxd)).length >= names.length * 30, 30000, 'predictions of every hostile host');
      for (const name of names) expect((await predictions(influxd, name)).length).toBe(30);
      const hosts = (await influxd.rawQuery('SHOW TAG VALUES FROM "ai_predictions" WITH KEY = "host"', { db: DB })) as {
        results: Array<{ series: Array<{ values: Array<[string, string]> }> }>;
      };
      expect(hosts.results[0].series[0].values.map((v) => v[1]).sort()).toEqual([...names].sort());
      const dbs = (await influxd.rawQuery('SHOW DATABASES')) as { results: Array<{ series: Array<{ values: string[][] }> }> };
      expect(dbs.results[0].series[0].values.flat()).toContain(DB);
    } finally {
      await svc.stop();
      await store.close();
    }
  }, 120000);
});
