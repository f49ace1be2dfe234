import { writeFileSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { DEFAULT_SIMULATION, simulate } from '../data/simulate';
import { runServer } from '../server';
import { openApiDocument } from './openapi';
import { rowsToCsv } from './simulate-csv';
import { simulateToInflux, type SimulateCliOptions } from './simulate-influx';
import { registerInfluxCommands } from './influx-commands';
import { registerPipelineCommands } from './pipeline';
import { registerBenchCommand } from './bench';
import { UsageError } from './errors';
import { timeArg } from './time-arg';
import { loadSigningKey } from '../config';
import { ArtifactError, parseArtifact, serialize, signWithKey } from '../core/artifact';

const num =
  (name: string, opts: { int?: boolean; min?: number; max?: number } = {}) =>
  (v: string): number => {
    const x = Number(v);
    if (
      !Number.isFinite(x) ||
      (opts.int && !Number.isInteger(x)) ||
      (opts.min !== undefined && x < opts.min) ||
      (opts.max !== undefined && x > opts.max)
    ) {
      throw new UsageError(
        `--${name}: ${JSON.stringify(v)} is not a ` +
          `valid ${opts.int ? 'integer' : 'number'}${opts.min !== undefined ? ` >= ${opts.min}` : ''}${opts.max !== undefined ? ` <= ${opts.max}` : ''}`,
      );
    }
    return x;
  };

function writeFile(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
}

/** Registers every subcommand. */
export function registerCommands(program: Command): void {
  program
    .command('serve')
    .description('run the HTTP service (configuration from the environment; see README)')
    .action(async () => {
      await runServer();
    });

  program
    .command('simulate')
    .description("write realistic labelled host metrics (seeded): as a training CSV, or into InfluxDB in Telegraf's schema")
    .option('--csv <file>', 'output CSV file')
    .option('--influx <url>', 'write Telegraf-schema points (cpu, mem, net) to this InfluxDB (v1 API)')
    .option('--database <name>', 'InfluxDB database', 'system_metrics')
    .option('--token <token>', 'InfluxDB token (2.x v1-compatibility or 3.x)')
    .option('--from <time>', 'with --influx: first timestamp of a past range (RFC 3339)')
    .option('--to <time>', 'with --influx: end of the range (RFC 3339; default now)')
    .option('--live', 'with --influx: write one point per host per step in real time until stopped')
    .option('--duration <seconds>', 'with --live: stop after this long', num('duration', { min: 1 }))
    .option('--hosts <n>', 'number of hosts', num('hosts', { int: true, min: 1, max: 10000 }), DEFAULT_SIMULATION.hosts)
    .option(
      '--days <n>',
      'days of data',
      num('days', { min: 0.01, max: 365 }),
      (DEFAULT_SIMULATION.steps * DEFAULT_SIMULATION.stepS) / 86400,
    )
    .option('--step <seconds>', 'seconds between points', num('step', { int: true, min: 1, max: 86400 }), DEFAULT_SIMULATION.stepS)
    .option('--seed <n>', 'random seed', num('seed', { int: true }), DEFAULT_SIMULATION.seed)
    .option('--start <time>', 'first timestamp (RFC 3339)', new Date(DEFAULT_SIMULATION.start).toISOString())
    .option(
      '--profile <kind>',
      'uniform (similar hosts, as the bundled model was trained on) or fleet (very different normals: batch, ' +
        'idle, network, cache, web; incidents relative to each)',
      'uniform',
    )
    .action(async (o: SimulateCliOptions) => {
      if (o.profile !== 'uniform' && o.profile !== 'fleet')
        throw new UsageError(`--profile: ${JSON.stringify(o.profile)} is not uniform or fleet`);
      if (o.influx) return simulateToInflux(o);
      if (!o.csv) throw new UsageError('simulate needs --csv FILE or --influx URL');
      const start = timeArg('start', o.start);
      const rows = simulate({
        ...DEFAULT_SIMULATION,
        hosts: o.hosts,
        steps: Math.round((o.days * 86400) / o.step),
        stepS: o.step,
        seed: o.seed,
        start,
        profile: o.profile,
      });
      writeFile(o.csv as string, rowsToCsv(rows));
      const anomalies = rows.filter((r) => r.anomaly === 1).length;
      process.stdout.write(`wrote ${rows.length} rows (${o.hosts} hosts, ${anomalies} labelled anomalous) to ${o.csv}\n`);
    });

  registerPipelineCommands(program);

  registerInfluxCommands(program);
  registerBenchCommand(program);

  program
    .command('sign')
    .description(
      'sign a model artifact with MODEL_SIGNING_KEY (HMAC-SHA256), after verifying it; a service with the key set loads only signed artifacts',
    )
    .requiredOption('--model <file>', 'artifact to sign')
    .option('--out <file>', 'where to write the signed artifact (default: replace --model)')
    .action(async (o: { model: string; out?: string }) => {
      const key = loadSigningKey();
      let text: string;
      try {
        text = readFileSync(o.model, 'utf8');
      } catch (e) {
        throw new ArtifactError(`model artifact ${o.model}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      const signed = signWithKey(parseArtifact(text, `model artifact ${o.model}`), key);
      const out = o.out ?? o.model;
      const tmp = `${out}.${process.pid}.tmp`;
      writeFile(tmp, serialize(signed));
      renameSync(tmp, out);
      process.stdout.write(`signed ${signed.version} (sha256 ${signed.sha256.slice(0, 12)}...): ${out}\n`);
    });

  program
    .command('openapi')
    .description('print the OpenAPI description the service serves (YAML)')
    .action(async () => {
      process.stdout.write(stringify(await openApiDocument()));
    });
}
