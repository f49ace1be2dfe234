import { createHash } from 'node:crypto';
import type { MetricDef } from '../core/metrics';
import { quantileSorted } from '../core/stats';
import { DataError, fileSha256, parseRecords, readText, type CsvRecord } from '../data/csv';
import { parseTimestamp } from '../data/dataset';
import { BASIC_SET, missingColumns, type MetricSet } from '../data/metric-set';

/**
 * The data-set checks of `anomaly-detector validate` (the prototype's six: schema,
 * ranges, missing values, duplicates, statistics, IQR outliers). Unlike the strict
 * loader, nothing here stops at the first problem: every problem is counted and reported.
 */

/** Share of rows out of range above which the ranges check fails. */
export const MAX_RANGE_VIOLATION_FRACTION = 0.05;
/** Share of duplicate rows above which the duplicates check fails. */
export const MAX_DUPLICATE_FRACTION = 0.1;
/** Optional columns the pipeline understands. */
export const OPTIONAL_COLUMNS = ['timestamp', 'host', 'anomaly'] as const;
/** Cells read as "missing" rather than "not a number". */
const MISSING_TOKENS = new Set(['', 'na', 'n/a', 'nan', 'null', 'none']);
/** How many example lines a check quotes. */
const EXAMPLES = 5;

export type CheckName = 'schema' | 'ranges' | 'missing_values' | 'duplicates' | 'statistics' | 'outliers';
export type CheckStatus = 'pass' | 'fail' | 'info';

export interface CheckResult {
  name: CheckName;
  status: CheckStatus;
  /** One line for the table and for error messages. */
  summary: string;
  details: Record<string, unknown>;
}

/** Summary statistics of one metric over its valid (numeric) cells. */
export interface FeatureStats {
  count: number;
  mean: number | null;
  /** Sample standard deviation (ddof 1, as pandas' describe). */
  std: number | null;
  min: number | null;
  q25: number | null;
  median: number | null;
  q75: number | null;
  max: number | null;
}

export interface OutlierStats {
  count: number;
  fraction: number;
  lower: number | null;
  upper: number | null;
}

export interface ValidationReport {
  report: 'validation';
  created_at: string;
  source: { path: string; sha256: string; bytes: number };
  rows: number;
  columns: string[];
  passed: boolean;
  failed_checks: CheckName[];
  rules: {
    required_columns: readonly string[];
    /** Where the metric columns came from (`basic`, `node`, `columns`, `mapping <file>`) and their declarations. */
    metric_set: string;
    metrics: MetricDef[];
    range_violation_max_fraction: number;
    duplicate_max_fraction: number;
  };
  labels: { present: boolean; positives: number | null; fraction: number | null };
  checks: CheckResult[];
  statistics: Record<string, FeatureStats>;
  outliers: Record<string, OutlierStats>;
}

/**
 * Lenient CSV reading: unlike parseCsv it accepts ragged rows, so that validation can
 * count them. Throws DataError only when nothing can be read: an empty file or an
 * unterminated quote.
 */
export function tokenizeCsv(text: string, source = 'CSV'): CsvRecord[] {
  if (text.trim() === '') throw new DataError(`${source}: the file is empty`);
  return parseRecords(text, source);
}

/** How a metric cell reads: a finite number, missing, or something else. */
export function classifyCell(cell: string): { kind: 'number'; value: number } | { kind: 'missing' } | { kind: 'invalid' } {
  const t = cell.trim();
  if (MISSING_TOKENS.has(t.toLowerCase())) return { kind: 'missing' };
  const v = Number(t);
  return Number.isFinite(v) ? { kind: 'number', value: v } : { kind: 'invalid' };
}

const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
const examples = (xs: string[]): string => xs.slice(0, EXAMPLES).join('; ');

/** Mean, sample std, min, quartiles and max (nulls when there is no value). */
export function describe(values: Float64Array): FeatureStats {
  const n = values.length;
  if (n === 0) return { count: 0, mean: null, std: null, min: null, q25: null, median: null, q75: null, max: null };
  const sorted = Float64Array.from(values).sort();
  let mean = 0;
  for (let i = 0; i < n; i++) mean += (sorted[i] - mean) / (i + 1);
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (sorted[i] - mean) ** 2;
  return {
    count: n,
    mean,
    std: n > 1 ? Math.sqrt(ss / (n - 1)) : null,
    min: sorted[0],
    q25: quantileSorted(sorted, 0.25),
    median: quantileSorted(sorted, 0.5),
    q75: quantileSorted(sorted, 0.75),
    max: sorted[n - 1],
  };
}

