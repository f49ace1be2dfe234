import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { Registry } from 'prom-client';
import { buildApp } from './app';
import { loadConfig, type Config } from './config';
import { StartupError } from './errors';
import { startLiveness } from './liveness';
import { ModelStore } from './model-store';
import { FileModelSource, MlflowModelSource, type ModelSource } from './model-source';
import { ModelReloader } from './reloader';
import { createMetrics } from './plugins/metrics';
import { createMetricsStore } from './influx';
import { namedModelStream, Poller } from './poller/poller';
import type { Detector } from './core/detector';
import { hostLearningOptions } from './core/host-learning';
import { loadMapping } from './poller/mapping-file';
import { mappingMetrics, type Mapping } from './poller/telegraf';
import { KafkaSource, readCa } from './kafka/consumer';
import { KafkaTlsError } from './kafka/tls-check';
import { StreamingDetector } from './core/streaming';
import type { ParseOptions } from './core/artifact';

export { StartupError };

/** Builds everything the service runs from a configuration; listens on its port. */
export async function startService(config: Config): Promise<FastifyInstance> {
  const logger = pino({ level: config.logLevel, base: { service: 'anomaly-detector' } });
  const metrics = createMetrics(new Registry());
  const models = new ModelStore();
  const source: ModelSource =
    config.modelUri && config.mlflowTrackingUri
      ? new MlflowModelSource(
          config.modelUri,
          config.mlflowTrackingUri,
          config.modelCacheDir,
          config.mlflowTimeoutMs,
          config.mlflowAuth,
          artifactOptions(config),
        )
      : new FileModelSource(config.modelPath, artifactOptions(config));
  const p = config.poller;
  let mapping: Mapping;
  try {
    mapping = loadMapping(p.mappingFile, p.netIncludeSent, p.metricSet);
  } catch (e) {
    throw new StartupError((e as Error).message);
  }
  const metricSet = mappingMetrics(mapping);
  const setName = p.mappingFile ? `METRICS_MAPPING_FILE ${p.mappingFile}` : `METRIC_SET=${p.metricSet}`;
  const reads = config.kafka !== null || config.influx !== null;
  const reloader = new ModelReloader(source, models, metrics, logger, (d) => {
    // /detect's learner (DETECT_LEARN with a named model) takes the metrics of the model it
    // started with: a model of other metrics would leave every /detect a 503 until a restart.
    const serving = models.current?.detector;
    if (config.detectLearn && !p.learn && serving && serving.inputs.join('\u0000') !== d.inputs.join('\u0000'))
      throw new Error(
        `DETECT_LEARN: /detect's learner takes the metrics of the model it started with (${serving.inputs.join(', ')}); model ${d.version} takes (${d.inputs.join(', ')}): restart the service to change them`,
      );
    const missing = d.inputs.filter((name) => !Object.hasOwn(mapping, name));
    if (missing.length === 0) return;
    if (p.learn)
      logger.warn(
        { model: d.version, inputs: d.inputs, set: metricSet.map((x) => x.name) },
        `the model's metrics are not all in ${setName}: it is no prior; hosts still learning are covered once the fleet model is fitted`,
      );
    else if (reads)
      throw new Error(`model ${d.version} takes metrics (${d.inputs.join(', ')}); ${setName} does not provide ${missing.join(', ')}`);
  });
  try {
    await reloader.initial();
  } catch (e) {
    throw new StartupError((e as Error).message);
  }
  const learnNames = metricSet.map((x) => x.name);
  let poller: Poller | null = null;
  let kafka: KafkaSource | null = null;
  if (config.kafka) kafka = kafkaSource(config, mapping, models, metrics, logger);
  else if (config.influx) {
    const store = metricsStoreOf(config.influx, p.writeBatchPoints);
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
        hostDiscovery: p.hostDiscovery,
        maxHosts: p.maxHosts,
        writer: {
          maxBuffer: p.writeBufferPoints,
          batchSize: p.writeBatchPoints,
          baseBackoffMs: Math.min(500, p.maxBackoffMs),
          maxBackoffMs: p.maxBackoffMs,
        },
        baseBackoffMs: Math.min(1000, p.maxBackoffMs),
        maxBackoffMs: p.maxBackoffMs,
        drift: p.drift,
        refit: p.refit,
        ...(p.learn
          ? {
              learn: {
                ...p.learn,
                options: (prior: Detector) => hostLearningOptions({ prior, gate: p.gate, maxKeys: p.maxHosts, metrics: learnNames }),
              },
            }
          : {}),
      },
      metrics,
      logger.child({ component: 'poller' }),
    );
  }
  const influxOff = {
    name: 'influx',
    check: () => ({ degraded: false, body: { enabled: false, status: 'disabled', last_success: null, last_error: null, lag_s: null } }),
  };
  const app = await buildApp({
    config,
    models,
    metrics,
    logger,
    health: [poller ? poller.health() : kafka ? kafka.health() : influxOff, ...(poller ? [poller.writer.health()] : []), reloader.health()],
    reloader,
    // Learning (no model named): /detect's learner runs over the configured set, as the poller does; a named model serves its own.
    ...(p.learn ? { metricSet } : {}),
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
  if (kafka) {
    // Hooks only before listen (Fastify refuses addHook once listening).
    const running = kafka;
    app.addHook('onClose', async () => running.stop());
  }
  if (config.liveness) {
    const live = await startLiveness({ port: config.liveness.port, host: config.host, stallMs: config.liveness.stallMs }).catch(
      (e: Error) => {
        throw new StartupError(e.message);
      },
    );
    logger.info({ port: live.port }, 'liveness probe on its own thread: GET /health/live');
  }
  await app.listen({ port: config.port, host: config.host });
  limitConnections(app, config.maxConnections ?? connectionsFromDescriptorLimit(descriptorLimit()), metrics, logger);
  if (kafka) {
    await kafka.start().catch((e: unknown) => {
      const k = config.kafka as NonNullable<Config['kafka']>;
      const brokers = k.brokers.join(',');
      // The broker answered and refused the credentials (kafkajs does not retry that): say which, not "cannot reach".
      if ((e as Error).name === 'KafkaJSSASLAuthenticationError' && k.sasl)
        throw new StartupError(
          `Kafka (${brokers}) refused KAFKA_SASL_USERNAME=${k.sasl.username} (KAFKA_SASL_MECHANISM=${k.sasl.mechanism}): ${(e as Error).message}`,
        );
      if (e instanceof KafkaTlsError) throw new StartupError(e.message);
      throw new StartupError(`cannot reach Kafka (${brokers}): ${(e as Error).message}`);
    });
  } else if (poller) {
    poller.start();
    logger.info(
      {
        influx: config.influx?.url,
        api: config.influx?.api,
        intervalMs: config.poller.intervalMs,
        shard: config.poller.shard,
        learning: config.poller.learn !== null,
      },
      config.poller.learn ? 'poller started: learning each host (the loaded model is the prior)' : 'poller started',
    );
  } else logger.info('INFLUX_URL is unset: poller off, serving HTTP only');
  return app;
}

/** The InfluxDB client of the configuration (the poller's source and sink, the Kafka source's sink). */
function metricsStoreOf(i: NonNullable<Config['influx']>, batchSize: number) {
  return createMetricsStore(
    i.api === 'v1' ? { version: 'v1', ...i, timeoutMs: i.timeoutMs, batchSize } : { version: 'v2', ...i, batchSize },
  );
}

/** SOURCE=kafka: the consumer group, writing to InfluxDB (when INFLUX_URL is set) and/or the results topic. */
function kafkaSource(
  config: Config,
  mapping: Mapping,
  models: ModelStore,
  metrics: ReturnType<typeof createMetrics>,
  logger: pino.Logger,
): KafkaSource {
  const k = config.kafka as NonNullable<Config['kafka']>;
  const p = config.poller;
  let ca: string | undefined;
  try {
    ca = readCa(k.tls?.caFile);
  } catch (e) {
    throw new StartupError((e as Error).message);
  }
  const sink = config.influx ? metricsStoreOf(config.influx, p.writeBatchPoints) : null;
  const learn = p.learn;
  return new KafkaSource(
    {
      brokers: k.brokers,
      topic: k.topic,
      groupId: k.groupId,
      clientId: k.clientId,
      resultsTopic: k.resultsTopic,
      ssl: k.tls ? { ca } : null,
      sasl: k.sasl,
      sessionTimeoutMs: k.sessionTimeoutMs,
      concurrency: k.concurrency,
      mapping,
      collectionIntervalMs: p.collectionIntervalMs,
      learnWindowMs: learn ? learn.windowMs : 0,
      engine: (prior: Detector) =>
        learn
          ? StreamingDetector.learner(hostLearningOptions({ prior, gate: p.gate, maxKeys: p.maxHosts, metrics: Object.keys(mapping) }))
          : // Stream time from the first row (0: refit clock not started): a replay rebuilds the same state.
            namedModelStream(prior, p.refit, p.gate, p.maxHosts, 0),
      writeBatchLines: p.writeBatchPoints,
      maxBackoffMs: p.maxBackoffMs,
    },
    models,
    sink,
    metrics,
    logger.child({ component: 'kafka' }),
  );
}

/** How the service bounds and authenticates the artifacts it loads (MODEL_MAX_BYTES, MODEL_SIGNING_KEY). */
export function artifactOptions(config: Pick<Config, 'modelMaxBytes' | 'modelSigningKey'>): ParseOptions {
  return { maxBytes: config.modelMaxBytes, signingKey: config.modelSigningKey };
}

/** The soft limit on open file descriptors (`ulimit -n`), or undefined where it cannot be read. */
export function descriptorLimit(limits = '/proc/self/limits'): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(limits, 'utf8'));
    if (!m) return undefined;
    return m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch {
    return undefined;
  }
}

