import os from 'node:os';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { predictions, waitUntil, type PredictionRow } from '../helpers/influx-data';
import { startService, type ServiceProcess } from '../helpers/process';
import { startTelegraf, TELEGRAF_START_TIMEOUT_MS, type Telegraf } from '../helpers/telegraf';
import { startVethTraffic, type VethTraffic } from '../helpers/veth';
import { NODE_METRICS } from '../../src/core/metrics';
import { presetMapping } from '../../src/poller/telegraf';

// Real Telegraf (docker/telegraf.conf, 1 s interval) collecting this machine into a real
// influxd, and the service process polling it as the README starts it: the values it
// writes back are exactly those computed here from Telegraf's raw points. A veth pair
// named like a physical interface carries known traffic, so the network load is not 0
// and is summed over two interfaces (eth0 and the veth).
const DB = 'system_metrics';
const STEP_MS = 1000;
const MIN_PREDICTIONS = 5;

interface Row {
  time: number;
  value: number;
}

/** InfluxQL with epoch-ms times, straight over HTTP: series tags and (time, value) rows. */
async function raw(influxd: Influxd, q: string): Promise<Array<{ tags: Record<string, string>; rows: Row[] }>> {
  const res = await fetch(`${influxd.url}/query?${new URLSearchParams({ db: DB, epoch: 'ms', q })}`, {
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await res.json()) as {
    results: Array<{ error?: string; series?: Array<{ tags?: Record<string, string>; values: Array<[number, number]> }> }>;
  };
  const r = body.results[0];
  if (r.error) throw new Error(r.error);
  return (r.series ?? []).map((s) => ({ tags: s.tags ?? {}, rows: s.values.map(([time, value]) => ({ time, value })) }));
}

/** One value per collection step; two points of one series in a step would be ambiguous. */
function byStep(rows: Row[], what: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of rows) {
    const step = Math.floor(r.time / STEP_MS) * STEP_MS;
    if (out.has(step)) throw new Error(`${what}: two points in the step at ${new Date(step).toISOString()}`);
    out.set(step, r.value);
  }
  return out;
}

