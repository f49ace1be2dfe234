import { Rng } from '../core/random';
import { formatPoint, int } from '../influx/line-protocol';
import type { SimulatedRow } from './simulate';

/** Measurement where the simulator records its incident labels (for evaluation and the demo). */
export const LABELS_MEASUREMENT = 'simulation_labels';

/**
 * Turns simulated rows into what Telegraf's cpu, mem and net inputs write: `cpu`
 * (cpu=cpu-total, usage_idle), `mem` (used_percent) and `net` (cumulative bytes_recv and
 * bytes_sent counters per interface, plus a loopback interface the poller must ignore).
 * Counters keep running across calls for the same host (`counters` holds them), so a
 * live simulation can be fed step by step.
 */
export class TelegrafEncoder {
  private readonly counters = new Map<string, { eth0: number; lo: number; sent: number }>();
  private readonly rng: Rng;

  /** `precision`: of the timestamps written (Telegraf itself writes nanoseconds; the poller's tests write ms). */
  constructor(
    seed = 1,
    private readonly precision: 'ms' | 'ns' = 'ms',
  ) {
    this.rng = new Rng(seed);
  }

  /** Lines for one row observed `stepS` seconds after the host's previous row. */
  lines(row: SimulatedRow, stepS: number, withLabels = true): string[] {
    let c = this.counters.get(row.host);
    if (!c) {
      // Counters start at an arbitrary offset, as on a host that has been up for a while.
      c = { eth0: Math.floor(this.rng.next() * 1e12), lo: Math.floor(this.rng.next() * 1e9), sent: Math.floor(this.rng.next() * 1e12) };
      this.counters.set(row.host, c);
      // The first sample of a counter has no rate: write a sample one step earlier.
      const t0 = row.timestamp - stepS * 1000;
      const out = [
        formatPoint(
          {
            measurement: 'net',
            tags: { host: row.host, interface: 'eth0' },
            fields: { bytes_recv: int(c.eth0), bytes_sent: int(c.sent) },
            time: t0,
          },
          this.precision,
        ),
        formatPoint(
          {
            measurement: 'net',
            tags: { host: row.host, interface: 'lo' },
            fields: { bytes_recv: int(c.lo), bytes_sent: int(c.lo) },
            time: t0,
          },
          this.precision,
        ),
      ];
      return [...out, ...this.lines(row, stepS, withLabels)];
    }
    c.eth0 += Math.round(row.network_load * stepS);
    c.sent += Math.round(row.network_load * 0.3 * stepS);
    c.lo += Math.round(5e6 * this.rng.next() * stepS);
    const t = row.timestamp;
    const out = [
      formatPoint(
        {
          measurement: 'cpu',
          tags: { host: row.host, cpu: 'cpu-total' },
          fields: { usage_idle: 100 - row.cpu_usage, usage_user: row.cpu_usage * 0.8, usage_system: row.cpu_usage * 0.2 },
          time: t,
        },
        this.precision,
      ),
      formatPoint({ measurement: 'mem', tags: { host: row.host }, fields: { used_percent: row.memory_usage }, time: t }, this.precision),
      formatPoint(
        {
          measurement: 'net',
          tags: { host: row.host, interface: 'eth0' },
          fields: { bytes_recv: int(c.eth0), bytes_sent: int(c.sent) },
          time: t,
        },
        this.precision,
      ),
      formatPoint(
        {
          measurement: 'net',
          tags: { host: row.host, interface: 'lo' },
          fields: { bytes_recv: int(c.lo), bytes_sent: int(c.lo) },
          time: t,
        },
        this.precision,
      ),
    ];
    if (withLabels && row.anomaly === 1)
      out.push(
        formatPoint(
          {
            measurement: LABELS_MEASUREMENT,
            tags: { host: row.host, incident: row.incident || 'unknown' },
            fields: { anomaly: int(1) },
            time: t,
          },
          this.precision,
        ),
      );
    return out;
  }
}
