/**
 * `evaluate --learn`: the service's default detector (learning each host: the streaming
 * detector of core/streaming.ts with core/host-learning.ts's defaults, the given model as
 * the prior) judged on a labelled CSV. The rows run through it once in (time, host)
 * order, as the poller feeds it (no look-ahead: each row is scored by models fitted on
 * earlier rows only), after the checks the service applies to a point; the figures are
 * computed against the file's labels.
 */
import type { Detector } from '../core/detector';
import type { GateOptions } from '../core/gate';
import { DEFAULT_HOST_LEARNING, hostLearningOptions } from '../core/host-learning';
import { METRIC_NAMES } from '../core/metrics';
import { StreamingDetector, type StreamResult } from '../core/streaming';
import { DataError, parseCsv, readText } from '../data/csv';
import { BASIC_SET, missingColumns, type MetricSet } from '../data/metric-set';
import { metricRules, PointSchema, timestampMs, valueIssue } from '../validation/point';
import { labelledFigures, type LabelledFigures } from './evaluate';
import { incidentFigures, summarizeIncidents, type IncidentSummary } from './incidents';
import { bestF1, binaryMetrics } from './metrics';
import { splitRows } from './split';

/** The columns `--learn` needs besides the metric columns. */
export const LEARN_COLUMNS = ['timestamp', 'host', 'anomaly'] as const;

/** The host and timestamp rules of a point (/detect's and the poller's); the metric values are checked against the set's rules. */
const HostTime = PointSchema.pick({ host: true, timestamp: true });

/** Valid rows of a file, in (time, host) order. */
export interface LearningRows {
  n: number;
  hosts: string[];
  /** Epoch ms. */
  times: number[];
  /** The metric columns of `raw`, in order. */
  metrics: string[];
  /** n x metrics.length, row-major. */
  raw: Float64Array;
  labels: Uint8Array;
  /** 1-based line of each row in the file. */
  lines: number[];
}

/** Rows of the file left out of the stream, as the service leaves them out. */
export interface SkippedRows {
  /** Rows that break the point rules of /detect and the poller (src/validation/point.ts). */
  invalid: number;
  /** Rows of a host at a time it already has a row (the service streams a host's times once). */
  duplicates: number;
  /** The first few, with the line and the rule. */
  examples: string[];
}

const MAX_EXAMPLES = 5;

/** A CSV cell as /detect would receive it: a number for a numeric column, absent when empty. */
function numberCell(cell: string): number | undefined {
  const t = cell.trim();
  return t === '' ? undefined : Number(t);
}

/** A timestamp cell: whole digits are epoch ms (as JSON numbers to /detect), anything else a string for the RFC 3339 rule. */
function timeCell(cell: string): string | number | undefined {
  const t = cell.trim();
  if (t === '') return undefined;
  return /^\d+$/.test(t) ? Number(t) : t;
}

/**
 * Reads a labelled CSV for `--learn` with the metric columns of `set` (default: the basic
 * three): each row checked with the service's point rules (each metric finite and in its
 * declared range, host 1 to 256 characters, timestamp RFC 3339 or epoch ms, here
 * required), invalid rows and repeated (host, time) rows skipped and counted, the rest in
 * (time, host) order, ties in file order. A missing column or a label other than 0/1 is a
 * DataError.
 */
