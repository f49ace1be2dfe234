import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialize } from '../../src/core/artifact';
import { trainModel } from '../../src/core/train';
import { loadDataset } from '../../src/data/dataset';
import { DATA_PATH, MODEL_PATH } from '../helpers/fixtures';
import { startService } from '../helpers/process';

const health = async (url: string) =>
  (await (await fetch(`${url}/health`)).json()) as { model: { version: string }; model_source: { last_reload_error: string | null } };
const waitFor = async (fn: () => Promise<boolean>, ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
};

describe('model reload (SIGHUP and POST /admin/reload)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iad-reload-'));
  const modelFile = join(dir, 'model.json');
  const ds = loadDataset(DATA_PATH);
  const other = serialize(
    trainModel(ds.raw, ds.n, { nEstimators: 50, maxSamples: 128, seed: 99, contamination: 0.05, createdAt: '2026-11-27T00:00:00.000Z' }),
  );
  const otherVersion = (JSON.parse(other) as { version: string }).version;
  const original = (JSON.parse(readFileSync(MODEL_PATH, 'utf8')) as { version: string }).version;

  it('SIGHUP swaps in a new valid model and keeps the old one when the new one fails verification', async () => {
    copyFileSync(MODEL_PATH, modelFile);
    const svc = await startService({ MODEL_PATH: modelFile });
    try {
      expect((await health(svc.url)).model.version).toBe(original);
      writeFileSync(modelFile, other.replace('"seed":99', '"seed":98')); // tampered
      svc.child.kill('SIGHUP');
      expect(await waitFor(async () => (await health(svc.url)).model_source.last_reload_error !== null, 5000)).toBe(true);
      expect((await health(svc.url)).model.version).toBe(original);
      expect((await health(svc.url)).model_source.last_reload_error).toMatch(/checksum mismatch/);
      writeFileSync(modelFile, other);
      svc.child.kill('SIGHUP');
      expect(await waitFor(async () => (await health(svc.url)).model.version === otherVersion, 5000)).toBe(true);
      const metrics = await (await fetch(`${svc.url}/metrics`)).text();
      expect(metrics).toContain(`anomaly_detector_model_info{version="${otherVersion}"} 1`);
      expect(metrics).not.toContain(`anomaly_detector_model_info{version="${original}"}`);
      const detect = (await (
        await fetch(`${svc.url}/detect`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ points: [{ cpu_usage: 1, memory_usage: 2, network_load: 3 }] }),
        })
      ).json()) as { model: { version: string } };
      expect(detect.model.version).toBe(otherVersion);
    } finally {
      expect(await svc.stop()).toBe(0);
    }
  });

  it('POST /admin/reload needs ADMIN_TOKEN, answers the reason on failure and keeps serving', async () => {
    copyFileSync(MODEL_PATH, modelFile);
    const svc = await startService({ MODEL_PATH: modelFile, ADMIN_TOKEN: 'admin-secret-1' });
    try {
      const post = (auth?: string) => fetch(`${svc.url}/admin/reload`, { method: 'POST', headers: auth ? { authorization: auth } : {} });
      expect((await post()).status).toBe(401);
      expect((await post('Bearer wrong-token')).status).toBe(401);
      writeFileSync(modelFile, '{"format":"infra-anomaly-detector/model"');
      const bad = await post('Bearer admin-secret-1');
      expect(bad.status).toBe(422);
      const body = (await bad.json()) as { error: string; message: string };
      expect(body.error).toBe('reload_failed');
      expect(body.message).toMatch(new RegExp(`still serving ${original}: .*not valid JSON`));
      expect((await health(svc.url)).model.version).toBe(original);
      writeFileSync(modelFile, other);
      const ok = await post('Bearer admin-secret-1');
      expect(ok.status).toBe(200);
      expect(await ok.json()).toMatchObject({ reloaded: true, model: { version: otherVersion }, previous_version: original });
    } finally {
      await svc.stop();
    }
  });

  it('has no admin API without ADMIN_TOKEN', async () => {
    const svc = await startService({});
    try {
      expect((await fetch(`${svc.url}/admin/reload`, { method: 'POST' })).status).toBe(404);
    } finally {
      await svc.stop();
    }
  });
});
