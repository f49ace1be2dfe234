import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { Option, type Command } from 'commander';
import {
  artifactInputs,
  artifactMetrics as declaredMetrics,
  FOREST_LIMITS,
  parseArtifact,
  serialize,
  sign,
  signWithKey,
  type ModelArtifact,
} from '../core/artifact';
import { Detector } from '../core/detector';
import { columnsOf, sameNames, type MetricDef } from '../core/metrics';
import { trainModel, type TrainOptions } from '../core/train';
import { DataError, fileSha256, readText } from '../data/csv';
import { loadDataset, type Dataset } from '../data/dataset';
import { declaredSet, describeSet, isBasicSet, metricSetOf, setFeatures, setTemporalFeatures, type MetricSet } from '../data/metric-set';
import { loadConfig, loadMlflowEnv, loadSigningKey, mlflowAuth, type MlflowEnv } from '../config';
import type { GateOptions } from '../core/gate';
import { DEFAULT_HOST_LEARNING } from '../core/host-learning';
import { curves, labelledFigures, scoreSet, seriesOf, type RowSeries, type TestMetrics } from '../eval/evaluate';
import { evaluateLearning, readLearningRows, type LearningFigures, type LearningRun, type SkippedRows } from '../eval/learning-eval';
import { DEFAULT_GRID, pointLabel, runGrid, selectBest, type GridResult, type GridSpec, type Selection } from '../eval/grid';
import { gridSpec, findFonts, prSpec, renderCharts, rocSpec } from '../eval/plots';
import {
  evaluateModel,
  evaluationHtml,
  fileStamp,
  writeEvaluation,
  writeFileAtomic,
  writeJson,
  type Evaluation,
  type EvaluationReport,
} from '../eval/report';
import type { ScenarioResult } from '../eval/robustness';
import { splitRows, takePart, type Split, type SplitMode } from '../eval/split';
import { failureLine, formatValidation, validateFile, type ValidationReport } from '../eval/validate';
import { MlflowClient, type Metric } from '../mlflow/client';
import { MlflowError } from '../mlflow/errors';
import { gitCommit, trackTraining, type ComparableMetrics, type TrackingResult } from '../mlflow/tracking';
import { UsageError } from './errors';

// ------------------------------------------------------------------ environment

/** The MLflow variables the pipeline commands read (MLflow's own names). */
export type PipelineEnv = MlflowEnv;

/** The pipeline's environment: MLflow settings, read by config.ts like all the rest. */
export const readPipelineEnv = (env: NodeJS.ProcessEnv = process.env): PipelineEnv => loadMlflowEnv(env);

// ------------------------------------------------------------------ option parsers

const intArg =
  (name: string, min: number, max: number) =>
  (v: string): number => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < min || x > max)
      throw new UsageError(`--${name}: ${JSON.stringify(v)} is not an integer in [${min}, ${max}]`);
    return x;
  };

const listArg =
  (name: string, opts: { int?: boolean; min: number; max: number; exclusive?: boolean }) =>
  (v: string): number[] => {
    const parts = v.split(',').map((s) => s.trim());
    const out = parts.map((s) => {
      const x = Number(s);
      const ok =
        s !== '' &&
        Number.isFinite(x) &&
        (!opts.int || Number.isInteger(x)) &&
        (opts.exclusive ? x > opts.min && x < opts.max : x >= opts.min && x <= opts.max);
      if (!ok) {
        const range = opts.exclusive ? `(${opts.min}, ${opts.max})` : `[${opts.min}, ${opts.max}]`;
        throw new UsageError(
          `--${name}: ${JSON.stringify(s)} is not ${opts.int ? 'an integer' : 'a number'} in ${range} (give a ` +
            `comma-separated list, e.g. ${opts.int ? '100,200' : '0.01,0.05'})`,
        );
      }
      return x;
    });
    return [...new Set(out)];
  };

function parseCreatedAt(v: string | undefined): string {
  if (v === undefined) return new Date().toISOString();
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || !Number.isFinite(Date.parse(v)))
    throw new UsageError(`--created-at: ${JSON.stringify(v)} is not an RFC 3339 timestamp`);
  return v;
}

// ------------------------------------------------------------------ output helpers

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const warn = (line: string): void => {
  process.stderr.write(`warning: ${line}\n`);
};
const f4 = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(4));
const pc = (v: number): string => `${(100 * v).toFixed(2)}%`;

function writeValidationReports(r: ValidationReport, resultsDir: string, stamp: string): string {
  const path = join(resultsDir, `validation_report_${stamp}.json`);
  writeJson(path, r);
  writeJson(join(resultsDir, 'validation_report_latest.json'), r);
  return path;
}

/** Lines describing test figures: labelled ones only with labels, and saying so otherwise. */
function describeTest(t: TestMetrics, rows: string): string[] {
  const lines: string[] = [];
  const lf = t.label_free;
  const l = t.labelled;
  if (l) {
    lines.push(
      `test metrics (${rows}, ${l.positives} labelled anomalies, against the real labels): ` +
        `precision ${f4(l.precision)}, recall ${f4(l.recall)}, F1 ${f4(l.f1)}, ROC-AUC ${f4(l.roc_auc)}, PR-AUC ${f4(l.pr_auc)}`,
    );
    lines.push(
      `confusion matrix: TP ${l.confusion.tp}, FP ${l.confusion.fp}, TN ${l.confusion.tn}, ` +
        `FN ${l.confusion.fn}; flagged ${lf.flagged} (${pc(lf.flagged_fraction)})`,
    );
  } else {
    lines.push(
      `test figures (${rows}), label-free only: flagged ${lf.flagged} (${pc(lf.flagged_fraction)}); score ` +
        `p50 ${f4(lf.score.p50)}, p99 ${f4(lf.score.p99)}, threshold ${f4(lf.threshold)}`,
    );
  }
  if (t.labels === 'absent' || (l && (l.roc_auc === null || l.pr_auc === null))) lines.push(`note: ${t.note}`);
  lines.push(
    `scoring latency per point: mean ${t.latency.per_point_mean_us.toFixed(1)} µs, ` +
      `p50 ${t.latency.per_point_p50_us.toFixed(1)} µs, p99 ${t.latency.per_point_p99_us.toFixed(1)} µs ` +
      `(${t.latency.points} single-point calls); ${t.latency.batch_per_point_us.toFixed(2)} µs per point in a batch`,
  );
  return lines;
}

