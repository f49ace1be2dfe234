import { createServer } from 'node:net';
import { MlflowClient, splitBatches, type Metric } from '../../src/mlflow/client';
import { MlflowError } from '../../src/mlflow/errors';
import { artifactProxyPath, parseModelUri } from '../../src/mlflow/uri';
import { MLFLOW_START_TIMEOUT_MS, startMlflowServer, type MlflowServer } from '../helpers/mlflow';

/** The MlflowError a promise rejects with (fails the test if it resolves or throws something else). */
async function mlflowError(p: Promise<unknown>): Promise<MlflowError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof MlflowError) return e;
    throw e;
  }
  throw new Error('expected an MlflowError, the call succeeded');
}

describe('MLflow URIs (no server)', () => {
  it('parses models, runs and mlflow-artifacts URIs', () => {
    expect(parseModelUri('models:/detector@champion')).toEqual({ kind: 'alias', name: 'detector', alias: 'champion' });
    expect(parseModelUri('models:/detector/3')).toEqual({ kind: 'version', name: 'detector', version: '3' });
    expect(parseModelUri('models:/detector/latest')).toEqual({ kind: 'latest', name: 'detector' });
    expect(parseModelUri('runs:/abc123/model/model.json')).toEqual({ kind: 'run', runId: 'abc123', path: 'model/model.json' });
    expect(parseModelUri('mlflow-artifacts:/1/abc/artifacts/model')).toEqual({ kind: 'artifact', path: '1/abc/artifacts/model' });
    expect(artifactProxyPath('mlflow-artifacts://mlflow:5000/2/r/artifacts')).toBe('2/r/artifacts');
    expect(artifactProxyPath('http://h:5000/api/2.0/mlflow-artifacts/artifacts/2/r/artifacts')).toBe('2/r/artifacts');
  });

  it('rejects malformed URIs and paths with one line', () => {
    for (const bad of [
      'models:/',
      'models:/x@',
      'models:/@a',
      'runs:/',
      's3://bucket/model.json',
      'model.json',
      'runs:/abc/../../etc/passwd',
    ]) {
      expect(() => parseModelUri(bad)).toThrow(MlflowError);
    }
    expect(() => artifactProxyPath('s3://bucket/1/r/artifacts')).toThrow(/not served by the tracking server's artifact proxy/);
  });

  it('splits batches within MLflow limits, keeping order', () => {
    const params = Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: String(i) }));
    const metrics = Array.from({ length: 2500 }, (_, i) => ({ key: 'm', value: i, timestamp: 1, step: i }));
    const batches = splitBatches(params, [], metrics);
    for (const b of batches) {
      expect(b.params.length).toBeLessThanOrEqual(100);
      expect(b.metrics.length).toBeLessThanOrEqual(1000);
      expect(b.params.length + b.tags.length + b.metrics.length).toBeLessThanOrEqual(1000);
      expect(Buffer.byteLength(JSON.stringify(b))).toBeLessThan(1_000_000);
    }
    expect(batches.flatMap((b) => b.params)).toEqual(params);
    expect(batches.flatMap((b) => b.metrics)).toEqual(metrics);
    const big = Array.from({ length: 400 }, (_, i) => ({ key: `t${i % 100}`, value: 'x'.repeat(7000) }));
    expect(splitBatches([], big, []).every((b) => Buffer.byteLength(JSON.stringify(b)) < 1_000_000)).toBe(true);
  });
});

