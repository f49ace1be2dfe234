import { readFileSync } from 'node:fs';
import { defaultFeatures, hostTemporalFeatures, type FeatureSpec } from '../core/features';
import { BASIC_METRICS, METRIC_NAME, METRIC_NAMES, METRIC_PRESETS, metricDefs, sameNames, type MetricDef } from '../core/metrics';
import { DataError, UsageError } from '../errors';
import { MAX_METRICS, MappingSchema, mappingMetrics } from '../poller/telegraf';

/**
 * The metric columns of a CSV for `train`, `evaluate` and `validate`: a preset (`basic`, the
 * prototype's three and the default, or `node`), a comma-separated list of column names, or
 * the metrics of a mapping file (as the service reads METRICS_MAPPING_FILE).
 */
export interface MetricSet {
  /** How it was given, for messages and reports: `basic`, `node`, `columns` or `mapping <file>`. */
  label: string;
  /** Where it came from, for messages: `--metrics node`, `--mapping m.json`, `the default metric set basic`, ... */
  option: string;
  /** Each metric's name (its CSV column), unit and valid range, in the set's order. */
  defs: MetricDef[];
  names: string[];
}

/** Columns with a meaning of their own: never metrics. */
export const RESERVED_COLUMNS = ['timestamp', 'host', 'anomaly'] as const;

const ofDefs = (label: string, option: string, defs: readonly MetricDef[]): MetricSet => ({
  label,
  option,
  defs: defs.map((d) => ({ ...d })),
  names: defs.map((d) => d.name),
});

/** The basic set: the prototype's three (today's behaviour). */
export const BASIC_SET: MetricSet = ofDefs('basic', 'the default metric set basic', BASIC_METRICS);

/** True if the set is the prototype's three, in their order (the artifact then keeps its original layout). */
export const isBasicSet = (s: { names: readonly string[] }): boolean => sameNames(s.names, METRIC_NAMES);

/**
 * Parses `--metrics`: a preset name or a comma-separated list of column names (each a
 * METRIC_NAME; the presets' declarations for known names, else unitless with no range).
 */
export function parseMetricsOption(value: string): MetricSet {
  const v = value.trim();
  if (v in METRIC_PRESETS) return ofDefs(v, `--metrics ${v}`, METRIC_PRESETS[v as keyof typeof METRIC_PRESETS]);
  const names = v.split(',').map((s) => s.trim());
  for (const name of names) {
    if (!METRIC_NAME.test(name))
      throw new UsageError(
        `--metrics: ${JSON.stringify(name)} is neither a preset (${Object.keys(METRIC_PRESETS).join(', ')}) nor a metric name ` +
          '(lower case letters, digits and _, starting with a letter, at most 63)',
      );
    if ((RESERVED_COLUMNS as readonly string[]).includes(name))
      throw new UsageError(`--metrics: ${name} is not a metric column (timestamp, host and anomaly have their own meaning)`);
  }
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new UsageError(`--metrics: ${dup} is named twice`);
  if (names.length > MAX_METRICS) throw new UsageError(`--metrics: ${names.length} metrics, more than the ${MAX_METRICS} a set may have`);
  return ofDefs('columns', `--metrics ${v}`, metricDefs(names));
}

/** The metric set of a mapping file (JSON, checked with the service's MappingSchema): its names, units and ranges. */
export function mappingFileSet(file: string): MetricSet {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code ? `cannot read (${code})` : `not valid JSON: ${(e as Error).message}`;
    throw new DataError(`--mapping ${file}: ${why}`);
  }
  const r = MappingSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    // A bad metric name is an invalid record key: its own issue says what names may be.
    const why = (i as { issues?: Array<{ message: string }> }).issues?.[0]?.message ?? i.message;
    throw new DataError(`--mapping ${file}: ${i.path.join('.') || '(root)'}: ${why}`);
  }
  const defs = mappingMetrics(r.data);
  const reserved = defs.find((d) => (RESERVED_COLUMNS as readonly string[]).includes(d.name));
  if (reserved)
    throw new DataError(`--mapping ${file}: ${reserved.name} is not a metric column (timestamp, host and anomaly have their own meaning)`);
  return ofDefs(`mapping ${file}`, `--mapping ${file}`, defs);
}

/** The set of `--metrics` / `--mapping` (at most one of them), or `fallback` when neither is given. */
export function metricSetOf(o: { metrics?: string; mapping?: string }, fallback: MetricSet = BASIC_SET): MetricSet {
  if (o.metrics !== undefined && o.mapping !== undefined)
    throw new UsageError('--metrics and --mapping both name the metric set: give one of them');
  if (o.mapping !== undefined) return mappingFileSet(o.mapping);
  if (o.metrics !== undefined) return parseMetricsOption(o.metrics);
  return fallback;
}

/**
 * A set of declarations already made (a model's), as a MetricSet: labelled with the preset
 * of the same names (`basic`, `node`) if there is one, else with `source` (e.g. `model <version>`).
 */
export function declaredSet(source: string, defs: readonly MetricDef[]): MetricSet {
  const names = defs.map((d) => d.name);
  const preset = Object.entries(METRIC_PRESETS).find(([, p]) =>
    sameNames(
      p.map((d) => d.name),
      names,
    ),
  );
  return ofDefs(preset ? preset[0] : source, source, defs);
}

/** One line describing a set: `node (13 metrics: cpu_usage, ..., tcp_retrans_segs)`. */
export function describeSet(s: MetricSet): string {
  return `${s.label} (${s.names.length} metric${s.names.length === 1 ? '' : 's'}: ${s.names.join(', ')})`;
}

/** The raw features of a set: each metric as it is, with its unit and range (the basic set: defaultFeatures()). */
export function setFeatures(s: MetricSet): FeatureSpec[] {
  if (isBasicSet(s)) return defaultFeatures();
  return s.defs.map((d) => ({ name: d.name, source: d.name, transform: 'raw' as const, unit: d.unit, min: d.min, max: d.max }));
}

/**
 * `--features temporal` over a set: each metric raw, plus robust_z, diff and level_shift of
 * each (the basic set: hostTemporalFeatures, the same specs as before metric sets).
 */
export function setTemporalFeatures(s: MetricSet, window: number, span: number): FeatureSpec[] {
  if (isBasicSet(s)) return hostTemporalFeatures(window, span);
  const out = setFeatures(s);
  for (const m of s.names) {
    const base = { source: m, unit: 'robust units (asinh)', min: -Number.MAX_VALUE, max: null };
    out.push({ ...base, name: `${m}_robust_z`, transform: 'robust_z', params: { window } });
    out.push({ ...base, name: `${m}_diff`, transform: 'diff', params: { window } });
    out.push({ ...base, name: `${m}_level_shift`, transform: 'level_shift', params: { window, span } });
  }
  return out;
}

/**
 * The metric columns missing from a CSV header, as one line naming them, where the set
 * came from and the columns found; null when all are there.
 */
export function missingColumns(set: MetricSet, header: readonly string[]): string | null {
  const missing = set.names.filter((c) => !header.includes(c));
  if (missing.length === 0) return null;
  return `missing column(s) ${missing.join(', ')} of ${set.option} (columns found: ${header.join(',')})`;
}