function describeRobustness(ev: Evaluation): string {
  const r = ev.report.robustness;
  const o = r.outliers.map((s) => `${s.scenario} ${pc(s.detection_rate ?? 0)}`).join(', ');
  const sh = r.shift.map((s) => `${s.scenario} ${pc(s.flagged_fraction)}`).join(', ');
  const key = (s: ScenarioResult): string => (s.labelled ? `F1 ${f4(s.labelled.f1)}` : `agreement ${pc(s.flag_agreement)}`);
  const nz = r.noise.map((s) => `${s.scenario} ${key(s)}`).join(', ');
  const ms = r.missing.map((s) => `${s.parameter} ${key(s)}`).join(', ');
  return `robustness: noise ${nz}; missing ${ms}; outlier detection ${o}; shift flagged ${sh} (clean ${pc(r.clean.flagged_fraction)})`;
}

// ------------------------------------------------------------------ MLflow set-up

interface MlflowOptions {
  mlflow: boolean;
  mlflowUri?: string;
  requireMlflow?: boolean;
}

/** The client to use, or null (with the reason already printed as one warning). */
function mlflowClient(o: MlflowOptions, env: PipelineEnv, quiet = false): MlflowClient | null {
  if (!o.mlflow) {
    if (o.requireMlflow) throw new UsageError('--require-mlflow and --no-mlflow contradict each other');
    return null;
  }
  const uri = o.mlflowUri ?? env.MLFLOW_TRACKING_URI;
  if (!uri) {
    if (o.requireMlflow) throw new UsageError('--require-mlflow: no tracking server given (set MLFLOW_TRACKING_URI or pass --mlflow-uri)');
    if (!quiet)
      warn(
        'MLFLOW_TRACKING_URI is not set: this run is not tracked in MLflow (set it or pass --mlflow-uri URL; --no-mlflow silences this)',
      );
    return null;
  }
  return new MlflowClient({ trackingUri: uri, timeoutMs: 15_000, auth: mlflowAuth(env) });
}

// ------------------------------------------------------------------ train

/** `--metrics` and `--mapping`: the CSV's metric columns (at most one of the two). */
interface MetricSetOptions {
  metrics?: string;
  mapping?: string;
}

interface TrainCliOptions extends MlflowOptions, MetricSetOptions {
  data: string;
  seed: number;
  split: SplitMode;
  contamination: number[];
  nEstimators: number[];
  maxSamples: number[];
  features: 'raw' | 'temporal';
  historyWindow: number;
  createdAt?: string;
  out?: string;
  modelsDir: string;
  resultsDir: string;
  promote?: boolean;
  experiment?: string;
  modelName: string;
}

/** What results/training_metrics_<version>.json holds. */
export interface TrainingReport {
  report: 'training';
  version: string;
  created_at: string;
  command: string;
  data: { path: string; sha256: string; rows: number; labels: boolean; positives: number | null };
  /** The metric columns trained on: the set (`basic`, `node`, `columns`, `mapping <file>`), each metric's unit and range. */
  metrics: { set: string; defs: MetricDef[] };
  validation_report: string;
  split: {
    mode: SplitMode;
    seed: number;
    rows: { train: number; validation: number; test: number };
    bounds: Split['bounds'];
    note: string;
  };
  grid: { spec: GridSpec; rule: Selection['rule']; explanation: string; selected: number; results: GridResult[] };
  model: { path: string; promoted: boolean; sha256: string; threshold: number; params: ModelArtifact['training']['params'] };
  test: TestMetrics;
  evaluation_report: string;
  mlflow: { tracked: false; reason: string } | ({ tracked: true } & TrackingResult);
}

/** Deterministic figures recorded inside the artifact (no timings: the bytes must reproduce). */
function artifactMetrics(grid: GridResult, t: TestMetrics, sizes: { val: number; test: number }): Record<string, number | null> {
  const nf = (v: number | null | undefined): number | null => (v === null || v === undefined || !Number.isFinite(v) ? null : v);
  const m: Record<string, number | null> = {
    validation_rows: sizes.val,
    test_rows: sizes.test,
    test_flagged_fraction: t.label_free.flagged_fraction,
    validation_flagged_fraction: grid.val_flagged_fraction,
  };
  if (t.labelled && grid.val) {
    Object.assign(m, {
      validation_f1: grid.val.f1,
      test_precision: t.labelled.precision,
      test_recall: t.labelled.recall,
      test_f1: t.labelled.f1,
      test_roc_auc: nf(t.labelled.roc_auc),
      test_pr_auc: nf(t.labelled.pr_auc),
    });
  }
  return m;
}