/** Values outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR]. */
export function iqrOutliers(values: Float64Array): OutlierStats {
  if (values.length === 0) return { count: 0, fraction: 0, lower: null, upper: null };
  const sorted = Float64Array.from(values).sort();
  const q1 = quantileSorted(sorted, 0.25);
  const q3 = quantileSorted(sorted, 0.75);
  const lower = q1 - 1.5 * (q3 - q1);
  const upper = q3 + 1.5 * (q3 - q1);
  let count = 0;
  for (const v of values) if (v < lower || v > upper) count++;
  return { count, fraction: count / values.length, lower, upper };
}

/**
 * Runs the six checks over tokenized CSV records (first record = header) for the metric
 * columns of `set` (default: the basic three), each against its declared range. Pure: the
 * caller adds where the data came from.
 */
export function validateRecords(
  records: CsvRecord[],
  createdAt = new Date().toISOString(),
  set: MetricSet = BASIC_SET,
): Omit<ValidationReport, 'source'> {
  const requiredCols = set.names;
  const defOf = new Map(set.defs.map((d) => [d.name, d]));
  const [head, ...body] = records;
  if (!head) throw new DataError('no header line (the file holds only blank records)');
  const header = head.fields.map((h) => h.trim());
  const col = (name: string): number => header.indexOf(name);
  const width = header.length;
  const ragged = body.filter((r) => r.fields.length !== width);
  const rows = body.filter((r) => r.fields.length === width);
  const checks: CheckResult[] = [];

  // 1. schema: required columns, row width, labels and timestamps readable.
  const missingCols = requiredCols.filter((c) => col(c) < 0);
  const dupCols = header.filter((h, i) => header.indexOf(h) !== i);
  const schemaProblems: string[] = [];
  const missingLine = missingColumns(set, header);
  if (missingLine) schemaProblems.push(missingLine);
  if (dupCols.length > 0) schemaProblems.push(`duplicate column name(s) ${[...new Set(dupCols)].join(', ')}`);
  if (ragged.length > 0) {
    schemaProblems.push(
      `${ragged.length} row(s) do not have the header's ${width} fields (${examples(ragged.map((r) => `line ${r.line} has ${r.fields.length} fields`))})`,
    );
  }
  if (body.length === 0) schemaProblems.push('no data rows');
  const labelCol = col('anomaly');
  const badLabels: string[] = [];
  let positives = 0;
  if (labelCol >= 0) {
    for (const r of rows) {
      const l = r.fields[labelCol].trim();
      if (l === '1') positives++;
      else if (l !== '0') badLabels.push(`line ${r.line} anomaly=${JSON.stringify(l)}`);
    }
    if (badLabels.length > 0) schemaProblems.push(`${badLabels.length} label(s) are not 0 or 1 (${examples(badLabels)})`);
  }
  const tsCol = col('timestamp');
  const badTs: string[] = [];
  if (tsCol >= 0) {
    for (const r of rows)
      if (!Number.isFinite(parseTimestamp(r.fields[tsCol]))) badTs.push(`line ${r.line} timestamp=${JSON.stringify(r.fields[tsCol])}`);
    if (badTs.length > 0)
      schemaProblems.push(`${badTs.length} timestamp(s) are neither RFC 3339 nor epoch milliseconds (${examples(badTs)})`);
  }
  const optional = OPTIONAL_COLUMNS.filter((c) => col(c) >= 0);
  const extra = header.filter((h) => !requiredCols.includes(h) && !(OPTIONAL_COLUMNS as readonly string[]).includes(h));
  checks.push({
    name: 'schema',
    status: schemaProblems.length > 0 ? 'fail' : 'pass',
    summary:
      schemaProblems.length > 0
        ? schemaProblems.join('; ')
        : `required columns present (${requiredCols.join(', ')}); ` +
          `optional: ${optional.join(', ') || 'none'}${labelCol >= 0 ? ' (labels)' : ' (no labels)'}`,
    details: {
      required: requiredCols,
      missing_columns: missingCols,
      duplicate_columns: [...new Set(dupCols)],
      optional_present: optional,
      ignored_columns: extra,
      ragged_rows: ragged.length,
      ragged_examples: ragged.slice(0, EXAMPLES).map((r) => ({ line: r.line, fields: r.fields.length })),
      invalid_labels: badLabels.length,
      invalid_timestamps: badTs.length,
    },
  });

  // Numeric values per metric; ragged rows are left out of every check below.
  const present = requiredCols.filter((m) => col(m) >= 0);
  const values: Partial<Record<string, Float64Array>> = {};
  const missing: Record<string, number> = {};
  const invalid: Record<string, number> = {};
  const badCells: string[] = [];
  const outOfRange: Record<string, { below: number; above: number }> = {};
  const rangeExamples: string[] = [];
  const violatingRows = new Set<number>();
  for (const m of present) {
    const c = col(m);
    const { min, max } = defOf.get(m) as MetricDef;
    const vs: number[] = [];
    missing[m] = 0;
    invalid[m] = 0;
    outOfRange[m] = { below: 0, above: 0 };
    rows.forEach((r, i) => {
      const cell = classifyCell(r.fields[c]);
      if (cell.kind !== 'number') {
        if (cell.kind === 'missing') missing[m]++;
        else invalid[m]++;
        badCells.push(`line ${r.line} ${m}=${JSON.stringify(r.fields[c].trim())}`);
        return;
      }
      vs.push(cell.value);
      const low = cell.value < min;
      const high = max !== null && cell.value > max;
      if (low) outOfRange[m].below++;
      if (high) outOfRange[m].above++;
      if (low || high) {
        violatingRows.add(i);
        rangeExamples.push(`line ${r.line} ${m}=${cell.value}`);
      }
    });
    values[m] = Float64Array.from(vs);
  }
  badCells.sort((a, b) => Number(a.split(' ')[1]) - Number(b.split(' ')[1]));
  rangeExamples.sort((a, b) => Number(a.split(' ')[1]) - Number(b.split(' ')[1]));

  // 2. ranges: each metric in its declared range (basic: CPU and memory in [0, 100], network >= 0); fails above 5% of rows.
  const rangeFraction = rows.length > 0 ? violatingRows.size / rows.length : 0;
  const rangeFail = rangeFraction > MAX_RANGE_VIOLATION_FRACTION;
  checks.push({
    name: 'ranges',
    status: present.length === 0 ? 'info' : rangeFail ? 'fail' : 'pass',
    summary:
      present.length === 0
        ? 'no metric column to check'
        : `${violatingRows.size} of ${rows.length} rows (${pct(rangeFraction)}) out of range (fails ` +
          `above ${pct(MAX_RANGE_VIOLATION_FRACTION)})${violatingRows.size > 0 ? `: ${examples(rangeExamples)}` : ''}`,
    details: {
      rules: Object.fromEntries(present.map((m) => [m, { min: (defOf.get(m) as MetricDef).min, max: (defOf.get(m) as MetricDef).max }])),
      violating_rows: violatingRows.size,
      fraction: rangeFraction,
      per_metric: outOfRange,
      examples: rangeExamples.slice(0, EXAMPLES),
    },
  });

  // 3. missing values (and text in numeric columns): any fails.
  const nBad = badCells.length;
  checks.push({
    name: 'missing_values',
    status: nBad > 0 ? 'fail' : present.length === 0 ? 'info' : 'pass',
    summary:
      nBad > 0
        ? `${nBad} non-numeric or missing values: ${examples(badCells)}`
        : present.length === 0
          ? 'no metric column to check'
          : 'no missing or non-numeric values',
    details: { missing, non_numeric: invalid, examples: badCells.slice(0, EXAMPLES) },
  });

  // 4. duplicate rows (every field equal to an earlier row's): fails above 10%.
  const seen = new Map<string, number>();
  const dupExamples: string[] = [];
  let duplicates = 0;
  for (const r of rows) {
    const key = r.fields.map((f) => f.trim()).join('\u0000');
    const first = seen.get(key);
    if (first === undefined) seen.set(key, r.line);
    else {
      duplicates++;
      dupExamples.push(`line ${r.line} repeats line ${first}`);
    }
  }
  const dupFraction = rows.length > 0 ? duplicates / rows.length : 0;
  checks.push({
    name: 'duplicates',
    status: dupFraction > MAX_DUPLICATE_FRACTION ? 'fail' : 'pass',
    summary:
      `${duplicates} duplicate row(s) (${pct(dupFraction)}; fails ` +
      `above ${pct(MAX_DUPLICATE_FRACTION)})${duplicates > 0 ? `: ${examples(dupExamples)}` : ''}`,
    details: { duplicates, fraction: dupFraction, examples: dupExamples.slice(0, EXAMPLES) },
  });

  // 5. statistics per metric (reported).
  const statistics: Record<string, FeatureStats> = {};
  for (const m of present) statistics[m] = describe(values[m] as Float64Array);
  const fmt = (v: number | null): string => (v === null ? '-' : Number(v.toPrecision(4)).toString());
  checks.push({
    name: 'statistics',
    status: 'info',
    summary: present.map((m) => `${m} mean ${fmt(statistics[m].mean)} std ${fmt(statistics[m].std)}`).join('; ') || 'no metric column',
    details: statistics as Record<string, unknown>,
  });

  // 6. IQR outliers per metric (reported).
  const outliers: Record<string, OutlierStats> = {};
  for (const m of present) outliers[m] = iqrOutliers(values[m] as Float64Array);
  checks.push({
    name: 'outliers',
    status: 'info',
    summary: present.map((m) => `${m} ${outliers[m].count} (${pct(outliers[m].fraction)})`).join('; ') || 'no metric column',
    details: outliers as Record<string, unknown>,
  });

  const failed = checks.filter((c) => c.status === 'fail').map((c) => c.name);
  const labelsOk = labelCol >= 0 && badLabels.length === 0 && rows.length > 0;
  return {
    report: 'validation',
    created_at: createdAt,
    rows: body.length,
    columns: header,
    passed: failed.length === 0,
    failed_checks: failed,
    rules: {
      required_columns: requiredCols,
      metric_set: set.label,
      metrics: set.defs,
      range_violation_max_fraction: MAX_RANGE_VIOLATION_FRACTION,
      duplicate_max_fraction: MAX_DUPLICATE_FRACTION,
    },
    labels: { present: labelCol >= 0, positives: labelsOk ? positives : null, fraction: labelsOk ? positives / rows.length : null },
    checks,
    statistics,
    outliers,
  };
}

