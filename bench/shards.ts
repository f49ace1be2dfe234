/**
 * `npm run bench:shards`: shard-aware reads on one real influxd.
 *
 * Database `fleet40k` holds 40,000 hosts (Telegraf's cpu, mem and net, 4 series per host);
 * `fleet10k` holds 10,000. Part 1 times the ways one shard (a quarter of the 40,000) can
 * read its hosts' newest step: the full read filtered on the client, chunks matched by a
 * regex, chunks matched by an OR of comparisons; and a discovery (SHOW TAG VALUES); beside
 * them, the 10,000-host replica's full read of `fleet10k`, the same by one regex of its hosts,
 * and `fleet40k` read by a regex of one host and of 10,000 hosts in one run of names.
 * Part 2 runs, cycle after cycle on the same clock, four shard pollers (SHARD_COUNT=4,
 * index 0-3) over `fleet40k`, one unsharded poller over `fleet10k` (the replica each shard
 * should match), and one unsharded poller over `fleet40kref`, a copy of `fleet40k` (one
 * full read; in its own database so its predictions do not become the shards'
 * watermarks). Each poller's cycle runs alone (read, score, write drained), as a replica
 * on its own machine would.
 *
 * BENCH_CYCLES (6), BENCH_DISCOVERY_S (60), BENCH_CHUNK (5000), BENCH_PARTS (queries,pollers).
 */
import { resolve } from 'node:path';
import { Registry } from 'prom-client';
import { InfluxV1Store } from '../src/influx/v1';
import type { ReadSeriesSpec } from '../src/influx/types';
import { METRIC_NAMES } from '../src/core/metrics';
import { ModelStore, loadDetectorFile } from '../src/model-store';
import { TelegrafEncoder } from '../src/data/telegraf-sim';
import { Rng } from '../src/core/random';
import type { SimulatedRow } from '../src/data/simulate';
import { createMetrics } from '../src/plugins/metrics';
import { readSpec, type Poller } from '../src/poller/poller';
import { shardOf } from '../src/poller/shard';
import { telegrafPreset } from '../src/poller/telegraf';
import { startInfluxd } from '../test/helpers/influxd';
import { testPoller } from '../test/helpers/poller';

const STEP = 10_000;
const CYCLES = Number(process.env.BENCH_CYCLES ?? 6);
const DISCOVERY_S = Number(process.env.BENCH_DISCOVERY_S ?? 60);
const CHUNK = Number(process.env.BENCH_CHUNK ?? 5000);
const PARTS = (process.env.BENCH_PARTS ?? 'queries,pollers').split(',');
const HISTORY = 3;
const SHARDS = 4;

