import { METRIC_NAMES } from '../core/metrics';
import { DataError, parseCsv, readText, type CsvTable } from './csv';
import { BASIC_SET, missingColumns, type MetricSet } from './metric-set';

/** Metrics loaded from a training CSV, row-aligned. */
export interface Dataset {
  n: number;
  timestamps: number[];
  hosts: string[];
  /** The metric columns, in the order of `raw`'s columns. */
  metrics: string[];
  /** n x metrics.length, row-major. */
  raw: Float64Array;
  /** 0/1 per row, or null when the file has no `anomaly` column. */
  labels: Uint8Array | null;
}

/** The metric columns of the basic set (the default). */
export const REQUIRED_COLUMNS = METRIC_NAMES;

/**
 * Parses a timestamp cell: RFC 3339 / ISO 8601 or epoch milliseconds. NaN if neither. A
 * date and time without a zone is UTC (JavaScript would read it in the machine's zone:
 * the same file would give other models under another TZ, and a DST change duplicate hours).
 */
export function parseTimestamp(s: string): number {
  const t = s.trim();
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  const local = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$/.exec(t);
  if (local) return Date.parse(`${local[1]}T${local[2]}Z`);
  return /^\d{4}-\d{2}-\d{2}/.test(t) ? Date.parse(t) : NaN;
}

/**
 * Turns a CSV table into a Dataset of the set's metric columns (default: the basic three).
 * Strict: any missing column, empty or non-numeric cell is an error that names the column
 * and the first lines (the `validate` command reports such problems in full instead).
 */
export function toDataset(table: CsvTable, source = 'CSV', set: MetricSet = BASIC_SET): Dataset {
  const col = (name: string): number => table.header.indexOf(name);
  const missing = missingColumns(set, table.header);
  if (missing) throw new DataError(`${source}: ${missing}`);
  // A column read twice would be read from its first copy only, silently.
  const twice = [...set.names, 'timestamp', 'host', 'anomaly'].filter((c) => col(c) >= 0 && table.header.lastIndexOf(c) !== col(c));
  if (twice.length > 0) throw new DataError(`${source}: duplicate column name(s) ${twice.join(', ')}`);
  const n = table.rows.length;
  if (n === 0) throw new DataError(`${source}: no data rows`);
  const names = [...set.names];
  const m = names.length;
  const raw = new Float64Array(n * m);
  const idx = names.map(col);
  const tsCol = col('timestamp');
  const hostCol = col('host');
  const labelCol = col('anomaly');
  const labels = labelCol >= 0 ? new Uint8Array(n) : null;
  const timestamps: number[] = new Array(n);
  const hosts: string[] = new Array(n);
  const bad: string[] = [];
  for (let i = 0; i < n; i++) {
    const row = table.rows[i];
    for (let f = 0; f < m; f++) {
      const cell = row[idx[f]].trim();
      const v = cell === '' ? NaN : Number(cell);
      if (!Number.isFinite(v) && bad.length < 5) bad.push(`line ${table.lines[i]} ${names[f]}=${JSON.stringify(cell)}`);
      raw[i * m + f] = v;
    }
    timestamps[i] = tsCol >= 0 ? parseTimestamp(row[tsCol]) : i;
    hosts[i] = hostCol >= 0 ? row[hostCol] : 'unknown';
    if (labels) {
      const l = row[labelCol].trim();
      if (l !== '0' && l !== '1' && bad.length < 5) bad.push(`line ${table.lines[i]} anomaly=${JSON.stringify(l)} (expected 0 or 1)`);
      labels[i] = l === '1' ? 1 : 0;
    }
  }
  if (bad.length > 0) throw new DataError(`${source}: non-numeric or missing values: ${bad.join('; ')}`);
  return { n, timestamps, hosts, metrics: names, raw, labels };
}

/** Reads and parses a metrics CSV file (the set's metric columns; default the basic three). */
export function loadDataset(path: string, set: MetricSet = BASIC_SET): Dataset {
  return toDataset(parseCsv(readText(path), path), path, set);
}
