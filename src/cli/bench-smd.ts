import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_SMD_PARAMS, formatSmdBench, runSmdBench, smdStreamingOptions, type SmdBenchParams } from '../eval/smd-bench';
import { SMD_METRIC_SETS, type SmdMetricSet } from '../eval/smd-data';
import { ALL_TRANSFORMS } from '../core/features';
import { z } from 'zod';
import { UsageError } from './errors';

/**
 * `anomaly-detector bench smd --smd-dir DIR --out DIR [--metrics basic|all]`: the SMD
 * benchmark of the streaming detector (see src/eval/smd-bench.ts). Registered on the
 * `bench` command (src/cli/bench.ts calls this).
 */
export function registerSmdBench(bench: Command): void {
  bench
    .command('smd')
    .description(
      'learn every SMD machine from its train part, stream its test part through the detector, write ' +
        "<out>/<machine>.csv (step,score,alert) and print ROC-AUC, PR-AUC, best F1 and the own alerts' precision and " +
        'recall per machine and on average',
    )
    .requiredOption('--smd-dir <dir>', 'an SMD folder (one folder per machine with train.csv.gz and test.csv.gz), e.g. ../shared/smd')
    .requiredOption('--out <dir>', 'where to write <machine>.csv and summary.json')
    .option(
      '--metrics <set>',
      `metric columns: ${Object.keys(SMD_METRIC_SETS).join(' (cpu_r, mem_u, eth1_fi) or ')} (the 38 columns)`,
      'basic',
    )
    .option('--machines <list>', 'only these machine folders, comma-separated (default: every machine under DIR)')
    .option('--params <file>', 'a JSON file of parameters that replace the defaults (the same set for every machine)')
    .action((o: { smdDir: string; out: string; metrics: string; machines?: string; params?: string }) => {
      if (!Object.hasOwn(SMD_METRIC_SETS, o.metrics))
        throw new UsageError(`--metrics: ${JSON.stringify(o.metrics)} is not one of ${Object.keys(SMD_METRIC_SETS).join(', ')}`);
      const smdDir = resolve(o.smdDir);
      if (!existsSync(smdDir)) throw new UsageError(`--smd-dir: ${smdDir} does not exist`);
      const outDir = resolve(o.out);
      if (outDir === smdDir) throw new UsageError('--out must not be the SMD folder');
      const machines = o.machines
        ?.split(',')
        .map((m) => m.trim())
        .filter(Boolean);
      if (machines !== undefined && machines.length === 0) throw new UsageError('--machines: no machine named');
      for (const m of machines ?? [])
        if (!existsSync(join(smdDir, m))) throw new UsageError(`--machines: ${join(smdDir, m)} does not exist`);
      const params = o.params ? readParams(o.params) : DEFAULT_SMD_PARAMS;
      // A malformed SMD folder throws SmdDataError, a DataError: one line.
      const result = runSmdBench({
        smdDir,
        outDir,
        metrics: o.metrics as SmdMetricSet,
        machines,
        params,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      mkdirSync(outDir, { recursive: true });
      const jsonPath = join(outDir, 'summary.json');
      writeFileSync(jsonPath, `${JSON.stringify({ ...result, resultFiles: result.resultFiles.length }, null, 2)}\n`);
      process.stdout.write(formatSmdBench(result));
      process.stdout.write(`results in ${outDir}/<machine>.csv; summary in ${jsonPath}\n`);
    });
}

const int = (min: number) =>
  z
    .number({ error: `an integer >= ${min}` })
    .int(`an integer >= ${min}`)
    .min(min, `an integer >= ${min}`);
const atLeastZero = z.number({ error: 'a finite number >= 0' }).finite('a finite number >= 0').min(0, 'a finite number >= 0');
const objectOrNull = z.union([z.looseObject({}), z.null()]);
const GATE =
  "an object (the gate's options, whole): {consecutive: integer >= 1, cooldownMs: number, surge: object or null, repeat: object or null}";

/** The fields of a `--params` file, each optional (the defaults fill the rest); the messages say what each must be. */
const ParamsSchema = z
  .strictObject({
    transforms: z.array(z.string({ error: 'an array of transform names' }), { error: 'an array of transform names' }),
    includeRaw: z.boolean({ error: 'true or false' }),
    window: int(2),
    span: int(1),
    holdSpan: int(1),
    horizon: int(1),
    nEstimators: int(1),
    maxSamples: int(2),
    seed: z.number({ error: 'an integer' }).int('an integer'),
    contamination: z.number({ error: 'a number in (0, 0.5)' }).gt(0, 'a number in (0, 0.5)').lt(0.5, 'a number in (0, 0.5)'),
    outOfRangeWeight: atLeastZero,
    noveltyWeight: atLeastZero,
    refitIntervalSteps: int(0),
    refitWindow: atLeastZero,
    gate: z.looseObject(
      { consecutive: int(1), cooldownMs: z.number(), surge: objectOrNull, repeat: objectOrNull.optional() },
      { error: GATE },
    ),
  })
  .partial();

/** Defaults overridden by a JSON file's top-level fields (a `gate` replaces the default gate whole). */
function readParams(path: string): SmdBenchParams {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`--params: cannot read ${path} as JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new UsageError(`--params: ${path} must hold a JSON object`);
  const r = ParamsSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    if (i.code === 'unrecognized_keys')
      throw new UsageError(
        `--params: unknown parameter ${JSON.stringify(i.keys[0])} (known: ${Object.keys(DEFAULT_SMD_PARAMS).join(', ')})`,
      );
    const k = String(i.path[0]);
    const message = k === 'gate' && i.path.length > 1 ? GATE : i.message;
    throw new UsageError(`--params: ${k} must be ${message}, got ${JSON.stringify((json as Record<string, unknown>)[k])}`);
  }
  const unknownTransform = r.data.transforms?.find((t) => !(ALL_TRANSFORMS as readonly string[]).includes(t));
  if (unknownTransform !== undefined)
    throw new UsageError(`--params: unknown transform ${JSON.stringify(unknownTransform)} (known: ${ALL_TRANSFORMS.join(', ')})`);
  const params = { ...DEFAULT_SMD_PARAMS, ...r.data } as SmdBenchParams;
  try {
    // Transform names and their parameters, the gate's shape: as the run will build them.
    smdStreamingOptions(['x'], params);
  } catch (e) {
    throw new UsageError(`--params: ${(e as Error).message}`);
  }
  return params;
}
