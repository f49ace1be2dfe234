import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MlflowClient } from '../../src/mlflow/client';
import { MODEL_PATH } from '../helpers/fixtures';
import { MLFLOW_START_TIMEOUT_MS, startMlflowServer, type MlflowServer } from '../helpers/mlflow';
import { startExpectingFailure, startService } from '../helpers/process';

type Health = {
  status: string;
  model: { version: string; source: string };
  model_source: { using_cache: boolean; warning: string | null };
};
const health = async (url: string) => (await (await fetch(`${url}/health`)).json()) as Health;

describe('MODEL_URI: the service loads its model from the MLflow registry (real MLflow server)', () => {
  let server: MlflowServer | undefined;
  const cache = mkdtempSync(join(tmpdir(), 'iad-model-cache-'));
  const modelText = readFileSync(MODEL_PATH, 'utf8');
  const version = (JSON.parse(modelText) as { version: string }).version;
  let runId = '';

  beforeAll(async () => {
    server = await startMlflowServer();
    const client = new MlflowClient({ trackingUri: server.url });
    const exp = await client.getOrCreateExperiment('model-uri-test');
    const run = await client.createRun(exp.experimentId, 'bundled');
    runId = run.runId;
    await client.uploadArtifact(run.runId, 'model/model.json', modelText);
    await client.createRegisteredModel('anomaly-detector');
    const mv = await client.createModelVersion('anomaly-detector', await client.artifactUri(run.runId, 'model'), run.runId);
    await client.setRegisteredModelAlias('anomaly-detector', 'champion', mv.version);
  }, MLFLOW_START_TIMEOUT_MS);

  afterAll(async () => {
    await server?.stop();
  });

  it('serves models:/anomaly-detector@champion, then the cached copy when MLflow is down', async () => {
    const env = {
      MODEL_URI: 'models:/anomaly-detector@champion',
      MLFLOW_TRACKING_URI: (server as MlflowServer).url,
      MODEL_CACHE_DIR: cache,
      MLFLOW_TIMEOUT_S: '3',
    };
    const a = await startService(env);
    try {
      const h = await health(a.url);
      expect(h.status).toBe('ok');
      expect(h.model.version).toBe(version);
      expect(h.model.source).toBe('models:/anomaly-detector@champion (version 1)');
      expect(h.model_source.using_cache).toBe(false);
    } finally {
      await a.stop();
    }
    await (server as MlflowServer).stop();
    server = undefined;
    const b = await startService(env);
    try {
      const h = await health(b.url);
      expect(h.model.version).toBe(version);
      expect(h.status).toBe('degraded');
      expect(h.model_source.using_cache).toBe(true);
      expect(h.model_source.warning).toMatch(/MLflow unreachable .*serving the cached copy of models:\/anomaly-detector@champion/);
      const detect = await fetch(`${b.url}/detect`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ points: [{ cpu_usage: 1, memory_usage: 2, network_load: 3 }] }),
      });
      expect(detect.status).toBe(200);
    } finally {
      await b.stop();
    }
    expect(b.output()).toContain('serving the cached copy');
    // No MLflow and no cache: one line, non-zero exit.
    const c = await startExpectingFailure({ ...env, MODEL_CACHE_DIR: mkdtempSync(join(tmpdir(), 'iad-empty-cache-')) });
    expect(c.code).not.toBe(0);
    expect(c.output.trim().split('\n')).toHaveLength(1);
    expect(c.output).toMatch(/MLflow is unreachable .* and there is no cached copy/);
    expect(runId).not.toBe('');
  }, 120000);
});