/** Metrics for the MLflow run: the grid as steps, the test figures, the robustness suite. */
function runMetrics(grid: GridResult[], sel: number, ev: Evaluation): Metric[] {
  const now = Date.now();
  const ms: Metric[] = [];
  const add = (key: string, value: number | null | undefined, step = 0) => {
    if (value !== null && value !== undefined) ms.push({ key, value, step, timestamp: now });
  };
  for (const r of grid) {
    add('grid_contamination', r.contamination, r.step);
    add('grid_n_estimators', r.nEstimators, r.step);
    add('grid_max_samples', r.maxSamples, r.step);
    add('grid_val_flagged_fraction', r.val_flagged_fraction, r.step);
    add('grid_fraction_gap', r.fraction_gap, r.step);
    add('grid_train_ms', r.train_ms, r.step);
    if (r.val) {
      add('grid_val_f1', r.val.f1, r.step);
      add('grid_val_precision', r.val.precision, r.step);
      add('grid_val_recall', r.val.recall, r.step);
      add('grid_val_roc_auc', r.val.roc_auc, r.step);
      add('grid_val_pr_auc', r.val.pr_auc, r.step);
    }
  }
  add('grid_selected_step', sel);
  const best = grid[sel];
  add('val_flagged_fraction', best.val_flagged_fraction);
  if (best.val) add('val_f1', best.val.f1);
  const t = ev.report.test;
  add('test_flagged_fraction', t.label_free.flagged_fraction);
  add('test_latency_mean_us', t.latency.per_point_mean_us);
  add('test_latency_p50_us', t.latency.per_point_p50_us);
  add('test_latency_p99_us', t.latency.per_point_p99_us);
  add('test_latency_batch_us', t.latency.batch_per_point_us);
  if (t.labelled) {
    add('test_precision', t.labelled.precision);
    add('test_recall', t.labelled.recall);
    add('test_f1', t.labelled.f1);
    add('test_roc_auc', t.labelled.roc_auc);
    add('test_pr_auc', t.labelled.pr_auc);
    add('test_tp', t.labelled.confusion.tp);
    add('test_fp', t.labelled.confusion.fp);
    add('test_tn', t.labelled.confusion.tn);
    add('test_fn', t.labelled.confusion.fn);
  }
  const r = ev.report.robustness;
  const scen = (prefix: string, s: ScenarioResult) => {
    add(`${prefix}_flagged_fraction`, s.flagged_fraction);
    add(`${prefix}_flag_agreement`, s.flag_agreement);
    if (s.labelled) add(`${prefix}_f1`, s.labelled.f1);
  };
  r.noise.forEach((s) => scen(`robustness_noise_${s.parameter}`, s));
  r.missing.forEach((s) => scen(`robustness_missing_${s.parameter}`, s));
  r.outliers.forEach((s) => add(`robustness_outliers_x${s.parameter}_detection_rate`, s.detection_rate));
  r.shift.forEach((s) => add(`robustness_shift_${s.parameter}sd_flagged_fraction`, s.flagged_fraction));
  return ms;
}

function gridBar(total: number): SingleBar {
  const bar = new SingleBar(
    {
      format: 'grid search [{bar}] {value}/{total} | {point} | best {best}',
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
    },
    Presets.shades_classic,
  );
  bar.start(total, 0, { point: '', best: '-' });
  return bar;
}

/** Level-shift span of `--features temporal` (points). */
const TEMPORAL_SPAN = 3;

