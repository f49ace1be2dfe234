import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Registry } from 'prom-client';
import { buildApp, type AppDeps } from '../../src/app';
import { loadConfig } from '../../src/config';
import { Rng } from '../../src/core/random';
import { ModelStore, loadDetectorFile } from '../../src/model-store';
import { createMetrics } from '../../src/plugins/metrics';

/** The checkout: the first directory above this file holding package.json (from test/helpers/, or dist/test/helpers/ in a benchmark). */
export const ROOT = ((): string => {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return resolve(__dirname, '..', '..');
  }
})();
export const MODEL_PATH = resolve(ROOT, 'models', 'model.json');
export const DATA_PATH = resolve(ROOT, 'data', 'system_metrics.csv');

/**
 * Builds the app around the bundled model with a fresh registry and no logger. Load
 * shedding on event loop delay is off unless a test sets MAX_EVENT_LOOP_DELAY_MS: on a
 * loaded 2-core machine a GC pause can pass the default 1 s and shed a test's request.
 */
export async function testApp(env: NodeJS.ProcessEnv = {}, overrides: Partial<AppDeps> = {}) {
  const config = loadConfig({ MAX_EVENT_LOOP_DELAY_MS: '0', ...env });
  const models = ModelStore.fromDetector(loadDetectorFile(MODEL_PATH), MODEL_PATH);
  const app = await buildApp({ config, models, metrics: createMetrics(new Registry(), false), logger: false, ...overrides });
  await app.ready();
  return app;
}

/** n rows x d columns of standard normal values. */
export function gaussian(n: number, d: number, seed: number): Float64Array {
  const r = new Rng(seed);
  const x = new Float64Array(n * d);
  for (let i = 0; i < x.length; i++) x[i] = r.normal();
  return x;
}

/** A normal-looking point for /detect. */
export function normalPoint(i = 0) {
  return { host: `host-${i % 5}`, timestamp: 1767607200000 + i * 60000, cpu_usage: 25 + (i % 7), memory_usage: 45, network_load: 400000 };
}
