/**
 * `npm run bench:poller`: one poll cycle over 10,000 hosts (one new point each) through
 * a real influxd on this machine: read + score + write, and resident memory.
 * BENCH_MODE=learn runs the learning default instead of the bundled model: BENCH_HISTORY_STEPS
 * steps (default 70: every host past its 60 learning points) are written first and read
 * back by the bootstrap, so the cycles measured are the steady state of learned hosts.
 * Memory: resident (RSS) and V8 heap as the service would see them, after the bootstrap
 * and at the end of each cycle; under node --expose-gc also the heap live after a forced
 * collection (then the figures after a cycle are taken after that collection too). The
 * process's peak RSS (getrusage) covers the bootstrap. BENCH_TRACE_GC=1 prints
 * process.memoryUsage() around the bootstrap's chunks.
 */
import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
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
    // BENCH_INFLUX_TIMEOUT_S (default 60; the service's INFLUX_TIMEOUT_S is 10): at 100,000 hosts
    // influxd 1.6 on this machine takes more than 10 s before the first chunk of a one-step read.
    const store = createMetricsStore({
      version: 'v1',
      url: influxd.url,
      database: 'system_metrics',
      timeoutMs: Number(process.env.BENCH_INFLUX_TIMEOUT_S ?? 60) * 1000,
    });
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
                // BENCH_CHUNK_ROWS: the rows a bootstrap read holds at most (default: the poller's).
                ...(process.env.BENCH_CHUNK_ROWS ? { chunkRows: Number(process.env.BENCH_CHUNK_ROWS) } : {}),
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
    const mb = (b: number) => b / 1048576;
    const gc = (globalThis as { gc?: () => void }).gc;
    // BENCH_TRACE_MEM=1: where the memory is (process.memoryUsage() and V8's heap spaces, committed/used).
    // The peaks between two traces, sampled every 100 ms.
    const peak = { rss: 0, heap: 0 };
    const sampler = process.env.BENCH_TRACE_MEM
      ? setInterval(() => {
          const m = process.memoryUsage();
          peak.rss = Math.max(peak.rss, m.rss);
          peak.heap = Math.max(peak.heap, m.heapUsed + m.arrayBuffers);
        }, 100).unref()
      : null;
    // Resident memory by mapping (Linux): malloc's main heap, anonymous mappings (V8's pages, other malloc arenas, large buffers), files (code).
    const smaps = (): string => {
      const t: Record<string, number> = {};
      let kind = '';
      try {
        for (const l of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
          const h = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(l);
          if (h) kind = h[1] === '' ? 'anon' : h[1].startsWith('/') ? 'file' : h[1];
          else if (l.startsWith('Rss:')) t[kind] = (t[kind] ?? 0) + Number(l.split(/\s+/)[1]);
        }
      } catch {
        return '';
      }
      return Object.entries(t)
        .filter(([, v]) => v >= 1024)
        .map(([k, v]) => `${k} ${(v / 1024).toFixed(0)}`)
        .join(', ');
    };
    const traceMem = (at: string) => {
      if (!sampler) return;
      const m = process.memoryUsage();
      const spaces = v8
        .getHeapSpaceStatistics()
        .filter((x) => x.space_size > 0)
        .map((x) => `${x.space_name.replace('_space', '')} ${mb(x.space_size).toFixed(0)}/${mb(x.space_used_size).toFixed(0)}`)
        .join(', ');
      process.stderr.write(
        `  mem ${at}: rss ${mb(m.rss).toFixed(0)}, heapTotal ${mb(m.heapTotal).toFixed(0)}, heapUsed ${mb(m.heapUsed).toFixed(0)}, ` +
          `external ${mb(m.external).toFixed(0)} (arrayBuffers ${mb(m.arrayBuffers).toFixed(0)}); ${spaces}; ` +
          `peaks since the last: rss ${mb(peak.rss).toFixed(0)}, heap + buffers ${mb(peak.heap).toFixed(0)}; resident: ${smaps()}\n`,
      );
      peak.rss = 0;
      peak.heap = 0;
    };
    // The bench's own history writes are garbage by now: the baseline is what is live.
    gc?.();
    traceMem('before the poller');
    const rows: Array<{
      cycle: number;
      scored: number;
      readScoreMs: number;
      writeMs: number;
      totalMs: number;
      rssMb: number;
      heapMb: number;
      liveMb: number | null;
    }> = [];
    let afterBootstrap: { rssMb: number; heapMb: number; liveMb: number | null; peakRssMb: number } | null = null;
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
      // Cycle 0 warms up (first read of every host, and the bootstrap in learning mode); the rest are steady state.
      // RSS and heap as they are (the service runs no forced collection); with node --expose-gc, then
      // the heap live after a collection (RSS alone also counts garbage not yet collected).
      traceMem(`after cycle ${c}`);
      const m0 = process.memoryUsage();
      let liveMb: number | null = null;
      if (gc) {
        gc();
        const m1 = process.memoryUsage();
        liveMb = mb(m1.heapUsed + m1.arrayBuffers);
        traceMem(`after cycle ${c}, collected`);
      }
      const row = {
        cycle: c,
        scored: r.scored,
        readScoreMs: t1 - t0,
        writeMs: t2 - t1,
        totalMs: t2 - t0,
        rssMb: mb(m0.rss),
        heapMb: mb(m0.heapUsed + m0.arrayBuffers),
        liveMb,
      };
      if (c > 0) rows.push(row);
      else {
        afterBootstrap = { rssMb: row.rssMb, heapMb: row.heapMb, liveMb, peakRssMb: process.resourceUsage().maxRSS / 1024 };
        process.stderr.write(
          `warm-up cycle${LEARN ? ' (with the bootstrap)' : ''}: ${r.scored} points in ${(t2 - t0).toFixed(0)} ms; ` +
            `RSS ${row.rssMb.toFixed(0)} MB (peak so far ${afterBootstrap.peakRssMb.toFixed(0)}), heap + buffers ${row.heapMb.toFixed(0)} MB` +
            `${liveMb === null ? '' : `, live after a collection ${liveMb.toFixed(0)} MB`}\n`,
        );
      }
    }
    if (process.env.BENCH_HEAP_SNAPSHOT) {
      gc?.();
      process.stderr.write(`heap snapshot: ${v8.writeHeapSnapshot(process.env.BENCH_HEAP_SNAPSHOT)}\n`);
    }
    if (sampler) clearInterval(sampler);
    await poller.stop(1000);
    await store.close();
    const med = (k: 'readScoreMs' | 'writeMs' | 'totalMs') => [...rows.map((r) => r[k])].sort((a, b) => a - b)[Math.floor(rows.length / 2)];
    process.stdout.write(
      `| cycle | points scored | read+score (ms) | write (ms) | total (ms) | RSS (MB) | heap + buffers (MB) | live after gc (MB) |\n|---|---|---|---|---|---|---|---|\n`,
    );
    for (const r of rows)
      process.stdout.write(
        `| ${r.cycle} | ${r.scored} | ${r.readScoreMs.toFixed(0)} | ${r.writeMs.toFixed(0)} | ${r.totalMs.toFixed(0)} | ${r.rssMb.toFixed(0)} | ${r.heapMb.toFixed(0)} | ${r.liveMb === null ? '-' : r.liveMb.toFixed(0)} |\n`,
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
      max_rss_mb: Math.round(Math.max(...rows.map((r) => r.rssMb))),
      max_heap_mb: Math.round(Math.max(...rows.map((r) => r.heapMb))),
      max_live_mb: gc ? Math.round(Math.max(...rows.map((r) => r.liveMb ?? 0))) : null,
      after_bootstrap_rss_mb: Math.round(afterBootstrap?.rssMb ?? NaN),
      after_bootstrap_heap_mb: Math.round(afterBootstrap?.heapMb ?? NaN),
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      node_flags: process.execArgv.join(' '),
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
