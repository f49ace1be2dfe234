import { Registry } from 'prom-client';
import type { MetricsStore } from '../../src/influx/types';
import { ModelStore, loadDetectorFile } from '../../src/model-store';
import { createMetrics, type ServiceMetrics } from '../../src/plugins/metrics';
import type { Poller } from '../../src/poller/poller';
import { shardOf } from '../../src/poller/shard';
import { TelegrafEncoder } from '../../src/data/telegraf-sim';
import type { SimulatedRow } from '../../src/data/simulate';
import { MODEL_PATH } from '../helpers/fixtures';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { DB, predictions, storeFor, writeSimulatedRange } from '../helpers/influx-data';
import { testPoller } from '../helpers/poller';

/**
 * Shard-aware reads against one real influxd: three shard pollers (SHARD_COUNT=3) each
 * discover the hosts and read only their own, so the points they read add up to one
 * full read (an unsharded poller's, cycle for cycle), and between them they score every
 * step of every host exactly once. A host that starts reporting between two discoveries
 * is scored from the next one on, none of its steps lost.
 */
const STEP = 10_000;
const STEPS = 30;
const HOSTS = 12;
const SHARDS = 3;
const END = Date.parse('2026-11-04T08:00:00Z');
const START = END - (STEPS - 1) * STEP;

const value = async (m: ServiceMetrics, name: string, labels = ''): Promise<number> => {
  const text = await m.registry.getSingleMetricAsString(name);
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  if (!line) throw new Error(`${name}${labels} not found in ${text}`);
  return Number(line.split(' ')[1]);
};

/** The store, with the hosts of every group each readSeries returned recorded (the reads themselves go to influxd). */
function recording(store: MetricsStore, seen: Set<string>): MetricsStore {
  return {
    kind: store.kind,
    ping: () => store.ping(),
    readSeries: async (spec) => {
      const groups = await store.readSeries(spec);
      for (const g of groups) seen.add(g.tags.host);
      return groups;
    },
    latestTimes: (m, tag, o) => store.latestTimes(m, tag, o),
    tagValues: (m, key, o) => store.tagValues(m, key, o),
    writeLines: (lines) => store.writeLines(lines),
    close: async () => {},
    get queryBytes() {
      return store.queryBytes;
    },
  };
}

