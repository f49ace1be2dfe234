import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Registry } from 'prom-client';
import { buildApp } from './app';
import { loadConfig, type Config } from './config';
import { ModelStore, loadDetectorFile } from './model-store';
import { createMetrics } from './plugins/metrics';

/** Raised for a start-up failure: the message is the one line printed before exit. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/** Builds everything the service runs from a configuration; listens on its port. */
export async function startService(config: Config): Promise<FastifyInstance> {
  const logger = pino({ level: config.logLevel, base: { service: 'anomaly-detector' } });
  let models: ModelStore;
  try {
    models = ModelStore.fromDetector(loadDetectorFile(config.modelPath), config.modelPath);
  } catch (e) {
    throw new StartupError((e as Error).message);
  }
  const detector = models.current?.detector;
  logger.info({ model: detector?.version, source: config.modelPath, threshold: detector?.threshold }, 'model loaded');
  const app = await buildApp({ config, models, metrics: createMetrics(new Registry()), logger });
  await app.listen({ port: config.port, host: config.host });
  return app;
}

/**
 * The only place that listens, handles signals and exits. SIGTERM or SIGINT: stop
 * accepting, finish requests in flight, exit 0 (1 if that takes longer than the timeout).
 */
export async function runServer(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config: Config;
  let app: FastifyInstance;
  try {
    config = loadConfig(env);
    app = await startService(config);
  } catch (e) {
    process.stderr.write(`anomaly-detector: cannot start: ${(e as Error).message}\n`);
    process.exit(1);
  }
  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: finishing requests in flight');
    const timer = setTimeout(() => {
      app.log.error('shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutS * 1000);
    timer.unref();
    app.close().then(
      () => {
        app.log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        app.log.error({ err }, 'error while closing');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