describe('real Telegraf -> real influxd -> the service (values written back as Telegraf reported them)', () => {
  let influxd: Influxd;
  let telegraf: Telegraf | undefined;
  let traffic: VethTraffic | undefined;
  let svc: ServiceProcess | undefined;
  const host = os.hostname();

  beforeAll(async () => {
    influxd = await startInfluxd();
    traffic = startVethTraffic(200_000);
    telegraf = await startTelegraf({ influxUrl: influxd.url, database: DB, intervalS: STEP_MS / 1000 });
    // docker/telegraf.conf keeps only some interface names: say so if this machine has none.
    const tg = telegraf;
    await waitUntil(
      async () => (await raw(influxd, `SELECT count("bytes_recv") FROM "net" WHERE "host" = '${host}'`)).length > 0,
      15_000,
      `net points of host ${host} (docker/telegraf.conf's interfaces filter must match one of this machine's interfaces; telegraf: ${tg.logs().trim().split('\n').slice(-3).join(' | ')})`,
    );
  }, TELEGRAF_START_TIMEOUT_MS);

  afterAll(async () => {
    await svc?.stop();
    await telegraf?.stop();
    await traffic?.stop();
    await influxd?.cleanup();
  });

  it('scores every complete step of this host, with cpu_val, mem_val and net_val equal to the values computed from the raw points', async () => {
    svc = await startService({
      INFLUX_URL: influxd.url,
      INFLUX_DATABASE: DB,
      POLL_INTERVAL_S: '1',
      COLLECTION_INTERVAL_S: String(STEP_MS / 1000),
      SETTLE_S: '2',
    });
    const s = svc;
    let got: PredictionRow[] = [];
    await waitUntil(
      async () => (got = await predictions(influxd, host)).length >= MIN_PREDICTIONS,
      30_000,
      `${MIN_PREDICTIONS} predictions of host ${host} (service: ${s.output().trim().split('\n').slice(-3).join(' | ')})`,
    );
    // Read after the predictions: every raw point they were computed from is in.
    const [cpu] = await raw(influxd, `SELECT "usage_idle" FROM "cpu" WHERE "host" = '${host}' AND "cpu" = 'cpu-total'`);
    const [mem] = await raw(influxd, `SELECT "used_percent" FROM "mem" WHERE "host" = '${host}'`);
    const nets = await raw(influxd, `SELECT "bytes_recv" FROM "net" WHERE "host" = '${host}' GROUP BY "interface"`);
    const idle = byStep(cpu.rows, 'cpu');
    const used = byStep(mem.rows, 'mem');
    // Network load: the per-second rate of bytes_recv between consecutive samples of each
    // interface (a counter that went down restarted from 0), summed over the interfaces
    // Telegraf kept, without the loopback (src/poller/telegraf.ts's preset).
    const load = new Map<number, number>();
    const ifaces = nets.filter((n) => n.tags.interface !== 'lo');
    expect(ifaces.map((n) => n.tags.interface)).toContain(traffic?.iface);
    for (const n of ifaces) {
      for (let i = 1; i < n.rows.length; i++) {
        const { time, value } = n.rows[i];
        const prev = n.rows[i - 1];
        const rate = (value >= prev.value ? value - prev.value : value) / ((time - prev.time) / 1000);
        const step = Math.floor(time / STEP_MS) * STEP_MS;
        load.set(step, (load.get(step) ?? 0) + rate);
      }
    }

    const last = got[got.length - 1].time;
    // Every step up to the last prediction with all three values was scored, and only those.
    const complete = [...idle.keys()].filter((t) => t <= last && used.has(t) && load.has(t)).sort((a, b) => a - b);
    expect(got.map((p) => p.time)).toEqual(complete);
    for (const p of got) {
      expect(p.host).toBe(host);
      expect({ time: p.time, cpu: p.cpu_val, mem: p.mem_val, net: p.net_val }).toEqual({
        time: p.time,
        cpu: 100 - (idle.get(p.time) as number),
        mem: used.get(p.time),
        net: load.get(p.time),
      });
      for (const f of ['score', 'is_anomaly', 'threshold']) expect(typeof p[f]).toBe('number');
    }
    // The collector is this machine's: plausible percentages, a counter that moved.
    for (const p of got) {
      expect(p.cpu_val as number).toBeGreaterThanOrEqual(0);
      expect(p.cpu_val as number).toBeLessThanOrEqual(100);
      expect(p.mem_val as number).toBeGreaterThan(0);
      expect(p.mem_val as number).toBeLessThan(100);
      expect(p.net_val as number).toBeGreaterThanOrEqual(0);
    }
    expect(got.some((p) => (p.net_val as number) > 0)).toBe(true);
  }, 60_000);

  it('METRIC_SET=node: every step with all 13 metrics is scored, each val_<metric> as computed from the raw points, a contrib_<metric> per metric', async () => {
    await svc?.stop();
    svc = undefined;
    await influxd.rawQuery('DROP MEASUREMENT "ai_predictions"', { db: DB });
    svc = await startService({
      INFLUX_URL: influxd.url,
      INFLUX_DATABASE: DB,
      POLL_INTERVAL_S: '1',
      COLLECTION_INTERVAL_S: String(STEP_MS / 1000),
      SETTLE_S: '2',
      METRIC_SET: 'node',
    });
    const s = svc;
    let got: PredictionRow[] = [];
    await waitUntil(
      async () => (got = await predictions(influxd, host)).length >= MIN_PREDICTIONS,
      30_000,
      `${MIN_PREDICTIONS} node-set predictions of host ${host} (service: ${s.output().trim().split('\n').slice(-3).join(' | ')})`,
    );
    // Each metric from Telegraf's raw points, computed here: the mapping's field, tag
    // filter, sum over the sumOver tag and transform (value, 100 - value, counter rate).
    const mapping = presetMapping('node');
    const expected = new Map<string, Map<number, number>>();
    for (const d of NODE_METRICS) {
      const m = mapping[d.name];
      const filters = [`"host" = '${host}'`, ...Object.entries(m.where).map(([k, v]) => `"${k}" = '${v as string}'`)];
      const series = await raw(
        influxd,
        `SELECT "${m.fields[0]}" FROM "${m.measurement}" WHERE ${filters.join(' AND ')}${m.sumOver ? ` GROUP BY "${m.sumOver}"` : ''}`,
      );
      const values = new Map<number, number>();
      for (const sr of series) {
        if (m.sumOver && m.exclude.includes(sr.tags[m.sumOver] ?? '')) continue;
        for (let i = 0; i < sr.rows.length; i++) {
          const { time, value } = sr.rows[i];
          let v: number;
          if (m.transform === 'rate') {
            if (i === 0) continue;
            const prev = sr.rows[i - 1];
            v = (value >= prev.value ? value - prev.value : value) / ((time - prev.time) / 1000);
          } else v = m.transform === 'complement100' ? 100 - value : value;
          const step = Math.floor(time / STEP_MS) * STEP_MS;
          values.set(step, (m.sumOver ? (values.get(step) ?? 0) : 0) + v);
        }
      }
      expect([d.name, values.size > 0]).toEqual([d.name, true]);
      expected.set(d.name, values);
    }
    const first = got[0].time;
    const last = got[got.length - 1].time;
    const cpu = expected.get('cpu_usage') as Map<number, number>;
    const complete = [...cpu.keys()]
      .filter((t) => t >= first && t <= last && NODE_METRICS.every((d) => expected.get(d.name)?.has(t)))
      .sort((a, b) => a - b);
    expect(got.map((p) => p.time)).toEqual(complete);
    for (const p of got) {
      const want: Record<string, unknown> = { time: p.time };
      const have: Record<string, unknown> = { time: p.time };
      for (const d of NODE_METRICS) {
        const field =
          d.name === 'cpu_usage'
            ? 'cpu_val'
            : d.name === 'memory_usage'
              ? 'mem_val'
              : d.name === 'network_load'
                ? 'net_val'
                : `val_${d.name}`;
        want[d.name] = expected.get(d.name)?.get(p.time);
        have[d.name] = p[field];
        expect([`contrib_${d.name}`, typeof p[`contrib_${d.name}`]]).toEqual([`contrib_${d.name}`, 'number']);
      }
      expect(have).toEqual(want);
      expect(typeof p.score).toBe('number');
    }
  }, 60_000);
});