async function trainCommand(o: TrainCliOptions): Promise<void> {
  const createdAt = parseCreatedAt(o.createdAt);
  if (o.features === 'temporal' && o.split !== 'time') {
    throw new UsageError(
      "--features temporal needs --split time: a random split scatters each host's points across the parts, so their histories would have gaps",
    );
  }
  // With --no-mlflow the MLflow variables are not read at all.
  const env: PipelineEnv = o.mlflow ? readPipelineEnv() : {};
  const client = mlflowClient(o, env, true);
  const experiment = o.experiment ?? env.MLFLOW_EXPERIMENT_NAME ?? 'anomaly-detector';
  if (client && o.requireMlflow && !(await client.health())) {
    throw new MlflowError(
      `MLflow at ${client.trackingUri} is not reachable (GET /health failed) and --require-mlflow is set; nothing was trained`,
      'unreachable',
    );
  }
  const stamp = fileStamp();
  const set = metricSetOf(o);
  const basic = isBasicSet(set);
  if (!basic) out(`metrics: ${describeSet(set)}`);

  // 1. Validate; stop on failure.
  const validation = validateFile(o.data, undefined, set);
  const validationPath = writeValidationReports(validation, o.resultsDir, stamp);
  if (!validation.passed) {
    process.stdout.write(formatValidation(validation));
    throw new DataError(`${o.data}: validation failed, nothing trained: ${failureLine(validation)} (report ${validationPath})`);
  }
  out(`validation passed (${validation.checks.length} checks, ${validation.rows} rows): ${validationPath}`);

  // 2. Load and split.
  const ds: Dataset = loadDataset(o.data, set);
  const sha = validation.source.sha256;
  const hasTime = validation.columns.includes('timestamp');
  const split = splitRows(ds.n, { mode: o.split, seed: o.seed, timestamps: ds.timestamps });
  const train = takePart(ds, split.train);
  const val = takePart(ds, split.val);
  const test = takePart(ds, split.test);
  out(`split: ${split.note}${o.split === 'time' && !hasTime ? ' (no timestamp column: file order)' : ''}`);

  // 3. Grid search on the validation part.
  const spec: GridSpec = { contamination: o.contamination, nEstimators: o.nEstimators, maxSamples: o.maxSamples };
  // Every candidate must be loadable by the service (FOREST_LIMITS): at most 2 * subsample - 1 nodes a tree.
  const maxNodes = Math.max(...spec.nEstimators) * (2 * Math.min(Math.max(...spec.maxSamples), train.n) - 1);
  if (maxNodes > FOREST_LIMITS.nodes)
    throw new UsageError(
      `--n-estimators x --max-samples: up to ${maxNodes} nodes, more than the ${FOREST_LIMITS.nodes} a served ` +
        `model may have; use fewer trees or a smaller subsample`,
    );
  const total = spec.contamination.length * spec.nEstimators.length * spec.maxSamples.length;
  const bar = gridBar(total);
  let bestF1 = -1;
  let bestGap = Infinity;
  // The basic set's raw features are the default (undefined): its artifacts keep their original bytes.
  const features =
    o.features === 'temporal' ? setTemporalFeatures(set, o.historyWindow, TEMPORAL_SPAN) : basic ? undefined : setFeatures(set);
  if (o.features === 'temporal')
    out(
      `features: the ${basic ? 'three' : set.names.length} metrics plus robust_z, diff and level_shift of each (window ${o.historyWindow} ` +
        `points, span ${TEMPORAL_SPAN}), per host in time order; each part's histories start at its first row`,
    );
  const grid = runGrid(train, val, spec, {
    features,
    metrics: basic ? undefined : set.defs,
    seed: o.seed,
    createdAt,
    dataSha256: sha,
    onStep: (done, _t, r) => {
      bestF1 = Math.max(bestF1, r.val?.f1 ?? -1);
      bestGap = Math.min(bestGap, r.fraction_gap);
      bar.update(done, { point: pointLabel(r), best: r.val ? `validation F1 ${bestF1.toFixed(4)}` : `fraction gap ${bestGap.toFixed(4)}` });
    },
  });
  bar.stop();
  let valPos = 0;
  if (val.labels) for (const l of val.labels) valPos += l;
  const selection = selectBest(grid, { present: ds.labels !== null, valPositives: valPos, valNegatives: val.n - valPos });
  const best = grid[selection.index];
  out(`grid: ${grid.length} points; rule ${selection.rule}: ${selection.explanation}`);

  // 4. The winner, evaluated on the untouched test part, with its figures recorded inside.
  const trainOpts: TrainOptions = {
    nEstimators: best.nEstimators,
    maxSamples: best.maxSamples,
    seed: o.seed,
    contamination: best.contamination,
    createdAt,
    dataSha256: sha,
    features,
    ...(basic ? {} : { inputs: [...set.names], metricDefs: set.defs }),
    keys: train.hosts,
    times: train.timestamps,
  };
  const candidate = trainModel(train.raw, train.n, trainOpts);
  const splitDesc = `test split (${split.mode}, seed ${o.seed}; ${test.n} of ${ds.n} rows, never used for training or selection)`;
  const ev = evaluateModel(new Detector(candidate, { inputs: set.names }), test, {
    context: 'training',
    modelSource: 'candidate',
    dataPath: o.data,
    dataSha256: sha,
    part: splitDesc,
    includesTrainingRows: false,
    seed: o.seed,
    notes: [`selection: ${selection.explanation}`],
  });
  // The figures go into the candidate itself (they are not part of its version): no retraining.
  const { sha256: _unsigned, ...unsigned } = candidate;
  const checksummed = sign({
    ...unsigned,
    training: { ...unsigned.training, metrics: artifactMetrics(best, ev.report.test, { val: val.n, test: test.n }) },
  });
  // With MODEL_SIGNING_KEY set, the artifact is signed, so a service with the same key loads it.
  const signingKey = loadSigningKey(undefined, false);
  const artifact = signingKey ? signWithKey(checksummed, signingKey) : checksummed;
  if (signingKey) out('signed with MODEL_SIGNING_KEY (HMAC-SHA256)');
  const modelJson = serialize(artifact);
  const modelPath = o.out ?? join(o.modelsDir, `model-${artifact.version}.json`);
  writeFileAtomic(modelPath, modelJson);
  if (o.promote) writeFileAtomic(join(o.modelsDir, 'model.json'), modelJson);
  ev.report.model.source = modelPath;
  ev.report.model.sha256 = artifact.sha256;
  for (const line of describeTest(ev.report.test, `${test.n} held-out test rows`)) out(line);
  out(describeRobustness(ev));

  // 5. Reports and plots.
  const fonts = findFonts();
  if (fonts.warning) warn(fonts.warning);
  const { report: evReport, svgs } = await writeEvaluation(ev, o.resultsDir, stamp, {
    grid: gridSpec(grid, selection.index, selection.rule),
  });
  const metricsPath = join(o.resultsDir, `training_metrics_${artifact.version}.json`);
  const trainingReport: TrainingReport = {
    report: 'training',
    version: artifact.version,
    created_at: createdAt,
    command: `anomaly-detector train ${process.argv.slice(3).join(' ')}`,
    data: { path: o.data, sha256: sha, rows: ds.n, labels: ds.labels !== null, positives: validation.labels.positives },
    metrics: { set: set.label, defs: set.defs },
    validation_report: validationPath,
    split: {
      mode: split.mode,
      seed: o.seed,
      rows: { train: train.n, validation: val.n, test: test.n },
      bounds: split.bounds,
      note: split.note,
    },
    grid: { spec, rule: selection.rule, explanation: selection.explanation, selected: selection.index, results: grid },
    model: {
      path: modelPath,
      promoted: !!o.promote,
      sha256: artifact.sha256,
      threshold: artifact.threshold.value,
      params: artifact.training.params,
    },
    test: ev.report.test,
    evaluation_report: evReport.files.json,
    mlflow: { tracked: false, reason: 'not attempted' },
  };

  // 6. MLflow: run, registry, champion. Failure is a warning unless --require-mlflow.
  if (!client) {
    trainingReport.mlflow = { tracked: false, reason: o.mlflow ? 'MLFLOW_TRACKING_URI is not set' : '--no-mlflow' };
    if (o.mlflow)
      warn(
        'MLFLOW_TRACKING_URI is not set: this run is not tracked in MLflow (set it or pass --mlflow-uri URL; --no-mlflow silences this)',
      );
  } else {
    try {
      const tracked = await trackTraining(client, {
        experiment,
        runName: `train-${artifact.version}`,
        modelName: o.modelName,
        promote: !!o.promote,
        params: runParams(o, split, spec, selection, artifact, ds, set),
        metrics: runMetrics(grid, selection.index, ev),
        tags: runTags(sha, artifact, split, selection, ds),
        modelJson,
        artifacts: runArtifacts(trainingReport, metricsPath, validation, evReport, svgs),
        candidate: comparable(ev.report.test),
        scoreOnTest: (other) => (test.labels ? comparableOf(other, set.names, test.raw, test.n, test.labels, seriesOf(test)) : null),
      });
      trainingReport.mlflow = { tracked: true, ...tracked };
      out(`mlflow: run ${tracked.runId} in experiment '${experiment}' (${tracked.runUrl})`);
      const champion = tracked.champion.moved
        ? `moved to version ${tracked.registeredVersion}`
        : `stays version ${tracked.champion.version}`;
      out(
        `mlflow: registered ${tracked.modelName} version ${tracked.registeredVersion}; ` +
          `champion ${champion}: ${tracked.champion.reason}`,
      );
    } catch (e) {
      if (!(e instanceof MlflowError)) throw e;
      if (o.requireMlflow) throw e;
      trainingReport.mlflow = { tracked: false, reason: e.message };
      warn(`MLflow tracking failed (${e.message}); the model and reports are saved locally (pass --require-mlflow to fail instead)`);
    }
  }
  writeJson(metricsPath, trainingReport);
  out(
    `model ${artifact.version}: ${modelPath}` +
      `${o.promote ? ` and ${join(o.modelsDir, 'model.json')} (promoted)` : ` (${join(o.modelsDir, 'model.json')} unchanged; --promote to replace it)`}`,
  );
  out(`reports: ${metricsPath}, ${evReport.files.html}`);
}