const names = (n: number) => Array.from({ length: n }, (_, i) => `host-${String(i).padStart(5, '0')}`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const log = (s: string) => process.stderr.write(`${s}\n`);

/** Writes one step of every host (the same values for the same seed). */
function writer(store: InfluxV1Store, hosts: string[], seed: number): (t: number) => Promise<void> {
  const enc = new TelegrafEncoder(seed);
  const rng = new Rng(seed + 1);
  return async (t) => {
    const lines: string[] = [];
    for (const host of hosts) {
      const row: SimulatedRow = {
        timestamp: t,
        host,
        cpu_usage: 20 + rng.next() * 30,
        memory_usage: 40 + rng.next() * 20,
        network_load: 3e5 + rng.next() * 2e5,
        anomaly: 0,
        incident: '',
      };
      lines.push(...enc.lines(row, STEP / 1000, false));
    }
    await store.writeLines(lines);
  };
}

async function main(): Promise<void> {
  const influxd = await startInfluxd();
  try {
    const open = (database: string) => new InfluxV1Store({ url: influxd.url, database, timeoutMs: 120_000 });
    const db40 = open('fleet40k');
    const db40ref = open('fleet40kref');
    const db10 = open('fleet10k');
    for (const s of [db40, db40ref, db10]) await s.createDatabase();
    const hosts40 = names(40_000);
    const write = [writer(db40, hosts40, 1), writer(db40ref, hosts40, 1), writer(db10, names(10_000), 1)];
    let now = Math.floor(Date.now() / STEP) * STEP - (CYCLES + 2 + HISTORY) * STEP;
    const t0 = performance.now();
    for (let k = 0; k < HISTORY; k++) {
      for (const w of write) await w(now);
      now += STEP;
    }
    log(`wrote ${HISTORY} steps of 40,000 + 40,000 + 10,000 hosts in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    if (PARTS.includes('queries')) {
      // Part 1: one shard's newest step (the read of a steady-state cycle), three measurements at once.
      const mapping = telegrafPreset();
      const last = now - STEP;
      const mine = hosts40.filter((h) => shardOf(h, SHARDS) === 0);
      const time = async (label: string, specs: (base: ReadSeriesSpec[]) => ReadSeriesSpec[][], reps: number, store = db40) => {
        const runs: number[] = [];
        let rows = 0;
        let queries = 0;
        for (let r = 0; r < reps; r++) {
          const base = METRIC_NAMES.map((m) => readSpec(mapping[m], last, last + STEP, STEP, true));
          const rounds = specs(base);
          const s = performance.now();
          rows = 0;
          queries = 0;
          for (const round of rounds) {
            const got = await Promise.all(round.map((spec) => store.readSeries(spec)));
            queries += round.length;
            for (const groups of got)
              for (const g of groups) if (label.startsWith('full') ? shardOf(g.tags.host, SHARDS) === 0 : true) rows += g.rows.length;
          }
          runs.push(performance.now() - s);
        }
        process.stdout.write(`| ${label} | ${queries} | ${rows} | ${median(runs).toFixed(0)} | ${Math.min(...runs).toFixed(0)} |\n`);
      };
      const chunked = (size: number, how: 'regex' | 'or') => (base: ReadSeriesSpec[]) => {
        const out: ReadSeriesSpec[][] = [];
        for (let i = 0; i < mine.length; i += size) {
          const c = mine.slice(i, i + size);
          out.push(
            base.map((b) => (how === 'regex' ? { ...b, tagIn: { key: 'host', values: c } } : { ...b, where: { ...b.where, host: c } })),
          );
        }
        return out;
      };
      process.stdout.write(
        `\nOne shard (${mine.length} of 40,000 hosts): its newest step, cpu + mem + net concurrently\n\n| read | queries | rows kept | median ms | min ms |\n|---|---|---|---|---|\n`,
      );
      await time('full read, filtered on the client', (b) => [b], 5);
      // What the shard's read should match: the 10,000-host replica's whole read of its own database.
      await time('the 10,000-host replica: full read of fleet10k', (b) => [b], 5, db10);
      // Where a shard's read loses to the replica's: the regex itself, the larger database,
      // or the shard's hosts spread over it (hash order) rather than in one run of series keys.
      const oneRegex = (values: string[]) => (b: ReadSeriesSpec[]) => [b.map((x) => ({ ...x, tagIn: { key: 'host', values } }))];
      await time('fleet10k, one regex of all its 10,000 hosts', oneRegex(names(10_000)), 5, db10);
      await time('fleet40k, a regex of one host', oneRegex([mine[0]]), 5);
      await time('fleet40k, one regex of 10,000 hosts in one run (host-00000 to host-09999)', oneRegex(hosts40.slice(0, 10_000)), 5);
      for (const size of [1000, 2500, 5000, 10_000]) await time(`regex, chunks of ${size}`, chunked(size, 'regex'), 5);
      for (const size of [100, 250, 1000]) await time(`OR of comparisons, chunks of ${size}`, chunked(size, 'or'), size >= 1000 ? 1 : 3);
      const d: number[] = [];
      let found = 0;
      for (let r = 0; r < 5; r++) {
        const s = performance.now();
        found = (await db40.tagValues(['cpu', 'mem', 'net'], 'host')).length;
        d.push(performance.now() - s);
      }
      process.stdout.write(
        `| discovery: SHOW TAG VALUES FROM cpu, mem, net (${found} hosts) | 1 | | ${median(d).toFixed(0)} | ${Math.min(...d).toFixed(0)} |\n`,
      );
    }

    if (PARTS.includes('pollers')) {
      const root = resolve(__dirname, '..', '..');
      const models = ModelStore.fromDetector(loadDetectorFile(resolve(root, 'models', 'model.json')), 'models/model.json');
      const make = (store: InfluxV1Store, shard: { count: number; index: number }) => {
        const metrics = createMetrics(new Registry(), false);
        const poller = testPoller(store, models, {
          stepMs: STEP,
          clock: () => now,
          metrics,
          overrides: {
            settleMs: 30_000,
            maxHosts: 1_000_000,
            shard,
            hostDiscovery: { intervalMs: DISCOVERY_S * 1000, chunkHosts: CHUNK },
            writer: { maxBuffer: 10_000_000, batchSize: 5000, baseBackoffMs: 200, maxBackoffMs: 2000 },
            drift: { windowPoints: 10_000, intervalMs: 60_000, warnPsi: 0.25 },
          },
        });
        return { poller, metrics };
      };
      const shards = Array.from({ length: SHARDS }, (_, i) => ({
        name: `shard ${i}/4 of 40k`,
        ...make(db40, { count: SHARDS, index: i }),
      }));
      const single = { name: 'unsharded, 10k', ...make(db10, { count: 1, index: 0 }) };
      const full = { name: 'unsharded, 40k (one full read)', ...make(db40ref, { count: 1, index: 0 }) };
      const all = [...shards, single, full];
      type Row = { ms: number[]; readScoreMs: number[]; read: number[]; scored: number[] };
      const results = new Map<string, Row>(all.map((p) => [p.name, { ms: [], readScoreMs: [], read: [], scored: [] }]));
      const cycle = async (p: { poller: Poller }) => {
        const s = performance.now();
        const r = await p.poller.runCycle();
        const t1 = performance.now();
        if ((await p.poller.writer.drain(120_000)) > 0) throw new Error(`writes did not finish: ${p.poller.writer.lastError}`);
        return { ms: performance.now() - s, readScoreMs: t1 - s, read: r.read, scored: r.scored };
      };
      for (let c = 0; c <= CYCLES; c++) {
        for (const w of write) await w(now);
        now += 1000; // the cycle runs a second after Telegraf wrote
        // The order rotates each cycle, so that no poller always runs right after the writes
        // (influxd's cache snapshots and compactions) or right after the 40k poller.
        const order = all.map((_, i) => all[(i + c) % all.length]);
        for (const p of order) {
          const r = await cycle(p);
          if (c === 0) log(`warm-up ${p.name}: ${r.read} points read, ${r.scored} scored, ${r.ms.toFixed(0)} ms`);
          else {
            const x = results.get(p.name) as Row;
            x.ms.push(r.ms);
            x.readScoreMs.push(r.readScoreMs);
            x.read.push(r.read);
            x.scored.push(r.scored);
          }
        }
        now += STEP - 1000;
      }
      for (const p of all) await p.poller.stop(1000);
      const ref = median((results.get(single.name) as Row).ms);
      process.stdout.write(
        `\nPollers, ${CYCLES} steady-state cycles (discovery every ${DISCOVERY_S} s of the bench clock, chunks of ${CHUNK} hosts)\n\n| poller | points read per cycle (median) | points scored | median cycle ms (min-max) | of which read + score | vs unsharded 10k |\n|---|---|---|---|---|---|\n`,
      );
      for (const p of all) {
        const x = results.get(p.name) as Row;
        process.stdout.write(
          `| ${p.name} | ${median(x.read)} | ${median(x.scored)} | ${median(x.ms).toFixed(0)} (${Math.min(...x.ms).toFixed(0)}-${Math.max(...x.ms).toFixed(0)}) | ${median(x.readScoreMs).toFixed(0)} | ${(median(x.ms) / ref).toFixed(2)}x |\n`,
        );
      }
      const sumRead = Array.from({ length: CYCLES }, (_, c) =>
        shards.reduce((a, p) => a + (results.get(p.name) as { read: number[] }).read[c], 0),
      );
      const fullRead = (results.get(full.name) as { read: number[] }).read;
      const worst = Math.max(...sumRead.map((v, c) => Math.abs(v - fullRead[c]) / fullRead[c]));
      const shardQueries = await Promise.all(
        shards.map(async (p) =>
          (await p.metrics.registry.getSingleMetricAsString('anomaly_detector_poll_queries_total')).replace(/\n/g, ' '),
        ),
      );
      process.stdout.write(
        `${JSON.stringify({
          points_read_4_shards_per_cycle: sumRead,
          points_read_full_per_cycle: fullRead,
          worst_cycle_difference: worst,
          worst_shard_vs_10k: Math.max(...shards.map((p) => median((results.get(p.name) as Row).ms) / ref)),
          shards_median_vs_10k: median(shards.map((p) => median((results.get(p.name) as Row).ms))) / ref,
        })}\n`,
      );
      log(shardQueries.join('\n'));
    }
    for (const s of [db40, db40ref, db10]) await s.close();
  } finally {
    await influxd.cleanup();
  }
}

void main().catch((e: unknown) => {
  process.stderr.write(`bench:shards failed: ${(e as Error).stack}\n`);
  process.exit(1);
});
