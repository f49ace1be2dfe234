import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { registerBenchCommand } from '../../../src/cli/bench';
import {
  type CategoryRow,
  DEFAULT_NAB_PARAMS,
  DETECTOR_NAME,
  formatNabBench,
  readNabSeries,
  runNabBench,
  scoreAt,
  streamTimes,
} from '../../../src/eval/nab-bench';
import { loadDetectorFiles, readLabels } from '../../../src/eval/nab-data';
import { formatLoco, LOCO_CANDIDATES, type LocoResult, runLoco } from '../../../src/eval/nab-loco';
import {
  type CostMatrix,
  type NabFile,
  type NabWindow,
  probationLength,
  scaledSigmoid,
  scoreFile,
  windowSpans,
} from '../../../src/eval/nab-scorer';

/**
 * Small generated NAB directories: any layout `bench nab` must take (some categories
 * only, a category without windows, timestamps that repeat or step back, published
 * detectors with results for some files only).
 */
const STEP = 300_000;
const T0 = Date.UTC(2020, 0, 1);
const stamp = (t: number): string =>
  new Date(t)
    .toISOString()
    .replace('T', ' ')
    .replace('Z', '')
    .replace(/\.\d+$/, '');

const STANDARD: CostMatrix = { tpWeight: 1, fpWeight: 0.11, fnWeight: 1, tnWeight: 1 };
const PROFILES = {
  standard: { CostMatrix: STANDARD },
  reward_low_FP_rate: { CostMatrix: { ...STANDARD, fpWeight: 0.22 } },
  reward_low_FN_rate: { CostMatrix: { ...STANDARD, fnWeight: 2 } },
};

interface FixtureFile {
  rel: string;
  times: number[];
  values: number[];
  windows: Array<[number, number]>;
}

/** A noisy daily-ish series with a spike at `spikeAt` (row), if any. */
function series(n: number, seed: number, spikeAt?: number): number[] {
  let s = seed;
  const rand = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return Array.from(
    { length: n },
    (_, i) => 10 + 3 * Math.sin((2 * Math.PI * i) / 96) + rand() + (spikeAt !== undefined && i >= spikeAt && i < spikeAt + 3 ? 40 : 0),
  );
}

function writeFixture(files: FixtureFile[], published: Record<string, string[]>): string {
  const dir = mkdtempSync(join(tmpdir(), 'iad-nab-fixture-'));
  const windows: Record<string, string[][]> = {};
  for (const f of files) {
    mkdirSync(join(dir, 'data', f.rel.split('/')[0]), { recursive: true });
    writeFileSync(join(dir, 'data', f.rel), `timestamp,value\n${f.times.map((t, i) => `${stamp(t)},${f.values[i]}`).join('\n')}\n`);
    windows[f.rel] = f.windows.map(([a, b]) => [`${stamp(a)}.000000`, `${stamp(b)}.000000`]);
  }
  mkdirSync(join(dir, 'labels'), { recursive: true });
  writeFileSync(join(dir, 'labels', 'combined_windows.json'), JSON.stringify(windows));
  mkdirSync(join(dir, 'config'), { recursive: true });
  writeFileSync(join(dir, 'config', 'profiles.json'), JSON.stringify(PROFILES));
  for (const [detector, rels] of Object.entries(published)) {
    for (const rel of rels) {
      const f = files.find((x) => x.rel === rel) as FixtureFile;
      const [cat, name] = rel.split('/');
      mkdirSync(join(dir, 'results', detector, cat), { recursive: true });
      // A detector that fires on the spike rows (and on every 97th row, a false alarm).
      const scores = f.values.map((v, i) => (v > 30 ? 0.9 : i % 97 === 0 ? 0.6 : 0.1));
      writeFileSync(
        join(dir, 'results', detector, cat, `${detector}_${name}`),
        `timestamp,anomaly_score\n${f.times.map((t, i) => `${stamp(t)},${scores[i]}`).join('\n')}\n`,
      );
    }
  }
  return dir;
}

/** A published detector's results for a fixture file, as the scorer reads them. */
function readResultsAsFile(dir: string, detector: string, f: FixtureFile): NabFile {
  return loadDetectorFiles(dir, detector, [f.rel], readLabels(dir))[0];
}

const N = 480;
const regular = (n: number): number[] => Array.from({ length: n }, (_, i) => T0 + i * STEP);

/** Times with a repeated stamp at row 200 (3 rows) and a step back of an hour at row 300. */
function clockChanges(n: number): number[] {
  const t: number[] = [];
  let now = T0;
  for (let i = 0; i < n; i++) {
    if (i > 0 && !(i >= 201 && i <= 202)) now += STEP;
    if (i === 300) now -= 13 * STEP;
    t.push(now);
  }
  return t;
}

