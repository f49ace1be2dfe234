import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LearningEvaluationReport } from '../../src/cli/pipeline';
import { DEFAULT_GATE } from '../../src/core/gate';
import { hostLearningOptions } from '../../src/core/host-learning';
import { StreamingDetector, type StreamResult } from '../../src/core/streaming';
import { loadDataset } from '../../src/data/dataset';
import { averagePrecision, binaryMetrics, rocAuc } from '../../src/eval/metrics';
import { splitRows } from '../../src/eval/split';
import { loadDetectorFile } from '../../src/model-store';
import { runCli } from '../helpers/cli';
import { MODEL_PATH } from '../helpers/fixtures';

/**
 * `evaluate --learn` through the built CLI on a small simulated CSV: its figures must
 * equal the same figures computed here from StreamingDetector run directly (the service's
 * learner, the bundled model as prior) over the same rows in (time, host) order.
 */

const TMP = mkdtempSync(join(tmpdir(), 'iad-evaluate-learn-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const CSV = join(TMP, 'sim.csv');
const VALID_ROWS = 3 * 1440;

beforeAll(() => {
  const r = runCli(['simulate', '--csv', CSV, '--hosts', '3', '--days', '1', '--step', '60', '--seed', '11']);
  expect(r.code).toBe(0);
  // One row the service refuses (CPU above 100 %) and one repeat of a host's time: both left out.
  appendFileSync(CSV, '2026-01-05T12:00:30.000Z,host-01,150,40,1000,0\n2026-01-05T12:00:00.000Z,host-02,20,40,1000,1\n');
});

/** What the CLI should report, from the detector run here. */
function expected(reported: (n: number, times: number[]) => number[]) {
  const ds = loadDataset(CSV);
  const keep = Array.from({ length: VALID_ROWS }, (_, i) => i).sort(
    (a, b) => ds.timestamps[a] - ds.timestamps[b] || (ds.hosts[a] < ds.hosts[b] ? -1 : ds.hosts[a] > ds.hosts[b] ? 1 : a - b),
  );
  const hosts = keep.map((i) => ds.hosts[i]);
  const times = keep.map((i) => ds.timestamps[i]);
  const labels = keep.map((i) => (ds.labels as Uint8Array)[i]);
  const raw = Float64Array.from(keep.flatMap((i) => Array.from(ds.raw.subarray(i * 3, i * 3 + 3))));
  const engine = StreamingDetector.learner(hostLearningOptions({ prior: loadDetectorFile(MODEL_PATH), gate: DEFAULT_GATE, maxKeys: 3 }));
  const res: StreamResult = engine.process({ keys: hosts, times, raw, n: keep.length });
  const idx = reported(keep.length, times);
  const learned = idx.filter((i) => res.learning[i] === 0);
  const at = <T>(v: ArrayLike<T>, is: number[]): T[] => is.map((i) => v[i]);
  // Incidents: runs of a host's labelled rows among the reported ones; alerted if any of its rows alerts.
  const runs: Array<{ alerted: boolean }> = [];
  const open = new Map<string, { alerted: boolean }>();
  for (const i of idx) {
    if (labels[i] === 1) {
      let run = open.get(hosts[i]);
      if (!run) {
        run = { alerted: false };
        open.set(hosts[i], run);
        runs.push(run);
      }
      if (res.alerts[i] === 1) run.alerted = true;
    } else open.delete(hosts[i]);
  }
  return {
    rows: idx.length,
    learnedRows: learned.length,
    whileLearning: idx.length - learned.length,
    rocAuc: rocAuc(at(res.scores, learned), at(labels, learned)),
    prAuc: averagePrecision(at(res.scores, learned), at(labels, learned)),
    alerts: binaryMetrics(at(res.alerts, idx), at(labels, idx)),
    raw: binaryMetrics(at(res.anomalies, idx), at(labels, idx)),
    incidents: runs.length,
    alerted: runs.filter((r) => r.alerted).length,
    refits: engine.refits,
  };
}

function run(args: string[]): { report: LearningEvaluationReport; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(TMP, 'results-'));
  const r = runCli(['evaluate', '--learn', '--data', CSV, '--results-dir', dir, ...args], {}, 120_000);
  expect([r.code, r.stderr]).toEqual([0, expect.any(String)]);
  const name = readdirSync(dir).find((f) => /^evaluation_learning_.*\.json$/.test(f));
  expect(name).toBeDefined();
  return { report: JSON.parse(readFileSync(join(dir, name as string), 'utf8')) as LearningEvaluationReport, ...r };
}

function check(report: LearningEvaluationReport, e: ReturnType<typeof expected>): void {
  const f = report.figures;
  expect(f.rows).toBe(e.rows);
  expect(f.learned.rows).toBe(e.learnedRows);
  expect(f.while_learning.rows).toBe(e.whileLearning);
  expect(f.learned.roc_auc).toBeCloseTo(e.rocAuc, 12);
  expect(f.learned.pr_auc).toBeCloseTo(e.prAuc, 12);
  expect(f.alerts.confusion).toEqual({ tp: e.alerts.tp, fp: e.alerts.fp, tn: e.alerts.tn, fn: e.alerts.fn });
  expect(f.alerts.f1).toBeCloseTo(e.alerts.f1, 12);
  expect(f.raw_flags.confusion).toEqual({ tp: e.raw.tp, fp: e.raw.fp, tn: e.raw.tn, fn: e.raw.fn });
  expect(f.raw_flags.precision).toBeCloseTo(e.raw.precision, 12);
  expect(f.incidents.incidents).toBe(e.incidents);
  expect(f.incidents.alerted).toBe(e.alerted);
  expect(report.stream.refits).toBe(e.refits);
}

describe('evaluate --learn', () => {
  it('reports the figures of the learning default over every row', () => {
    const { report, stdout, stderr } = run([]);
    const e = expected((n) => Array.from({ length: n }, (_, i) => i));
    // The figures are real: hosts learned, some rows by the prior, labelled anomalies among the learned rows.
    expect(e.learnedRows).toBeGreaterThan(0);
    expect(e.whileLearning).toBeGreaterThan(0);
    expect(e.incidents).toBeGreaterThan(0);
    expect(Number.isFinite(e.rocAuc)).toBe(true);
    check(report, e);
    expect(report.data).toMatchObject({ file_rows: VALID_ROWS + 2, streamed_rows: VALID_ROWS, hosts: 3 });
    expect(report.data.skipped).toMatchObject({ invalid: 1, duplicates: 1 });
    expect(report.data.skipped.examples.join('\n')).toMatch(/cpu_usage must be <= 100/);
    expect(report.detector.prior.source).toBe('models/model.json');
    expect(report.figures.learned.best_f1.f1).toBeGreaterThan(0);
    expect(report.figures.incidents.median_delay_steps === null).toBe(e.alerted === 0);
    expect(stdout).toMatch(/learned model \(\d+ rows, \d+ labelled anomalies\): ROC-AUC [0-9.]+/);
    expect(stdout).toMatch(/judged while learning \(by the prior\): \d+ rows/);
    expect(stderr).toMatch(/1 invalid and 1 repeated row\(s\) left out/);
  });

  it('--split time learns on every row and reports on the newest 15% only', () => {
    const { report } = run(['--split', 'time', '--seed', '1']);
    const e = expected((n, times) => Array.from(splitRows(n, { mode: 'time', seed: 1, timestamps: times }).test).sort((a, b) => a - b));
    expect(e.rows).toBeLessThan(VALID_ROWS / 5);
    check(report, e);
    expect(report.figures.while_learning.rows).toBe(0);
  });

  it('--split random is refused in one line', () => {
    const r = runCli(['evaluate', '--learn', '--data', CSV, '--split', 'random', '--results-dir', join(TMP, 'never')]);
    expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/^anomaly-detector: --learn .*random split/)]);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('without --learn, --model is still required', () => {
    const r = runCli(['evaluate', '--data', CSV]);
    expect([r.code, r.stderr]).toEqual([
      1,
      expect.stringMatching(/^anomaly-detector: required option '--model <file\|uri>' not specified/),
    ]);
  });
});
