import pino from 'pino';
import { Registry } from 'prom-client';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';
import { ModelStore, loadDetectorFile } from '../src/model-store';
import { createMetrics } from '../src/plugins/metrics';
import { MODEL_PATH } from '../test/helpers/fixtures';
import { metricSetDetector } from '../test/helpers/node-model';

/**
 * `npm run bench`'s server of a model the service cannot load yet from a file (until the
 * loading side takes any inputs): the service's app (buildApp, the configuration from the
 * environment as `serve` reads it, the same plugins and routes) around the model named by
 * argv[3]: `node` (a model of the 13 metrics of the node set, see test/helpers/node-model.ts)
 * or `bundled` (models/model.json). Listens on 127.0.0.1:argv[2].
 */
async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  const which = process.argv[3] ?? 'node';
  const detector = which === 'bundled' ? loadDetectorFile(MODEL_PATH) : metricSetDetector();
  const config = loadConfig(process.env);
  const app = await buildApp({
    config,
    models: ModelStore.fromDetector(detector, `bench:${which}`),
    metrics: createMetrics(new Registry()),
    logger: pino({ level: config.logLevel, base: { service: 'anomaly-detector' } }),
  });
  await app.listen({ port, host: '127.0.0.1' });
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

void main();
