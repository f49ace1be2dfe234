import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import pino from 'pino';
import { Registry } from 'prom-client';
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadConfig, type Config } from '../config';
import { createMetricsStore } from '../influx';
import type { MetricsStore } from '../influx/types';
import { ModelStore, loadDetectorFile } from '../model-store';
import { createMetrics } from '../plugins/metrics';
import { loadMapping } from '../poller/mapping-file';
import type { Detector } from '../core/detector';
import { hostLearningOptions } from '../core/host-learning';
import { Poller, readJoined, type HistoryState, type HostState } from '../poller/poller';
import { isComplete, type HostSteps } from '../poller/telegraf';
import { LABELS_MEASUREMENT } from '../data/telegraf-sim';
import { csvField } from '../data/csv';
import { UsageError } from './errors';
import { timeArg } from './time-arg';
import { InfluxError } from '../influx/types';
import { artifactOptions } from '../server';

function rangeOf(o: { from: string; to?: string }): [number, number] {
  const from = timeArg('from', o.from);
  const to = o.to ? timeArg('to', o.to) : Date.now();
  if (!(from < to)) throw new UsageError('--from must be before --to');
  return [from, to];
}

function storeOf(config: Config): MetricsStore {
  const i = config.influx;
  if (!i) throw new UsageError('INFLUX_URL is not set (see docs/configuration.md)');
  return createMetricsStore(i.api === 'v1' ? { version: 'v1', ...i } : { version: 'v2', ...i });
}

