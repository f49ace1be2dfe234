/**
 * Reading the Server Machine Dataset (SMD) as ../shared/smd lays it out: one folder per
 * machine with `train.csv.gz` (`step` + 38 metrics) and `test.csv.gz` (the same plus
 * `anomaly`, 0/1). Every metric is min-max normalised per machine by the publishers, so
 * values are unitless positions in [0, 1] (see the data's README).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { SmdDataError } from '../errors';

export { SmdDataError };

/** The 38 metric columns, in file order (names as OmniAnomaly's issue 22 gives them). */
export const SMD_METRICS = [
  'cpu_r',
  'load_1',
  'load_5',
  'load_15',
  'mem_shmem',
  'mem_u',
  'mem_u_e',
  'total_mem',
  'disk_q',
  'disk_r',
  'disk_rb',
  'disk_svc',
  'disk_u',
  'disk_w',
  'disk_wa',
  'disk_wb',
  'si',
  'so',
  'eth1_fi',
  'eth1_fo',
  'eth1_pi',
  'eth1_po',
  'tcp_tw',
  'tcp_use',
  'active_opens',
  'curr_estab',
  'in_errs',
  'in_segs',
  'listen_overflows',
  'out_rsts',
  'out_segs',
  'passive_opens',
  'retransegs',
  'tcp_timeouts',
  'udp_in_dg',
  'udp_out_dg',
  'udp_rcv_buf_errs',
  'udp_snd_buf_errs',
] as const;

/** The metric sets of `bench smd --metrics`: `basic` is CPU, memory and network in. */
export const SMD_METRIC_SETS = {
  basic: ['cpu_r', 'mem_u', 'eth1_fi'],
  all: [...SMD_METRICS],
} as const satisfies Record<string, readonly string[]>;
export type SmdMetricSet = keyof typeof SMD_METRIC_SETS;

/** One part (train or test) of a machine, restricted to the requested metrics. */
export interface SmdPart {
  /** The `step` column (minutes; the test part continues the train part). */
  steps: Float64Array;
  /** n x metrics, row-major, in the requested metrics' order. */
  raw: Float64Array;
  /** The `anomaly` column (test part only). */
  labels?: Uint8Array;
  n: number;
}

/** One machine: its folder name, the metrics read, and both parts. */
export interface SmdMachine {
  name: string;
  metrics: string[];
  train: SmdPart;
  test: SmdPart & { labels: Uint8Array };
}

/** Machine folders under `dir` (those holding train.csv.gz and test.csv.gz), sorted by name. */
export function listSmdMachines(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (e) {
    throw new SmdDataError(`${dir}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return entries
    .filter((name) => {
      const p = join(dir, name);
      return statSync(p).isDirectory() && existsSync(join(p, 'train.csv.gz')) && existsSync(join(p, 'test.csv.gz'));
    })
    .sort(compareMachineNames);
}

/** machine-1-10 after machine-1-9: numeric parts compared as numbers. */
export function compareMachineNames(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/**
 * Parses one SMD CSV text (already gunzipped): a header with `step`, every requested
 * metric and, if `withLabels`, `anomaly`; one row per line, every cell a finite number,
 * steps increasing. `path` names the file in errors.
 */
export function parseSmdCsv(text: string, metrics: readonly string[], withLabels: boolean, path: string): SmdPart {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
  if (lines.length === 0) throw new SmdDataError(`${path}: empty file`);
  const header = lines[0].split(',').map((h) => h.trim());
  const col = (name: string): number => {
    const i = header.indexOf(name);
    if (i < 0) throw new SmdDataError(`${path}: no column ${name} (header: ${lines[0].slice(0, 120)})`);
    return i;
  };
  const stepCol = col('step');
  const metricCols = metrics.map(col);
  const labelCol = withLabels ? col('anomaly') : -1;
  const n = lines.length - 1;
  const m = metrics.length;
  const steps = new Float64Array(n);
  const raw = new Float64Array(n * m);
  const labels = withLabels ? new Uint8Array(n) : undefined;
  const num = (cells: string[], c: number, line: number): number => {
    const cell = cells[c];
    const v = cell === undefined || cell.trim() === '' ? NaN : Number(cell);
    if (!Number.isFinite(v)) throw new SmdDataError(`${path}: line ${line}: ${header[c]} is not a number (${JSON.stringify(cell ?? '')})`);
    return v;
  };
  for (let i = 0; i < n; i++) {
    const line = i + 2;
    const cells = lines[i + 1].split(',');
    if (cells.length !== header.length)
      throw new SmdDataError(`${path}: line ${line} has ${cells.length} cells, the header ${header.length}`);
    steps[i] = num(cells, stepCol, line);
    if (i > 0 && !(steps[i] > steps[i - 1]))
      throw new SmdDataError(`${path}: line ${line}: step ${steps[i]} does not follow ${steps[i - 1]}`);
    for (let k = 0; k < m; k++) raw[i * m + k] = num(cells, metricCols[k], line);
    if (labels) {
      const v = num(cells, labelCol, line);
      if (v !== 0 && v !== 1) throw new SmdDataError(`${path}: line ${line}: anomaly must be 0 or 1, got ${v}`);
      labels[i] = v;
    }
  }
  return { steps, raw, labels, n };
}

/** Reads and gunzips one `.csv.gz` file of a machine. */
export function readSmdFile(path: string, metrics: readonly string[], withLabels: boolean): SmdPart {
  let text: string;
  try {
    text = gunzipSync(readFileSync(path)).toString('utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SmdDataError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${code ?? (e as Error).message})`);
  }
  return parseSmdCsv(text, metrics, withLabels, path);
}

/** Reads one machine's train and test parts on `metrics`; the test part must continue the train part. */
export function readSmdMachine(dir: string, name: string, metrics: readonly string[]): SmdMachine {
  const train = readSmdFile(join(dir, name, 'train.csv.gz'), metrics, false);
  const test = readSmdFile(join(dir, name, 'test.csv.gz'), metrics, true);
  if (train.n < 2) throw new SmdDataError(`${join(dir, name, 'train.csv.gz')}: needs at least 2 rows, has ${train.n}`);
  if (test.n < 1) throw new SmdDataError(`${join(dir, name, 'test.csv.gz')}: no rows`);
  if (!(test.steps[0] > train.steps[train.n - 1]))
    throw new SmdDataError(
      `${join(dir, name, 'test.csv.gz')}: first step ${test.steps[0]} does not follow the train part's last (${train.steps[train.n - 1]})`,
    );
  return { name, metrics: [...metrics], train, test: test as SmdPart & { labels: Uint8Array } };
}
