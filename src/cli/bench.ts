import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_NAB_PARAMS, formatNabBench, runNabBench } from '../eval/nab-bench';
import { formatLoco, runLoco } from '../eval/nab-loco';
import { registerSmdBench } from './bench-smd';
import { UsageError } from './errors';

/**
 * `anomaly-detector bench nab --nab-dir DIR [--out DIR] [--loco]`: the NAB benchmark of
 * the streaming detector (see src/eval/nab-bench.ts), or with `--loco` its
 * leave-one-category-out evaluation over the candidate parameter sets (src/eval/nab-loco.ts).
 */
export function registerBenchCommand(program: Command): void {
  const bench = program.command('bench').description('benchmarks of detection quality');
  bench
    .command('nab')
    .description(
      'stream every NAB series under DIR/data through the detector, write NAB-layout results and print the ' +
        'leaderboards (all files and per category) against the published detectors',
    )
    .requiredOption(
      '--nab-dir <dir>',
      'a NAB directory (data/, labels/, config/, results/), e.g. ../shared/nab or a clone of github.com/numenta/NAB',
    )
    .option('--out <dir>', 'where to write results (<out>/<detector>/<category>/<detector>_<file>.csv)', 'results/nab')
    .option('--json <file>', 'also write the full result as JSON (default <out>/summary.json, with --loco <out>/loco.json)')
    .option('--files <list>', 'only these data files, comma-separated, as category/file.csv (default: every labelled file)')
    .option('--timing-passes <n>', 'extra passes timed for the throughput figure (median reported; 0: time the first pass)', '3')
    .option(
      '--loco',
      'leave one category out instead: stream every candidate parameter set, choose one on the other categories, score it on the category left out',
    )
    .option('--seeds <list>', 'with --loco: forest seeds every candidate runs with, comma-separated (figures are their mean)', '1,2,3')
    .option('--seed <n>', 'the forest seed of the default parameters (default 1)')
    .action(
      (o: {
        nabDir: string;
        out: string;
        json?: string;
        files?: string;
        timingPasses: string;
        loco?: boolean;
        seeds: string;
        seed?: string;
      }) => {
        const timingPasses = Number(o.timingPasses);
        if (!Number.isInteger(timingPasses) || timingPasses < 0 || timingPasses > 100)
          throw new UsageError(`--timing-passes: ${JSON.stringify(o.timingPasses)} is not an integer in [0, 100]`);
        const files = o.files
          ?.split(',')
          .map((f) => f.trim())
          .filter(Boolean);
        if (files !== undefined && files.length === 0) throw new UsageError('--files: no file named');
        const nabDir = resolve(o.nabDir);
        if (!existsSync(join(nabDir, 'data')))
          throw new UsageError(`--nab-dir: ${nabDir} has no data/ folder (point it at a NAB directory)`);
        const outDir = resolve(o.out);
        if (outDir === nabDir || outDir.startsWith(join(nabDir, 'data')))
          throw new UsageError('--out must not be the NAB directory or its data folder');
        const log = (line: string): void => void process.stderr.write(`${line}\n`);
        // A missing or malformed NAB directory throws NabDataError, a DataError: one line.
        if (o.loco) {
          const items = o.seeds.split(',').map((x) => x.trim());
          const seeds = items.map(Number);
          if (items.some((x) => x === '') || seeds.some((x) => !Number.isInteger(x) || x < 0))
            throw new UsageError(`--seeds: ${JSON.stringify(o.seeds)} is not a comma-separated list of non-negative integers`);
          const loco = runLoco({ nabDir, files, seeds, log });
          mkdirSync(outDir, { recursive: true });
          const jsonPath = o.json ?? join(outDir, 'loco.json');
          writeFileSync(jsonPath, `${JSON.stringify(loco, null, 2)}\n`);
          process.stdout.write(formatLoco(loco));
          process.stdout.write(`summary in ${jsonPath}\n`);
          return;
        }
        const seed = o.seed === undefined ? DEFAULT_NAB_PARAMS.seed : Number(o.seed);
        if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed: ${JSON.stringify(o.seed)} is not a non-negative integer`);
        const result = runNabBench({ nabDir, outDir, files, timingPasses, log, params: { ...DEFAULT_NAB_PARAMS, seed } });
        mkdirSync(outDir, { recursive: true });
        const jsonPath = o.json ?? join(outDir, 'summary.json');
        writeFileSync(jsonPath, `${JSON.stringify({ ...result, resultFiles: result.resultFiles.length }, null, 2)}\n`);
        process.stdout.write(formatNabBench(result));
        process.stdout.write(`results in ${join(outDir, result.detector)}; summary in ${jsonPath}\n`);
      },
    );
  registerSmdBench(bench);
}