function progress(total: number, label: string): SingleBar {
  const bar = new SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} h | {eta_value}s left`, stream: process.stderr, hideCursor: true },
    Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}

const HOUR = 3600_000;

/** `backfill` and `export`: the InfluxDB commands (connection from the environment). */
export function registerInfluxCommands(program: Command): void {
  program
    .command('backfill')
    .description('score a past range from InfluxDB and write its predictions (idempotent: reruns overwrite)')
    .requiredOption('--from <time>', 'start (RFC 3339)')
    .option('--to <time>', 'end (RFC 3339; default now)')
    .action(async (o: { from: string; to?: string }) => {
      const [from, to] = rangeOf(o);
      const config = loadConfig();
      const store = storeOf(config);
      const p = config.poller;
      const detector = loadDetectorFile(config.modelPath, artifactOptions(config));
      const mapping = loadMapping(p.mappingFile, p.netIncludeSent, p.metricSet);
      const missing = detector.inputs.filter((name) => !Object.hasOwn(mapping, name));
      if (!p.learn && missing.length > 0)
        throw new UsageError(
          `model ${detector.version} takes metrics (${detector.inputs.join(', ')}); the mapping does not provide ${missing.join(', ')}`,
        );
      const models = ModelStore.fromDetector(detector, config.modelPath);
      const log = pino({ level: 'warn' }, pino.destination(2));
      const poller = new Poller(
        store,
        models,
        {
          intervalMs: p.intervalMs,
          maxLookbackMs: to - from,
          collectionIntervalMs: p.collectionIntervalMs,
          settleMs: 0,
          mapping,
          gate: p.gate,
          shard: { count: 1, index: 0 },
          maxHosts: p.maxHosts,
          writer: { maxBuffer: Number.MAX_SAFE_INTEGER, batchSize: p.writeBatchPoints, baseBackoffMs: 500, maxBackoffMs: 10000 },
          baseBackoffMs: 1000,
          maxBackoffMs: 10000,
          drift: p.drift,
          // The live loop's detector: learning each host (from LEARN_WINDOW_S before --from) unless a model is named.
          refit: p.refit,
          ...(p.learn
            ? {
                learn: {
                  ...p.learn,
                  options: (prior: Detector) =>
                    hostLearningOptions({ prior, gate: p.gate, maxKeys: p.maxHosts, metrics: Object.keys(mapping) }),
                },
              }
            : {}),
        },
        createMetrics(new Registry(), false),
        log,
      );
      const hours = Math.ceil((to - from) / HOUR);
      const bar = progress(hours, 'backfill');
      const state = new Map<string, HostState>();
      const history: HistoryState = { primed: false };
      let scored = 0;
      let alerts = 0;
      try {
        for (let t = from, k = 0; t < to; t += HOUR, k++) {
          const r = await poller.backfill(t, Math.min(to, t + HOUR), state, history);
          scored += r.scored;
          alerts += r.alerts;
          // Keep memory flat: wait for each hour's writes.
          if ((await poller.writer.drain(120000)) > 0)
            throw new InfluxError('write', `InfluxDB did not accept the writes within 120 s: ${poller.writer.lastError}`);
          bar.update(k + 1);
        }
      } finally {
        // The progress bar must not be left drawing over the error line.
        bar.stop();
        poller.writer.close();
        await store.close();
      }
      process.stdout.write(
        `backfilled ${scored} predictions (${alerts} alerts) for ${state.size} hosts from ${new Date(from).toISOString()} to ${new Date(to).toISOString()}\n`,
      );
    });

  program
    .command('export')
    .description('export training data from InfluxDB (Telegraf schema) to the training CSV format')
    .requiredOption('--from <time>', 'start (RFC 3339)')
    .option('--to <time>', 'end (RFC 3339; default now)')
    .requiredOption('--out <file>', 'CSV to write')
    .option('--labels', `add an anomaly column from the ${LABELS_MEASUREMENT} measurement (simulated data)`)
    .action(async (o: { from: string; to?: string; out: string; labels?: boolean }) => {
      const [from, to] = rangeOf(o);
      const config = loadConfig();
      const store = storeOf(config);
      const p = config.poller;
      const mapping = loadMapping(p.mappingFile, p.netIncludeSent, p.metricSet);
      const interval = p.collectionIntervalMs;
      const names = Object.keys(mapping);
      const out: string[] = [`timestamp,host,${names.join(',')}${o.labels ? ',anomaly' : ''}`];
      const hours = Math.ceil((to - from) / HOUR);
      const bar = progress(hours, 'export');
      let rows = 0;
      let incomplete = 0;
      try {
        for (let t = from, k = 0; t < to; t += HOUR, k++) {
          const end = Math.min(to, t + HOUR);
          const steps: HostSteps = new Map();
          await readJoined(store, mapping, names, { from: t, to: end, intervalMs: interval }, steps);
          const labelled = new Set<string>();
          if (o.labels) {
            for (const g of await store.readSeries({
              measurement: LABELS_MEASUREMENT,
              fields: ['anomaly'],
              groupBy: ['host'],
              from: t,
              to: end,
            })) {
              for (const r of g.rows) labelled.add(`${g.tags.host}\u0000${Math.floor(r.time / interval) * interval}`);
            }
          }
          const lines: Array<[number, string]> = [];
          for (const [host, byStep] of steps) {
            for (const [step, v] of byStep) {
              if (step < t || step >= end) continue;
              if (!isComplete(v, names)) {
                incomplete++;
                continue;
              }
              const label = o.labels ? `,${labelled.has(`${host}\u0000${step}`) ? 1 : 0}` : '';
              lines.push([step, `${new Date(step).toISOString()},${csvField(host)},${names.map((n) => v[n]).join(',')}${label}`]);
            }
          }
          lines.sort((a, b) => a[0] - b[0]);
          for (const [, l] of lines) out.push(l);
          rows += lines.length;
          bar.update(k + 1);
        }
      } finally {
        bar.stop();
        await store.close();
      }
      mkdirSync(dirname(o.out), { recursive: true });
      writeFileSync(o.out, `${out.join('\n')}\n`);
      process.stdout.write(
        `exported ${rows} rows to ${o.out}${incomplete > 0 ? ` (${incomplete} steps with a metric missing left out)` : ''}\n`,
      );
    });
}