function comparable(t: TestMetrics): ComparableMetrics | null {
  return t.labelled ? { f1: t.labelled.f1, pr_auc: t.labelled.pr_auc } : null;
}

/**
 * Another model's F1 and PR-AUC on the same rows, through the one scoring path; null when it
 * takes other metrics than the rows' (`names`), in any order (it cannot be scored on them).
 */
function comparableOf(
  a: ModelArtifact,
  names: readonly string[],
  raw: Float64Array,
  n: number,
  labels: Uint8Array,
  series: RowSeries,
): ComparableMetrics | null {
  const inputs = artifactInputs(a);
  if (!sameNames(inputs, names)) return null;
  const s = scoreSet(new Detector(a, { inputs }), raw, n, series);
  const l = labelledFigures(s.scores, s.flags, labels);
  return { f1: l.f1, pr_auc: l.pr_auc };
}

function runParams(
  o: TrainCliOptions,
  split: Split,
  spec: GridSpec,
  sel: Selection,
  a: ModelArtifact,
  ds: Dataset,
  set: MetricSet,
): Record<string, string | number | boolean> {
  return {
    data_path: o.data,
    data_rows: ds.n,
    metric_set: set.label,
    metrics: set.names.join(','),
    labels: ds.labels !== null,
    seed: o.seed,
    split: split.mode,
    split_rows: `${split.train.length}/${split.val.length}/${split.test.length}`,
    grid_contamination: spec.contamination.join(','),
    grid_n_estimators: spec.nEstimators.join(','),
    grid_max_samples: spec.maxSamples.join(','),
    selection_rule: sel.rule,
    features: o.features === 'temporal' ? `temporal (window ${o.historyWindow}, span ${TEMPORAL_SPAN})` : 'raw',
    contamination: a.threshold.contamination ?? 'explicit',
    n_estimators: Number(a.training.params.n_estimators),
    max_samples: Number(a.training.params.max_samples),
    subsample: a.forest.subsample,
    threshold: a.threshold.value,
    created_at: a.training.created_at,
    promote: !!o.promote,
  };
}

function runTags(sha: string, a: ModelArtifact, split: Split, sel: Selection, ds: Dataset): Record<string, string> {
  const commit = gitCommit();
  const tags: Record<string, string> = {
    data_sha256: sha,
    git_commit: commit,
    model_version: a.version,
    model_sha256: a.sha256,
    split: split.mode,
    selection_rule: sel.rule,
    labels: ds.labels ? 'present' : 'absent',
    'mlflow.source.name': 'anomaly-detector train',
    'mlflow.source.type': 'LOCAL',
  };
  if (/^[0-9a-f]{40}/.test(commit)) tags['mlflow.source.git.commit'] = commit.slice(0, 40);
  return tags;
}

/** Reports and plots for the run, laid out as evaluation/{evaluation_report.json,.html,plots/*}. */
function runArtifacts(
  tr: TrainingReport,
  metricsPath: string,
  validation: ValidationReport,
  ev: EvaluationReport,
  svgs: Record<string, string>,
): Array<{ path: string; content: Buffer | string }> {
  const files: Array<{ path: string; content: Buffer | string }> = [
    { path: basename(metricsPath), content: `${JSON.stringify(tr, null, 2)}\n` },
    { path: 'validation_report.json', content: `${JSON.stringify(validation, null, 2)}\n` },
  ];
  const plots: EvaluationReport['files']['plots'] = {};
  for (const [name, p] of Object.entries(ev.files.plots)) {
    plots[name] = { svg: `evaluation/plots/${name}.svg`, png: `evaluation/plots/${name}.png` };
    files.push({ path: plots[name].svg, content: readFileSync(p.svg) }, { path: plots[name].png, content: readFileSync(p.png) });
  }
  const remote: EvaluationReport = {
    ...ev,
    files: { json: 'evaluation/evaluation_report.json', html: 'evaluation/evaluation_report.html', plots },
  };
  files.push(
    { path: remote.files.json, content: `${JSON.stringify(remote, null, 2)}\n` },
    { path: remote.files.html, content: evaluationHtml(remote, svgs) },
  );
  return files;
}

// ------------------------------------------------------------------ evaluate

interface EvaluateCliOptions extends MlflowOptions, MetricSetOptions {
  model?: string;
  data: string;
  split: 'all' | SplitMode;
  seed?: number;
  resultsDir: string;
  learn?: boolean;
}

/** The prior of `evaluate --learn` without --model: the bundled model, where the service reads it (MODEL_PATH's default). */
const BUNDLED_MODEL = 'models/model.json';

const MODEL_URI = /^(models|runs|mlflow-artifacts):/;

