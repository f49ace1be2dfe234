import { createMetricsStore } from '../../src/influx';
import type { MetricsStore } from '../../src/influx/types';
import { quoteString } from '../../src/influx/influxql';
import { DEFAULT_SIMULATION, simulate, type SimulatedRow } from '../../src/data/simulate';
import { TelegrafEncoder } from '../../src/data/telegraf-sim';
import type { Influxd } from './influxd';

export const DB = 'system_metrics';

export function storeFor(influxd: Influxd): MetricsStore {
  return createMetricsStore({ version: 'v1', url: influxd.url, database: DB });
}

/** Writes `steps` Telegraf-schema steps of simulated hosts ending before now; returns the rows. */
export async function writeSimulatedRange(
  store: MetricsStore,
  opts: { hosts: number; steps: number; stepS: number; seed: number; names?: string[]; end?: number },
): Promise<SimulatedRow[]> {
  const stepMs = opts.stepS * 1000;
  const end = opts.end ?? Math.floor(Date.now() / stepMs) * stepMs - stepMs;
  const start = end - (opts.steps - 1) * stepMs;
  let rows = simulate({
    ...DEFAULT_SIMULATION,
    hosts: opts.hosts,
    start,
    steps: opts.steps,
    stepS: opts.stepS,
    seed: opts.seed,
    incidentsPerDay: 3,
  });
  if (opts.names) {
    const names = opts.names;
    rows = rows.map((r) => ({ ...r, host: names[Number(r.host.slice(5)) - 1] }));
  }
  const enc = new TelegrafEncoder(opts.seed);
  await store.createDatabase?.();
  await store.writeLines(rows.flatMap((r) => enc.lines(r, opts.stepS)));
  return rows;
}

export interface PredictionRow {
  time: number;
  host: string;
  [field: string]: number | string;
}

/** Every ai_predictions row of one host (InfluxQL with the host quoted), by time. */
export async function predictions(influxd: Influxd, host?: string): Promise<PredictionRow[]> {
  const where = host === undefined ? '' : ` WHERE "host" = ${quoteString(host)}`;
  const body = (await influxd.rawQuery(`SELECT * FROM "ai_predictions"${where}`, { db: DB })) as {
    results: Array<{ series?: Array<{ columns: string[]; values: unknown[][] }>; error?: string }>;
  };
  const r = body.results[0];
  if (r.error) throw new Error(r.error);
  const out: PredictionRow[] = [];
  for (const s of r.series ?? []) {
    for (const v of s.values) {
      const row: Record<string, unknown> = {};
      s.columns.forEach((c, i) => (row[c] = v[i]));
      row.time = typeof row.time === 'string' ? Date.parse(row.time as string) : row.time;
      out.push(row as PredictionRow);
    }
  }
  return out.sort((a, b) => a.time - b.time);
}

/** Polls `fn` until it returns true or `timeoutMs` passes. */
export async function waitUntil(fn: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
