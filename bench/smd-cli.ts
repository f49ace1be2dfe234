/**
 * `bench smd` without the main CLI: registers the command on a program of its own, so
 * that it can be run before src/cli/bench.ts registers it (`node dist/bench/smd-cli.js
 * bench smd --smd-dir ../shared/smd --out results/smd`).
 */
import { Command } from 'commander';
import { registerSmdBench } from '../src/cli/bench-smd';

const program = new Command('anomaly-detector');
registerSmdBench(program.command('bench').description('benchmarks of detection quality'));
program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`${e.name}: ${e.message}\n`);
  process.exitCode = 1;
});