async function loadModel(o: EvaluateCliOptions & { model: string }): Promise<{ artifact: ModelArtifact; source: string }> {
  if (!MODEL_URI.test(o.model)) return { artifact: parseArtifact(readText(o.model), o.model), source: o.model };
  const env = readPipelineEnv();
  const client = o.mlflow && (o.mlflowUri ?? env.MLFLOW_TRACKING_URI) ? mlflowClient(o, env) : null;
  if (!client) throw new UsageError(`--model ${o.model} needs MLflow: set MLFLOW_TRACKING_URI or pass --mlflow-uri`);
  const resolved = await client.resolveModel(o.model);
  const where = `${o.model}${resolved.version ? ` (version ${resolved.version})` : ''}`;
  return { artifact: parseArtifact(resolved.bytes.toString('utf8'), where), source: where };
}

/**
 * The metric columns of `evaluate`: the model's inputs, with their declarations. `--metrics`
 * or `--mapping`, when given, must name the same metrics (in any order): the columns read
 * are the model's, in its order.
 */
function modelSet(o: MetricSetOptions, artifact: ModelArtifact, source: string): MetricSet {
  const model = declaredSet(`model ${artifact.version}`, declaredMetrics(artifact));
  if (o.metrics === undefined && o.mapping === undefined) return model;
  const given = metricSetOf(o);
  const same = given.names.length === model.names.length && columnsOf(model.names, given.names) !== null;
  if (!same)
    throw new UsageError(
      `${given.option} names the metrics (${given.names.join(', ')}), but the model ${source} takes (${model.names.join(', ')}); ` +
        'evaluate reads the columns of the model: leave out --metrics and --mapping, or name its metrics',
    );
  return model;
}

async function evaluateCommand(o: EvaluateCliOptions): Promise<void> {
  if (o.learn) return evaluateLearningCommand({ ...o, model: o.model ?? BUNDLED_MODEL });
  if (o.model === undefined)
    throw new UsageError("required option '--model <file|uri>' not specified (only --learn has a default, the bundled models/model.json)");
  const { artifact, source } = await loadModel({ ...o, model: o.model });
  const set = modelSet(o, artifact, source);
  // The rows are read in the model's input order, whatever the columns' order in the file.
  const detector = new Detector(artifact, { inputs: set.names });
  if (detector.temporal && o.split === 'random') {
    throw new UsageError(
      `${source} has temporal features: evaluate it with --split time (as it was trained) or all; a random split scatters each host's points`,
    );
  }
  const ds = loadDataset(o.data, set);
  const sha = fileSha256(o.data);
  const seed = o.seed ?? artifact.training.seed;
  const sameData = sha === artifact.training.data_sha256;
  let part = takePart(
    ds,
    Int32Array.from({ length: ds.n }, (_, i) => i),
  );
  let partDesc = `all ${ds.n} rows`;
  let includes: boolean | null = sameData ? true : false;
  const notes: string[] = [];
  if (o.split !== 'all') {
    const split = splitRows(ds.n, { mode: o.split, seed, timestamps: ds.timestamps });
    part = takePart(ds, split.test);
    partDesc = `test split (${o.split}, seed ${seed}): ${part.n} of ${ds.n} rows`;
    if (sameData) {
      includes = seed === artifact.training.seed ? false : null;
      notes.push(
        seed === artifact.training.seed
          ? `the data is the model's training file and the split uses its training seed: these are its ` +
              `held-out test rows if it was trained with --split ${o.split}`
          : "the data is the model's training file but the seed differs from its training seed: the rows may include training rows",
      );
    }
  } else if (sameData) {
    warn(
      `${o.data} is the file this model was trained on: all its rows include the training rows, so the ` +
        `figures are optimistic; pass --split random (or time, as trained) to evaluate on the held-out test rows only`,
    );
  }
  if (!sameData) notes.push("the data is not the model's training file (different sha256)");
  const ev = evaluateModel(detector, part, {
    context: 'evaluate',
    modelSource: source,
    dataPath: o.data,
    dataSha256: sha,
    part: partDesc,
    includesTrainingRows: includes,
    seed,
    notes,
  });
  const fonts = findFonts();
  if (fonts.warning) warn(fonts.warning);
  const { report } = await writeEvaluation(ev, o.resultsDir, fileStamp());
  out(`evaluated model ${artifact.version} (${source}) on ${o.data}: ${partDesc}`);
  for (const line of describeTest(report.test, partDesc)) out(line);
  out(describeRobustness(ev));
  out(
    `report: ${report.files.json}, ${report.files.html}, plots in ${dirname(Object.values(report.files.plots)[0]?.png ?? report.files.html)}`,
  );
}

/** What results/evaluation_learning_<timestamp>.json holds. */
export interface LearningEvaluationReport {
  report: 'evaluation-learning';
  created_at: string;
  command: string;
  detector: {
    kind: 'learning each host';
    description: string;
    prior: { version: string; source: string; sha256: string; threshold: number; inputs: string[]; used: boolean };
    settings: { host_learning: typeof DEFAULT_HOST_LEARNING; gate: GateOptions };
  };
  /** The metric columns streamed (`--metrics`, `--mapping`, or the prior's), with units and ranges. */
  metrics: { set: string; defs: MetricDef[] };
  data: {
    path: string;
    sha256: string;
    file_rows: number;
    streamed_rows: number;
    hosts: number;
    skipped: SkippedRows;
  };
  split: LearningRun['split'];
  figures: LearningFigures;
  stream: { refits: number; seconds: number; rows_per_s: number };
  notes: string[];
  files: { json: string; plots: Record<string, { svg: string; png: string }> };
}

/**
 * `evaluate --learn`: the service's default (learning each host, the model as its prior)
 * streamed over the file's rows; the figures against its labels (src/eval/learning-eval.ts).
 */
