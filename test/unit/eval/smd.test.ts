import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Rng } from '../../../src/core/random';
import { averageMetrics, bestF1, labelSegments, smdMetrics } from '../../../src/eval/smd-bench';
import {
  compareMachineNames,
  listSmdMachines,
  parseSmdCsv,
  readSmdFile,
  readSmdMachine,
  SMD_METRICS,
  SmdDataError,
} from '../../../src/eval/smd-data';

/** Best F1 by trying every distinct score as a threshold (flag score >= t). */
function bruteBestF1(s: number[], l: number[]): number {
  let best = 0;
  for (const t of new Set(s)) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (let i = 0; i < s.length; i++) {
      if (s[i] >= t && l[i] === 1) tp++;
      else if (s[i] >= t) fp++;
      else if (l[i] === 1) fn++;
    }
    if (tp > 0) best = Math.max(best, (2 * tp) / (2 * tp + fp + fn));
  }
  return best;
}

/** An SMD-layout CSV text: step + the 38 metrics (+ anomaly). */
function smdCsv(rows: number[][], withLabels: boolean, firstStep = 0): string {
  const header = ['step', ...SMD_METRICS, ...(withLabels ? ['anomaly'] : [])].join(',');
  return `${[header, ...rows.map((r, i) => [firstStep + i, ...r].join(','))].join('\n')}\n`;
}

describe('SMD metrics', () => {
  it('best F1 equals trying every threshold, ties included', () => {
    const r = new Rng(5);
    for (let t = 0; t < 5; t++) {
      const s = Array.from({ length: 200 }, () => Math.round(r.next() * 10) / 10);
      const l = s.map((v) => (r.next() < 0.1 + 0.5 * v ? 1 : 0));
      expect(bestF1(s, l).f1).toBeCloseTo(bruteBestF1(s, l), 12);
    }
    // Perfect separation: F1 1 at the lowest anomalous score.
    expect(bestF1([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])).toEqual({ f1: 1, threshold: 0.8, precision: 1, recall: 1 });
    expect(bestF1([0.5, 0.5], [0, 0]).f1).toBe(0);
  });

  it('finds labelled segments as [start, end) runs', () => {
    expect(labelSegments([0, 1, 1, 0, 0, 1, 0, 1])).toEqual([
      [1, 3],
      [5, 6],
      [7, 8],
    ]);
    expect(labelSegments([0, 0])).toEqual([]);
  });

  it('scores own alerts point-wise, with segments, delay and false alerts per day', () => {
    // 2880 rows = 2 days; segments [10, 20) and [100, 105); alerts at 12 (in), 13 (in), 500 and 600 (false).
    const n = 2880;
    const labels = new Uint8Array(n);
    for (let i = 10; i < 20; i++) labels[i] = 1;
    for (let i = 100; i < 105; i++) labels[i] = 1;
    const alerts = new Uint8Array(n);
    for (const i of [12, 13, 500, 600]) alerts[i] = 1;
    const scores = Float64Array.from(labels, (l, i) => (l ? 0.9 : 0.1) + i * 1e-9);
    const m = smdMetrics('m', scores, alerts, labels);
    expect(m.rocAuc).toBe(1);
    expect(m.prAuc).toBeCloseTo(1, 12);
    expect(m.bestF1).toBe(1);
    expect(m.precision).toBe(0.5);
    expect(m.recall).toBeCloseTo(2 / 15, 12);
    expect(m.f1).toBeCloseTo((2 * 0.5 * (2 / 15)) / (0.5 + 2 / 15), 12);
    expect(m.alertShare).toBeCloseTo(4 / n, 12);
    expect(m.segments).toBe(2);
    expect(m.segmentsDetected).toBe(1);
    expect(m.meanDelaySteps).toBe(2);
    expect(m.falseAlertsPerDay).toBe(1);
    const avg = averageMetrics([m, { ...m, rocAuc: 0.5, meanDelaySteps: null }]);
    expect(avg.rocAuc).toBe(0.75);
    expect(avg.meanDelaySteps).toBe(2);
    // A machine with no labelled anomaly has no ROC-AUC or PR-AUC: the others' mean stays defined.
    const none = smdMetrics('none', scores, alerts, new Uint8Array(n));
    expect(Number.isNaN(none.rocAuc)).toBe(true);
    const withNone = averageMetrics([m, { ...m, rocAuc: 0.5, meanDelaySteps: null }, none]);
    expect(withNone.rocAuc).toBe(0.75);
    expect(withNone.prAuc).toBeCloseTo(m.prAuc, 12);
    expect(withNone.alertShare).toBeCloseTo(m.alertShare, 12);
  });
});

