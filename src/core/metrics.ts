/**
 * The metrics a host is scored on. A metric set is configuration (METRIC_SET, or a mapping
 * file): `basic` is the prototype's three, `node` adds load, disk, swap and TCP from
 * Telegraf's standard inputs. A model artifact declares the set it was trained on (names,
 * units, valid ranges); the service serves whatever set its model declares.
 */

/** One metric: its name (a column, a /detect key, an ai_predictions field suffix), unit and valid range. */
export interface MetricDef {
  name: string;
  unit: string;
  min: number;
  /** null: no upper bound of its own (validation still caps values at MAX_METRIC_VALUE). */
  max: number | null;
}

/**
 * Metric names: lower case letters, digits and underscores, starting with a letter. They
 * become line-protocol field keys (`contrib_<name>`), InfluxQL identifiers and JSON keys,
 * so nothing in them needs escaping anywhere.
 */
export const METRIC_NAME = /^[a-z][a-z0-9_]{0,62}$/;

/**
 * Largest value of a metric without an upper bound of its own (bytes/s: 8 petabits per
 * second, beyond any host). Without a bound, values near 1e308 (finite, so valid JSON
 * numbers) overflow the temporal features to Infinity and the scores to NaN.
 */
export const MAX_METRIC_VALUE = 1e15;

/** The raw metrics of the prototype, in this order: the `basic` set, and /detect's three fields. */
export const METRIC_NAMES = ['cpu_usage', 'memory_usage', 'network_load'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** Unit and valid range of each of the three (the validation rules use these). */
export const METRICS: Record<MetricName, { unit: string; min: number; max: number | null }> = {
  cpu_usage: { unit: 'percent', min: 0, max: 100 },
  memory_usage: { unit: 'percent', min: 0, max: 100 },
  network_load: { unit: 'bytes/s', min: 0, max: null },
};

export const BASIC_METRICS: readonly MetricDef[] = METRIC_NAMES.map((name) => ({ name, ...METRICS[name] }));

/**
 * `node`: the three, then what Telegraf's `system`, `diskio`, `swap`, `netstat` and `nstat`
 * inputs report of a Linux host (see src/poller/telegraf.ts for where each comes from).
 */
export const NODE_METRICS: readonly MetricDef[] = [
  ...BASIC_METRICS,
  { name: 'load1', unit: 'load', min: 0, max: null },
  { name: 'load5', unit: 'load', min: 0, max: null },
  { name: 'load15', unit: 'load', min: 0, max: null },
  { name: 'disk_read_bytes', unit: 'bytes/s', min: 0, max: null },
  { name: 'disk_write_bytes', unit: 'bytes/s', min: 0, max: null },
  { name: 'disk_io_time', unit: 'ms/s', min: 0, max: null },
  { name: 'swap_used_percent', unit: 'percent', min: 0, max: 100 },
  { name: 'tcp_established', unit: 'connections', min: 0, max: null },
  { name: 'tcp_time_wait', unit: 'connections', min: 0, max: null },
  { name: 'tcp_retrans_segs', unit: 'segments/s', min: 0, max: null },
];

export const METRIC_PRESETS = { basic: BASIC_METRICS, node: NODE_METRICS } as const;
export type MetricPreset = keyof typeof METRIC_PRESETS;

const KNOWN = new Map(NODE_METRICS.map((d) => [d.name, d]));

/**
 * The declaration of each input: `declared` where given, else the preset's (for the
 * known names), else a unitless value with no range of its own.
 */
export function metricDefs(inputs: readonly string[], declared?: readonly MetricDef[]): MetricDef[] {
  const given = new Map((declared ?? []).map((d) => [d.name, d]));
  return inputs.map((name) => given.get(name) ?? KNOWN.get(name) ?? { name, unit: 'value', min: -MAX_METRIC_VALUE, max: null });
}

/** One observation of a host in the three fields of /detect's first form. */
export interface MetricPoint {
  host?: string;
  /** Epoch milliseconds or RFC 3339. */
  timestamp?: string | number;
  cpu_usage: number;
  memory_usage: number;
  network_load: number;
}

/** True if two lists of names are equal, in order. */
export function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i]);
}

/** True if `inputs` are the three host metrics in METRIC_NAMES order (the `basic` set). */
export const isHostMetrics = (inputs: readonly string[]): boolean => sameNames(inputs, METRIC_NAMES);

/** The positions of `names` in `inputs`, or null when some name is not there. */
export function columnsOf(names: readonly string[], inputs: readonly string[]): Int32Array | null {
  const out = new Int32Array(names.length);
  for (let i = 0; i < names.length; i++) {
    const k = inputs.indexOf(names[i]);
    if (k < 0) return null;
    out[i] = k;
  }
  return out;
}
