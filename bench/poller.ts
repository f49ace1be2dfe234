/**
 * `npm run bench:poller`: one poll cycle over 10,000 hosts (one new point each) through
 * a real influxd on this machine: read + score + write, and resident memory.
 */
import { resolve } from 'node:path';
import { createMetricsStore } from '../src/influx';
import { ModelStore, loadDetectorFile } from '../src/model-store';
import { TelegrafEncoder } from '../src/data/telegraf-sim';
import { Rng } from '../src/core/random';
import { startInfluxd } from '../test/helpers/influxd';
import { testPoller } from '../test/helpers/poller';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 10000);
const CYCLES = Number(process.env.BENCH_CYCLES ?? 6);
const STEP = 10_000;

async function main(): Promise<void> {
  const influxd = await startInfluxd();
  try {
    const store = createMetricsStore({ version: 'v1', url: influxd.url, database: 'system_metrics' });
    await store.createDatabase?.();
    if (process.env.BENCH_TRACE) {
      const orig = store.readSeries.bind(store);
      store.readSeries = async (spec) => {
        const t0 = performance.now();
        const r = await orig(spec);
        process.stderr.write(`  read ${spec.measurement}: ${r.reduce((a, g) => a + g.rows.length, 0)} rows in ${r.length} groups, ${(performance.now() - t0).toFixed(0)} ms\n`);
        return r;
      };
    }
    const root = resolve(__dirname, '..', '..');
    const models = ModelStore.fromDetector(loadDetectorFile(resolve(root, 'models', 'model.json')), 'models/model.json');
    let now = Math.floor(Date.now() / STEP) * STEP - (CYCLES + 2) * STEP;
    const poller = testPoller(store, models, {
      stepMs: STEP,
      clock: () => now,
      overrides: {
        settleMs: 30_000,
        maxHosts: 1_000_000,
        writer: { maxBuffer: 10_000_000, batchSize: 5000, baseBackoffMs: 200, maxBackoffMs: 2000 },
        baseBackoffMs: 200,
        maxBackoffMs: 2000,
        drift: { windowPoints: 10_000, intervalMs: 60_000, warnPsi: 0.25 },
      },
    });
    const enc = new TelegrafEncoder(1);
    const rng = new Rng(2);
    const hosts = Array.from({ length: HOSTS }, (_, i) => `host-${String(i).padStart(5, '0')}`);
    const writeStep = async (t: number) => {
      const lines: string[] = [];
      for (const host of hosts) {
        lines.push(...enc.lines({ timestamp: t, host, cpu_usage: 20 + rng.next() * 30, memory_usage: 40 + rng.next() * 20, network_load: 3e5 + rng.next() * 2e5, anomaly: 0, incident: '' }, STEP / 1000, false));
      }
      await store.writeLines(lines);
    };
    const rows: Array<{ cycle: number; scored: number; readScoreMs: number; writeMs: number; totalMs: number; rssMb: number }> = [];
    for (let c = 0; c < CYCLES + 1; c++) {
      await writeStep(now);
      now += 1000; // the cycle runs a second after Telegraf wrote
      const t0 = performance.now();
      const r = await poller.runCycle();
      const t1 = performance.now();
      const left = await poller.writer.drain(60_000);
      if (left > 0) throw new Error(`writes did not finish: ${poller.writer.lastError}`);
      const t2 = performance.now();
      now += STEP - 1000;
      // Cycle 0 warms up (first read of every host); the rest are steady state.
      if (c > 0) rows.push({ cycle: c, scored: r.scored, readScoreMs: t1 - t0, writeMs: t2 - t1, totalMs: t2 - t0, rssMb: process.memoryUsage().rss / 1048576 });
      else process.stderr.write(`warm-up cycle: ${r.scored} points in ${(t2 - t0).toFixed(0)} ms\n`);
    }
    await poller.stop(1000);
    await store.close();
    const med = (k: 'readScoreMs' | 'writeMs' | 'totalMs') => [...rows.map((r) => r[k])].sort((a, b) => a - b)[Math.floor(rows.length / 2)];
    process.stdout.write(`| cycle | points scored | read+score (ms) | write (ms) | total (ms) | RSS (MB) |\n|---|---|---|---|---|---|\n`);
    for (const r of rows) process.stdout.write(`| ${r.cycle} | ${r.scored} | ${r.readScoreMs.toFixed(0)} | ${r.writeMs.toFixed(0)} | ${r.totalMs.toFixed(0)} | ${r.rssMb.toFixed(0)} |\n`);
    const summary = { hosts: HOSTS, cycles: rows.length, median_total_ms: med('totalMs'), median_read_score_ms: med('readScoreMs'), median_write_ms: med('writeMs'), max_rss_mb: Math.max(...rows.map((r) => r.rssMb)) };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await influxd.cleanup();
  }
}

void main().catch((e: unknown) => {
  process.stderr.write(`bench:poller failed: ${(e as Error).stack}\n`);
  process.exit(1);
});