async function evaluateLearningCommand(o: EvaluateCliOptions & { model: string }): Promise<void> {
  if (o.split === 'random')
    throw new UsageError(
      '--learn streams every host in time order and learns as it goes: a random split has no meaning for it; ' +
        'use --split all or time (learn on everything, report on the newest 15%)',
    );
  // The alert rule is the service's: GATE_* from the environment (their defaults unless set).
  const gate = loadConfig().poller.gate;
  const { artifact, source } = await loadModel(o);
  // The prior judges a learning host's row on its own columns: any inputs, as long as the set holds them.
  const prior = new Detector(artifact, { inputs: 'any' });
  const set = metricSetOf(o, declaredSet(`the prior ${artifact.version}`, declaredMetrics(artifact)));
  const priorUsed = columnsOf(prior.inputs, set.names) !== null;
  if (!isBasicSet(set)) out(`metrics: ${describeSet(set)}`);
  if (!priorUsed)
    warn(
      `the prior ${artifact.version} takes (${prior.inputs.join(', ')}), not all in the metric set: it is not used; hosts ` +
        'still learning are judged by the fleet model once there is one',
    );
  const sha = fileSha256(o.data);
  const { rows, fileRows, skipped } = readLearningRows(o.data, set);
  if (skipped.invalid + skipped.duplicates > 0)
    warn(
      `${o.data}: ${skipped.invalid} invalid and ${skipped.duplicates} repeated row(s) left out, as the service leaves them out ` +
        `(first: ${skipped.examples[0]})`,
    );
  const run = evaluateLearning(rows, { prior, gate, split: o.split, seed: o.seed ?? artifact.training.seed });
  const f = run.figures;
  const stamp = fileStamp();
  const base = join(o.resultsDir, `evaluation_learning_${stamp}`);
  const plots: LearningEvaluationReport['files']['plots'] = {};
  const learnedIdx = Array.from(run.reported).filter((i) => run.result.learning[i] === 0);
  const c = curves(
    Float64Array.from(learnedIdx, (i) => run.result.scores[i]),
    Uint8Array.from(learnedIdx, (i) => rows.labels[i]),
  );
  if (c) {
    const fonts = findFonts();
    if (fonts.warning) warn(fonts.warning);
    const rendered = await renderCharts({
      roc: rocSpec(c.roc, f.learned.roc_auc),
      pr: prSpec(c.pr, f.learned.pr_auc, c.positive_rate),
    });
    for (const r of rendered) {
      plots[r.name] = { svg: join(`${base}_plots`, `${r.name}.svg`), png: join(`${base}_plots`, `${r.name}.png`) };
      writeFileAtomic(plots[r.name].svg, r.svg);
      writeFileAtomic(plots[r.name].png, r.png);
    }
  }
  const notes = [
    run.split.note,
    'ROC-AUC, PR-AUC and best F1 are over the rows judged by the learned model; rows judged while their host was ' +
      'learning (by the prior) are counted apart; raw flags and alerts are over every row, as the service writes them',
    "best F1 picks the threshold on these very labels (an oracle, for comparison only); the alerts use the detector's own thresholds and gate",
  ];
  if (f.learned.roc_auc === null)
    notes.push('the rows judged by the learned model have a single label class: ROC-AUC and PR-AUC are undefined (null)');
  if (!priorUsed) notes.push(`the prior takes metrics outside the set (${prior.inputs.join(', ')}): it was not used`);
  if (sha === artifact.training.data_sha256)
    notes.push("the data is the prior's training file: the prior judges only learning hosts' rows, but those figures are optimistic");
  const report: LearningEvaluationReport = {
    report: 'evaluation-learning',
    created_at: new Date().toISOString(),
    command: `anomaly-detector evaluate ${process.argv.slice(3).join(' ')}`,
    detector: {
      kind: 'learning each host',
      description:
        'StreamingDetector.learner(hostLearningOptions({ prior, gate, maxKeys })) as the service runs it by default; one pass in (time, host) order',
      prior: {
        version: artifact.version,
        source,
        sha256: artifact.sha256,
        threshold: artifact.threshold.value,
        inputs: [...prior.inputs],
        used: priorUsed,
      },
      settings: { host_learning: DEFAULT_HOST_LEARNING, gate },
    },
    metrics: { set: set.label, defs: set.defs },
    data: { path: o.data, sha256: sha, file_rows: fileRows, streamed_rows: rows.n, hosts: new Set(rows.hosts).size, skipped },
    split: run.split,
    figures: f,
    stream: { refits: run.refits, seconds: run.seconds, rows_per_s: run.seconds > 0 ? rows.n / run.seconds : 0 },
    notes,
    files: { json: `${base}.json`, plots },
  };
  writeJson(report.files.json, report);
  const i = f.incidents;
  out(`evaluated learning each host (prior ${artifact.version}, ${source}) on ${o.data}: ${run.split.note}`);
  out(
    `learned model (${f.learned.rows} rows, ${f.learned.positives} labelled anomalies): ROC-AUC ${f4(f.learned.roc_auc)}, ` +
      `PR-AUC ${f4(f.learned.pr_auc)}, best F1 ${f4(f.learned.best_f1.f1)}`,
  );
  out(
    `raw flags: precision ${f4(f.raw_flags.precision)}, recall ${f4(f.raw_flags.recall)}, F1 ${f4(f.raw_flags.f1)}; ` +
      `alerts: precision ${f4(f.alerts.precision)}, recall ${f4(f.alerts.recall)}, F1 ${f4(f.alerts.f1)} (${f.rows} rows, ${f.positives} labelled)`,
  );
  out(
    `incidents alerted: ${i.alerted} of ${i.incidents}, median delay ${i.median_delay_steps ?? 'n/a'} steps; false alerts per host ` +
      `per day: mean ${f4(i.false_alerts_per_host_per_day.mean)}, max ${f4(i.false_alerts_per_host_per_day.max)} (${i.false_alerts} in all)`,
  );
  out(
    `judged while learning (by the prior): ${f.while_learning.rows} rows, ${f.while_learning.alerts} alerts; ` +
      `${run.refits} refits, ${rows.n} rows in ${run.seconds.toFixed(2)} s`,
  );
  out(`report: ${report.files.json}${c ? `, plots in ${base}_plots` : ''}`);
}