describe('MlflowClient against a real mlflow server', () => {
  let server: MlflowServer;
  let client: MlflowClient;
  const started = Date.now();

  beforeAll(async () => {
    server = await startMlflowServer();
    client = new MlflowClient({ trackingUri: server.url, timeoutMs: 20_000 });
    process.stdout.write(`mlflow server ${server.url} healthy after ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }, MLFLOW_START_TIMEOUT_MS);

  afterAll(async () => {
    await server?.stop();
  }, 30_000);

  it('answers /health', async () => {
    expect(await client.health()).toBe(true);
  });

  it('creates an experiment once; asking again returns the same one', async () => {
    const a = await client.getOrCreateExperiment('anomaly-detector-test');
    const [b, c] = await Promise.all([
      client.getOrCreateExperiment('anomaly-detector-test'),
      client.getOrCreateExperiment('anomaly-detector-test'),
    ]);
    expect(a.experimentId).toMatch(/^\d+$/);
    expect(b.experimentId).toBe(a.experimentId);
    expect(c.experimentId).toBe(a.experimentId);
    expect(a.artifactLocation).toMatch(/^mlflow-artifacts:/);
    const other = await client.getOrCreateExperiment('anomaly-detector-test-2');
    expect(other.experimentId).not.toBe(a.experimentId);
    expect(await client.getExperimentByName('no-such-experiment')).toBeNull();
  });

  it('records a run: params, metrics with steps and timestamps, tags, status', async () => {
    const exp = await client.getOrCreateExperiment('runs');
    const run = await client.createRun(exp.experimentId, 'train-1', { 'git.commit': 'abc123' });
    expect(run.status).toBe('RUNNING');
    expect(run.runName).toBe('train-1');
    expect(run.artifactUri).toBe(`mlflow-artifacts:/${exp.experimentId}/${run.runId}/artifacts`);

    // 150 params and 1200 metric values: more than one log-batch request each.
    const params: Record<string, string | number | boolean> = { n_estimators: 100, max_samples: 256, bootstrap: false };
    for (let i = 0; i < 147; i++) params[`grid.${i}`] = i / 10;
    const history: Metric[] = Array.from({ length: 1200 }, (_, step) => ({
      key: 'loss',
      value: 1 / (step + 1),
      step,
      timestamp: 1_700_000_000_000 + step,
    }));
    await client.logBatch(run.runId, { params, metrics: [...history, { key: 'auc', value: 0.93, step: 0 }], tags: { stage: 'train' } });
    await client.logMetrics(run.runId, { f1: 0.5, nan_metric: NaN }, 7, 1_700_000_123_000);
    await client.setTag(run.runId, 'stage', 'evaluated');
    const ended = await client.updateRun(run.runId, 'FINISHED', 1_800_000_000_000);
    expect(ended.status).toBe('FINISHED');
    expect(ended.endTime).toBe(1_800_000_000_000);

    const got = await client.getRun(run.runId);
    expect(got.info.status).toBe('FINISHED');
    expect(Object.keys(got.params)).toHaveLength(150);
    expect(got.params.n_estimators).toBe('100');
    expect(got.params.bootstrap).toBe('false');
    expect(got.params['grid.146']).toBe('14.6');
    expect(got.tags.stage).toBe('evaluated');
    expect(got.tags['git.commit']).toBe('abc123');
    expect(got.tags['mlflow.runName']).toBe('train-1');
    const latest = Object.fromEntries(got.metrics.map((m) => [m.key, m]));
    expect(latest.f1).toMatchObject({ value: 0.5, step: 7, timestamp: 1_700_000_123_000 });
    expect(latest.nan_metric.value).toBeNaN();
    expect(latest.auc.value).toBe(0.93);

    const loss = await client.getMetricHistory(run.runId, 'loss');
    expect(loss).toHaveLength(1200);
    const byStep = [...loss].sort((x, y) => x.step - y.step);
    expect(byStep[0]).toEqual({ key: 'loss', value: 1, step: 0, timestamp: 1_700_000_000_000 });
    expect(byStep[1199]).toEqual({ key: 'loss', value: 1 / 1200, step: 1199, timestamp: 1_700_000_001_199 });
  });

  it('rejects bad input before sending, and passes server refusals through as one line', async () => {
    const exp = await client.getOrCreateExperiment('runs');
    const run = await client.createRun(exp.experimentId, 'bad-input');
    const long = await mlflowError(client.logParams(run.runId, { p: 'x'.repeat(6001) }));
    expect(long.kind).toBe('invalid_argument');
    await client.logParams(run.runId, { p: 1 });
    // MLflow refuses to change a logged param.
    const changed = await mlflowError(client.logParams(run.runId, { p: 2 }));
    expect(changed.kind).toBe('http');
    expect(changed.status).toBe(400);
    expect(changed.errorCode).toBe('INVALID_PARAMETER_VALUE');
    expect(changed.message).toMatch(/^MLflow POST \/api\/2\.0\/mlflow\/runs\/log-batch -> 400 INVALID_PARAMETER_VALUE: /);
    expect(changed.message).not.toContain('\n');
    expect(changed.message.length).toBeLessThanOrEqual(600);
    const missing = await mlflowError(client.getRun('0123456789abcdef0123456789abcdef'));
    expect(missing.notFound).toBe(true);
  });

  it('uploads artifacts through the proxy; list and download give the same bytes back', async () => {
    const exp = await client.getOrCreateExperiment('artifacts');
    const run = await client.createRun(exp.experimentId, 'artifacts');
    const binary = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7919) % 256));
    const text = '{"kind":"report","ünïcode":"✓"}\n';
    await client.uploadArtifact(run.runId, 'model/model.json', text);
    await client.uploadArtifact(run.runId, 'reports/blob.bin', binary);
    await client.uploadArtifact(run.runId, 'reports/name with spaces.txt', 'spaced');

    const root = await client.listArtifacts(run.runId);
    expect(root.map((f) => [f.path, f.isDir]).sort()).toEqual([
      ['model', true],
      ['reports', true],
    ]);
    const reports = await client.listArtifacts(run.runId, 'reports');
    expect(reports.map((f) => f.path).sort()).toEqual(['reports/blob.bin', 'reports/name with spaces.txt']);
    expect(reports.find((f) => f.path === 'reports/blob.bin')?.fileSize).toBe(binary.length);

    expect((await client.downloadArtifact(run.runId, 'reports/blob.bin')).equals(binary)).toBe(true);
    expect((await client.downloadArtifact(run.runId, 'model/model.json')).toString('utf8')).toBe(text);
    expect((await client.downloadArtifact(run.runId, 'reports/name with spaces.txt')).toString()).toBe('spaced');
    const uri = await client.artifactUri(run.runId, 'reports/blob.bin');
    expect(uri).toBe(`mlflow-artifacts:/${exp.experimentId}/${run.runId}/artifacts/reports/blob.bin`);
    expect((await client.downloadArtifact(uri)).equals(binary)).toBe(true);
    expect((await client.downloadArtifact(`runs:/${run.runId}/reports/blob.bin`)).equals(binary)).toBe(true);

    const absent = await mlflowError(client.downloadArtifact(run.runId, 'reports/absent.bin'));
    expect(absent.status).toBe(404);
    await expect(client.uploadArtifact(run.runId, '../escape.txt', 'x')).rejects.toThrow(/must not contain '\.\.'/);
  });

  it('registers a JSON artifact, sets alias champion, and resolves models:/ and runs:/ URIs to the same bytes', async () => {
    const exp = await client.getOrCreateExperiment('registry');
    const run = await client.createRun(exp.experimentId, 'register');
    const model = Buffer.from(JSON.stringify({ format: 'iforest', version: 1, trees: [[0, 1, 2]], checksum: 'abc' }));
    await client.uploadArtifact(run.runId, 'model/model.json', model);

    const rm = await client.createRegisteredModel('infra-anomaly-detector');
    expect(rm.name).toBe('infra-anomaly-detector');
    expect((await client.createRegisteredModel('infra-anomaly-detector')).name).toBe('infra-anomaly-detector');

    // Version 1: the model directory (the file is model.json inside it).
    const v1 = await client.createModelVersion('infra-anomaly-detector', await client.artifactUri(run.runId, 'model'), run.runId);
    expect(v1).toMatchObject({ version: '1', status: 'READY', runId: run.runId });
    // Version 2: the file itself, via a runs:/ source.
    const v2 = await client.createModelVersion('infra-anomaly-detector', `runs:/${run.runId}/model/model.json`, run.runId);
    expect(v2.version).toBe('2');
    expect(await client.getModelVersionDownloadUri('infra-anomaly-detector', '1')).toBe(
      `mlflow-artifacts:/${exp.experimentId}/${run.runId}/artifacts/model`,
    );

    await client.setRegisteredModelAlias('infra-anomaly-detector', 'champion', '1');
    const champion = await client.getModelVersionByAlias('infra-anomaly-detector', 'champion');
    expect(champion.version).toBe('1');
    expect(champion.aliases).toContain('champion');
    expect((await client.getModelVersion('infra-anomaly-detector', '2')).source).toBe(`runs:/${run.runId}/model/model.json`);

    const viaAlias = await client.resolveModel('models:/infra-anomaly-detector@champion');
    expect(viaAlias.bytes.equals(model)).toBe(true);
    expect(viaAlias).toMatchObject({ name: 'infra-anomaly-detector', version: '1', runId: run.runId });
    expect(viaAlias.location).toBe(`mlflow-artifacts:/${exp.experimentId}/${run.runId}/artifacts/model/model.json`);
    expect((await client.resolveModelUri('models:/infra-anomaly-detector/2')).equals(model)).toBe(true);
    expect((await client.resolveModelUri('models:/infra-anomaly-detector/latest')).equals(model)).toBe(true);
    expect((await client.resolveModelUri(`runs:/${run.runId}/model/model.json`)).equals(model)).toBe(true);
    expect((await client.resolveModelUri(`runs:/${run.runId}/model`)).equals(model)).toBe(true);

    // Moving the alias moves what it resolves to.
    const other = Buffer.from('{"format":"iforest","version":2}');
    await client.uploadArtifact(run.runId, 'model-b/model.json', other);
    const v3 = await client.createModelVersion('infra-anomaly-detector', await client.artifactUri(run.runId, 'model-b'), run.runId);
    await client.setRegisteredModelAlias('infra-anomaly-detector', 'champion', v3.version);
    expect((await client.resolveModelUri('models:/infra-anomaly-detector@champion')).equals(other)).toBe(true);
    expect((await client.getRegisteredModel('infra-anomaly-detector')).aliases).toEqual([{ alias: 'champion', version: '3' }]);
    await client.deleteRegisteredModelAlias('infra-anomaly-detector', 'champion');
    await expect(client.resolveModelUri('models:/infra-anomaly-detector@champion')).rejects.toThrow(MlflowError);
  });

  it('fails with one clear line for a missing model, alias, version or run artifact', async () => {
    await client.createRegisteredModel('registered-but-empty');
    const noModel = await mlflowError(client.resolveModelUri('models:/no-such-model@champion'));
    expect(noModel.message).toMatch(
      /^cannot resolve models:\/no-such-model@champion: MLflow GET .*registered-models\/alias -> 404 RESOURCE_DOES_NOT_EXIST: /,
    );
    expect(noModel.notFound).toBe(true);
    const noAlias = await mlflowError(client.resolveModelUri('models:/registered-but-empty@champion'));
    expect(noAlias.message).toMatch(/^cannot resolve models:\/registered-but-empty@champion: .*alias champion not found/);
    const noVersion = await mlflowError(client.resolveModelUri('models:/registered-but-empty/4'));
    expect(noVersion.notFound).toBe(true);
    const noLatest = await mlflowError(client.resolveModelUri('models:/registered-but-empty/latest'));
    expect(noLatest.message).toMatch(/has no version/);
    const exp = await client.getOrCreateExperiment('registry');
    const run = await client.createRun(exp.experimentId, 'empty');
    const noFile = await mlflowError(client.resolveModelUri(`runs:/${run.runId}/model`));
    expect(noFile.status).toBe(404);
    for (const e of [noModel, noAlias, noVersion, noLatest, noFile]) {
      expect(e.name).toBe('MlflowError');
      expect(e.message).not.toContain('\n');
    }
  });
});

describe('MlflowClient without a server', () => {
  it('reports a closed port as unreachable, quickly', async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((ok) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => ok(p));
      });
    });
    for (const host of ['127.0.0.1', 'localhost']) {
      const client = new MlflowClient({ trackingUri: `http://${host}:${port}/`, timeoutMs: 5000 });
      const t0 = Date.now();
      const e = await mlflowError(client.getOrCreateExperiment('x'));
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(e.kind).toBe('unreachable');
      expect(e.message).toBe(`MLflow at http://${host}:${port} is unreachable (ECONNREFUSED)`);
      expect(await client.health()).toBe(false);
    }
  });

  it('times out on a server that accepts and never answers', async () => {
    const sockets: import('node:net').Socket[] = [];
    const silent = createServer((s) => void sockets.push(s));
    await new Promise<void>((ok) => silent.listen(0, '127.0.0.1', ok));
    try {
      const port = (silent.address() as { port: number }).port;
      const client = new MlflowClient({ trackingUri: `http://127.0.0.1:${port}`, timeoutMs: 300 });
      const e = await mlflowError(client.getRun('abc'));
      expect(e.kind).toBe('timeout');
      expect(e.message).toBe(`MLflow at http://127.0.0.1:${port} did not answer GET /api/2.0/mlflow/runs/get within 300 ms`);
    } finally {
      sockets.forEach((s) => s.destroy());
      silent.close();
    }
  });

  it('rejects a tracking URI that is not http(s)', () => {
    expect(() => new MlflowClient({ trackingUri: 'file:///tmp/mlruns' })).toThrow(/must be http\(s\):\/\/host/);
  });
});