describe('shard-aware reads (real influxd)', () => {
  let influxd: Influxd;
  let store: MetricsStore;
  let rows: SimulatedRow[];
  const models = () => ModelStore.fromDetector(loadDetectorFile(MODEL_PATH), MODEL_PATH);
  beforeAll(async () => {
    influxd = await startInfluxd();
    store = storeFor(influxd);
    rows = await writeSimulatedRange(store, { hosts: HOSTS, steps: STEPS, stepS: STEP / 1000, seed: 31, end: END });
  }, 60_000);
  afterAll(async () => {
    await store.close?.();
    await influxd.cleanup();
  });

  /** Runs the pollers one cycle per step from step 10 to the end; `before(s)` runs ahead of each step's cycles. */
  async function run(pollers: Poller[], setNow: (t: number) => void, before?: (s: number) => Promise<void>): Promise<void> {
    for (let s = 10; s < STEPS; s++) {
      await before?.(s);
      setNow(START + s * STEP + 1);
      for (const p of pollers) await p.runCycle();
    }
    for (const p of pollers) {
      expect(await p.writer.drain(30_000)).toBe(0);
      await p.stop(1000);
    }
  }

  it('each shard reads only its hosts, the points read add up to one full read, and every step is scored exactly once', async () => {
    const hosts = [...new Set(rows.map((r) => r.host))].sort();
    const owned = Array.from({ length: SHARDS }, (_, i) => hosts.filter((h) => shardOf(h, SHARDS) === i));
    for (const o of owned) expect(o.length).toBeGreaterThan(0);

    // One full read: an unsharded poller over the same steps.
    await influxd.rawQuery('DROP MEASUREMENT "ai_predictions"', { db: DB });
    let now = 0;
    const fullMetrics = createMetrics(new Registry(), false);
    await run([testPoller(store, models(), { stepMs: STEP, clock: () => now, metrics: fullMetrics })], (t) => (now = t));
    const full = await value(fullMetrics, 'anomaly_detector_poll_points_read_total');
    expect(full).toBeGreaterThan(0);

    await influxd.rawQuery('DROP MEASUREMENT "ai_predictions"', { db: DB });
    const metrics = owned.map(() => createMetrics(new Registry(), false));
    const seen = owned.map(() => new Set<string>());
    const shards = owned.map((_, i) =>
      testPoller(recording(store, seen[i]), models(), {
        stepMs: STEP,
        clock: () => now,
        metrics: metrics[i],
        overrides: { shard: { count: SHARDS, index: i }, hostDiscovery: { intervalMs: 60_000, chunkHosts: 2 } },
      }),
    );
    await run(shards, (t) => (now = t));

    let read = 0;
    for (let i = 0; i < SHARDS; i++) {
      // Only its own hosts came back from InfluxDB.
      expect({ shard: i, hosts: [...seen[i]].sort() }).toEqual({ shard: i, hosts: owned[i] });
      read += await value(metrics[i], 'anomaly_detector_poll_points_read_total');
      // Discovery once a minute over 20 cycles of 10 s (at 0, 60 s, 120 s, 180 s); three reads per chunk of 2 hosts per cycle.
      expect(await value(metrics[i], 'anomaly_detector_poll_queries_total', '{purpose="discovery"}')).toBe(4);
      expect(await value(metrics[i], 'anomaly_detector_poll_queries_total', '{purpose="read"}')).toBe(
        20 * 3 * Math.ceil(owned[i].length / 2),
      );
      expect(await value(metrics[i], 'anomaly_detector_poll_query_bytes_total', '{purpose="read"}')).toBeGreaterThan(0);
      expect(await value(metrics[i], 'anomaly_detector_points_scored_total', '{source="poller"}')).toBe(owned[i].length * STEPS);
    }
    expect(read).toBe(full);
    const all = await predictions(influxd);
    expect(all).toHaveLength(HOSTS * STEPS);
    for (const host of hosts)
      expect({ host, times: all.filter((p) => p.host === host).map((p) => p.time) }).toEqual({
        host,
        times: rows.filter((r) => r.host === host).map((r) => r.timestamp),
      });
  }, 120_000);

  it('a host that starts reporting between two discoveries is scored from the next one on, none of its steps lost', async () => {
    await influxd.rawQuery('DROP MEASUREMENT "ai_predictions"', { db: DB });
    // A host name of shard 0 that the fleet does not have.
    const joiner = Array.from({ length: 100 }, (_, k) => `joiner-${k}`).find((h) => shardOf(h, SHARDS) === 0) as string;
    let now = 0;
    const metrics = createMetrics(new Registry(), false);
    const poller = testPoller(store, models(), {
      stepMs: STEP,
      clock: () => now,
      metrics,
      overrides: { shard: { count: SHARDS, index: 0 }, hostDiscovery: { intervalMs: 30_000, chunkHosts: 1000 } },
    });
    const enc = new TelegrafEncoder(5);
    const joinerAt: number[] = [];
    // Discoveries at steps 10, 13, 16, ...: the joiner's first points (steps 13 on) are written after the one at 14.
    await run(
      [poller],
      (t) => (now = t),
      async (s) => {
        if (s === 15) {
          const lines: string[] = [];
          for (let k = 13; k < STEPS; k++)
            lines.push(
              ...enc.lines(
                { timestamp: START + k * STEP, host: joiner, cpu_usage: 30, memory_usage: 50, network_load: 2e5, anomaly: 0, incident: '' },
                STEP / 1000,
                false,
              ),
            );
          await store.writeLines(lines);
        }
        if (s === 16) joinerAt.push((await predictions(influxd, joiner)).length);
      },
    );
    // Not scored before the discovery of step 16 (counted before that cycle ran); then every step from its first on.
    expect(joinerAt).toEqual([0]);
    const times = (await predictions(influxd, joiner)).map((p) => (p.time - START) / STEP);
    expect(times).toEqual(Array.from({ length: STEPS - 13 }, (_, i) => i + 13));
    expect(await value(metrics, 'anomaly_detector_poll_queries_total', '{purpose="discovery"}')).toBe(7);
  }, 120_000);
});