// ------------------------------------------------------------------ validate

async function validateCommand(o: { data: string; resultsDir: string } & MetricSetOptions): Promise<void> {
  const r = validateFile(o.data, undefined, metricSetOf(o));
  const path = writeValidationReports(r, o.resultsDir, fileStamp());
  process.stdout.write(formatValidation(r));
  out(`report: ${path} (also ${join(o.resultsDir, 'validation_report_latest.json')})`);
  if (!r.passed) throw new DataError(`${o.data}: validation failed: ${failureLine(r)}`);
}

// ------------------------------------------------------------------ registration

/** `--metrics` and `--mapping` of train, evaluate and validate. */
const metricSetOptions = (cmd: Command, fallback: string): Command =>
  cmd
    .option(
      '--metrics <set>',
      `the CSV's metric columns: a preset (basic: cpu_usage,memory_usage,network_load; node: those plus load, disk, swap and TCP) ` +
        `or a comma-separated list of column names (units and ranges of the presets' names, else unitless); default ${fallback}`,
    )
    .option('--mapping <file>', "the metric columns of a mapping file (METRICS_MAPPING_FILE's JSON): its names, units and ranges");

const mlflowOptions = (cmd: Command): Command =>
  cmd
    .option('--mlflow-uri <url>', 'MLflow tracking server (default: $MLFLOW_TRACKING_URI)')
    .option('--no-mlflow', 'do not use MLflow (no warning)');

/** Registers `validate`, `train` and `evaluate`. */
export function registerPipelineCommands(program: Command): void {
  const validate = program
    .command('validate')
    .description('check a metrics CSV (schema, ranges, missing values, duplicates, statistics, IQR outliers); exit 1 when it fails')
    .requiredOption('--data <file>', 'CSV (timestamp,host,<metric columns>[,anomaly]; default metrics cpu_usage,memory_usage,network_load)')
    .option('--results-dir <dir>', 'where the JSON reports go', 'results');
  metricSetOptions(validate, 'basic').action(validateCommand);

  const train = program
    .command('train')
    .description('validate, split 70/15/15, grid-search, evaluate on the test split, write the model and reports, log to MLflow')
    .requiredOption(
      '--data <file>',
      'training CSV (timestamp,host,<metric columns>[,anomaly]; default metrics cpu_usage,memory_usage,network_load)',
    )
    .option('--seed <n>', 'random seed of the split, the forests and the robustness suite', intArg('seed', 0, 2 ** 32 - 1), 42)
    .addOption(
      new Option('--split <mode>', 'random (seeded) or time (oldest 70% train, newest 15% test)')
        .choices(['random', 'time'])
        .default('random'),
    )
    .option(
      '--contamination <list>',
      'grid: expected shares of anomalies (set the threshold)',
      listArg('contamination', { min: 0, max: 0.5, exclusive: true }),
      DEFAULT_GRID.contamination,
    )
    .option(
      '--n-estimators <list>',
      'grid: numbers of trees',
      listArg('n-estimators', { int: true, min: 1, max: FOREST_LIMITS.trees }),
      DEFAULT_GRID.nEstimators,
    )
    .option(
      '--max-samples <list>',
      'grid: subsample sizes per tree',
      listArg('max-samples', { int: true, min: 2, max: FOREST_LIMITS.subsample }),
      DEFAULT_GRID.maxSamples,
    )
    .addOption(
      new Option(
        '--features <kind>',
        "raw: the metrics as they are; temporal: also each metric's deviation from its host's rolling median, step and level shift (needs --split time)",
      )
        .choices(['raw', 'temporal'])
        .default('raw'),
    )
    .option(
      '--history-window <points>',
      'with --features temporal: the rolling window, in points of each host',
      intArg('history-window', 2, 4096),
      30,
    )
    .option('--created-at <time>', 'timestamp recorded in the model (fix it for a byte-identical artifact)')
    .option('--out <file>', 'artifact path (default <models-dir>/model-<version>.json)')
    .option('--models-dir <dir>', 'where models go', 'models')
    .option('--results-dir <dir>', 'where reports and plots go', 'results')
    .option('--promote', 'also replace <models-dir>/model.json and make this version the MLflow champion')
    .option('--experiment <name>', 'MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME or anomaly-detector)')
    .option('--model-name <name>', 'registered model name', 'anomaly-detector')
    .option('--require-mlflow', 'fail (exit 1) when MLflow is not configured or not reachable');
  mlflowOptions(metricSetOptions(train, 'basic')).action(trainCommand);

  const evaluate = program
    .command('evaluate')
    .description('test metrics and the robustness suite of a model on a CSV; JSON and HTML report with plots (SVG and PNG)')
    .option(
      '--model <file|uri>',
      'model file, or models:/<name>@<alias>, models:/<name>/<version>, runs:/<run>/model (with --learn: the prior, default models/model.json)',
    )
    .requiredOption('--data <file>', 'CSV (with an anomaly column for labelled figures)')
    .option(
      '--learn',
      "judge the service's default instead: learn each host in one pass over the rows in time order, the model as the prior " +
        '(needs host, timestamp and anomaly columns)',
    )
    .addOption(
      new Option('--split <mode>', 'rows to evaluate: all, or the test part of a random or time split (--learn: all or time)')
        .choices(['all', 'random', 'time'])
        .default('all'),
    )
    .option('--seed <n>', "split and robustness seed (default: the model's training seed)", intArg('seed', 0, 2 ** 32 - 1))
    .option('--results-dir <dir>', 'where the report and plots go', 'results');
  mlflowOptions(metricSetOptions(evaluate, "the model's (with --learn: the prior's)")).action(evaluateCommand);
}
