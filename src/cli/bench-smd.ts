import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_SMD_PARAMS, formatSmdBench, runSmdBench, smdStreamingOptions, type SmdBenchParams } from '../eval/smd-bench';
import { SMD_METRIC_SETS, type SmdMetricSet } from '../eval/smd-data';
import { ALL_TRANSFORMS } from '../core/features';
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

/** Defaults overridden by a JSON file's top-level fields (a `gate` replaces the default gate whole). */
function readParams(path: string): SmdBenchParams {
  let json: Partial<SmdBenchParams>;
  try {
    json = JSON.parse(readFileSync(path, 'utf8')) as Partial<SmdBenchParams>;
  } catch (e) {
    throw new UsageError(`--params: cannot read ${path} as JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new UsageError(`--params: ${path} must hold a JSON object`);
  const known = new Set(Object.keys(DEFAULT_SMD_PARAMS));
  for (const k of Object.keys(json))
    if (!known.has(k)) throw new UsageError(`--params: unknown parameter ${JSON.stringify(k)} (known: ${[...known].join(', ')})`);
  const params = { ...DEFAULT_SMD_PARAMS, ...json };
  const bad = (k: string, want: string) =>
    new UsageError(`--params: ${k} must be ${want}, got ${JSON.stringify((json as Record<string, unknown>)[k])}`);
  const p = params as unknown as Record<string, unknown>;
  const int = (k: string, min: number) => {
    if (!Number.isInteger(p[k]) || (p[k] as number) < min) throw bad(k, `an integer >= ${min}`);
  };
  for (const [k, min] of [
    ['window', 2],
    ['span', 1],
    ['holdSpan', 1],
    ['horizon', 1],
    ['nEstimators', 1],
    ['maxSamples', 2],
    ['refitIntervalSteps', 0],
  ] as const)
    int(k, min);
  if (!Number.isInteger(p.seed)) throw bad('seed', 'an integer');
  if (typeof p.contamination !== 'number' || !(p.contamination > 0 && p.contamination < 0.5))
    throw bad('contamination', 'a number in (0, 0.5)');
  for (const k of ['outOfRangeWeight', 'noveltyWeight', 'refitWindow'])
    if (typeof p[k] !== 'number' || !Number.isFinite(p[k]) || (p[k] as number) < 0) throw bad(k, 'a finite number >= 0');
  if (typeof p.includeRaw !== 'boolean') throw bad('includeRaw', 'true or false');
  if (!Array.isArray(p.transforms) || p.transforms.some((t) => typeof t !== 'string'))
    throw bad('transforms', 'an array of transform names');
  const unknownTransform = p.transforms.find((t) => !(ALL_TRANSFORMS as readonly string[]).includes(t as string));
  if (unknownTransform !== undefined)
    throw new UsageError(`--params: unknown transform ${JSON.stringify(unknownTransform)} (known: ${ALL_TRANSFORMS.join(', ')})`);
  const g = p.gate as Record<string, unknown> | null;
  const objOrNull = (v: unknown) => v === null || (typeof v === 'object' && !Array.isArray(v));
  if (g === null || typeof g !== 'object' || Array.isArray(g)) throw bad('gate', "an object (the gate's options, whole)");
  if (
    !Number.isInteger(g.consecutive) ||
    (g.consecutive as number) < 1 ||
    typeof g.cooldownMs !== 'number' ||
    !objOrNull(g.surge) ||
    !objOrNull(g.repeat ?? null)
  )
    throw bad(
      'gate',
      '{consecutive: integer >= 1, cooldownMs: number, surge: object or null, repeat: object or null} (it replaces the default gate whole)',
    );
  try {
    // Transform names and their parameters, the gate's shape: as the run will build them.
    smdStreamingOptions(['x'], params);
  } catch (e) {
    throw new UsageError(`--params: ${(e as Error).message}`);
  }
  return params;
}
