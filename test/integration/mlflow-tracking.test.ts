import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrainingReport } from '../../src/cli/pipeline';
import { parseArtifact } from '../../src/core/artifact';
import { fileSha256 } from '../../src/data/csv';
import { MlflowClient } from '../../src/mlflow/client';
import { runCli } from '../helpers/cli';
import { DATA_PATH } from '../helpers/fixtures';
import { MLFLOW_START_TIMEOUT_MS, startMlflowServer, type MlflowServer } from '../helpers/mlflow';

/**
 * `train` and MLflow: a real tracking server (no mock), checked through its REST API;
 * and training while MLflow is unset or down.
 */

const TMP = mkdtempSync(join(tmpdir(), 'iad-mlflow-track-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

/** Small grids keep each run to a few seconds. */
const GOOD = ['--contamination', '0.05,0.1', '--n-estimators', '50', '--max-samples', '128,256'];
const WEAK = ['--contamination', '0.3', '--n-estimators', '3', '--max-samples', '16'];
const lines = (s: string): string[] => s.trim().split('\n').filter(Boolean);

/** The parts of MLflow's REST answers these tests read. */
interface Kv {
  key: string;
  value: string;
}
interface RestRun {
  info: { run_id: string; experiment_id: string; status: string };
  data: { tags: Kv[]; params: Kv[]; metrics: Array<{ key: string; value: number; step: number | string }> };
}
interface Listing {
  files: Array<{ path: string }>;
}

let dirs = 0;
function train(extra: string[], env: NodeJS.ProcessEnv = {}) {
  const dir = join(TMP, `run-${dirs++}`);
  const r = runCli(['train', '--data', DATA_PATH, '--models-dir', dir, '--results-dir', dir, ...extra], env, 120_000);
  const m = /^model (\S+): (\S+)/m.exec(r.stdout);
  return { ...r, dir, version: m?.[1], modelPath: m?.[2] };
}

/** A loopback port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((ok) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
  });
}

describe('train without a reachable MLflow', () => {
  it('MLFLOW_TRACKING_URI unset: one warning line, training goes on (exit 0)', () => {
    const r = train(WEAK);
    expect(r.code).toBe(0);
    expect(lines(r.stderr)).toEqual([
      'warning: MLFLOW_TRACKING_URI is not set: this run is not tracked in MLflow (set it or pass --mlflow-uri URL; --no-mlflow silences this)',
    ]);
    expect(r.modelPath).toBeDefined();
  });

  it('server down: the model and reports are saved, one warning, exit 0; with --require-mlflow: exit 1 with one line', async () => {
    const uri = `http://127.0.0.1:${await closedPort()}`;
    const r = train(WEAK, { MLFLOW_TRACKING_URI: uri });
    expect(r.code).toBe(0);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `^warning: MLflow tracking failed \\(MLflow at ${uri.replace(/\./g, '\\.')} is unreachable \\(ECONNREFUSED\\)\\); the model and reports are saved locally`,
      ),
    );
    const a = parseArtifact(readFileSync(r.modelPath as string, 'utf8'));
    const rep = JSON.parse(readFileSync(join(r.dir, `training_metrics_${a.version}.json`), 'utf8')) as TrainingReport;
    expect(rep.mlflow).toMatchObject({ tracked: false, reason: expect.stringMatching(/ECONNREFUSED/) });

    const req = train([...WEAK, '--mlflow-uri', uri, '--require-mlflow']);
    expect(req.code).toBe(1);
    expect(lines(req.stderr)).toHaveLength(1);
    expect(req.stderr).toMatch(/^anomaly-detector: MLflow at .* is not reachable .* --require-mlflow is set; nothing was trained/);
    expect(req.modelPath).toBeUndefined();

    const unset = train([...WEAK, '--require-mlflow']);
    expect(unset.code).toBe(1);
    expect(unset.stderr).toMatch(/--require-mlflow: no tracking server given/);
  });

  it('a malformed MLFLOW_TRACKING_URI is one configuration line, exit 1 (ignored with --no-mlflow)', () => {
    const r = train(WEAK, { MLFLOW_TRACKING_URI: 'file:///tmp/mlruns' });
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual(['anomaly-detector: invalid configuration: MLFLOW_TRACKING_URI: must be an http(s) URL']);
    const off = train([...WEAK, '--no-mlflow'], { MLFLOW_TRACKING_URI: 'file:///tmp/mlruns' });
    expect(off.stderr).toBe('');
    expect(off.code).toBe(0);
  });
});

describe('train with a real MLflow tracking server', () => {
  let server: MlflowServer;
  beforeAll(async () => {
    server = await startMlflowServer();
  }, MLFLOW_START_TIMEOUT_MS);
  afterAll(async () => {
    await server?.stop();
  });

  /** GET from the tracking server on a fresh connection (a pooled one may be closed while a CLI run takes seconds). */
  function get(path: string): Promise<{ status: number; body: Buffer }> {
    return new Promise((ok, fail) => {
      const req = httpGet(`${server.url}${path}`, { agent: false, timeout: 20_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', fail);
      });
      req.on('timeout', () => req.destroy(new Error(`GET ${path}: timeout`)));
      req.on('error', fail);
    });
  }
  /** GET a REST endpoint of the tracking server. */
  async function rest<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const res = await get(`/api/2.0/mlflow/${path}?${new URLSearchParams(params)}`);
    const body = JSON.parse(res.body.toString('utf8')) as T;
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  }
  async function artifactBytes(runId: string, path: string, experimentId: string): Promise<Buffer> {
    const res = await get(`/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${runId}/artifacts/${path}`);
    if (res.status !== 200) throw new Error(`artifact ${path}: ${res.status}`);
    return res.body;
  }
  async function runOf(stdout: string) {
    const id = (/^mlflow: run (\S+) in experiment/m.exec(stdout) as RegExpExecArray)[1];
    return (await rest<{ run: RestRun }>('runs/get', { run_id: id })).run;
  }
  const tagsOf = (run: RestRun): Record<string, string> => Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]));
  const paramsOf = (run: RestRun): Record<string, string> => Object.fromEntries(run.data.params.map((t) => [t.key, t.value]));
  const metricsOf = (run: RestRun): Record<string, number> => Object.fromEntries(run.data.metrics.map((t) => [t.key, t.value]));
  const champion = async (name = 'anomaly-detector') =>
    (
      (await rest<{ registered_model: { aliases?: Array<{ alias: string; version: string }> } }>('registered-models/get', { name }))
        .registered_model.aliases ?? []
    ).find((a) => a.alias === 'champion')?.version;

  it('logs run, params, metrics (grid as steps), tags and artifacts, registers every model, and moves champion only when beaten or promoted', async () => {
    // 1. A weak model: the first version becomes champion (there was none).
    const weak = train([...WEAK, '--mlflow-uri', server.url]);
    expect(weak.stderr).toBe('');
    expect(weak.code).toBe(0);
    expect(weak.stdout).toMatch(/^mlflow: registered anomaly-detector version 1; champion moved to version 1: there was no champion yet/m);
    expect(await champion()).toBe('1');

    // 2. A better model (tracking URI from the environment): version 2 beats it on the same test rows.
    const good = train([...GOOD, '--experiment', 'pipeline-test'], { MLFLOW_TRACKING_URI: server.url });
    expect(good.stderr).toBe('');
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/champion moved to version 2: beats the champion \(version 1\): test F1 0\.\d{4} vs 0\.\d{4}/);
    expect(await champion()).toBe('2');

    const exp = (await rest<{ experiment: { experiment_id: string } }>('experiments/get-by-name', { experiment_name: 'pipeline-test' }))
      .experiment;
    const run = await runOf(good.stdout);
    expect(run.info.experiment_id).toBe(exp.experiment_id);
    expect(run.info.status).toBe('FINISHED');
    const local = readFileSync(good.modelPath as string, 'utf8');
    const a = parseArtifact(local);
    const report = JSON.parse(readFileSync(join(good.dir, `training_metrics_${a.version}.json`), 'utf8')) as TrainingReport;
    const labelled = report.test.labelled;
    if (!labelled) throw new Error('expected labelled test figures');

    const tags = tagsOf(run);
    expect(tags.data_sha256).toBe(fileSha256(DATA_PATH));
    expect(tags.model_version).toBe(a.version);
    expect(tags.git_commit).toMatch(/^([0-9a-f]{40}(-dirty)?|unknown)$/);
    expect(tags).toMatchObject({
      selection_rule: 'validation_f1',
      split: 'random',
      labels: 'present',
      registered_version: '2',
      champion: 'true',
    });

    const params = paramsOf(run);
    expect(params).toMatchObject({
      seed: '42',
      split: 'random',
      split_rows: '12096/2592/2592',
      grid_contamination: '0.05,0.1',
      grid_n_estimators: '50',
      grid_max_samples: '128,256',
      selection_rule: 'validation_f1',
      metric_set: 'basic',
      metrics: 'cpu_usage,memory_usage,network_load',
    });
    expect(Number(params.n_estimators)).toBe(a.training.params.n_estimators);
    expect(Number(params.threshold)).toBe(a.threshold.value);

    const metrics = metricsOf(run);
    expect(metrics.test_f1).toBeCloseTo(labelled.f1, 12);
    expect(metrics.test_roc_auc).toBeCloseTo(labelled.roc_auc as number, 12);
    expect(metrics.test_tp + metrics.test_fn).toBe(labelled.positives);
    expect(metrics.test_latency_p99_us).toBeGreaterThan(0);
    expect(metrics.robustness_outliers_x10_detection_rate).toBeGreaterThan(0.9);
    const history = (
      await rest<{ metrics: RestRun['data']['metrics'] }>('metrics/get-history', { run_id: run.info.run_id, metric_key: 'grid_val_f1' })
    ).metrics;
    expect(history.map((m) => Number(m.step)).sort()).toEqual([0, 1, 2, 3]);
    expect(history.map((m) => m.value).sort()).toEqual(report.grid.results.map((g) => g.val?.f1).sort());

    const top = (await rest<Listing>('artifacts/list', { run_id: run.info.run_id })).files.map((f) => f.path);
    expect(top).toEqual(expect.arrayContaining(['model', 'evaluation', 'validation_report.json', `training_metrics_${a.version}.json`]));
    const plots = (await rest<Listing>('artifacts/list', { run_id: run.info.run_id, path: 'evaluation/plots' })).files.map((f) => f.path);
    for (const p of ['roc', 'pr', 'score_histogram', 'robustness', 'contributions', 'grid'])
      expect(plots).toEqual(expect.arrayContaining([`evaluation/plots/${p}.png`, `evaluation/plots/${p}.svg`]));
    expect((await artifactBytes(run.info.run_id, 'model/model.json', exp.experiment_id)).toString('utf8')).toBe(local);
    expect((await artifactBytes(run.info.run_id, 'evaluation/evaluation_report.html', exp.experiment_id)).toString('utf8')).toMatch(
      /<svg[\s\S]*href="plots\/roc\.png"/,
    );

    const mv = (await rest<{ model_version: Record<string, unknown> }>('model-versions/get', { name: 'anomaly-detector', version: '2' }))
      .model_version;
    expect(mv).toMatchObject({
      run_id: run.info.run_id,
      status: 'READY',
      source: `mlflow-artifacts:/${exp.experiment_id}/${run.info.run_id}/artifacts/model`,
    });
    expect(
      (await rest<{ model_version: { version: string } }>('registered-models/alias', { name: 'anomaly-detector', alias: 'champion' }))
        .model_version.version,
    ).toBe('2');
    // What the service will load: models:/anomaly-detector@champion is this artifact, byte for byte.
    const resolved = await new MlflowClient({ trackingUri: server.url }).resolveModel('models:/anomaly-detector@champion');
    expect(resolved.bytes.toString('utf8')).toBe(local);

    // 3. The weak model again: registered as version 3, but the champion stays.
    const again = train([...WEAK, '--mlflow-uri', server.url]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(
      /registered anomaly-detector version 3; champion stays version 2: does not beat the champion \(version 2\)/,
    );
    expect(await champion()).toBe('2');
    expect(tagsOf(await runOf(again.stdout))).toMatchObject({ champion: 'false', registered_version: '3' });

    // 4. --promote: the champion moves anyway, and models/model.json is replaced.
    const promoted = train([...WEAK, '--mlflow-uri', server.url, '--promote']);
    expect(promoted.code).toBe(0);
    expect(promoted.stdout).toMatch(/version 4; champion moved to version 4: --promote \(replaces version 2\)/);
    expect(await champion()).toBe('4');
    expect(readFileSync(join(promoted.dir, 'model.json'), 'utf8')).toBe(readFileSync(promoted.modelPath as string, 'utf8'));

    // 5. Another metric set: its params say so, and a champion of other metrics cannot be scored on its rows, so it stays.
    const names = ['cpu_usage', 'memory_usage', 'network_load', 'disk_io_time'];
    const rows = Array.from({ length: 1200 }, (_, i) => {
      const bad = i % 40 === 39;
      const w = (i * 7) % 17;
      const values = [bad ? 97 : 20 + w, 40 + w, (bad ? 6 : 1) * (1e5 + 1e3 * w), bad ? 900 : 50 + w];
      return `${Date.UTC(2026, 0, 1) + i * 60000},h${i % 2},${values.join(',')},${bad ? 1 : 0}`;
    });
    const nodeData = join(TMP, 'disk.csv');
    writeFileSync(nodeData, `timestamp,host,${names.join(',')},anomaly\n${rows.join('\n')}\n`);
    const dir = join(TMP, 'run-disk');
    const disk = runCli(
      [
        'train',
        '--data',
        nodeData,
        '--metrics',
        names.join(','),
        ...GOOD,
        '--models-dir',
        dir,
        '--results-dir',
        dir,
        '--mlflow-uri',
        server.url,
      ],
      {},
      120_000,
    );
    expect(disk.stderr).toBe('');
    expect(disk.code).toBe(0);
    expect(disk.stdout).toMatch(/version 5; champion stays version 4: the champion \(version 4\) could not be scored on the test data/);
    expect(await champion()).toBe('4');
    expect(paramsOf(await runOf(disk.stdout))).toMatchObject({ metric_set: 'columns', metrics: names.join(',') });
  }, 300_000);

  it('without labels the champion does not move: nothing shows the model is better', async () => {
    const before = await champion();
    const data = join(TMP, 'unlabelled.csv');
    const text = readFileSync(DATA_PATH, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => l.split(',').slice(0, 5).join(','));
    writeFileSync(data, `${text.join('\n')}\n`);
    const dir = join(TMP, 'unlabelled');
    const r = runCli(
      ['train', '--data', data, ...GOOD, '--models-dir', dir, '--results-dir', dir, '--mlflow-uri', server.url],
      {},
      120_000,
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/champion stays version \d+: the data has no labels, so nothing shows this model beats the champion/);
    expect(await champion()).toBe(before);
  }, 120_000);
});
