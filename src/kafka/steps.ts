import { DEFAULT_MAX_KEYS } from '../core/detector';
import { LruMap } from '../core/lru';
import type { ParsedPoint } from '../influx/line-parser';
import { isUsableStep, metricRules, type MetricRules } from '../validation/point';
import {
  counterRate,
  exactSum,
  isComplete,
  mappingMetrics,
  stepOf,
  sumFields,
  type Mapping,
  type MetricMapping,
  type Sample,
  type StepValues,
} from '../poller/telegraf';

/**
 * Joins a stream of points (Telegraf's metrics as they arrive from a Kafka partition)
 * into one row per host and collection step: the same join as the InfluxDB poller's
 * (src/poller/telegraf.ts: the mapping's measurements, fields, tag filters, sums over
 * interfaces, rates of counters), made one point at a time. Pure: no I/O, no clock;
 * its output depends only on the order of the points it is given, so replaying a
 * partition from an offset rebuilds exactly the state an uninterrupted consumer had.
 *
 * A host's step is closed, and its row emitted, when
 * - it holds every metric of the set and every series (interface) the host's previous step had
 *   (the usual case: at once, when the step's last point arrives), or
 * - a point of a later step of the host arrives (a series went away, or a metric is
 *   missing: then the step is counted `incomplete`).
 * A point of a step already closed is `late`: counted, and not scored (a counter's sample
 * still updates its rate, so the next step's rate stays right).
 */

/** One closed step of one host, ready for the detector. */
export interface StepRow {
  host: string;
  time: number;
  /** One value per metric of the set, in its order. */
  values: number[];
}

/** Why a point or a step was left out. */
export type StepSkip = 'no_host' | 'late' | 'incomplete' | 'invalid' | 'evicted';

interface OpenStep {
  time: number;
  /** Per series (metric and sumOver tag value): its value at this step (a series seen twice keeps its last). */
  parts: Map<string, { metric: string; value: number }>;
}

interface HostJoin {
  open: OpenStep | null;
  /** Start of the last step closed (emitted or skipped). */
  closed: number;
  /** The series of the last step emitted: a step holding them all is complete. */
  expected: Set<string>;
  /** Per series of a counter: its last sample (for rates). */
  counters: Map<string, Sample>;
}

export class StepJoiner {
  /** At most `maxHosts` (the detector's own bound): a new host beyond it evicts the least recently seen. */
  private readonly hosts: LruMap<HostJoin>;
  /** Points of measurements the mapping does not read (other Telegraf inputs): ignored, counted. */
  unused = 0;
  readonly skipped: Record<StepSkip, number> = { no_host: 0, late: 0, incomplete: 0, invalid: 0, evicted: 0 };
  private readonly byMeasurement = new Map<string, string[]>();
  /** The metrics of a row, in its order, and their valid ranges. */
  readonly rules: MetricRules;

  /** `rules`: the row's metrics (default: the mapping's, in its order); each must be in the mapping. */
  constructor(
    private readonly mapping: Mapping,
    private readonly intervalMs: number,
    rules?: MetricRules,
    maxHosts = DEFAULT_MAX_KEYS,
  ) {
    // A host evicted with a step open (more hosts than maxHosts in this partition): that step is lost, counted.
    this.hosts = new LruMap<HostJoin>(maxHosts, (_, h) => {
      if (h.open) this.skipped.evicted++;
    });
    this.rules = rules ?? metricRules(mappingMetrics(mapping));
    for (const metric of this.rules.names) {
      if (!mapping[metric]) throw new RangeError(`the mapping does not provide metric ${metric}`);
      const m = mapping[metric].measurement;
      this.byMeasurement.set(m, [...(this.byMeasurement.get(m) ?? []), metric]);
    }
  }

  /** Hosts being joined. */
  get size(): number {
    return this.hosts.size;
  }

  /** Adds one point; rows of the steps it closes are pushed to `out`, in the order they close. */
  add(p: ParsedPoint, out: StepRow[]): void {
    const metrics = this.byMeasurement.get(p.measurement);
    if (!metrics) {
      this.unused++;
      return;
    }
    const host = p.tags.host ?? '';
    if (host === '') {
      this.skipped.no_host++;
      return;
    }
    const h = this.hosts.get(host, () => ({ open: null, closed: -Infinity, expected: new Set(), counters: new Map() }));
    const step = stepOf(p.time, this.intervalMs);
    if (h.open && step > h.open.time) this.close(host, h, out);
    for (const metric of metrics) {
      const m = this.mapping[metric];
      if (!matches(m.where, p.tags)) continue;
      const part = m.sumOver ? (p.tags[m.sumOver] ?? '') : '';
      if (m.sumOver && m.exclude.includes(part)) continue;
      const raw = sumFields(p.fields, m.fields);
      if (raw === null) continue;
      let v: number | undefined;
      const series = `${metric}\u0000${part}`;
      if (m.transform === 'rate') {
        const key = series;
        const exact = exactSum({ time: p.time, values: p.fields, exact: p.exact }, m.fields);
        const sample: Sample = exact === undefined ? { time: p.time, value: raw } : { time: p.time, value: raw, exact };
        const prev = h.counters.get(key);
        // An older sample than the last one (a late point) leaves the counter as it is.
        if (prev && sample.time <= prev.time) {
          if (step <= h.closed) this.skipped.late++;
          continue;
        }
        h.counters.set(key, sample);
        v = prev ? counterRate(prev, sample) : undefined;
      } else v = m.transform === 'complement100' ? 100 - raw : raw;
      if (v === undefined) continue;
      if (step <= h.closed) {
        this.skipped.late++;
        continue;
      }
      if (!h.open) h.open = { time: step, parts: new Map() };
      h.open.parts.set(series, { metric, value: v });
    }
    if (h.open && h.expected.size > 0 && h.open.parts.size >= h.expected.size && holdsAll(h.open, h.expected, this.rules.names.length))
      this.close(host, h, out);
  }

  /** Closes the host's open step: a row when it is complete and valid, else counted. */
  private close(host: string, h: HostJoin, out: StepRow[]): void {
    const open = h.open as OpenStep;
    h.open = null;
    h.closed = open.time;
    // Several series of one host (interfaces) add up.
    const v: StepValues = {};
    for (const { metric, value } of open.parts.values()) v[metric] = (v[metric] ?? 0) + value;
    const names = this.rules.names;
    if (!isComplete(v, names)) {
      this.skipped.incomplete++;
      return;
    }
    if (!isUsableStep(host, v, this.rules)) {
      this.skipped.invalid++;
      return;
    }
    h.expected = new Set(open.parts.keys());
    out.push({ host, time: open.time, values: names.map((n) => v[n] as number) });
  }

  /** Forgets a host (its partition was revoked, or it is evicted). */
  forget(host: string): void {
    this.hosts.delete(host);
  }
}

function matches(where: MetricMapping['where'], tags: Record<string, string>): boolean {
  for (const [k, want] of Object.entries(where)) {
    const got = tags[k];
    if (got === undefined) return false;
    if (typeof want === 'string' ? got !== want : !want.includes(got)) return false;
  }
  return true;
}

/** True if the step holds every expected series and all `metrics` metrics of the set. */
function holdsAll(open: OpenStep, expected: Set<string>, metrics: number): boolean {
  for (const s of expected) if (!open.parts.has(s)) return false;
  const seen = new Set<string>();
  for (const { metric } of open.parts.values()) seen.add(metric);
  return seen.size === metrics;
}