const SPIKE = 400;
const withAnomaly = (rel: string, times: number[], seed: number): FixtureFile => ({
  rel,
  times,
  values: series(N, seed, SPIKE),
  windows: [[times[SPIKE - 10], times[SPIKE + 10]]],
});

const FILES: FixtureFile[] = [
  withAnomaly('realOne/a.csv', regular(N), 1),
  withAnomaly('realOne/clock.csv', clockChanges(N), 2),
  withAnomaly('realTwo/b.csv', regular(N), 3),
  { rel: 'quiet/flat.csv', times: regular(N), values: series(N, 4), windows: [] },
];
const ALL = FILES.map((f) => f.rel).sort();

/**
 * NAB's `Sweeper.calcSweepScore` (nab/sweeper.py), row by row in file order, ported
 * literally: a window opens at the row whose time equals its start, its right index is
 * the first row (from there) at its end, and it closes at that row.
 */
function nabReference(times: number[], scores: number[], windows: NabWindow[], threshold: number, cost: CostMatrix): number {
  const pending = [...windows];
  const probation = probationLength(times.length);
  const maxTP = scaledSigmoid(-1);
  let cur: NabWindow | null = null;
  let curRight = -1;
  let curWidth = 0;
  let prevRight: number | null = null;
  let prevWidth = 0;
  const best = new Map<number, number>();
  let windowId = -1;
  let fp = 0;
  for (let i = 0; i < times.length; i++) {
    if (pending.length > 0 && times[i] === pending[0][0]) {
      cur = pending.shift() as NabWindow;
      windowId++;
      curRight = times.indexOf(cur[1], i);
      curWidth = curRight - i + 1;
    }
    let weighted: number;
    if (cur !== null) weighted = (scaledSigmoid(-(curRight - i + 1) / curWidth) * cost.tpWeight) / maxTP;
    else weighted = (prevRight === null ? -1 : scaledSigmoid(Math.abs(prevRight - i) / (prevWidth - 1))) * cost.fpWeight;
    if (i >= probation) {
      if (cur !== null) {
        if (!best.has(windowId)) best.set(windowId, -cost.fnWeight);
        if (scores[i] >= threshold && weighted > (best.get(windowId) as number)) best.set(windowId, weighted);
      } else if (scores[i] >= threshold) fp += weighted;
    }
    if (cur !== null && times[i] === cur[1]) {
      prevRight = i;
      prevWidth = curWidth;
      cur = null;
    }
  }
  let s = fp;
  for (const v of best.values()) s += v;
  return s;
}

describe('NAB rows in file order (timestamps that repeat or step back)', () => {
  it('locates windows as NAB does: from the row at the start to the first row at the end, in file order', () => {
    // A step back at row 4 (30 -> 20): the window [30, 40] opens at the first 30 (row 3).
    expect(windowSpans([0, 10, 20, 30, 20, 30, 40, 50], [[30, 40]])).toEqual([{ start: 3, end: 6 }]);
    // A repeated end timestamp closes the window at its first occurrence.
    expect(windowSpans([0, 10, 20, 20, 20, 30], [[10, 20]])).toEqual([{ start: 1, end: 2 }]);
    // Bounds that are not row timestamps snap inward along the file's order.
    expect(windowSpans([0, 10, 20, 30, 20, 25, 40], [[15, 35]])).toEqual([{ start: 2, end: 5 }]);
    // Windows follow each other in file order.
    expect(
      windowSpans(
        [0, 10, 20, 10, 20, 30, 40],
        [
          [20, 20],
          [30, 40],
        ],
      ),
    ).toEqual([
      { start: 2, end: 2 },
      { start: 5, end: 6 },
    ]);
  });

  it('scores files with repeats and steps back exactly like NAB, at every threshold', () => {
    let seed = 7;
    const rand = (): number => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    for (let k = 0; k < 20; k++) {
      const n = 120 + k * 7;
      const times: number[] = [];
      let t = 0;
      for (let i = 0; i < n; i++) {
        const r = rand();
        t += r < 0.05 ? 0 : r < 0.08 ? -3 : 1; // repeats and steps back
        times.push(t);
      }
      // Windows on row timestamps, in increasing order, not overlapping.
      const a = times[30 + k];
      const b = Math.max(a, times[50 + k]);
      const c = b + 5 + (k % 4);
      const d = c + 10;
      const windows: NabWindow[] = [[a, b]];
      if (times.includes(c) && times.includes(d) && times.indexOf(c) > times.indexOf(b)) windows.push([c, d]);
      const scores = times.map(() => Math.round(rand() * 10) / 10);
      const file: NabFile = { name: `f${k}`, timestamps: times, scores, windows };
      for (const threshold of [0.3, 0.7, 0.95])
        expect(scoreFile(file, threshold, STANDARD).score).toBeCloseTo(nabReference(times, scores, windows, threshold, STANDARD), 12);
    }
  });

  it('reads a file whose timestamps repeat and step back, and streams it on an increasing clock with the real spacing', () => {
    const dir = writeFixture(FILES, {});
    const s = readNabSeries(dir, 'realOne/clock.csv');
    expect(s.times).toEqual(clockChanges(N));
    expect(s.times.some((t, i) => i > 0 && t < s.times[i - 1])).toBe(true);
    const clock = streamTimes(s.times);
    for (let i = 1; i < N; i++) expect(clock[i] - clock[i - 1]).toBe(STEP);
    // Increasing steps are kept as they are.
    expect(streamTimes([0, 10, 30, 30, 25, 40])).toEqual([0, 10, 30, 45, 60, 75]); // median increasing step: 15
  });
});

