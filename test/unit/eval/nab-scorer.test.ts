import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type LeaderboardRow,
  NabDataError,
  leaderboard,
  listDataFiles,
  loadDetectorFiles,
  parseNabTimestamp,
  readLabels,
  readProfiles,
  readPublishedScores,
  type TimestampCache,
} from '../../../src/eval/nab-data';
import {
  type CostMatrix,
  type NabFile,
  type NabWindow,
  normaliseScore,
  optimiseThreshold,
  prepareSweep,
  probationLength,
  rowWeights,
  scaledSigmoid,
  scoreFile,
  sweepRows,
  sweepThresholds,
  windowSpans,
} from '../../../src/eval/nab-scorer';

// The NAB copy sits beside the repository's root (../shared/nab), in CI as here.
const REPO_ROOT = resolve(__dirname, '../../..');
const NAB_DIR = process.env.NAB_DIR ?? resolve(REPO_ROOT, '..', 'shared', 'nab');
const CATEGORY = 'realAWSCloudwatch';

/** Fails (never skips) with one line naming where the data was looked for. */
function nabDir(): string {
  if (!existsSync(join(NAB_DIR, 'data', CATEGORY)) || !existsSync(join(NAB_DIR, 'results'))) {
    const e = new Error(`NAB data not found: looked in ${NAB_DIR} (set NAB_DIR to a NAB directory)`);
    e.stack = e.message;
    throw e;
  }
  return NAB_DIR;
}

/** README leaderboard on the 17 files, standard profile, threshold optimised on them. */
const README_LEADERBOARD: Record<string, number> = {
  numenta: 73.4,
  contextOSE: 72.1,
  ARTime: 69.9,
  numentaTM: 69.9,
  htmjava: 68.8,
  randomCutForest: 61.4,
  knncad: 60.7,
  earthgeckoSkyline: 58.1,
  relativeEntropy: 50.0,
  skyline: 49.3,
  bayesChangePt: 43.7,
  twitterADVec: 38.5,
  windowedGaussian: 31.2,
  expose: 17.3,
  null: 0.0,
};
// `random` is left out: its stored scores do not reproduce its published rows (README).
const DETECTORS = Object.keys(README_LEADERBOARD);
const PROFILES = ['standard', 'reward_low_FP_rate', 'reward_low_FN_rate'];

const STANDARD: CostMatrix = { tpWeight: 1, fpWeight: 0.11, fnWeight: 1, tnWeight: 1 };
const sig = (x: number): number => 1 / (1 + Math.exp(-x));
const MAX_TP = 2 * sig(5) - 1;