export function readLearningRows(path: string, set: MetricSet = BASIC_SET): { rows: LearningRows; fileRows: number; skipped: SkippedRows } {
  const table = parseCsv(readText(path), path);
  const col = (name: string): number => table.header.indexOf(name);
  const missing = LEARN_COLUMNS.filter((c) => col(c) < 0);
  if (missing.length > 0)
    throw new DataError(
      `${path}: --learn needs the columns ${[...LEARN_COLUMNS.slice(0, 2), ...set.names, 'anomaly'].join(',')}; ` +
        `missing ${missing.join(', ')} (header: ${table.header.join(',')})`,
    );
  const missingMetrics = missingColumns(set, table.header);
  if (missingMetrics) throw new DataError(`${path}: ${missingMetrics}`);
  const names = [...set.names];
  const rules = metricRules(set.defs);
  const [tsCol, hostCol, labelCol] = [col('timestamp'), col('host'), col('anomaly')];
  const metricCols = names.map(col);
  const badLabels: string[] = [];
  const skipped: SkippedRows = { invalid: 0, duplicates: 0, examples: [] };
  const kept: Array<{ host: string; time: number; values: number[]; label: number; line: number }> = [];
  for (let r = 0; r < table.rows.length; r++) {
    const row = table.rows[r];
    const line = table.lines[r];
    const l = row[labelCol].trim();
    if (l !== '0' && l !== '1') {
      if (badLabels.length < MAX_EXAMPLES) badLabels.push(`line ${line} anomaly=${JSON.stringify(l)}`);
      continue;
    }
    const timestamp = timeCell(row[tsCol]);
    const values = metricCols.map((c) => numberCell(row[c]));
    const issues: Array<{ field: string; message: string }> = [];
    if (timestamp === undefined) issues.push({ field: 'timestamp', message: 'is required (a row is streamed at its time)' });
    else {
      const ht = HostTime.safeParse({ host: row[hostCol], timestamp });
      if (!ht.success) {
        const seen = new Set<string>();
        for (const i of ht.error.issues) {
          const field = String(i.path[0] ?? '(point)');
          if (!seen.has(field)) issues.push({ field, message: i.message });
          seen.add(field);
        }
      }
    }
    for (let k = 0; k < names.length && issues.length < 3; k++) {
      const why = valueIssue(rules, k, values[k]);
      if (why) issues.push({ field: names[k], message: why });
    }
    if (issues.length > 0) {
      skipped.invalid++;
      if (skipped.examples.length < MAX_EXAMPLES)
        skipped.examples.push(`line ${line}: ${issues.map((i) => `${i.field} ${i.message}`).join('; ')}`);
      continue;
    }
    kept.push({
      host: row[hostCol],
      time: timestampMs(timestamp) as number,
      values: values as number[],
      label: Number(l),
      line,
    });
  }
  if (badLabels.length > 0) throw new DataError(`${path}: labels must be 0 or 1: ${badLabels.join('; ')}`);
  kept.sort((a, b) => a.time - b.time || (a.host < b.host ? -1 : a.host > b.host ? 1 : a.line - b.line));
  const m = names.length;
  const out: LearningRows = {
    n: 0,
    metrics: names,
    hosts: [],
    times: [],
    raw: new Float64Array(kept.length * m),
    labels: new Uint8Array(kept.length),
    lines: [],
  };
  const lastOf = new Map<string, { time: number; line: number }>();
  for (const k of kept) {
    const last = lastOf.get(k.host);
    if (last && last.time === k.time) {
      skipped.duplicates++;
      if (skipped.examples.length < MAX_EXAMPLES)
        skipped.examples.push(`line ${k.line}: host ${k.host} at ${new Date(k.time).toISOString()} repeats line ${last.line}`);
      continue;
    }
    lastOf.set(k.host, { time: k.time, line: k.line });
    const i = out.n++;
    out.hosts.push(k.host);
    out.times.push(k.time);
    out.raw.set(k.values, i * m);
    out.labels[i] = k.label;
    out.lines.push(k.line);
  }
  out.raw = out.raw.subarray(0, out.n * m);
  out.labels = out.labels.subarray(0, out.n);
  return { rows: out, fileRows: table.rows.length, skipped };
}

/** Precision, recall, F1 and the confusion matrix of 0/1 predictions against labels. */
export interface FlagFigures {
  precision: number;
  recall: number;
  f1: number;
  confusion: { tp: number; fp: number; tn: number; fn: number };
}

function flagFigures(pred: ArrayLike<number>, labels: ArrayLike<number>): FlagFigures {
  const b = binaryMetrics(pred, labels);
  return { precision: b.precision, recall: b.recall, f1: b.f1, confusion: { tp: b.tp, fp: b.fp, tn: b.tn, fn: b.fn } };
}

/** The figures of one `evaluate --learn` run. */
export interface LearningFigures {
  /** Rows the figures are over (all streamed rows, or the newest part with --split time). */
  rows: number;
  positives: number;
  /** Rows judged by the learned model (the host had learned): the scores' figures. */
  learned: {
    rows: number;
    positives: number;
    roc_auc: number | null;
    pr_auc: number | null;
    /** Best F1 over every threshold on these scores (an oracle threshold, for comparison only). */
    best_f1: { f1: number; threshold: number | null; precision: number; recall: number };
    /** The learned model's raw flags (score above its threshold) on these rows. */
    raw_flags: LabelledFigures;
  };
  /** Rows judged while the host was learning (by the prior: the fleet model or the given model). */
  while_learning: { rows: number; positives: number; raw_flags: number; alerts: number; alerts_on_labelled: number };
  /** Every row: the raw flags (before the gate) and the gated alerts (what the service writes as alerts). */
  raw_flags: FlagFigures;
  alerts: FlagFigures;
  incidents: IncidentSummary;
}

/** A run of the learning default over rows, and its figures over the rows `report` keeps. */
export interface LearningRun {
  figures: LearningFigures;
  result: StreamResult;
  /** Indices of the rows the figures are over. */
  reported: Int32Array;
  refits: number;
  seconds: number;
  /** What the figures are over; from and to: the first and last reported rows' times (RFC 3339). */
  split: { mode: 'all' | 'time'; note: string; from: string; to: string };
}

