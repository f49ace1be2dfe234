import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArtifact, serialize } from '../../../src/core/artifact';
import { Detector } from '../../../src/core/detector';
import { NODE_METRICS } from '../../../src/core/metrics';
import { Rng } from '../../../src/core/random';
import { trainModel } from '../../../src/core/train';
import { parseCsv } from '../../../src/data/csv';
import { toDataset } from '../../../src/data/dataset';
import { BASIC_SET, parseMetricsOption, setFeatures } from '../../../src/data/metric-set';
import { runGrid } from '../../../src/eval/grid';
import { readLearningRows } from '../../../src/eval/learning-eval';
import { contributionsSpec, metricColors, robustnessSpec } from '../../../src/eval/plots';
import { evaluateModel, evaluationCharts } from '../../../src/eval/report';
import { splitRows, takePart } from '../../../src/eval/split';
import { validateText, type ValidationReport } from '../../../src/eval/validate';

/**
 * The evaluation pieces of train, evaluate and validate over metric sets other than the
 * basic three: the node preset on a small synthetic CSV, custom columns, missing columns and
 * values out of their declared ranges.
 */

const TMP = mkdtempSync(join(tmpdir(), 'iad-metric-sets-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const NODE = parseMetricsOption('node');
const T0 = Date.UTC(2026, 0, 1);

/** Labelled rows of two hosts over the node columns; every 40th row of a host is an incident (all metrics up). */
function nodeCsv(steps: number, edit?: (row: Record<string, number>, i: number) => void): string {
  const r = new Rng(5);
  const lines = [`timestamp,host,${NODE.names.join(',')},anomaly`];
  for (let i = 0; i < steps; i++) {
    for (const host of ['a', 'b']) {
      const bad = i % 40 === 39;
      const row: Record<string, number> = {};
      for (const d of NODE_METRICS) {
        const base = d.max === 100 ? 30 + 5 * r.normal() : 200 + 20 * r.normal();
        row[d.name] = bad ? (d.max === 100 ? 97 : base * 6) : Math.max(0, base);
      }
      edit?.(row, i);
      lines.push(`${new Date(T0 + i * 60000).toISOString()},${host},${NODE.names.map((n) => row[n].toFixed(3)).join(',')},${bad ? 1 : 0}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const check = (r: ValidationReport, name: string) => r.checks.find((c) => c.name === name) as ValidationReport['checks'][number];

describe('validate over a metric set', () => {
  it('checks every node metric: passes clean data, with statistics and outliers per metric', () => {
    const r = validateText(nodeCsv(100), 'node.csv', undefined, undefined, NODE);
    expect(r.passed).toBe(true);
    expect(r.rules.required_columns).toEqual(NODE.names);
    expect(r.rules.metric_set).toBe('node');
    expect(Object.keys(r.statistics)).toEqual(NODE.names);
    expect(Object.keys(r.outliers)).toEqual(NODE.names);
    // The same file against the basic set: the node columns are ignored, not checked.
    const basic = validateText(nodeCsv(100), 'node.csv');
    expect(Object.keys(basic.statistics)).toEqual(BASIC_SET.names);
    expect((check(basic, 'schema').details as { ignored_columns: string[] }).ignored_columns).toContain('tcp_retrans_segs');
  });

  it("an out-of-range value of any metric is counted against that metric's declared range", () => {
    // swap_used_percent is a percentage: 150 on 6 of 200 rows (3%) passes, on 12 (6%) fails.
    const few = validateText(
      nodeCsv(100, (row, i) => i < 3 && (row.swap_used_percent = 150)),
      'few.csv',
      undefined,
      undefined,
      NODE,
    );
    expect(check(few, 'ranges').status).toBe('pass');
    const details = check(few, 'ranges').details as { per_metric: Record<string, { below: number; above: number }> };
    expect(details.per_metric.swap_used_percent).toEqual({ below: 0, above: 6 });
    expect(details.per_metric.cpu_usage).toEqual({ below: 0, above: 0 });
    const many = validateText(
      nodeCsv(100, (row, i) => i < 6 && (row.swap_used_percent = 150)),
      'many.csv',
      undefined,
      undefined,
      NODE,
    );
    expect(check(many, 'ranges').status).toBe('fail');
    expect(check(many, 'ranges').summary).toMatch(/12 of 200 rows \(6\.00%\) out of range .*: line 2 swap_used_percent=150/);
    // A negative load (load1 >= 0) too; a column outside the set is not range-checked.
    const load = validateText(
      nodeCsv(20, (row, i) => i < 5 && (row.load1 = -1)),
      'l.csv',
      undefined,
      undefined,
      NODE,
    );
    expect(check(load, 'ranges').summary).toMatch(/line 2 load1=-1/);
    const unitless = validateText(
      nodeCsv(20, (row, i) => i < 5 && (row.load1 = -1)),
      'u.csv',
      undefined,
      undefined,
      parseMetricsOption('load5,cpu_usage'),
    );
    expect(check(unitless, 'ranges').status).toBe('pass');
  });

  it('custom columns with the ranges of a mapping', () => {
    const set = {
      ...parseMetricsOption('temp_c,fan_rpm'),
      defs: [
        { name: 'temp_c', unit: 'celsius', min: -40, max: 120 },
        { name: 'fan_rpm', unit: 'rpm', min: 0, max: null },
      ],
    };
    const text = `timestamp,host,fan_rpm,temp_c\n${Array.from({ length: 20 }, (_, i) => `${T0 + i * 60000},a,${1000 + i},${i < 2 ? 130 : 40}`).join('\n')}\n`;
    const r = validateText(text, 'custom.csv', undefined, undefined, set);
    expect(check(r, 'ranges').status).toBe('fail');
    expect(check(r, 'ranges').summary).toMatch(/2 of 20 rows \(10\.00%\) out of range .*line 2 temp_c=130/);
    expect((check(r, 'ranges').details as { rules: unknown }).rules).toEqual({
      temp_c: { min: -40, max: 120 },
      fan_rpm: { min: 0, max: null },
    });
  });

  it('a missing column of the set fails the schema check with one line naming it and the columns found', () => {
    const text = nodeCsv(10).replace(',tcp_time_wait,', ',tcp_timewait,');
    const r = validateText(text, 'm.csv', undefined, undefined, NODE);
    expect(r.passed).toBe(false);
    expect(r.failed_checks).toEqual(['schema']);
    expect(check(r, 'schema').summary).toMatch(
      /^missing column\(s\) tcp_time_wait of --metrics node \(columns found: timestamp,host,cpu_usage,.*,tcp_timewait,tcp_retrans_segs,anomaly\)$/,
    );
  });
});

describe('train and evaluate over the node set', () => {
  const ds = toDataset(parseCsv(nodeCsv(400)), 'node.csv', NODE);
  const split = splitRows(ds.n, { mode: 'random', seed: 1, timestamps: ds.timestamps });
  const [train, val, test] = [split.train, split.val, split.test].map((idx) => takePart(ds, idx));
  const opts = {
    seed: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    dataSha256: '0'.repeat(64),
    features: setFeatures(NODE),
    metrics: NODE.defs,
  };
  const grid = runGrid(train, val, { contamination: [0.025], nEstimators: [40], maxSamples: [128] }, opts);
  const artifact = trainModel(train.raw, train.n, {
    nEstimators: 40,
    maxSamples: 128,
    seed: 1,
    contamination: 0.025,
    createdAt: opts.createdAt,
    features: opts.features,
    inputs: NODE.names,
    metricDefs: NODE.defs,
  });
  const det = new Detector(artifact, { inputs: NODE.names });
  const ev = evaluateModel(det, test, {
    context: 'evaluate',
    modelSource: 'node model',
    dataPath: 'node.csv',
    dataSha256: '0'.repeat(64),
    part: 'test',
    includesTrainingRows: false,
    seed: 1,
  });

  it('the parts keep the 13 columns, and the artifact declares its inputs with units and ranges', () => {
    expect(test.metrics).toEqual(NODE.names);
    expect(test.raw.length).toBe(test.n * 13);
    expect(grid[0].val?.f1).toBeGreaterThan(0.8);
    const a = parseArtifact(serialize(artifact));
    expect(a.inputs).toEqual(NODE.names);
    expect(a.metrics).toEqual(NODE.defs);
    expect(a.features).toHaveLength(13);
  });

  it('test figures, flagged contributions and report over every metric', () => {
    const r = ev.report;
    expect(r.test.labelled?.f1).toBeGreaterThan(0.8);
    expect(r.model.metrics).toEqual(NODE.defs);
    expect(Object.keys(r.flagged.mean_contributions)).toEqual(NODE.names);
    expect(Object.keys(r.flagged.top[0].values)).toEqual(NODE.names);
    // Row values are the CSV's, column by column.
    const top = r.flagged.top[0];
    expect(NODE.names.map((n) => top.values[n])).toEqual(Array.from(test.raw.subarray(top.row * 13, top.row * 13 + 13)));
  });

  it('the robustness suite perturbs each metric: one missing-metric scenario per metric, scales and imputation of each', () => {
    const rob = ev.report.robustness;
    expect(rob.missing.map((s) => s.parameter)).toEqual(NODE.names);
    expect(Object.keys(rob.scales)).toEqual(NODE.names);
    expect(Object.values(rob.imputation).every((v) => v.source === 'training_median')).toBe(true);
    expect(rob.outliers[2].detection_rate).toBeGreaterThan(0.9);
    expect(rob.notes[0]).toContain('tcp_retrans_segs');
  });

  it('plots: a distinct colour per metric in the contributions chart, a wider missing-metric panel', () => {
    const charts = evaluationCharts(ev);
    const spec = contributionsSpec(ev.report.flagged) as {
      vconcat: Array<{ encoding: { color: { scale: { domain: string[]; range: string[] } } } }>;
    };
    const scale = spec.vconcat[0].encoding.color.scale;
    expect(scale.domain).toEqual(NODE.names);
    expect(new Set(scale.range).size).toBe(13);
    expect(charts.contributions).toEqual(spec);
    const rob = robustnessSpec(ev.report.robustness) as { hconcat: Array<{ width: number }> };
    expect(rob.hconcat[1].width).toBeGreaterThan(rob.hconcat[0].width);
  });

  it('metricColors gives any number of metrics distinct colours, the basic three as before', () => {
    expect(metricColors(3)).toEqual(['#4c78a8', '#f58518', '#54a24b']);
    for (const n of [1, 13, 20, 38, 64]) expect(new Set(metricColors(n)).size).toBe(n);
  });
});

describe('evaluate --learn rows over a metric set', () => {
  it('reads custom columns, checks each against its declared range and skips the rows that break it', () => {
    const set = parseMetricsOption('temp_c,swap_used_percent');
    const file = join(TMP, 'learn.csv');
    const rows = Array.from({ length: 6 }, (_, i) => `${T0 + i * 60000},h${i % 2},${i === 3 ? 101 : 20},${40 + i},${i === 4 ? 1 : 0}`);
    writeFileSync(file, `timestamp,host,swap_used_percent,temp_c,anomaly\n${rows.join('\n')}\n`);
    const { rows: r, skipped } = readLearningRows(file, set);
    expect(r.metrics).toEqual(['temp_c', 'swap_used_percent']);
    expect(r.n).toBe(5);
    expect(Array.from(r.raw.subarray(0, 4))).toEqual([40, 20, 41, 20]);
    expect(skipped.invalid).toBe(1);
    expect(skipped.examples[0]).toBe('line 5: swap_used_percent must be <= 100');
    expect(() => readLearningRows(file, parseMetricsOption('temp_c,load1'))).toThrow(
      /learn\.csv: missing column\(s\) load1 of --metrics temp_c,load1 \(columns found: timestamp,host,swap_used_percent,temp_c,anomaly\)/,
    );
  });
});
