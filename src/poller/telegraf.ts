import { z } from 'zod';
import { METRIC_NAME, METRIC_NAMES, metricDefs, METRIC_PRESETS, type MetricDef, type MetricPreset } from '../core/metrics';
import type { SeriesGroup, SeriesRow } from '../influx/types';

const name = z.string().min(1).max(256);
const bound = z.number().refine(Number.isFinite, 'must be a finite number');

/** Where one model metric comes from in InfluxDB, how to turn it into the metric, and its unit and valid range. */
export const MetricMappingSchema = z.strictObject({
  measurement: name,
  /** Fields read; with several, their values are added (e.g. bytes_recv + bytes_sent). */
  fields: z.array(name).min(1).max(8),
  /** Tag filters (equality; an array matches any). */
  where: z.record(name, z.union([z.string().max(256), z.array(z.string().max(256)).max(100)])).default({}),
  /** A tag whose series are summed per host (network interfaces, disks). */
  sumOver: name.optional(),
  /** Values of `sumOver` left out (the loopback interface). */
  exclude: z.array(z.string().max(256)).max(100).default([]),
  /** value: as is; complement100: 100 - value (idle -> usage); rate: per-second rate of a counter. */
  transform: z.enum(['value', 'complement100', 'rate']),
  /** Unit and valid range (default: the preset's for its known names, else a unitless value of any sign). */
  unit: z.string().min(1).max(64).optional(),
  min: bound.optional(),
  max: bound.nullable().optional(),
});
export type MetricMapping = z.infer<typeof MetricMappingSchema>;

const METRIC_NAME_RULE = 'metric names are lower case letters, digits and _, starting with a letter (at most 63)';

/** Most metrics in one set. */
export const MAX_METRICS = 64;

/**
 * A metric set and where each metric comes from: metric name -> source, in the set's
 * order (the order of the JSON object's keys). The three-key files of the prototype are
 * mappings of this form.
 */
export const MappingSchema = z
  .record(z.string().regex(METRIC_NAME, METRIC_NAME_RULE), MetricMappingSchema)
  .refine((m) => Object.keys(m).length >= 1, 'a mapping needs at least one metric')
  .refine((m) => Object.keys(m).length <= MAX_METRICS, `a mapping has at most ${MAX_METRICS} metrics`)
  .superRefine((m, ctx) => {
    for (const [metric, src] of Object.entries(m)) {
      const def = metricDefs([metric])[0];
      const min = src.min ?? def.min;
      const max = src.max === undefined ? def.max : src.max;
      if (max !== null && !(max > min)) ctx.addIssue({ code: 'custom', path: [metric, 'max'], message: `must be above min (${min})` });
    }
  });

/** The message of a mapping issue: a bad metric name's own rule (zod nests it under "Invalid key in record"). */
export function mappingIssueMessage(issue: { message: string; issues?: readonly { message: string }[] }): string {
  return issue.issues?.[0]?.message ?? issue.message;
}
export type Mapping = Record<string, MetricMapping>;

/** Telegraf's standard cpu, mem and net inputs, as the prototype read them. */
export function telegrafPreset(includeSent = false): Mapping {
  return {
    cpu_usage: { measurement: 'cpu', fields: ['usage_idle'], where: { cpu: 'cpu-total' }, exclude: [], transform: 'complement100' },
    memory_usage: { measurement: 'mem', fields: ['used_percent'], where: {}, exclude: [], transform: 'value' },
    network_load: {
      measurement: 'net',
      fields: includeSent ? ['bytes_recv', 'bytes_sent'] : ['bytes_recv'],
      where: {},
      sumOver: 'interface',
      exclude: ['lo'],
      transform: 'rate',
    },
  };
}

/**
 * The `node` set's sources beside the three: Telegraf's `system` (load averages),
 * `diskio` (counters summed over the host's disks: read and written bytes per second,
 * I/O time in ms per second), `swap`, `netstat` (TCP connections by state) and `nstat`
 * (TCP segments retransmitted per second, from /proc/net/snmp: set `dump_zeros = true`,
 * or a host without retransmits sends no such field and its steps stay incomplete).
 */
