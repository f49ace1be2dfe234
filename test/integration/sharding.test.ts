/**
 * Poller sharding as Kubernetes runs it (k8s/poller-statefulset.yaml): two service
 * processes with SHARD_COUNT=2 and SHARD_INDEX 0 and 1 against one real influxd. Between
 * them every host is scored exactly once: each host's ai_predictions hold one row per
 * simulated step, and each replica scored exactly the hosts of its shard (its counters
 * add up to hosts x steps, so no host was scored by both and then overwritten).
 */
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { predictions, storeFor, waitUntil, writeSimulatedRange } from '../helpers/influx-data';
import { startService, type ServiceProcess } from '../helpers/process';
import type { MetricsStore } from '../../src/influx/types';
import type { SimulatedRow } from '../../src/data/simulate';
import { shardOf } from '../../src/poller/shard';

const STEP_S = 10;
const STEPS = 60;
const HOSTS = 8;
const SHARDS = 2;

const counter = (text: string, name: string): number => {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`${name} not on /metrics`);
  return Number(m[1]);
};

describe('poller sharding: two replicas, one influxd, every host scored exactly once', () => {
  let influxd: Influxd;
  let store: MetricsStore;
  const replicas: ServiceProcess[] = [];
  let rows: SimulatedRow[];

  beforeAll(async () => {
    influxd = await startInfluxd();
    store = storeFor(influxd);
    rows = await writeSimulatedRange(store, { hosts: HOSTS, steps: STEPS, stepS: STEP_S, seed: 23 });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await store?.close();
    await influxd?.cleanup();
  });

  it('splits the hosts between the shards, and together the replicas score every step of every host once', async () => {
    const hosts = [...new Set(rows.map((r) => r.host))].sort();
    expect(hosts).toHaveLength(HOSTS);
    const owned = Array.from({ length: SHARDS }, (_, i) => hosts.filter((h) => shardOf(h, SHARDS) === i));
    // Both shards have work, or the test would not show the split.
    for (const o of owned) expect(o.length).toBeGreaterThan(0);

    for (let i = 0; i < SHARDS; i++) {
      replicas.push(
        await startService({
          INFLUX_URL: influxd.url,
          POLL_INTERVAL_S: '1',
          COLLECTION_INTERVAL_S: String(STEP_S),
          DRIFT_INTERVAL_S: '3600',
          SHARD_COUNT: String(SHARDS),
          SHARD_INDEX: String(i),
        }),
      );
    }
    await waitUntil(async () => (await predictions(influxd)).length >= HOSTS * STEPS, 60_000, 'both shards to score every host');
    // More cycles: nothing may be added or rescored.
    await new Promise((r) => setTimeout(r, 3000));

    const all = await predictions(influxd);
    expect(all).toHaveLength(HOSTS * STEPS);
    for (const host of hosts) {
      const got = (await predictions(influxd, host)).map((p) => p.time);
      expect({ host, times: got }).toEqual({ host, times: rows.filter((r) => r.host === host).map((r) => r.timestamp) });
    }

    // Each replica followed and scored exactly its own hosts; the sum is every point once.
    let scored = 0;
    for (let i = 0; i < SHARDS; i++) {
      const text = await (await fetch(`${replicas[i].url}/metrics`)).text();
      const n = counter(text, 'anomaly_detector_points_scored_total\\{source="poller"\\}');
      expect({ shard: i, scored: n }).toEqual({ shard: i, scored: owned[i].length * STEPS });
      expect({ shard: i, hosts: counter(text, 'anomaly_detector_poll_hosts') }).toEqual({ shard: i, hosts: owned[i].length });
      scored += n;
      const health = (await (await fetch(`${replicas[i].url}/health`)).json()) as { status: string };
      expect(health.status).toBe('ok');
    }
    expect(scored).toBe(HOSTS * STEPS);
  }, 120_000);
});
