import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArtifact } from '../../src/core/artifact';
import { Detector } from '../../src/core/detector';
import { fileSha256 } from '../../src/data/csv';
import type { LearningEvaluationReport, TrainingReport } from '../../src/cli/pipeline';
import { findFonts, rasterize } from '../../src/eval/plots';
import type { EvaluationReport } from '../../src/eval/report';
import type { ValidationReport } from '../../src/eval/validate';
import { runCli } from '../helpers/cli';
import { DATA_PATH } from '../helpers/fixtures';

/**
 * validate, train and evaluate through the built CLI (npm test builds first), on the
 * committed data set and on malformed files. No MLflow here (--no-mlflow); see
 * mlflow-tracking.test.ts for tracking.
 */

const TMP = mkdtempSync(join(tmpdir(), 'iad-pipeline-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const CREATED_AT = '2026-11-27T00:00:00.000Z';
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const HEADER = 'timestamp,host,cpu_usage,memory_usage,network_load,anomaly';
const lines = (s: string): string[] => s.trim().split('\n').filter(Boolean);
const json = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const trainingReport = (path: string) => json<TrainingReport>(path);
const evaluationReport = (path: string) => json<EvaluationReport>(path);
let dirCount = 0;
const freshDir = (name: string): string => {
  const d = join(TMP, `${name}-${dirCount++}`);
  mkdirSync(d, { recursive: true });
  return d;
};

/** A CSV in TMP. */
function file(name: string, body: string): string {
  const p = join(TMP, name);
  writeFileSync(p, body);
  return p;
}

/** n in-range rows of one host, 5% labelled. */
function goodRows(n: number): string[] {
  return Array.from(
    { length: n },
    (_, i) =>
      `${new Date(Date.UTC(2026, 0, 1) + i * 60000).toISOString()},h1,${20 + (i % 40)},${40 + (i % 25)},${100000 + 37 * i},${i % 20 === 0 ? 1 : 0}`,
  );
}

/** The committed data without its label column. */
function unlabelled(): string {
  const text = readFileSync(DATA_PATH, 'utf8');
  return `${text
    .trimEnd()
    .split('\n')
    .map((l) => l.split(',').slice(0, 5).join(','))
    .join('\n')}\n`;
}

describe('validate', () => {
  it('passes data/system_metrics.csv: readable table, timestamped and latest JSON reports, exit 0', () => {
    const out = freshDir('validate-ok');
    const r = runCli(['validate', '--data', DATA_PATH, '--results-dir', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const check of ['schema', 'ranges', 'missing_values', 'duplicates', 'statistics', 'outliers'])
      expect(r.stdout).toMatch(new RegExp(`^${check}\\s+(PASS|INFO)\\s`, 'm'));
    expect(r.stdout).toMatch(/^cpu_usage\s+17280\s+31\.734/m);
    expect(r.stdout).toMatch(/Labels: 976 anomalous rows \(5\.65%\)/);
    expect(r.stdout).toMatch(/Result: PASSED/);
    const files = readdirSync(out);
    const stamped = files.filter((f) => /^validation_report_\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z\.json$/.test(f));
    expect(stamped).toHaveLength(1);
    expect(files).toContain('validation_report_latest.json');
    const rep = json<ValidationReport>(join(out, stamped[0]));
    expect(rep).toEqual(json<ValidationReport>(join(out, 'validation_report_latest.json')));
    expect(rep).toMatchObject({
      report: 'validation',
      passed: true,
      rows: 17280,
      failed_checks: [],
      labels: { present: true, positives: 976 },
    });
    expect(rep.source.sha256).toBe(fileSha256(DATA_PATH));
    expect(rep.checks).toHaveLength(6);
  });

  const cases: Array<[string, string | null, RegExp, string | null]> = [
    ['empty.csv', '', /empty\.csv: the file is empty/, null],
    [
      'ragged.csv',
      `${HEADER}\n${goodRows(3).join('\n')}\n2026-01-02T00:00:00Z,h1,1,2\n`,
      /schema: 1 row\(s\) do not have the header's 6 fields \(line 5 has 4 fields\)/,
      'schema',
    ],
    [
      'text.csv',
      `${HEADER}\n${goodRows(3).join('\n')}\n2026-01-02T00:00:00Z,h1,high,2,3,0\n`,
      /missing_values: 1 non-numeric or missing values: line 5 cpu_usage="high"/,
      'missing_values',
    ],
    ['nocol.csv', 'timestamp,host,cpu_usage\n1,a,1\n', /schema: missing column\(s\) memory_usage, network_load/, 'schema'],
    [
      'range.csv',
      `${HEADER}\n${goodRows(100)
        .map((l, i) => (i < 6 ? l.replace(/,h1,\d+,/, ',h1,140,') : l))
        .join('\n')}\n`,
      /ranges: 6 of 100 rows \(6\.00%\) out of range/,
      'ranges',
    ],
    [
      'dups.csv',
      `${HEADER}\n${[...goodRows(80), ...goodRows(20)].join('\n')}\n`,
      /duplicates: 20 duplicate row\(s\) \(20\.00%/,
      'duplicates',
    ],
    ['quote.csv', `${HEADER}\n"unterminated,1,2,3,4,0\n`, /unterminated quoted field starting on line 2/, null],
    ['missing.csv', null, /missing\.csv: no such file/, null],
  ];
  it.each(cases)('fails %s with exit 1, one clear line and no stack trace', (name, body, pattern, failed) => {
    const out = freshDir('validate-bad');
    const path = body === null ? join(TMP, name) : file(name, body);
    const r = runCli(['validate', '--data', path, '--results-dir', out]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^anomaly-detector: /);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    if (failed) {
      expect(r.stdout).toMatch(new RegExp(`^${failed}\\s+FAIL\\s`, 'm'));
      expect(r.stdout).toMatch(/Result: FAILED/);
      expect(json<ValidationReport>(join(out, 'validation_report_latest.json'))).toMatchObject({ passed: false, failed_checks: [failed] });
    } else {
      expect(readdirSync(out)).toEqual([]);
    }
  });

  it('passes with problems under the limits and reports them (5% out of range, 10% duplicates)', () => {
    const out = freshDir('validate-limits');
    const rows = goodRows(90).map((l, i) => (i < 5 ? l.replace(/,h1,\d+,/, ',h1,-3,') : l));
    const r = runCli([
      'validate',
      '--data',
      file('limits.csv', `${HEADER}\n${[...rows, ...rows.slice(80)].join('\n')}\n`),
      '--results-dir',
      out,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ranges\s+PASS\s+5 of 100 rows \(5\.00%\)/m);
    expect(r.stdout).toMatch(/^duplicates\s+PASS\s+10 duplicate row\(s\) \(10\.00%/m);
  });
});

describe('train', () => {
  const models = join(TMP, 'models');
  const results = join(TMP, 'results');
  let run: ReturnType<typeof runCli>;
  let report: TrainingReport;
  let modelPath: string;

  beforeAll(() => {
    run = runCli(
      ['train', '--data', DATA_PATH, '--models-dir', models, '--results-dir', results, '--created-at', CREATED_AT, '--no-mlflow'],
      {},
      120_000,
    );
    const m = /^model (\S+): (\S+)/m.exec(run.stdout);
    if (run.code !== 0 || !m) throw new Error(`train failed (${run.code}): ${run.stderr || run.stdout}`);
    modelPath = m[2];
    report = trainingReport(join(results, `training_metrics_${m[1]}.json`));
  }, 150_000);

  it('validates, splits 70/15/15, searches the 18-point grid by validation F1 and evaluates on the test split against the labels', () => {
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^validation passed \(6 checks, 17280 rows\)/m);
    expect(run.stdout).toMatch(/^split: random split \(seed 42\): 12096\/2592\/2592 rows/m);
    expect(run.stdout).toMatch(/^grid: 18 points; rule validation_f1: chose c=\S+ n=\d+ s=\d+ by the highest validation F1/m);
    expect(run.stdout).toMatch(
      /^test metrics \(2592 held-out test rows, \d+ labelled anomalies, against the real labels\): precision [01]\.\d{4}, recall [01]\.\d{4}, F1 [01]\.\d{4}, ROC-AUC [01]\.\d{4}, PR-AUC [01]\.\d{4}/m,
    );
    expect(run.stdout).toMatch(/^confusion matrix: TP \d+, FP \d+, TN \d+, FN \d+/m);
    expect(run.stdout).toMatch(/^scoring latency per point: mean [\d.]+ µs, p50 [\d.]+ µs, p99 [\d.]+ µs/m);
    expect(report.split).toMatchObject({ mode: 'random', seed: 42, rows: { train: 12096, validation: 2592, test: 2592 } });
    expect(report.grid.results).toHaveLength(18);
    expect(report.grid.rule).toBe('validation_f1');
    const f1s = report.grid.results.map((g) => g.val?.f1 ?? -1);
    expect(report.grid.results[report.grid.selected].val?.f1).toBe(Math.max(...f1s));
    const t = report.test;
    expect(t.labels).toBe('present');
    if (!t.labelled) throw new Error('expected labelled test figures');
    const c = t.labelled.confusion;
    expect(c.tp + c.fp + c.tn + c.fn).toBe(2592);
    expect(c.tp + c.fn).toBe(t.labelled.positives);
    // The test labels are the data's: the simulated incidents are clearly separable, but not perfectly caught.
    expect(t.labelled.f1).toBeGreaterThan(0.8);
    expect(t.labelled.f1).toBeLessThan(1);
    expect(t.labelled.roc_auc).toBeGreaterThan(0.95);
    expect(t.latency.per_point_mean_us).toBeGreaterThan(0);
    expect(t.latency.per_point_p99_us).toBeGreaterThan(0);
  });

  it('writes models/model-<version>.json with its test figures inside, and leaves model.json alone without --promote', () => {
    const a = parseArtifact(readFileSync(modelPath, 'utf8'), modelPath);
    expect(modelPath).toBe(join(models, `model-${a.version}.json`));
    expect(existsSync(join(models, 'model.json'))).toBe(false);
    expect(run.stdout).toMatch(/model\.json unchanged; --promote to replace it/);
    expect(a.training.rows).toBe(12096);
    expect(a.training.data_sha256).toBe(fileSha256(DATA_PATH));
    expect(a.training.created_at).toBe(CREATED_AT);
    const sel = report.grid.results[report.grid.selected];
    expect(a.training.params).toMatchObject({
      n_estimators: sel.nEstimators,
      max_samples: sel.maxSamples,
      contamination: sel.contamination,
    });
    expect(a.training.metrics.test_f1).toBe(report.test.labelled?.f1);
    expect(a.training.metrics.validation_f1).toBe(sel.val?.f1);
    expect(report.model).toMatchObject({ path: modelPath, promoted: false, sha256: a.sha256 });
    expect(report.mlflow).toEqual({ tracked: false, reason: '--no-mlflow' });
  });

  it('writes the evaluation report: JSON, HTML with inline plots, and every plot as SVG and PNG', () => {
    const ev = evaluationReport(report.evaluation_report);
    expect(ev.test).toEqual(report.test);
    expect(ev.data.part).toMatch(/^test split \(random, seed 42; 2592 of 17280 rows/);
    expect(Object.keys(ev.files.plots).sort()).toEqual(['contributions', 'grid', 'pr', 'robustness', 'roc', 'score_histogram']);
    for (const p of Object.values(ev.files.plots) as Array<{ svg: string; png: string }>) {
      expect(readFileSync(p.svg, 'utf8')).toMatch(/^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      const png = readFileSync(p.png);
      expect(png.subarray(0, 8).equals(PNG_MAGIC)).toBe(true);
      expect(png.length).toBeGreaterThan(10_000);
    }
    expect(readFileSync(ev.files.plots.roc.svg, 'utf8')).toContain('ROC-AUC');
    const html = readFileSync(ev.files.html, 'utf8');
    expect(html.match(/<svg/g)?.length).toBeGreaterThanOrEqual(6);
    for (const s of [
      'Confusion matrix',
      'Gaussian noise',
      'One metric missing',
      'Extreme outliers',
      'Distribution shift',
      'Flagged points',
    ])
      expect(html).toContain(s);
    expect(ev.robustness.outliers.map((o) => o.parameter)).toEqual([2, 5, 10]);
    expect(ev.robustness.imputation.cpu_usage.source).toBe('training_median');
  });

  it('is byte-reproducible; --promote also writes model.json', () => {
    const r = runCli(
      [
        'train',
        '--data',
        DATA_PATH,
        '--models-dir',
        models,
        '--results-dir',
        results,
        '--created-at',
        CREATED_AT,
        '--no-mlflow',
        '--promote',
      ],
      {},
      120_000,
    );
    expect(r.code).toBe(0);
    const bytes = readFileSync(modelPath, 'utf8');
    expect(readFileSync(join(models, 'model.json'), 'utf8')).toBe(bytes);
    expect(r.stdout).toContain(`model ${parseArtifact(bytes).version}: ${modelPath} and ${join(models, 'model.json')} (promoted)`);
  }, 150_000);

  it('--split time keeps time order: no training row is newer than a validation row, none of those newer than a test row', () => {
    const out = freshDir('train-time');
    const r = runCli([
      'train',
      '--data',
      DATA_PATH,
      '--split',
      'time',
      '--contamination',
      '0.05',
      '--n-estimators',
      '50',
      '--max-samples',
      '128,256',
      '--models-dir',
      out,
      '--results-dir',
      out,
      '--no-mlflow',
    ]);
    expect(r.code).toBe(0);
    const m = /^model (\S+):/m.exec(r.stdout) as RegExpExecArray;
    const rep = trainingReport(join(out, `training_metrics_${m[1]}.json`));
    expect(rep.split.mode).toBe('time');
    const b = rep.split.bounds;
    if (!b) throw new Error('a time split records its bounds');
    expect(b.train_end).toBeLessThan(b.val_start);
    expect(b.val_end).toBeLessThan(b.test_start);
    expect(rep.split.rows.train + rep.split.rows.validation + rep.split.rows.test).toBe(17280);
    // The committed data: 4 hosts per minute, so the parts hold whole minutes.
    expect(rep.split.rows.train % 4).toBe(0);
    expect(new Date(b.test_start).toISOString() > new Date(b.train_end).toISOString()).toBe(true);
    expect(rep.grid.results).toHaveLength(2);
  });

  it('--features temporal trains a model with per-host temporal features that evaluate re-scores identically', () => {
    const out = freshDir('train-temporal');
    const r = runCli([
      'train',
      '--data',
      DATA_PATH,
      '--split',
      'time',
      '--features',
      'temporal',
      '--history-window',
      '20',
      '--contamination',
      '0.05',
      '--n-estimators',
      '50',
      '--max-samples',
      '256',
      '--models-dir',
      out,
      '--results-dir',
      out,
      '--no-mlflow',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^features: the three metrics plus robust_z, diff and level_shift of each \(window 20 points, span 3\)/m);
    const m = /^model (\S+): (\S+)/m.exec(r.stdout) as RegExpExecArray;
    const a = parseArtifact(readFileSync(m[2], 'utf8'));
    expect(a.features.map((f) => f.name)).toEqual([
      'cpu_usage',
      'memory_usage',
      'network_load',
      ...['cpu_usage', 'memory_usage', 'network_load'].flatMap((x) => [`${x}_robust_z`, `${x}_diff`, `${x}_level_shift`]),
    ]);
    expect(a.features[3].params).toEqual({ window: 20 });
    // The service's Detector takes it (the three metrics as inputs) and keeps history.
    const det = new Detector(a);
    expect(det.temporal).toBe(true);
    expect(det.historyPoints).toBe(20);
    const rep = trainingReport(join(out, `training_metrics_${m[1]}.json`));
    expect(rep.test.labelled?.f1).toBeGreaterThan(0.3);
    const ev = runCli(['evaluate', '--model', m[2], '--data', DATA_PATH, '--split', 'time', '--results-dir', out]);
    expect(ev.code).toBe(0);
    const again = evaluationReport((/^report: (\S+\.json),/m.exec(ev.stdout) as RegExpExecArray)[1]);
    expect(again.test.labelled?.f1).toBe(rep.test.labelled?.f1);
    expect(again.test.labelled?.confusion).toEqual(rep.test.labelled?.confusion);
    const scattered = runCli(['evaluate', '--model', m[2], '--data', DATA_PATH, '--split', 'random', '--results-dir', out]);
    expect(scattered.code).toBe(1);
    expect(lines(scattered.stderr)).toHaveLength(1);
    expect(scattered.stderr).toMatch(/has temporal features: evaluate it with --split time/);
  }, 120_000);

  it('without labels: the label-free rule, label-free figures only, and it says so', () => {
    const out = freshDir('train-unlabelled');
    const data = file('unlabelled.csv', unlabelled());
    const r = runCli([
      'train',
      '--data',
      data,
      '--contamination',
      '0.01,0.05',
      '--n-estimators',
      '50',
      '--max-samples',
      '128',
      '--models-dir',
      out,
      '--results-dir',
      out,
      '--no-mlflow',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /rule flagged_fraction_closest_to_contamination: the data has no labels, so chose .* by the prototype's label-free rule/,
    );
    expect(r.stdout).toMatch(/^test figures \(2592 held-out test rows\), label-free only: flagged \d+/m);
    expect(r.stdout).toMatch(/^note: the data has no anomaly labels/m);
    expect(r.stdout).not.toMatch(/(precision|recall|F1|ROC-AUC|PR-AUC) [01]\.\d/);
    const m = /^model (\S+): (\S+)/m.exec(r.stdout) as RegExpExecArray;
    const rep = trainingReport(join(out, `training_metrics_${m[1]}.json`));
    expect(rep.test.labelled).toBeNull();
    expect(rep.grid.results.every((g) => g.val === null)).toBe(true);
    const gaps = rep.grid.results.map((g) => g.fraction_gap);
    expect(rep.grid.results[rep.grid.selected].fraction_gap).toBe(Math.min(...gaps));
    const a = parseArtifact(readFileSync(m[2], 'utf8'));
    expect(Object.keys(a.training.metrics).filter((k) => /f1|precision|recall|auc/.test(k))).toEqual([]);
    const ev = evaluationReport(rep.evaluation_report);
    expect(Object.keys(ev.files.plots).sort()).toEqual(['contributions', 'grid', 'robustness', 'score_histogram']);
    expect(ev.notes.join(' ')).toMatch(/never used as truth/);
  });

  it('stops on data that fails validation with one line, and trains nothing', () => {
    const out = freshDir('train-bad');
    const bad = file(
      'train-range.csv',
      `${HEADER}\n${goodRows(100)
        .map((l, i) => (i < 10 ? l.replace(/,h1,\d+,/, ',h1,400,') : l))
        .join('\n')}\n`,
    );
    const r = runCli(['train', '--data', bad, '--models-dir', out, '--results-dir', out, '--no-mlflow']);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/validation failed, nothing trained: ranges: 10 of 100 rows \(10\.00%\) out of range/);
    expect(readdirSync(out).filter((f) => f.startsWith('model'))).toEqual([]);
  });

  it.each([
    [['--contamination', '0.7'], /--contamination: "0\.7" is not a number in \(0, 0\.5\)/],
    [['--n-estimators', '10,abc'], /--n-estimators: "abc" is not an integer/],
    [['--split', 'weekly'], /argument 'weekly' is invalid\. Allowed choices are random, time/],
    [['--created-at', 'yesterday'], /--created-at: "yesterday" is not an RFC 3339 timestamp/],
    [['--require-mlflow', '--no-mlflow'], /contradict/],
    [['--features', 'temporal'], /--features temporal needs --split time: a random split scatters each host's points/],
    [['--features', 'temporal', '--split', 'time', '--history-window', '1'], /--history-window: "1" is not an integer in \[2, 4096\]/],
    [['--features', 'fft'], /argument 'fft' is invalid\. Allowed choices are raw, temporal/],
  ])('rejects bad flags %j with one line', (args, pattern) => {
    const r = runCli(['train', '--data', DATA_PATH, '--results-dir', freshDir('flags'), ...args]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
  });
});

describe('evaluate', () => {
  const out = join(TMP, 'eval');
  let model: string;
  let trainReport: TrainingReport;

  beforeAll(() => {
    const r = runCli([
      'train',
      '--data',
      DATA_PATH,
      '--contamination',
      '0.05',
      '--n-estimators',
      '100',
      '--max-samples',
      '256',
      '--models-dir',
      out,
      '--results-dir',
      out,
      '--no-mlflow',
      '--created-at',
      CREATED_AT,
    ]);
    const m = /^model (\S+): (\S+)/m.exec(r.stdout);
    if (r.code !== 0 || !m) throw new Error(`train failed: ${r.stderr}`);
    model = m[2];
    trainReport = trainingReport(join(out, `training_metrics_${m[1]}.json`));
  }, 120_000);

  const reportOf = (stdout: string) => evaluationReport((/^report: (\S+\.json),/m.exec(stdout) as RegExpExecArray)[1]);

  it('--split random re-derives the held-out test rows: the same test figures as training, plus the robustness suite and plots', () => {
    const r = runCli(['evaluate', '--model', model, '--data', DATA_PATH, '--split', 'random', '--results-dir', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const ev = reportOf(r.stdout);
    expect(ev.data).toMatchObject({ rows: 2592, includes_training_rows: false });
    expect(ev.test.labelled).toEqual(trainReport.test.labelled);
    expect(ev.notes.join(' ')).toMatch(/held-out test rows/);
    const rob = ev.robustness;
    expect(rob.noise.map((s) => s.parameter)).toEqual([0.01, 0.05, 0.1]);
    expect(rob.missing.map((s) => s.parameter)).toEqual(['cpu_usage', 'memory_usage', 'network_load']);
    expect(rob.shift.map((s) => s.parameter)).toEqual([0.1, 0.5, 1]);
    for (const s of [...rob.noise, ...rob.missing, ...rob.shift]) expect(s.labelled?.f1).toBeGreaterThanOrEqual(0);
    expect(rob.outliers[2].detection_rate).toBeGreaterThan(0.9);
    expect(rob.shift[2].flagged_fraction).toBeGreaterThan(rob.clean.flagged_fraction);
    expect(ev.flagged.top.length).toBeGreaterThan(0);
    expect(Object.keys(ev.files.plots).sort()).toEqual(['contributions', 'pr', 'robustness', 'roc', 'score_histogram']);
    for (const p of Object.values(ev.files.plots) as Array<{ png: string }>)
      expect(readFileSync(p.png).subarray(0, 8).equals(PNG_MAGIC)).toBe(true);
    expect(existsSync(ev.files.html)).toBe(true);
  });

  it('all rows of the training file: one warning that they include the training rows', () => {
    const r = runCli(['evaluate', '--model', model, '--data', DATA_PATH, '--results-dir', out]);
    expect(r.code).toBe(0);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^warning: .* is the file this model was trained on: all its rows include the training rows/);
    const ev = reportOf(r.stdout);
    expect(ev.data).toMatchObject({ rows: 17280, includes_training_rows: true });
    expect(ev.notes.join(' ')).toMatch(/optimistic/);
  });

  it('unlabelled data: label-free figures only, no ROC or PR plot, and it says so', () => {
    const r = runCli(['evaluate', '--model', model, '--data', file('eval-unlabelled.csv', unlabelled()), '--results-dir', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/label-free only/);
    const ev = reportOf(r.stdout);
    expect(ev.labels).toBe('absent');
    expect(ev.test.labelled).toBeNull();
    expect(ev.robustness.noise.every((s) => s.labelled === null)).toBe(true);
    expect(Object.keys(ev.files.plots).sort()).toEqual(['contributions', 'robustness', 'score_histogram']);
  });

  it.each([
    ['a corrupted model', () => ['--model', file('corrupt.json', '{"format":'), '--data', DATA_PATH], /corrupt\.json: not valid JSON/],
    ['a missing model', () => ['--model', join(TMP, 'nope.json'), '--data', DATA_PATH], /nope\.json: no such file/],
    ['malformed data', () => ['--model', model, '--data', file('eval-text.csv', `${HEADER}\n1,h,x,2,3,0\n`)], /line 2 cpu_usage="x"/],
    [
      'a registry URI without MLflow',
      () => ['--model', 'models:/anomaly-detector@champion', '--data', DATA_PATH],
      /needs MLflow|no tracking server given/,
    ],
  ])('fails on %s with one line', (_name, args, pattern) => {
    const r = runCli(['evaluate', ...args(), '--results-dir', out]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
  });
});

describe('metric sets (--metrics, --mapping)', () => {
  const NODE_NAMES = [
    'cpu_usage',
    'memory_usage',
    'network_load',
    'load1',
    'load5',
    'load15',
    'disk_read_bytes',
    'disk_write_bytes',
    'disk_io_time',
    'swap_used_percent',
    'tcp_established',
    'tcp_time_wait',
    'tcp_retrans_segs',
  ];
  const PERCENT = new Set(['cpu_usage', 'memory_usage', 'swap_used_percent']);
  const SMALL_GRID = ['--contamination', '0.025', '--n-estimators', '50', '--max-samples', '128'];

  /** Two hosts, minute steps, the node columns (shuffled order); every 40th step an incident (all metrics up). */
  function nodeCsv(steps: number, edit?: (row: Record<string, number>, i: number) => void): string {
    const cols = [...NODE_NAMES].reverse();
    const out = [`timestamp,host,${cols.join(',')},anomaly`];
    for (let i = 0; i < steps; i++)
      for (const [h, host] of ['a', 'b'].entries()) {
        const bad = i % 40 === 39;
        const row: Record<string, number> = {};
        NODE_NAMES.forEach((n, k) => {
          const wave = ((i * 7 + k * 13 + h * 5) % 17) / 17;
          row[n] = PERCENT.has(n) ? (bad ? 97 : 25 + 10 * wave) : (bad ? 6 : 1) * (200 + 40 * wave);
        });
        edit?.(row, i);
        out.push(
          `${new Date(Date.UTC(2026, 0, 1) + i * 60000).toISOString()},${host},${cols.map((c) => row[c].toFixed(2)).join(',')},${bad ? 1 : 0}`,
        );
      }
    return `${out.join('\n')}\n`;
  }
  const modelOf = (stdout: string): { version: string; path: string } => {
    const m = /^model (\S+): (\S+)/m.exec(stdout) as RegExpExecArray;
    return { version: m[1], path: m[2] };
  };

  it('the basic set: --metrics basic and --metrics cpu_usage,memory_usage,network_load give the default bytes, in the old layout', () => {
    const bytes = [[], ['--metrics', 'basic'], ['--metrics', 'cpu_usage,memory_usage,network_load']].map((extra, k) => {
      const out = freshDir(`basic-${k}`);
      const r = runCli([
        'train',
        '--data',
        DATA_PATH,
        ...SMALL_GRID,
        '--created-at',
        CREATED_AT,
        '--out',
        join(out, 'm.json'),
        '--results-dir',
        out,
        '--no-mlflow',
        ...extra,
      ]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).not.toMatch(/^metrics: /m);
      return readFileSync(join(out, 'm.json'), 'utf8');
    });
    expect(bytes[1]).toBe(bytes[0]);
    expect(bytes[2]).toBe(bytes[0]);
    const a = JSON.parse(bytes[0]) as Record<string, unknown>;
    expect('inputs' in a).toBe(false);
    expect('metrics' in a).toBe(false);
  });

  describe('node', () => {
    const out = join(TMP, 'node');
    let data: string;
    let train: ReturnType<typeof runCli>;
    let model: { version: string; path: string };

    beforeAll(() => {
      mkdirSync(out, { recursive: true });
      data = file('node.csv', nodeCsv(600));
      train = runCli([
        'train',
        '--data',
        data,
        '--metrics',
        'node',
        ...SMALL_GRID,
        '--models-dir',
        out,
        '--results-dir',
        out,
        '--no-mlflow',
      ]);
      if (train.code !== 0) throw new Error(`train --metrics node failed: ${train.stderr}`);
      model = modelOf(train.stdout);
    }, 120_000);

    it('validate --metrics node checks the 13 columns', () => {
      const r = runCli(['validate', '--data', data, '--metrics', 'node', '--results-dir', freshDir('node-validate')]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(
        /^schema\s+PASS\s+required columns present \(cpu_usage, memory_usage, network_load, load1, .*tcp_retrans_segs\)/m,
      );
      expect(r.stdout).toMatch(/^tcp_retrans_segs\s+1200\s/m);
      // Without --metrics, the basic three only: the other columns are ignored.
      const basic = runCli(['validate', '--data', data, '--results-dir', freshDir('node-validate-basic')]);
      expect(basic.code).toBe(0);
      expect(basic.stdout).not.toMatch(/^tcp_retrans_segs\s/m);
    });

    it('train --metrics node: the artifact declares its 13 inputs with units and ranges; the report and test figures cover them', () => {
      expect(train.stderr).toBe('');
      expect(train.stdout).toMatch(/^metrics: node \(13 metrics: cpu_usage, memory_usage, network_load, load1, .*, tcp_retrans_segs\)$/m);
      expect(train.stdout).toMatch(/robustness: .*missing cpu_usage F1 [\d.]+, .*tcp_retrans_segs F1 [\d.]+;/);
      const a = parseArtifact(readFileSync(model.path, 'utf8'));
      expect(a.inputs).toEqual(NODE_NAMES);
      expect(a.metrics?.find((d) => d.name === 'swap_used_percent')).toEqual({
        name: 'swap_used_percent',
        unit: 'percent',
        min: 0,
        max: 100,
      });
      expect(a.metrics?.find((d) => d.name === 'disk_io_time')).toEqual({ name: 'disk_io_time', unit: 'ms/s', min: 0, max: null });
      expect(a.features.map((f) => f.source)).toEqual(NODE_NAMES);
      const rep = trainingReport(join(out, `training_metrics_${model.version}.json`));
      expect(rep.metrics.set).toBe('node');
      expect(rep.metrics.defs.map((d) => d.name)).toEqual(NODE_NAMES);
      expect(rep.test.labelled?.f1).toBeGreaterThan(0.8);
      const ev = evaluationReport(rep.evaluation_report);
      expect(ev.robustness.missing.map((m) => m.parameter)).toEqual(NODE_NAMES);
      expect(Object.keys(ev.flagged.mean_contributions)).toEqual(NODE_NAMES);
      expect(readFileSync(ev.files.plots.contributions.svg, 'utf8')).toContain('tcp_retrans_segs');
      expect(readFileSync(ev.files.html, 'utf8')).toContain('contrib. disk_io_time');
    });

    it("evaluate reads the model's columns (the same figures on the same test rows); --metrics must name the model's", () => {
      const r = runCli(['evaluate', '--model', model.path, '--data', data, '--split', 'random', '--results-dir', out]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const ev = evaluationReport((/^report: (\S+\.json),/m.exec(r.stdout) as RegExpExecArray)[1]);
      expect(ev.test.labelled).toEqual(trainingReport(join(out, `training_metrics_${model.version}.json`)).test.labelled);
      expect(ev.model.metrics.map((d) => d.name)).toEqual(NODE_NAMES);
      expect(ev.robustness.missing).toHaveLength(13);
      const same = runCli(['evaluate', '--model', model.path, '--data', data, '--metrics', 'node', '--results-dir', out]);
      expect(same.code).toBe(0);
      const other = runCli(['evaluate', '--model', model.path, '--data', data, '--metrics', 'basic', '--results-dir', out]);
      expect(other.code).toBe(1);
      expect(lines(other.stderr)).toHaveLength(1);
      expect(other.stderr).toMatch(
        /--metrics basic names the metrics \(cpu_usage, memory_usage, network_load\), but the model .* takes \(cpu_usage, .*tcp_retrans_segs\)/,
      );
    });

    it('a column of the set missing from the file: one line naming it and the columns found, nothing trained', () => {
      const dir = freshDir('node-missing');
      const r = runCli(['train', '--data', DATA_PATH, '--metrics', 'node', '--models-dir', dir, '--results-dir', dir, '--no-mlflow']);
      expect(r.code).toBe(1);
      expect(lines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(
        new RegExp(
          'validation failed, nothing trained: schema: missing column\\(s\\) load1, load5, load15, disk_read_bytes, disk_write_bytes, ' +
            'disk_io_time, swap_used_percent, tcp_established, tcp_time_wait, tcp_retrans_segs of --metrics node ' +
            '\\(columns found: timestamp,host,cpu_usage,memory_usage,network_load,anomaly\\) \\(report ',
        ),
      );
      expect(readdirSync(dir).filter((f) => f.startsWith('model'))).toEqual([]);
      const ev = runCli(['evaluate', '--model', model.path, '--data', DATA_PATH, '--results-dir', dir]);
      expect(ev.code).toBe(1);
      expect(lines(ev.stderr)).toHaveLength(1);
      expect(ev.stderr).toMatch(
        new RegExp(`missing column\\(s\\) load1, .*tcp_retrans_segs of model ${model.version} \\(columns found: timestamp,host,`),
      );
    });

    it('an out-of-range value of a node metric fails validation (and training) with its line', () => {
      const bad = file(
        'node-range.csv',
        nodeCsv(50, (row, i) => i < 4 && (row.swap_used_percent = 180)),
      );
      const r = runCli(['validate', '--data', bad, '--metrics', 'node', '--results-dir', freshDir('node-range')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/ranges: 8 of 100 rows \(8\.00%\) out of range \(fails above 5\.00%\): line 2 swap_used_percent=180/);
      // The basic set does not look at that column.
      expect(runCli(['validate', '--data', bad, '--results-dir', freshDir('node-range-basic')]).code).toBe(0);
    });

    it('evaluate --learn --metrics node streams the 13 columns through the host learner, the bundled model of the three as the prior', () => {
      const r = runCli(['evaluate', '--learn', '--data', data, '--metrics', 'node', '--results-dir', out], {}, 120_000);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const rep = JSON.parse(
        readFileSync((/^report: (\S+\.json)/m.exec(r.stdout) as RegExpExecArray)[1], 'utf8'),
      ) as LearningEvaluationReport;
      expect(rep.metrics.set).toBe('node');
      expect(rep.metrics.defs.map((d) => d.name)).toEqual(NODE_NAMES);
      expect(rep.detector.prior).toMatchObject({ inputs: ['cpu_usage', 'memory_usage', 'network_load'], used: true });
      expect(rep.data.streamed_rows).toBe(1200);
      expect(rep.figures.learned.rows).toBeGreaterThan(0);
      // Its own node model as the prior: the same set, used.
      const own = runCli(['evaluate', '--learn', '--model', model.path, '--data', data, '--results-dir', out], {}, 120_000);
      expect(own.code).toBe(0);
      expect(own.stdout).toMatch(/^metrics: node \(13 metrics/m);
      // A prior of metrics outside the set is not used, and that is said once.
      const narrow = runCli(
        ['evaluate', '--learn', '--model', model.path, '--data', data, '--metrics', 'basic', '--results-dir', out],
        {},
        120_000,
      );
      expect(narrow.code).toBe(0);
      expect(lines(narrow.stderr)).toEqual([
        expect.stringMatching(/^warning: the prior \S+ takes \(cpu_usage, .*\), not all in the metric set: it is not used/),
      ]);
      const nrep = JSON.parse(
        readFileSync((/^report: (\S+\.json)/m.exec(narrow.stdout) as RegExpExecArray)[1], 'utf8'),
      ) as LearningEvaluationReport;
      expect(nrep.detector.prior.used).toBe(false);
      expect(nrep.metrics.set).toBe('basic');
    });
  });

  describe('custom columns', () => {
    const header = 'timestamp,host,temp_c,fan_rpm,anomaly';
    const rowsOf = (n: number, temp: (i: number) => number = (i) => 40 + (i % 9)) =>
      Array.from(
        { length: n },
        (_, i) =>
          `${Date.UTC(2026, 0, 1) + i * 60000},h${i % 2},${temp(i)},${i % 40 === 39 ? 9000 : 1200 + (i % 13) * 10},${i % 40 === 39 ? 1 : 0}`,
      );
    const mapping = (): string =>
      file(
        'custom-mapping.json',
        JSON.stringify({
          temp_c: { measurement: 'sensors', fields: ['temp_input'], transform: 'value', unit: 'celsius', min: -40, max: 120 },
          fan_rpm: { measurement: 'sensors', fields: ['fan_input'], transform: 'value', unit: 'rpm', min: 0 },
        }),
      );

    it("train --metrics temp_c,fan_rpm: unitless declarations; --mapping: the mapping's units and ranges", () => {
      const data = file('custom.csv', `${header}\n${rowsOf(800).join('\n')}\n`);
      const dir = freshDir('custom');
      const r = runCli([
        'train',
        '--data',
        data,
        '--metrics',
        'temp_c,fan_rpm',
        ...SMALL_GRID,
        '--models-dir',
        dir,
        '--results-dir',
        dir,
        '--no-mlflow',
      ]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^metrics: columns \(2 metrics: temp_c, fan_rpm\)$/m);
      const a = parseArtifact(readFileSync(modelOf(r.stdout).path, 'utf8'));
      expect(a.inputs).toEqual(['temp_c', 'fan_rpm']);
      expect(a.metrics).toEqual([
        { name: 'temp_c', unit: 'value', min: -1e15, max: null },
        { name: 'fan_rpm', unit: 'value', min: -1e15, max: null },
      ]);
      const m = runCli([
        'train',
        '--data',
        data,
        '--mapping',
        mapping(),
        ...SMALL_GRID,
        '--models-dir',
        dir,
        '--results-dir',
        dir,
        '--no-mlflow',
      ]);
      expect(m.code).toBe(0);
      expect(m.stdout).toMatch(/^metrics: mapping \S+custom-mapping\.json \(2 metrics: temp_c, fan_rpm\)$/m);
      expect(parseArtifact(readFileSync(modelOf(m.stdout).path, 'utf8')).metrics).toEqual([
        { name: 'temp_c', unit: 'celsius', min: -40, max: 120 },
        { name: 'fan_rpm', unit: 'rpm', min: 0, max: null },
      ]);
    });

    it("validate --mapping checks each column against the mapping's range", () => {
      const data = file('custom-hot.csv', `${header}\n${rowsOf(100, (i) => (i < 6 ? 150 : 40)).join('\n')}\n`);
      const r = runCli(['validate', '--data', data, '--mapping', mapping(), '--results-dir', freshDir('custom-hot')]);
      expect(r.code).toBe(1);
      expect(lines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(/ranges: 6 of 100 rows \(6\.00%\) out of range .*: line 2 temp_c=150/);
      // Unitless columns have no range to leave.
      expect(runCli(['validate', '--data', data, '--metrics', 'temp_c,fan_rpm', '--results-dir', freshDir('custom-hot-2')]).code).toBe(0);
    });

    it.each([
      [['--metrics', 'Temp'], /--metrics: "Temp" is neither a preset \(basic, node\) nor a metric name/],
      [['--metrics', 'temp_c,anomaly'], /--metrics: anomaly is not a metric column/],
      [['--metrics', 'node', '--mapping', 'x.json'], /--metrics and --mapping both name the metric set: give one of them/],
      [['--mapping', 'no-such-mapping.json'], /--mapping no-such-mapping\.json: no such file/],
    ])('refuses %j with one line', (args, pattern) => {
      const r = runCli(['validate', '--data', DATA_PATH, '--results-dir', freshDir('metric-flags'), ...args]);
      expect(r.code).toBe(1);
      expect(lines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    });
  });
});

describe('PNG text', () => {
  it('the PNG renderer has a font: text is drawn (Debian: fonts-dejavu-core)', async () => {
    expect(findFonts().warning).toBeNull();
    const img = await rasterize(
      '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><text x="5" y="30" font-family="sans-serif" font-size="24">ROC-AUC 0.99</text></svg>',
    );
    const px = img.pixels;
    let dark = 0;
    for (let i = 0; i < px.length; i += 4) if (px[i] < 128) dark++;
    expect(dark).toBeGreaterThan(500);
  });
});