/** Validates CSV text from `path` (used for messages and the report's source) for the metric columns of `set`. */
export function validateText(
  text: string,
  path: string,
  createdAt?: string,
  sha256?: string,
  set: MetricSet = BASIC_SET,
): ValidationReport {
  const records = tokenizeCsv(text, path);
  const r = validateRecords(records, createdAt, set);
  const bytes = Buffer.byteLength(text, 'utf8');
  return { ...r, source: { path, sha256: sha256 ?? createHash('sha256').update(text, 'utf8').digest('hex'), bytes } };
}

/** Reads and validates a CSV file; a missing, unreadable or empty file is a one-line DataError. */
export function validateFile(path: string, createdAt?: string, set: MetricSet = BASIC_SET): ValidationReport {
  const text = readText(path);
  return validateText(text, path, createdAt, fileSha256(path), set);
}

/** One line naming each failed check, for errors and logs. */
export function failureLine(r: ValidationReport): string {
  return r.checks
    .filter((c) => c.status === 'fail')
    .map((c) => `${c.name}: ${c.summary}`)
    .join(' | ');
}

/** The readable table `validate` prints. */
export function formatValidation(r: ValidationReport): string {
  const lines: string[] = [];
  lines.push(`Validation of ${r.source.path}: ${r.rows} rows, ${r.columns.length} columns (${r.columns.join(', ')})`);
  lines.push('');
  const nameW = Math.max(5, ...r.checks.map((c) => c.name.length));
  lines.push(`${'CHECK'.padEnd(nameW)}  STATUS  RESULT`);
  for (const c of r.checks) lines.push(`${c.name.padEnd(nameW)}  ${c.status.toUpperCase().padEnd(6)}  ${c.summary}`);
  const metrics = Object.keys(r.statistics);
  if (metrics.length > 0) {
    lines.push('');
    const head = ['FEATURE', 'COUNT', 'MEAN', 'STD', 'MIN', 'Q25', 'MEDIAN', 'Q75', 'MAX', 'IQR OUTLIERS'];
    const num = (v: number | null): string => (v === null ? '-' : Math.abs(v) >= 1e5 ? v.toExponential(3) : v.toFixed(3));
    const table = metrics.map((m) => {
      const s = r.statistics[m];
      const o = r.outliers[m];
      return [
        m,
        String(s.count),
        num(s.mean),
        num(s.std),
        num(s.min),
        num(s.q25),
        num(s.median),
        num(s.q75),
        num(s.max),
        `${o.count} (${pct(o.fraction)})`,
      ];
    });
    const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
    const fmtRow = (row: string[]): string => row.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
    lines.push(fmtRow(head));
    for (const row of table) lines.push(fmtRow(row));
  }
  if (r.labels.present) {
    lines.push('');
    lines.push(
      r.labels.positives === null
        ? 'Labels: column anomaly present but unreadable'
        : `Labels: ${r.labels.positives} anomalous rows (${pct(r.labels.fraction ?? 0)})`,
    );
  }
  lines.push('');
  lines.push(r.passed ? 'Result: PASSED' : `Result: FAILED (${r.failed_checks.join(', ')})`);
  return `${lines.join('\n')}\n`;
}