describe('NAB weighting (synthetic)', () => {
  it('scaledSigmoid follows 2*sigmoid(-5y)-1 and is -1 from y = 3', () => {
    for (const y of [-1, -0.5, -0.2, 0, 0.75, 2.99]) expect(scaledSigmoid(y)).toBeCloseTo(2 * sig(-5 * y) - 1, 14);
    expect(scaledSigmoid(-1)).toBeCloseTo(0.98661, 5);
    expect(scaledSigmoid(-0.5)).toBeCloseTo(0.84828, 5);
    expect(scaledSigmoid(0)).toBe(0);
    expect(scaledSigmoid(3)).toBe(-1);
    expect(scaledSigmoid(10)).toBe(-1);
  });

  it('probation is min(floor(0.15 N), 750) rows', () => {
    expect(probationLength(4032)).toBe(604);
    expect(probationLength(1243)).toBe(186);
    expect(probationLength(20000)).toBe(750);
    expect(probationLength(100, 0)).toBe(0);
  });

  it('weights rows before, inside and after a window', () => {
    const ts = Array.from({ length: 30 }, (_, i) => i * 300_000);
    const sweep = sweepRows(ts, [[ts[5], ts[9]]], 0);
    const w = rowWeights(sweep, STANDARD);
    // Before any window: -fpWeight.
    expect(w[0]).toBeCloseTo(-0.11, 14);
    expect(w[4]).toBeCloseTo(-0.11, 14);
    // Inside (W = 5, R = 9): y = -(R - i + 1)/W, divided by the largest TP value.
    expect(w[5]).toBeCloseTo(1, 14);
    expect(w[9]).toBeCloseTo((2 * sig(1) - 1) / MAX_TP, 14);
    for (let i = 6; i <= 9; i++) expect(w[i]).toBeLessThan(w[i - 1]);
    // After: y = |R - i|/(W - 1), times fpWeight; -fpWeight from y = 3 (row 21) on.
    expect(w[12]).toBeCloseTo(0.11 * (2 * sig(-3.75) - 1), 14);
    expect(w[20]).toBeCloseTo(0.11 * (2 * sig(-13.75) - 1), 14);
    expect(w[21]).toBe(-0.11);
    expect(w[29]).toBe(-0.11);
  });

  it('weights after a window relative to the most recent window', () => {
    const ts = Array.from({ length: 40 }, (_, i) => i);
    const w = rowWeights(
      sweepRows(
        ts,
        [
          [2, 4],
          [20, 29],
        ],
        0,
      ),
      STANDARD,
    );
    // Row 10 is |4 - 10|/(3 - 1) = 3 past the first window: -fpWeight.
    expect(w[10]).toBe(-0.11);
    expect(w[31]).toBeCloseTo(0.11 * (2 * sig((-5 * 2) / 9) - 1), 14);
  });

  it('maps windows to rows inclusively, snapping ends that are not row timestamps inward', () => {
    const ts = [0, 10, 20, 30, 40, 50];
    expect(windowSpans(ts, [[10, 30]])).toEqual([{ start: 1, end: 3 }]);
    expect(windowSpans(ts, [[15, 35]])).toEqual([{ start: 2, end: 3 }]);
    expect(windowSpans(ts, [[41, 49]])).toEqual([]);
    expect(() =>
      windowSpans(ts, [
        [0, 20],
        [20, 30],
      ]),
    ).toThrow(/overlap/);
  });

  it('scores a file: earliest detection per window, -fnWeight per missed window, FPs, probation ignored', () => {
    const ts = Array.from({ length: 40 }, (_, i) => i);
    const windows: NabWindow[] = [
      [1, 3],
      [20, 24],
      [30, 34],
    ];
    const scores = new Array<number>(40).fill(0);
    scores[2] = 1; // in the first window, but inside probation (6 rows at 15%): ignored
    scores[5] = 1; // probation: no FP
    scores[21] = 0.9; // second window, earliest detection
    scores[23] = 1; // second window, later: weaker
    scores[27] = 0.8; // after the second window: FP
    const file: NabFile = { name: 'synthetic', timestamps: ts, scores, windows };
    const weights = rowWeights(sweepRows(ts, windows), STANDARD);
    expect(probationLength(40)).toBe(6);
    const r = scoreFile(file, 0.5, STANDARD);
    // The first window lies in probation: it is neither a hit nor a miss.
    expect(r.score).toBeCloseTo(weights[21] + weights[27] - STANDARD.fnWeight, 14);
    expect(r).toMatchObject({ tp: 2, fp: 1, fn: 8, tn: 23, total: 34 });
    // Above 0.9 only the later detection is left, and it is worth less.
    expect(scoreFile(file, 0.95, STANDARD).score).toBeCloseTo(weights[23] - 1, 14);
    expect(scoreFile(file, 1.1, STANDARD)).toMatchObject({ score: -2, tp: 0, fp: 0, fn: 10, tn: 24 });
  });

  it('sweeps thresholds exactly like scoring each candidate separately', () => {
    let seed = 12345;
    const rand = (): number => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    const files: NabFile[] = [0, 1, 2].map((k) => {
      const n = 200 + 50 * k;
      const ts = Array.from({ length: n }, (_, i) => i * 60_000);
      // Scores on a 0.05 grid so that many rows tie.
      const scores = ts.map(() => Math.round(rand() * 20) / 20);
      const windows: NabWindow[] = [
        [ts[40 + k], ts[60 + k]],
        [ts[120], ts[150]],
      ];
      return { name: `f${k}`, timestamps: ts, scores, windows };
    });
    const prep = prepareSweep(files);
    expect(prep.labelledWindows).toBe(6);
    for (const cost of [STANDARD, { tpWeight: 1, fpWeight: 0.22, fnWeight: 2, tnWeight: 1 }]) {
      const rows = sweepThresholds(prep, cost);
      expect(rows[0].threshold).toBe(1.1);
      expect(rows.length).toBe(new Set(files.flatMap((f) => f.scores.slice(probationLength(f.scores.length)))).size + 1);
      for (const row of rows) {
        const parts = files.map((f) => scoreFile(f, row.threshold, cost));
        expect(row.score).toBeCloseTo(
          parts.reduce((s, p) => s + p.score, 0),
          10,
        );
        for (const k of ['tp', 'tn', 'fp', 'fn', 'total'] as const) expect(row[k]).toBe(parts.reduce((s, p) => s + p[k], 0));
      }
      const best = optimiseThreshold(prep, cost);
      expect(best.score).toBe(Math.max(...rows.map((r) => r.score)));
    }
  });

  it('breaks ties between thresholds towards the higher one, as NAB does', () => {
    const ts = Array.from({ length: 40 }, (_, i) => i);
    const scores = new Array<number>(40).fill(0);
    scores[10] = 0.9; // earliest row of the window: the best detection
    scores[12] = 0.5; // a later row of the same window adds nothing
    const prep = prepareSweep([{ name: 'tie', timestamps: ts, scores, windows: [[10, 14]] }]);
    const rows = sweepThresholds(prep, STANDARD);
    expect(rows.map((r) => r.threshold)).toEqual([1.1, 0.9, 0.5, 0]);
    expect(rows[1].score).toBe(rows[2].score);
    expect(optimiseThreshold(prep, STANDARD)).toMatchObject({ threshold: 0.9, tp: 1, fn: 4, score: 1 });
  });

  it('normalises so that no detection is 0 and a perfect detector 100', () => {
    expect(normaliseScore(-5, 5, STANDARD)).toBe(0);
    expect(normaliseScore(5, 5, STANDARD)).toBe(100);
    expect(normaliseScore(-10, 5, { tpWeight: 1, fpWeight: 0.11, fnWeight: 2, tnWeight: 1 })).toBe(0);
    expect(normaliseScore(0, 4, STANDARD)).toBe(50);
  });
});

