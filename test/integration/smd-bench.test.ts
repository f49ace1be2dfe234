import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Command } from 'commander';
import { registerSmdBench } from '../../src/cli/bench-smd';
import { Rng } from '../../src/core/random';
import { SMD_METRICS } from '../../src/eval/smd-data';

const TRAIN = 600;
const TEST = 400;
/** The injected incident of every machine's test part: rows [200, 230), every metric high. */
const INCIDENT: [number, number] = [200, 230];

/** A tiny SMD-layout folder: two machines with noisy metrics and one incident each. */
function makeSmd(): string {
  const dir = mkdtempSync(join(tmpdir(), 'iad-smd-'));
  const header = ['step', ...SMD_METRICS].join(',');
  ['machine-1-1', 'machine-2-1'].forEach((name, k) => {
    const r = new Rng(11 + k);
    const row = (step: number, incident: boolean): string =>
      [step, ...SMD_METRICS.map(() => (incident ? 0.9 + 0.05 * r.next() : 0.3 + 0.1 * r.next()).toFixed(6))].join(',');
    const train = [header];
    for (let i = 0; i < TRAIN; i++) train.push(row(i, false));
    const test = [`${header},anomaly`];
    for (let i = 0; i < TEST; i++) {
      const inc = i >= INCIDENT[0] && i < INCIDENT[1];
      test.push(`${row(TRAIN + i, inc)},${inc ? 1 : 0}`);
    }
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, 'train.csv.gz'), gzipSync(`${train.join('\n')}\n`));
    writeFileSync(join(dir, name, 'test.csv.gz'), gzipSync(`${test.join('\n')}\n`));
  });
  return dir;
}

/** Runs `bench smd ...` in-process on a fresh program; returns stdout and stderr. */
async function benchSmd(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const program = new Command().exitOverride();
  registerSmdBench(program.command('bench').exitOverride());
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  try {
    await program.parseAsync(['node', 'anomaly-detector', 'bench', 'smd', ...args]);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  return { stdout, stderr };
}

describe('bench smd (streaming detector on an SMD-layout folder)', () => {
  const smd = makeSmd();

  it.each(['basic', 'all'])('writes step,score,alert for every test row and prints the table (%s)', async (metrics) => {
    const out = mkdtempSync(join(tmpdir(), 'iad-smd-out-'));
    const { stdout, stderr } = await benchSmd(['--smd-dir', smd, '--out', out, '--metrics', metrics]);
    expect(readdirSync(out).sort()).toEqual(['machine-1-1.csv', 'machine-2-1.csv', 'summary.json']);
    for (const name of ['machine-1-1', 'machine-2-1']) {
      const lines = readFileSync(join(out, `${name}.csv`), 'utf8')
        .trim()
        .split('\n');
      expect(lines[0]).toBe('step,score,alert');
      expect(lines).toHaveLength(TEST + 1);
      const rows = lines.slice(1).map((l) => l.split(',').map(Number));
      expect(rows.map((r) => r[0])).toEqual(Array.from({ length: TEST }, (_, i) => TRAIN + i));
      expect(rows.every((r) => r[1] > 0 && r[1] <= 1 && (r[2] === 0 || r[2] === 1))).toBe(true);
      // The incident outscores every normal row before it and after its last spike has
      // left the features' look-back (span_max holds it for 20 points), and it is alerted.
      const inc = rows.slice(...INCIDENT).map((r) => r[1]);
      const normal = rows.filter((_, i) => i < INCIDENT[0] || i >= INCIDENT[1] + 20).map((r) => r[1]);
      expect(Math.min(...inc)).toBeGreaterThan(Math.max(...normal));
      expect(rows.slice(...INCIDENT).some((r) => r[2] === 1)).toBe(true);
      expect(stderr).toContain(`${name}: ${TRAIN} train + ${TEST} test rows`);
    }
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
      average: { rocAuc: number; bestF1: number };
      columns: string[];
      stateBytesPerKey: number;
    };
    expect(summary.columns).toHaveLength(metrics === 'basic' ? 3 : 38);
    expect(summary.average.rocAuc).toBeGreaterThan(0.95);
    expect(summary.average.bestF1).toBeGreaterThan(0.75);
    expect(summary.stateBytesPerKey).toBeGreaterThan(0);
    expect(stdout).toMatch(new RegExp(`SMD, 2 machine\\(s\\), metrics ${metrics}`));
    expect(stdout).toMatch(/\naverage\s+0\.9\d\d\s+/);
  });

  it('refuses an unknown metric set, a missing folder and unknown parameters with one line', async () => {
    const out = mkdtempSync(join(tmpdir(), 'iad-smd-out-'));
    await expect(benchSmd(['--smd-dir', smd, '--out', out, '--metrics', 'node'])).rejects.toThrow(
      '--metrics: "node" is not one of basic, all',
    );
    await expect(benchSmd(['--smd-dir', join(smd, 'nope'), '--out', out])).rejects.toThrow(/--smd-dir: .* does not exist/);
    const params = join(out, 'p.json');
    writeFileSync(params, '{"windows": 3}');
    await expect(benchSmd(['--smd-dir', smd, '--out', out, '--params', params])).rejects.toThrow('--params: unknown parameter "windows"');
    expect(existsSync(join(out, 'summary.json'))).toBe(false);
  });
});