const NODE_SOURCES: Mapping = {
  load1: { measurement: 'system', fields: ['load1'], where: {}, exclude: [], transform: 'value' },
  load5: { measurement: 'system', fields: ['load5'], where: {}, exclude: [], transform: 'value' },
  load15: { measurement: 'system', fields: ['load15'], where: {}, exclude: [], transform: 'value' },
  disk_read_bytes: { measurement: 'diskio', fields: ['read_bytes'], where: {}, sumOver: 'name', exclude: [], transform: 'rate' },
  disk_write_bytes: { measurement: 'diskio', fields: ['write_bytes'], where: {}, sumOver: 'name', exclude: [], transform: 'rate' },
  disk_io_time: { measurement: 'diskio', fields: ['io_time'], where: {}, sumOver: 'name', exclude: [], transform: 'rate' },
  swap_used_percent: { measurement: 'swap', fields: ['used_percent'], where: {}, exclude: [], transform: 'value' },
  tcp_established: { measurement: 'netstat', fields: ['tcp_established'], where: {}, exclude: [], transform: 'value' },
  tcp_time_wait: { measurement: 'netstat', fields: ['tcp_time_wait'], where: {}, exclude: [], transform: 'value' },
  tcp_retrans_segs: { measurement: 'nstat', fields: ['TcpRetransSegs'], where: { name: 'snmp' }, exclude: [], transform: 'rate' },
};

/** The mapping of a preset metric set (METRIC_SET) from Telegraf's standard inputs. */
export function presetMapping(preset: MetricPreset, includeSent = false): Mapping {
  const out: Mapping = telegrafPreset(includeSent);
  for (const d of METRIC_PRESETS[preset]) if (!(d.name in out)) out[d.name] = NODE_SOURCES[d.name];
  return out;
}

/** The metric set of a mapping, in its order, with each metric's unit and valid range. */
export function mappingMetrics(mapping: Mapping): MetricDef[] {
  const names = Object.keys(mapping);
  return metricDefs(names).map((d) => {
    const m = mapping[d.name];
    return { name: d.name, unit: m.unit ?? d.unit, min: m.min ?? d.min, max: m.max === undefined ? d.max : m.max };
  });
}

/** Metric values of one host at one collection step, by metric name; a missing metric is undefined. */
export type StepValues = Partial<Record<string, number>>;
/** host -> step start (epoch ms) -> values. */
export type HostSteps = Map<string, Map<number, StepValues>>;

/** The collection step a timestamp belongs to. */
export const stepOf = (time: number, intervalMs: number): number => Math.floor(time / intervalMs) * intervalMs;

export function sumFields(values: Record<string, number | null>, fields: readonly string[]): number | null {
  let s = 0;
  for (const f of fields) {
    const v = values[f];
    if (v === null || v === undefined || !Number.isFinite(v)) return null;
    s += v;
  }
  return s;
}

/**
 * The exact integer sum of `fields` when a row carries int64 values beyond 2^53
 * (SeriesRow.exact) and every field is an integer; undefined otherwise (then the float
 * sum is exact enough).
 */
export function exactSum(row: SeriesRow, fields: readonly string[]): bigint | undefined {
  if (!row.exact) return undefined;
  let s = 0n;
  for (const f of fields) {
    const e = row.exact[f];
    const v = row.values[f];
    if (e !== undefined) s += e;
    else if (typeof v === 'number' && Number.isSafeInteger(v)) s += BigInt(v);
    else return undefined;
  }
  return s;
}

/** A counter sample: its float value, and its exact value when beyond 2^53. */
export type Sample = { time: number; value: number; exact?: bigint };

/**
 * The per-second rate of a counter between two samples; undefined when they are not in
 * time order. A counter that went down was reset: its new value is the increase since.
 */
