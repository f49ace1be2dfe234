import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MlflowClient } from '../../src/mlflow/client';
import { serialize } from '../../src/core/artifact';
import { MODEL_PATH } from '../helpers/fixtures';
import { metricSetModel } from '../helpers/node-model';
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

  it('keeps the cached copy only of a model it accepted, and serves when it cannot write the cache (a read-only disk)', async () => {
    const url = (server as MlflowServer).url;
    const client = new MlflowClient({ trackingUri: url });
    // A second model of other metrics (the node set), as version 2 under another alias.
    const run = await client.createRun((await client.getOrCreateExperiment('model-uri-test')).experimentId, 'node');
    await client.uploadArtifact(run.runId, 'model/model.json', serialize(metricSetModel()));
    const mv = await client.createModelVersion('anomaly-detector', await client.artifactUri(run.runId, 'model'), run.runId);
    await client.setRegisteredModelAlias('anomaly-detector', 'moving', '1');
    const own = mkdtempSync(join(tmpdir(), 'iad-model-cache-own-'));
    const env = {
      MODEL_URI: 'models:/anomaly-detector@moving',
      MLFLOW_TRACKING_URI: url,
      MODEL_CACHE_DIR: own,
      ADMIN_TOKEN: 'admin-secret-1',
      DETECT_LEARN: 'true',
    };
    const a = await startService(env);
    try {
      const cached = readdirSync(own);
      expect(cached).toHaveLength(1);
      const before = readFileSync(join(own, cached[0]), 'utf8');
      // The alias moves to the node model: /detect's learner cannot take it, the reload is refused...
      await client.setRegisteredModelAlias('anomaly-detector', 'moving', mv.version);
      const r = await fetch(`${a.url}/admin/reload`, { method: 'POST', headers: { authorization: 'Bearer admin-secret-1' } });
      expect(r.status).toBe(422);
      expect(await r.text()).toMatch(/DETECT_LEARN: \/detect's learner takes the metrics of the model it started with/);
      // ...and the cache still holds the model served, for a start while MLflow is down.
      expect(readFileSync(join(own, cached[0]), 'utf8')).toBe(before);
      expect((await health(a.url)).model.version).toBe(version);
    } finally {
      await a.stop();
    }
    // A cache directory that cannot be made (here under a file): a warning, the model served.
    const file = join(mkdtempSync(join(tmpdir(), 'iad-model-cache-file-')), 'f');
    writeFileSync(file, '');
    await client.setRegisteredModelAlias('anomaly-detector', 'moving', '1');
    const b = await startService({ ...env, MODEL_CACHE_DIR: join(file, 'models') });
    try {
      const h = await health(b.url);
      expect(h.model.version).toBe(version);
      expect(h.model_source.warning).toMatch(/cannot keep a cached copy of models:\/anomaly-detector@moving/);
    } finally {
      await b.stop();
    }
  }, 120000);

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
    // An ingress in front of the stopped MLflow answers 503: down as well, the cached copy.
    const ingress = createServer((_req, res) =>
      res.writeHead(503, { 'content-type': 'text/html' }).end('<h1>503 Service Temporarily Unavailable</h1>'),
    );
    await new Promise<void>((r) => ingress.listen(0, '127.0.0.1', r));
    const port = (ingress.address() as AddressInfo).port;
    try {
      const d = await startService({ ...env, MLFLOW_TRACKING_URI: `http://127.0.0.1:${port}` });
      try {
        const h = await health(d.url);
        expect(h.model.version).toBe(version);
        expect(h.model_source.using_cache).toBe(true);
      } finally {
        await d.stop();
      }
    } finally {
      ingress.close();
    }
    // No MLflow and no cache: one line, non-zero exit.
    const c = await startExpectingFailure({ ...env, MODEL_CACHE_DIR: mkdtempSync(join(tmpdir(), 'iad-empty-cache-')) });
    expect(c.code).not.toBe(0);
    expect(c.output.trim().split('\n')).toHaveLength(1);
    expect(c.output).toMatch(/MLflow is unreachable .* and there is no cached copy/);
    expect(runId).not.toBe('');
  }, 120000);
});