describe('SMD reading', () => {
  const rows = [
    [...SMD_METRICS.map((_, k) => k / 100), 0],
    [...SMD_METRICS.map((_, k) => 1 - k / 100), 1],
    [...SMD_METRICS.map(() => 0.5), 0],
  ];

  it('parses the requested columns in the requested order, with steps and labels', () => {
    const part = parseSmdCsv(smdCsv(rows, true, 7), ['eth1_fi', 'cpu_r', 'mem_u'], true, 'x.csv');
    expect(part.n).toBe(3);
    expect(Array.from(part.steps)).toEqual([7, 8, 9]);
    expect(Array.from(part.raw.subarray(0, 3))).toEqual([0.18, 0, 0.05]);
    expect(Array.from(part.raw.subarray(3, 6))).toEqual([1 - 0.18, 1, 1 - 0.05]);
    expect(Array.from(part.labels ?? [])).toEqual([0, 1, 0]);
  });

  it('reads gzipped machine folders and checks that test follows train', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iad-smd-read-'));
    for (const name of ['machine-1-10', 'machine-1-9']) {
      mkdirSync(join(dir, name));
      writeFileSync(
        join(dir, name, 'train.csv.gz'),
        gzipSync(
          smdCsv(
            rows.map((r) => r.slice(0, -1)),
            false,
          ),
        ),
      );
      writeFileSync(join(dir, name, 'test.csv.gz'), gzipSync(smdCsv(rows, true, 3)));
    }
    mkdirSync(join(dir, 'not-a-machine'));
    expect(listSmdMachines(dir)).toEqual(['machine-1-9', 'machine-1-10']);
    const m = readSmdMachine(dir, 'machine-1-9', ['cpu_r']);
    expect(Array.from(m.train.raw)).toEqual([0, 1, 0.5]);
    expect(m.train.labels).toBeUndefined();
    expect(Array.from(m.test.steps)).toEqual([3, 4, 5]);
    expect(Array.from(m.test.labels)).toEqual([0, 1, 0]);
    expect(compareMachineNames('machine-2-1', 'machine-1-10')).toBeGreaterThan(0);
    // A test part that does not continue the train part.
    writeFileSync(join(dir, 'machine-1-9', 'test.csv.gz'), gzipSync(smdCsv(rows, true, 1)));
    expect(() => readSmdMachine(dir, 'machine-1-9', ['cpu_r'])).toThrow(/first step 1 does not follow/);
    expect(() => readSmdFile(join(dir, 'nope.csv.gz'), ['cpu_r'], false)).toThrow(SmdDataError);
  });

  it('rejects malformed files with the file and line', () => {
    const text = smdCsv(rows, true);
    expect(() => parseSmdCsv(text, ['cpu_x'], false, 'f.csv')).toThrow('f.csv: no column cpu_x');
    expect(() => parseSmdCsv(text.replace('\n1,', '\n1,abc,'), ['cpu_r'], true, 'f.csv')).toThrow(/f.csv: line 3 has 41 cells/);
    expect(() => parseSmdCsv(text.replace('\n1,1,', '\n1,,'), ['cpu_r'], true, 'f.csv')).toThrow(
      'f.csv: line 3: cpu_r is not a number ("")',
    );
    expect(() => parseSmdCsv(text.replace(/,1\n/, ',2\n'), ['cpu_r'], true, 'f.csv')).toThrow(
      'f.csv: line 3: anomaly must be 0 or 1, got 2',
    );
    expect(() => parseSmdCsv(text.replace('\n2,', '\n0,'), ['cpu_r'], true, 'f.csv')).toThrow('f.csv: line 4: step 0 does not follow 1');
    expect(() => parseSmdCsv('', ['cpu_r'], true, 'f.csv')).toThrow('f.csv: empty file');
  });
});
