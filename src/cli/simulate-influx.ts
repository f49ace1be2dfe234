import { createMetricsStore } from '../influx';
import { DEFAULT_SIMULATION, simulate } from '../data/simulate';
import { TelegrafEncoder } from '../data/telegraf-sim';
import { UsageError } from './errors';
import { timeArg } from './time-arg';

export interface SimulateCliOptions {
  csv?: string;
  influx?: string;
  database: string;
  token?: string;
  from?: string;
  to?: string;
  live?: boolean;
  duration?: number;
  hosts: number;
  /** Host normals: similar (uniform) or heterogeneous (fleet); see data/simulate.ts. */
  profile: 'uniform' | 'fleet';
  days: number;
  step: number;
  seed: number;
  start: string;
}

const parseTime = timeArg;

/**
 * `simulate --influx`: feeds InfluxDB with Telegraf-schema points of simulated hosts with
 * labelled incidents, for a past range (backfilled at once) or live (one step per
 * --step seconds). Replaces the prototype's simulator app; used by tests and the demo.
 */
export async function simulateToInflux(o: SimulateCliOptions): Promise<void> {
  const store = createMetricsStore({ version: 'v1', url: o.influx as string, database: o.database, token: o.token });
  await store.createDatabase?.();
  const stepMs = o.step * 1000;
  const encoder = new TelegrafEncoder(o.seed);
  if (!o.live) {
    const to = o.to ? parseTime('to', o.to) : Date.now();
    const from = o.from ? parseTime('from', o.from) : to - o.days * 86400000;
    if (!(from < to)) throw new UsageError('--from must be before --to');
    const start = Math.ceil(from / stepMs) * stepMs;
    const steps = Math.floor((to - start) / stepMs) + 1;
    const rows = simulate({ ...DEFAULT_SIMULATION, hosts: o.hosts, start, steps, stepS: o.step, seed: o.seed, profile: o.profile });
    const lines = rows.flatMap((r) => encoder.lines(r, o.step));
    await store.writeLines(lines);
    process.stdout.write(`wrote ${rows.length} steps (${o.hosts} hosts, ${lines.length} lines) to ${o.influx} database ${o.database}\n`);
    await store.close();
    return;
  }
  // Live: precompute a day at a time, write each step when its time comes.
  const until = o.duration ? Date.now() + o.duration * 1000 : Infinity;
  let stop = false;
  const onSignal = () => (stop = true);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let chunk = 0;
  let pending: string[] = [];
  while (!stop && Date.now() < until) {
    const start = Math.ceil(Date.now() / stepMs) * stepMs;
    const steps = Math.round(86400000 / stepMs);
    const rows = simulate({
      ...DEFAULT_SIMULATION,
      hosts: o.hosts,
      start,
      steps,
      stepS: o.step,
      seed: o.seed + chunk++,
      profile: o.profile,
    });
    for (let s = 0; s < steps && !stop && Date.now() < until; s++) {
      const t = start + s * stepMs;
      const wait = t - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      // Like Telegraf: keep what could not be written and send it with the next step.
      pending.push(...rows.slice(s * o.hosts, (s + 1) * o.hosts).flatMap((r) => encoder.lines(r, o.step)));
      if (pending.length > 1_000_000) pending.splice(0, pending.length - 1_000_000);
      try {
        await store.writeLines(pending);
        pending = [];
      } catch (e) {
        process.stderr.write(`simulate: write failed (${(e as Error).message}); ${pending.length} lines kept for the next step\n`);
      }
    }
  }
  await store.close();
}