describe('NAB directory reader', () => {
  it('parses NAB timestamps as UTC', () => {
    expect(parseNabTimestamp('2014-02-26 13:45:00.000000')).toBe(Date.UTC(2014, 1, 26, 13, 45));
    expect(parseNabTimestamp('2014-02-26 13:45:00')).toBe(Date.UTC(2014, 1, 26, 13, 45));
    expect(() => parseNabTimestamp('26/02/2014')).toThrow(NabDataError);
  });

  it('names the missing file or folder', () => {
    const missing = join(REPO_ROOT, 'no-such-nab-dir');
    expect(() => readProfiles(missing)).toThrow(`${join(missing, 'config', 'profiles.json')}: no such file`);
    expect(() => listDataFiles(missing)).toThrow(`${join(missing, 'data')}: no such directory`);
    expect(() => readPublishedScores(nabDir(), 'nope', 'standard')).toThrow(/nope_standard_scores\.csv: no such file/);
  });
});

describe(`NAB published results (${NAB_DIR})`, () => {
  const cache: TimestampCache = new Map();
  const loaded = new Map<string, Map<string, NabFile>>();
  let labels: Map<string, NabWindow[]> | undefined;

  /** A detector's files by relative path, read once for all profiles. */
  function detectorFiles(detector: string, relPaths: string[]): Map<string, NabFile> {
    const dir = nabDir();
    labels ??= readLabels(dir);
    let files = loaded.get(detector);
    if (files === undefined) {
      files = new Map(loadDetectorFiles(dir, detector, relPaths, labels, cache).map((f) => [f.name, f]));
      loaded.set(detector, files);
    }
    return files;
  }

  it('finds the NAB directory', () => {
    expect(listDataFiles(nabDir()).filter((f) => f.startsWith(`${CATEGORY}/`))).toHaveLength(17);
  });

  it('reads the three profiles', () => {
    expect(Object.keys(readProfiles(nabDir())).sort()).toEqual([...PROFILES].sort());
  });

  describe.each(DETECTORS)('%s', (detector) => {
    it.each(PROFILES)('reproduces every published %s row at its threshold', (profile) => {
      const dir = nabDir();
      const cost = readProfiles(dir)[profile];
      const expected = listDataFiles(dir).filter((f) => f.startsWith(`${CATEGORY}/`));
      const published = readPublishedScores(dir, detector, profile).filter((r) => r.file.startsWith(`${CATEGORY}/`));
      expect(published.map((r) => r.file).sort()).toEqual(expected);
      const files = detectorFiles(detector, expected);
      const mismatches: string[] = [];
      for (const row of published) {
        const file = files.get(row.file) as NabFile;
        const got = scoreFile(file, row.threshold, cost);
        const countsOk = got.tp === row.tp && got.tn === row.tn && got.fp === row.fp && got.fn === row.fn;
        // Older NAB wrote the file's row count as Total_Count, the Python 3 version the scored rows.
        const totalOk = row.totalCount === file.timestamps.length || row.totalCount === got.total;
        if (!(Math.abs(got.score - row.score) <= 1e-6) || !countsOk || !totalOk) {
          mismatches.push(
            `${row.file} @${row.threshold}: score ${got.score} vs ${row.score}, ` +
              `TP/TN/FP/FN ${got.tp}/${got.tn}/${got.fp}/${got.fn} vs ${row.tp}/${row.tn}/${row.fp}/${row.fn}, total ${got.total} vs ${row.totalCount}`,
          );
        }
      }
      expect(mismatches).toEqual([]);
    });
  });

  it('reproduces the README leaderboard (standard profile, thresholds optimised on the 17 files)', () => {
    const dir = nabDir();
    const files = listDataFiles(dir).filter((f) => f.startsWith(`${CATEGORY}/`));
    const board: LeaderboardRow[] = leaderboard(dir, readProfiles(dir), { detectors: DETECTORS, files });
    const got = Object.fromEntries(board.map((r) => [r.detector, Math.round((r.profiles.standard.normalised as number) * 10) / 10]));
    expect(got).toEqual(README_LEADERBOARD);
    expect(board.map((r) => r.detector)).toEqual(DETECTORS);
    for (const r of board) expect(Object.keys(r.profiles).sort()).toEqual([...PROFILES].sort());
    // Optimising on the files can only do at least as well as NAB's corpus-wide threshold.
    const numenta = board.find((r) => r.detector === 'numenta') as LeaderboardRow;
    const atPublished = readPublishedScores(dir, 'numenta', 'standard').reduce((s, r) => s + r.score, 0);
    expect(numenta.profiles.standard.score).toBeGreaterThanOrEqual(atPublished - 1e-9);
  });
});