/**
 * MAX_CONNECTIONS when unset: the descriptor limit minus a quarter of it (at least 64),
 * kept for InfluxDB and MLflow sockets, the model file and /proc reads; 10,000 when the
 * limit is unknown, at most 1,000,000.
 */
export function connectionsFromDescriptorLimit(limit: number | undefined): number {
  if (limit === undefined) return 10_000;
  if (!Number.isFinite(limit)) return 1_000_000;
  return Math.min(1_000_000, Math.max(1, Math.floor(limit - Math.max(64, limit / 4))));
}

/**
 * Caps open connections below the descriptor limit: past the cap Node closes new
 * connections at once (counted), so a flood of slow clients is refused instead of
 * exhausting descriptors, and connections are accepted again as soon as some close.
 * Accept errors (EMFILE despite the cap) are logged, not thrown: an unhandled 'error'
 * on the server would end the process.
 */
function limitConnections(app: FastifyInstance, max: number, metrics: ReturnType<typeof createMetrics>, logger: pino.Logger): void {
  app.server.maxConnections = max;
  let lastDropLog = 0;
  app.server.on('drop', () => {
    metrics.connectionsDropped.inc();
    const now = Date.now();
    if (now - lastDropLog > 10_000) {
      lastDropLog = now;
      logger.warn({ maxConnections: max }, 'connection refused: MAX_CONNECTIONS are open');
    }
  });
  let lastErrorLog = 0;
  app.server.on('error', (err: NodeJS.ErrnoException) => {
    const now = Date.now();
    if (now - lastErrorLog > 10_000) {
      lastErrorLog = now;
      logger.error({ err: err.message, code: err.code }, 'accepting a connection failed');
    }
  });
  logger.info({ maxConnections: max }, 'connection limit');
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