/**
 * Streams every row through `StreamingDetector.learner(hostLearningOptions({ prior, gate,
 * maxKeys }))`, as the service builds it (maxKeys: every host of the file, so none is
 * evicted), in one pass. `split` `time`: the figures are over the newest rows only (the
 * test part of a 70/15/15 time split, the rows `evaluate --split time` scores), while the
 * detector learns on every row before them.
 */
export function evaluateLearning(
  rows: LearningRows,
  opts: { prior: Detector; gate: GateOptions; split: 'all' | 'time'; seed: number },
): LearningRun {
  if (rows.n === 0) throw new DataError('no valid rows to stream');
  const hosts = new Set(rows.hosts).size;
  const engine = StreamingDetector.learner(
    hostLearningOptions({ prior: opts.prior, gate: opts.gate, maxKeys: Math.max(1, hosts), metrics: rows.metrics ?? METRIC_NAMES }),
  );
  const t0 = process.hrtime.bigint();
  const result = engine.process({ keys: rows.hosts, times: rows.times, raw: rows.raw, n: rows.n });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  let reported: Int32Array;
  let note: string;
  if (opts.split === 'time') {
    const s = splitRows(rows.n, { mode: 'time', seed: opts.seed, timestamps: rows.times });
    reported = Int32Array.from(s.test).sort();
    note =
      `learned on all ${rows.n} rows in one pass; figures on the newest ${reported.length} (the test part of a ` +
      `70/15/15 time split, from ${new Date(rows.times[reported[0]]).toISOString()})`;
  } else {
    reported = Int32Array.from({ length: rows.n }, (_, i) => i);
    note = `learned on all ${rows.n} rows in one pass; figures on all of them`;
  }
  return {
    figures: learningFigures(rows, result, reported),
    result,
    reported,
    refits: engine.refits,
    seconds,
    split: {
      mode: opts.split,
      note,
      from: new Date(rows.times[reported[0]]).toISOString(),
      to: new Date(rows.times[reported[reported.length - 1]]).toISOString(),
    },
  };
}

/** The figures of a stream's results over the rows `reported` (indices in stream order). */
export function learningFigures(rows: LearningRows, res: StreamResult, reported: ArrayLike<number>): LearningFigures {
  const pick = <T extends ArrayLike<number>>(v: T, idx: ArrayLike<number>): number[] => Array.from(idx, (i) => v[i]);
  const learnedIdx: number[] = [];
  const priorIdx: number[] = [];
  for (let k = 0; k < reported.length; k++) (res.learning[reported[k]] === 1 ? priorIdx : learnedIdx).push(reported[k]);
  const labels = pick(rows.labels, reported);
  const lLabels = pick(rows.labels, learnedIdx);
  const lScores = pick(res.scores, learnedIdx);
  const best = bestF1(lScores, lLabels);
  const lf = labelledFigures(lScores, pick(res.anomalies, learnedIdx), lLabels);
  const sum = (idx: number[], f: (i: number) => number): number => idx.reduce((s, i) => s + f(i), 0);
  const inReport = new Uint8Array(rows.n);
  for (let k = 0; k < reported.length; k++) inReport[reported[k]] = 1;
  const incidents = incidentFigures(
    { n: rows.n, hosts: rows.hosts, times: rows.times, labels: rows.labels, alerts: res.alerts },
    { include: (i) => inReport[i] === 1 },
  );
  return {
    rows: reported.length,
    positives: labels.reduce((s, l) => s + l, 0),
    learned: {
      rows: learnedIdx.length,
      positives: lLabels.reduce((s, l) => s + l, 0),
      roc_auc: lf.roc_auc,
      pr_auc: lf.pr_auc,
      best_f1: { ...best, threshold: Number.isFinite(best.threshold) ? best.threshold : null },
      raw_flags: lf,
    },
    while_learning: {
      rows: priorIdx.length,
      positives: sum(priorIdx, (i) => rows.labels[i]),
      raw_flags: sum(priorIdx, (i) => res.anomalies[i]),
      alerts: sum(priorIdx, (i) => res.alerts[i]),
      alerts_on_labelled: sum(priorIdx, (i) => res.alerts[i] & rows.labels[i]),
    },
    raw_flags: flagFigures(pick(res.anomalies, reported), labels),
    alerts: flagFigures(pick(res.alerts, reported), labels),
    incidents: summarizeIncidents(incidents),
  };
}

/** The settings of the learning default, for the report. */
export const learningSettings = (gate: GateOptions) => ({ host_learning: DEFAULT_HOST_LEARNING, gate });
