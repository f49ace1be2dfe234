import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { registerBenchCommand } from '../../src/cli/bench';
import { leaderboard, readLabels, readProfiles } from '../../src/eval/nab-data';
import { DETECTOR_NAME, runNabBench, type NabBenchResult } from '../../src/eval/nab-bench';
import { normaliseScore, optimiseThreshold, prepareSweep, probationLength, scoreFile, type NabFile } from '../../src/eval/nab-scorer';

// The NAB copy sits beside the repository's root (../shared/nab); NAB_DIR overrides it.
const REPO_ROOT = resolve(__dirname, '../..');
const NAB_DIR = process.env.NAB_DIR ?? resolve(REPO_ROOT, '..', 'shared', 'nab');

/** Fails (never skips) with one line naming where the data was looked for. */
function nabDir(): string {
  if (!existsSync(join(NAB_DIR, 'data')) || !existsSync(join(NAB_DIR, 'labels', 'combined_windows.json'))) {
    const e = new Error(`NAB data not found: looked in ${NAB_DIR} (set NAB_DIR to a NAB directory)`);
    e.stack = e.message;
    throw e;
  }
  return NAB_DIR;
}

// A short file (1,243 rows) and a regular one (4,032 rows), both with labelled windows.
const FILES = ['realAWSCloudwatch/iio_us-east-1_i-a2eb1cd9_NetworkIn.csv', 'realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv'];

/** Parses a data or results CSV into header and rows of cells. */
function csv(path: string): { header: string; rows: string[][] } {
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  return { header: lines[0], rows: lines.slice(1).map((l) => l.split(',')) };
}

describe('bench nab (streaming detector on NAB files)', () => {
  let dir: string;
  let out: string;
  let result: NabBenchResult;

  beforeAll(() => {
    dir = nabDir();
    out = mkdtempSync(join(tmpdir(), 'iad-nab-'));
    result = runNabBench({ nabDir: dir, outDir: out, files: FILES, timingPasses: 1 });
  });

  it("writes one result file per series in NAB's layout, row for row", () => {
    expect(readdirSync(out)).toEqual([DETECTOR_NAME]);
    for (const rel of FILES) {
      const [category, file] = rel.split('/');
      const path = join(out, DETECTOR_NAME, category, `${DETECTOR_NAME}_${file}`);
      expect(result.resultFiles).toContain(path);
      const res = csv(path);
      const data = csv(join(dir, 'data', rel));
      expect(res.header).toBe('timestamp,anomaly_score');
      expect(res.rows.map((r) => r[0])).toEqual(data.rows.map((r) => r[0]));
      const scores = res.rows.map((r) => Number(r[1]));
      expect(scores.every((s) => s >= 0 && s <= 1)).toBe(true);
      // Probation rows are only learned from, never scored.
      const probation = Math.floor(probationLength(scores.length));
      expect(scores.slice(0, probation).every((s) => s === 0)).toBe(true);
      expect(scores.slice(probation).some((s) => s > 0)).toBe(true);
    }
  });

  it('scores our files with the shared NAB scorer, next to the published detectors on the same files', () => {
    const profiles = readProfiles(dir);
    const labels = readLabels(dir);
    // Recompute our row from the written files with the scorer's functions.
    const ours: NabFile[] = FILES.map((rel) => {
      const [category, file] = rel.split('/');
      const res = csv(join(out, DETECTOR_NAME, category, `${DETECTOR_NAME}_${file}`));
      const data = csv(join(dir, 'data', rel));
      const timestamps = data.rows.map((r) => Date.parse(`${r[0].replace(' ', 'T')}Z`));
      return { name: rel, timestamps, scores: res.rows.map((r) => Number(r[1])), windows: labels.get(rel) ?? [] };
    });
    const prep = prepareSweep(ours);
    for (const [name, cost] of Object.entries(profiles)) {
      const best = optimiseThreshold(prep, cost);
      expect(result.ours.profiles[name].threshold).toBe(best.threshold);
      expect(result.ours.profiles[name].normalised).toBeCloseTo(normaliseScore(best.score, prep.labelledWindows, cost), 12);
    }
    const published = leaderboard(dir, profiles, { files: FILES });
    expect(result.leaderboard.map((r) => r.detector).sort()).toEqual([DETECTOR_NAME, ...published.map((r) => r.detector)].sort());
    for (const row of published) expect(result.leaderboard.find((r) => r.detector === row.detector)).toEqual(row);
    // Operator figures agree with the scorer's row counts at the standard threshold.
    const std = result.ours.profiles.standard.threshold;
    const rows = ours.map((f) => scoreFile(f, std, profiles.standard));
    expect(result.stats.falseAlarms).toBe(rows.reduce((s, r) => s + r.fp, 0));
    expect(result.stats.windows).toBe(ours.reduce((s, f) => s + f.windows.length, 0));
    expect(result.stats.windowsDetected).toBeLessThanOrEqual(result.stats.windows);
    expect(result.throughput.points).toBe(ours.reduce((s, f) => s + f.scores.length, 0));
    expect(result.throughput.pointsPerSecond).toBeGreaterThan(0);
  });

  it('runs as `anomaly-detector bench nab` and prints the leaderboard', async () => {
    const cliOut = mkdtempSync(join(tmpdir(), 'iad-nab-cli-'));
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
        cliOut,
        '--files',
        FILES[0],
        '--timing-passes',
        '0',
      ]);
    } finally {
      spy.mockRestore();
      errSpy.mockRestore();
    }
    const text = written.join('');
    expect(text).toMatch(/NAB leaderboard on 1 file\(s\)/);
    expect(text).toMatch(new RegExp(`${DETECTOR_NAME} \\*`));
    expect(text).toMatch(/numenta/);
    expect(text).toMatch(/windows detected +\d+ of 2/);
    expect(text).toMatch(/points\/s/);
    const summary = JSON.parse(readFileSync(join(cliOut, 'summary.json'), 'utf8')) as NabBenchResult;
    expect(summary.files).toEqual([FILES[0]]);
    expect(existsSync(join(cliOut, DETECTOR_NAME, 'realAWSCloudwatch', `${DETECTOR_NAME}_iio_us-east-1_i-a2eb1cd9_NetworkIn.csv`))).toBe(
      true,
    );
  });

  it('stops with one line on a directory that is not NAB', async () => {
    const program = new Command().exitOverride();
    registerBenchCommand(program);
    const empty = mkdtempSync(join(tmpdir(), 'iad-not-nab-'));
    await expect(program.parseAsync(['node', 'anomaly-detector', 'bench', 'nab', '--nab-dir', empty])).rejects.toThrow(
      /has no data\/ folder/,
    );
  });
});