export function counterRate(prev: Sample, cur: Sample): number | undefined {
  const dt = (cur.time - prev.time) / 1000;
  if (!(dt > 0)) return undefined;
  // Counters beyond 2^53 differ exactly in integers (as floats, 1e18 + 1001 - 1e18 is 1024).
  const before = prev.exact ?? (Number.isSafeInteger(prev.value) ? BigInt(prev.value) : undefined);
  if (cur.exact !== undefined && before !== undefined) return Number(cur.exact >= before ? cur.exact - before : cur.exact) / dt;
  return (cur.value >= prev.value ? cur.value - prev.value : cur.value) / dt;
}

/**
 * Recent raw samples of each counter, kept between reads: host -> metric and interface
 * (`metric\u0000interface`) -> samples. The metric is part of the key: one series of a
 * measurement (a disk) holds several counters (bytes read, written, I/O time), each with
 * its own history; a host forgotten drops all of its own at once.
 */
export type CounterHistory = Map<string, Map<string, Sample[]>>;
const HISTORY_SAMPLES = 8;

/**
 * Adds one metric's series to `out`. Rates are computed per series (host and
 * interface) between consecutive samples; a counter that went down was reset, and its
 * new value is the increase since the reset. A sample needs an earlier one for its rate:
 * from the same read, or from `history` (the samples earlier reads saw), so a poller need
 * not read older points again; without either, the sample has no rate.
 */
export function addMetric(
  out: HostSteps,
  metric: string,
  m: MetricMapping,
  groups: readonly SeriesGroup[],
  intervalMs: number,
  history?: CounterHistory,
): void {
  for (const g of groups) {
    const host = g.tags.host ?? '';
    if (host === '') continue;
    if (m.sumOver && m.exclude.includes(g.tags[m.sumOver] ?? '')) continue;
    let steps = out.get(host);
    if (!steps) out.set(host, (steps = new Map()));
    const read: Sample[] = [];
    for (const row of g.rows) {
      const raw = sumFields(row.values, m.fields);
      if (raw === null) continue;
      const exact = m.transform === 'rate' ? exactSum(row, m.fields) : undefined;
      read.push(exact === undefined ? { time: row.time, value: raw } : { time: row.time, value: raw, exact });
    }
    if (read.length === 0) continue;
    // Earlier samples this read did not cover come first.
    const counters = m.transform === 'rate' ? history : undefined;
    const series = counters ? `${metric}\u0000${m.sumOver ? (g.tags[m.sumOver] ?? '') : ''}` : '';
    const known = counters ? (counters.get(host)?.get(series) ?? []).filter((x) => x.time < read[0].time) : [];
    const samples = known.concat(read);
    // One series keeps its last value in a step (two samples in one step: Telegraf's interval
    // shorter than the step, or jitter); several series of one host (interfaces) add up.
    let open = NaN;
    let last = 0;
    const put = (): void => {
      if (Number.isNaN(open)) return;
      let vals = steps.get(open);
      if (!vals) steps.set(open, (vals = {}));
      vals[metric] = m.sumOver ? (vals[metric] ?? 0) + last : last;
    };
    for (let i = known.length; i < samples.length; i++) {
      const { time, value: raw } = samples[i];
      let v: number;
      if (m.transform === 'rate') {
        if (i === 0) continue;
        const r = counterRate(samples[i - 1], samples[i]);
        if (r === undefined) continue;
        v = r;
      } else v = m.transform === 'complement100' ? 100 - raw : raw;
      const step = stepOf(time, intervalMs);
      if (step !== open) {
        put();
        open = step;
      }
      last = v;
    }
    put();
    if (counters) {
      let own = counters.get(host);
      if (!own) counters.set(host, (own = new Map()));
      own.set(series, samples.slice(-HISTORY_SAMPLES));
    }
  }
}

/** True when every metric of the set (default: the three) is present. */
export function isComplete(v: StepValues, names: readonly string[] = METRIC_NAMES): v is Record<string, number> {
  for (let i = 0; i < names.length; i++) if (v[names[i]] === undefined) return false;
  return true;
}
