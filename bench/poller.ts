/**
 * `npm run bench:poller`: one poll cycle over 10,000 hosts (one new point each) through
 * a real influxd on this machine: read + score + write, and resident memory.
 * BENCH_MODE=learn runs the learning default instead of the bundled model: BENCH_HISTORY_STEPS
 * steps (default 70: every host past its 60 learning points) are written first and read
 * back by the bootstrap, so the cycles measured are the steady state of learned hosts.
 */
import { resolve } from 'node:path';
import { createMetricsStore } from '../src/influx';
import { ModelStore, loadDetectorFile } from '../src/model-store';
import { TelegrafEncoder } from '../src/data/telegraf-sim';
import { Rng } from '../src/core/random';
import { startInfluxd } from '../test/helpers/influxd';
import { testPoller } from '../test/helpers/poller';
import type { Detector } from '../src/core/detector';
import { DEFAULT_GATE } from '../src/core/gate';
import { hostLearningOptions } from '../src/core/host-learning';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 10000);
const LEARN = process.env.BENCH_MODE === 'learn';
const HISTORY = Number(process.env.BENCH_HISTORY_STEPS ?? (LEARN ? 70 : 0));
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
        process.stderr.write(
          `  read ${spec.measurement}: ${r.reduce((a, g) => a + g.rows.length, 0)} rows in ${r.length} groups, ${(performance.now() - t0).toFixed(0)} ms\n`,
        );
        return r;
      };
    }
    const root = resolve(__dirname, '..', '..');
    const models = ModelStore.fromDetector(loadDetectorFile(resolve(root, 'models', 'model.json')), 'models/model.json');
    let now = Math.floor(Date.now() / STEP) * STEP - (CYCLES + 2 + HISTORY) * STEP;
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
        // Learning: the history is the bootstrap's, not rescored (the live loop looks back 2 steps).
        ...(LEARN
          ? {
              maxLookbackMs: 2 * STEP,
              learn: {
                windowMs: (HISTORY + 1) * STEP,
                // The service's default LEARN_CHUNK_S (the poller bounds each read in rows itself).
                chunkMs: 3600_000,
                options: (prior: Detector) => hostLearningOptions({ prior, gate: DEFAULT_GATE, maxKeys: 1_000_000 }),
              },
            }
          : {}),
      },
    });
    const enc = new TelegrafEncoder(1);
    const rng = new Rng(2);
    const hosts = Array.from({ length: HOSTS }, (_, i) => `host-${String(i).padStart(5, '0')}`);
    const writeStep = async (t: number) => {
      const lines: string[] = [];
      for (const host of hosts) {
        lines.push(
          ...enc.lines(
            {
              timestamp: t,
              host,
              cpu_usage: 20 + rng.next() * 30,
              memory_usage: 40 + rng.next() * 20,
              network_load: 3e5 + rng.next() * 2e5,
              anomaly: 0,
              incident: '',
            },
            STEP / 1000,
            false,
          ),
        );
      }
      await store.writeLines(lines);
    };
    for (let k = 0; k < HISTORY; k++) {
      await writeStep(now);
      now += STEP;
    }
    if (HISTORY > 0) process.stderr.write(`wrote ${HISTORY} steps of history for ${HOSTS} hosts\n`);
    const rows: Array<{
      cycle: number;
      scored: number;
      readScoreMs: number;
      writeMs: number;
      totalMs: number;
      rssMb: number;
      heapMb: number;
    }> = [];
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
      // With node --expose-gc, the heap live after a collection (RSS alone also counts garbage not yet collected).
      const gc = (globalThis as { gc?: () => void }).gc;
      if (gc) gc();
      if (c > 0)
        rows.push({
          cycle: c,
          scored: r.scored,
          readScoreMs: t1 - t0,
          writeMs: t2 - t1,
          totalMs: t2 - t0,
          rssMb: process.memoryUsage().rss / 1048576,
          heapMb: (process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers) / 1048576,
        });
      else process.stderr.write(`warm-up cycle${LEARN ? ' (with the bootstrap)' : ''}: ${r.scored} points in ${(t2 - t0).toFixed(0)} ms\n`);
    }
    await poller.stop(1000);
    await store.close();
    const med = (k: 'readScoreMs' | 'writeMs' | 'totalMs') => [...rows.map((r) => r[k])].sort((a, b) => a - b)[Math.floor(rows.length / 2)];
    process.stdout.write(
      `| cycle | points scored | read+score (ms) | write (ms) | total (ms) | RSS (MB) | heap + buffers (MB) |\n|---|---|---|---|---|---|---|\n`,
    );
    for (const r of rows)
      process.stdout.write(
        `| ${r.cycle} | ${r.scored} | ${r.readScoreMs.toFixed(0)} | ${r.writeMs.toFixed(0)} | ${r.totalMs.toFixed(0)} | ${r.rssMb.toFixed(0)} | ${r.heapMb.toFixed(0)} |\n`,
      );
    const health = poller.health().check().body as { learning?: { learning_hosts?: number; bytes_per_host?: number } };
    const summary = {
      mode: LEARN ? 'learn' : 'model',
      learning_hosts: health.learning?.learning_hosts ?? null,
      hosts: HOSTS,
      cycles: rows.length,
      median_total_ms: med('totalMs'),
      median_read_score_ms: med('readScoreMs'),
      median_write_ms: med('writeMs'),
      max_rss_mb: Math.max(...rows.map((r) => r.rssMb)),
      max_heap_mb: Math.max(...rows.map((r) => r.heapMb)),
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await influxd.cleanup();
  }
}

void main().catch((e: unknown) => {
  process.stderr.write(`bench:poller failed: ${(e as Error).stack}\n`);
  process.exit(1);
});