describe('bench nab on partial NAB layouts', () => {
  const params = { ...DEFAULT_NAB_PARAMS, nEstimators: 20 };

  it('scores every category present, one without windows included, and says which files a published detector lacks', () => {
    // `partial` has results for realOne only; `full` for every file.
    const dir = writeFixture(FILES, { partial: ['realOne/a.csv', 'realOne/clock.csv'], full: ALL });
    const out = mkdtempSync(join(tmpdir(), 'iad-nab-out-'));
    const r = runNabBench({ nabDir: dir, outDir: out, params, timingPasses: 0 });
    expect(r.files).toEqual(ALL);
    expect(r.categories.map((c) => c.category)).toEqual(['quiet', 'realOne', 'realTwo']);
    const quiet = r.categories[0];
    expect(quiet.windows).toBe(0);
    for (const row of quiet.rows) {
      expect(row.profiles.standard.normalised).toBeNull();
      // At the all-files threshold the quiet file's false alarms cost 0.11 each (none before a window).
      expect(row.atAllFilesThreshold.score).toBeCloseTo(-0.11 * row.atAllFilesThreshold.falseAlarms, 12);
    }
    // `full` fires on the spikes (0.9) and on every 97th row (0.6): its all-files threshold
    // keeps the spikes only, so the quiet file costs nothing; at 0.6 each 97th scored row is a false alarm.
    const full = quiet.rows.find((x) => x.detector === 'full') as CategoryRow;
    expect(full.atAllFilesThreshold).toEqual({ threshold: 0.9, score: 0, falseAlarms: 0 });
    const quietFile = readResultsAsFile(dir, 'full', FILES[3]);
    const every97 = Array.from({ length: N }, (_, i) => i).filter((i) => i >= probationLength(N) && i % 97 === 0).length;
    expect(scoreAt([quietFile], 0.6, STANDARD)).toEqual({
      threshold: 0.6,
      score: expect.closeTo(-0.11 * every97, 12) as number,
      falseAlarms: every97,
    });
    const partial = r.leaderboard.find((x) => x.detector === 'partial');
    expect(partial?.files).toEqual(['realOne/a.csv', 'realOne/clock.csv']);
    expect(partial?.missing).toEqual(['quiet/flat.csv', 'realTwo/b.csv']);
    expect(r.leaderboard.find((x) => x.detector === 'full')?.missing).toEqual([]);
    expect(r.leaderboard.find((x) => x.detector === DETECTOR_NAME)?.missing).toEqual([]);
    // On its own category the partial detector is complete.
    expect(r.categories[1].rows.find((x) => x.detector === 'partial')?.missing).toEqual([]);
    expect(r.categories[2].rows.some((x) => x.detector === 'partial')).toBe(false);
    const text = formatNabBench(r);
    expect(text).toMatch(/partial .* on 2 of 4; no results for quiet \(1\), realTwo \(1\)/);
    expect(text).toMatch(/quiet \(1 file\(s\), no windows/);
    expect(text).toMatch(/realOne \(2 file\(s\), 2 window\(s\)\)/);
    // Every row of every file, in file order, in the written results.
    expect(r.resultFiles).toHaveLength(4);
    expect(r.throughput.points).toBe(4 * N);
  });

  it('runs from the CLI on a folder holding only a category without windows, and prints its board', async () => {
    const dir = writeFixture([FILES[3]], {});
    const out = mkdtempSync(join(tmpdir(), 'iad-nab-cli-'));
    const program = new Command().exitOverride();
    registerBenchCommand(program);
    const written: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const errSpy = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      await program.parseAsync([
        'node',
        'anomaly-detector',
        'bench',
        'nab',
        '--nab-dir',
        dir,
        '--out',
        out,
        '--timing-passes',
        '0',
        '--seed',
        '7',
      ]);
    } finally {
      spy.mockRestore();
      errSpy.mockRestore();
    }
    const text = written.join('');
    expect(text).toMatch(/NAB leaderboard on 1 file\(s\) \(quiet \(1\)\)/);
    expect((JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { params: { seed: number } }).params.seed).toBe(7);
    expect(text).toMatch(new RegExp(`${DETECTOR_NAME} \\* +n/a +n/a +n/a`));
    expect(text).toMatch(/false alarm\(s\)/);
  });

  it('leaves each category out: the candidate chosen on the others is scored on it', () => {
    const dir = writeFixture(FILES, {});
    // A candidate that cannot alert (level above every score) and two that can.
    const candidates = [
      { name: 'silent', params: { ...params, gate: { ...params.gate, level: 2 } } },
      { name: 'a', params },
      { name: 'b', params: { ...params, noveltyWeight: 0.6 } },
    ];
    const r = runLoco({ nabDir: dir, candidates, seeds: [1] });
    expect(r.categories).toEqual(['quiet', 'realOne', 'realTwo']);
    expect(r.inSample.silent.all.standard.normalised).toBe(0);
    for (const fold of r.folds) {
      // The chosen candidate is the best one on the pooled other categories.
      expect(fold.chosen).not.toBe('silent');
      expect(fold.leftOut.standard).toBe(fold.windows > 0 ? r.inSample[fold.chosen].byCategory[fold.category].standard.normalised : null);
    }
    const quiet = r.folds[0];
    expect(quiet.windows).toBe(0);
    expect(quiet.leftOutAtOthersThreshold.score).toBeCloseTo(-0.11 * quiet.leftOutAtOthersThreshold.falseAlarms, 12);
    expect(r.averageLeftOut).toBeCloseTo(((r.folds[1].leftOut.standard as number) + (r.folds[2].leftOut.standard as number)) / 2, 12);
    expect(formatLoco(r)).toMatch(/average over the 2 categories with windows: left out/);
  });

  it('runs the leave-one-category-out mode from the CLI (--loco, --seeds) and writes its summary', async () => {
    const dir = writeFixture(FILES, {});
    const out = mkdtempSync(join(tmpdir(), 'iad-nab-loco-'));
    const program = new Command().exitOverride();
    registerBenchCommand(program);
    const written: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const errSpy = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      await program.parseAsync(['node', 'anomaly-detector', 'bench', 'nab', '--nab-dir', dir, '--out', out, '--loco', '--seeds', '1']);
    } finally {
      spy.mockRestore();
      errSpy.mockRestore();
    }
    const text = written.join('');
    expect(text).toMatch(/mean over seeds 1:/);
    expect(text).toMatch(/Leave one category out/);
    const summary = JSON.parse(readFileSync(join(out, 'loco.json'), 'utf8')) as LocoResult;
    expect(summary.seeds).toEqual([1]);
    expect(summary.candidates).toEqual(LOCO_CANDIDATES.map((c) => c.name));
    expect(summary.folds.map((f) => f.category)).toEqual(['quiet', 'realOne', 'realTwo']);
    const bad = new Command().exitOverride();
    registerBenchCommand(bad);
    await expect(
      bad.parseAsync(['node', 'anomaly-detector', 'bench', 'nab', '--nab-dir', dir, '--out', out, '--loco', '--seeds', '1,x']),
    ).rejects.toThrow(/--seeds/);
    for (const seeds of ['', '1,,2'])
      await expect(
        bad.parseAsync(['node', 'anomaly-detector', 'bench', 'nab', '--nab-dir', dir, '--out', out, '--loco', '--seeds', seeds]),
      ).rejects.toThrow(/--seeds/);
  });

  it('refuses a series too short to score (1 row, a header only) with one line naming it', () => {
    const dir = writeFixture(FILES, {});
    for (const [name, text] of [
      ['one.csv', 'timestamp,value\n2014-01-01 00:00:00,5\n'],
      ['empty.csv', 'timestamp,value\n'],
    ]) {
      writeFileSync(join(dir, 'data', 'realOne', name), text);
      expect(() => readNabSeries(dir, `realOne/${name}`)).toThrow(
        new RegExp(`realOne/${name.replace('.', '\\.')}: [01] data row\\(s\\); a series needs at least 3`),
      );
    }
  });
});
