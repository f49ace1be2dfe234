import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Registry } from 'prom-client';
import { buildApp } from './app';
import { loadConfig, type Config } from './config';
import { ModelStore } from './model-store';
import { FileModelSource, MlflowModelSource, type ModelSource } from './model-source';
import { ModelReloader } from './reloader';
import { adminRoutes } from './routes/admin';
import { createMetrics } from './plugins/metrics';
import { createMetricsStore } from './influx';
import { Poller } from './poller/poller';
import { loadMapping } from './poller/mapping-file';

/** Raised for a start-up failure: the message is the one line printed before exit. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/** Builds everything the service runs from a configuration; listens on its port. */
export async function startService(config: Config): Promise<FastifyInstance> {
  const logger = pino({ level: config.logLevel, base: { service: 'anomaly-detector' } });
  const metrics = createMetrics(new Registry());
  const models = new ModelStore();
  const source: ModelSource =
    config.modelUri && config.mlflowTrackingUri
      ? new MlflowModelSource(config.modelUri, config.mlflowTrackingUri, config.modelCacheDir, config.mlflowTimeoutMs, config.mlflowAuth)
      : new FileModelSource(config.modelPath);
  const reloader = new ModelReloader(source, models, metrics, logger);
  try {
    await reloader.initial();
  } catch (e) {
    throw new StartupError((e as Error).message);
  }
  let poller: Poller | null = null;
  if (config.influx) {
    const p = config.poller;
    let mapping;
    try {
      mapping = loadMapping(p.mappingFile, p.netIncludeSent);
    } catch (e) {
      throw new StartupError((e as Error).message);
    }
    const i = config.influx;
    const store = createMetricsStore(i.api === 'v1' ? { version: 'v1', ...i, timeoutMs: i.timeoutMs, batchSize: p.writeBatchPoints } : { version: 'v2', ...i, batchSize: p.writeBatchPoints });
    poller = new Poller(
      store,
      models,
      {
        intervalMs: p.intervalMs,
        maxLookbackMs: p.maxLookbackMs,
        collectionIntervalMs: p.collectionIntervalMs,
        settleMs: p.settleMs,
        mapping,
        gate: p.gate,
        shard: p.shard,
        maxHosts: p.maxHosts,
        writer: { maxBuffer: p.writeBufferPoints, batchSize: p.writeBatchPoints, baseBackoffMs: Math.min(500, p.maxBackoffMs), maxBackoffMs: p.maxBackoffMs },
        baseBackoffMs: Math.min(1000, p.maxBackoffMs),
        maxBackoffMs: p.maxBackoffMs,
        drift: p.drift,
        refit: p.refit,
      },
      metrics,
      logger.child({ component: 'poller' }),
    );
  }
  const influxOff = { name: 'influx', check: () => ({ degraded: false, body: { enabled: false, status: 'disabled', last_success: null, last_error: null, lag_s: null } }) };
  const app = await buildApp({
    config,
    models,
    metrics,
    logger,
    health: [poller ? poller.health() : influxOff, reloader.health()],
    extend: async (a) => {
      if (config.adminToken) await a.register(adminRoutes, { token: config.adminToken, reloader });
    },
  });
  const onHup = (): void => {
    logger.info('SIGHUP: reloading the model');
    void reloader.reload();
  };
  process.on('SIGHUP', onHup);
  app.addHook('onClose', async () => {
    process.off('SIGHUP', onHup);
  });
  if (poller) {
    const running = poller;
    app.addHook('onClose', async () => running.stop(Math.min(5000, config.shutdownTimeoutS * 500)));
  }
  await app.listen({ port: config.port, host: config.host });
  if (poller) {
    poller.start();
    logger.info({ influx: config.influx?.url, api: config.influx?.api, intervalMs: config.poller.intervalMs, shard: config.poller.shard }, 'poller started');
  } else logger.info('INFLUX_URL is unset: poller off, serving HTTP only');
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
