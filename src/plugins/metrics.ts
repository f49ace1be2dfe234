import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';

/** The service's Prometheus instruments, all on one Registry. */
export interface ServiceMetrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  pointsScored: Counter<'source'>;
  anomalies: Counter<'source'>;
  scores: Histogram<'source'>;
  modelInfo: Gauge<'version'>;
}

/** Creates the instruments on `registry` (a fresh one per app, so tests do not collide). */
export function createMetrics(registry: Registry, withDefaults = true): ServiceMetrics {
  if (withDefaults) collectDefaultMetrics({ register: registry, prefix: 'anomaly_detector_' });
  return {
    registry,
    httpDuration: new Histogram({
      name: 'anomaly_detector_http_request_duration_seconds',
      help: 'HTTP request duration by route and status code',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    pointsScored: new Counter({ name: 'anomaly_detector_points_scored_total', help: 'Points scored', labelNames: ['source'], registers: [registry] }),
    anomalies: new Counter({ name: 'anomaly_detector_anomalies_total', help: 'Points whose score exceeded the threshold', labelNames: ['source'], registers: [registry] }),
    scores: new Histogram({
      name: 'anomaly_detector_score',
      help: 'Anomaly scores s(x) in (0, 1]',
      labelNames: ['source'],
      buckets: [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9],
      registers: [registry],
    }),
    modelInfo: new Gauge({ name: 'anomaly_detector_model_info', help: 'The loaded model (value 1)', labelNames: ['version'], registers: [registry] }),
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ServiceMetrics;
  }
}

/** Times every request into the duration histogram and serves GET /metrics. */
export const metricsPlugin = fp<{ metrics: ServiceMetrics }>(
  async (app, opts) => {
    app.decorate('metrics', opts.metrics);
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      opts.metrics.httpDuration.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    });
    app.get('/metrics', { logLevel: 'warn', schema: { hide: true } }, async (_request, reply) => {
      const body = await opts.metrics.registry.metrics();
      return reply.type(opts.metrics.registry.contentType).send(body);
    });
  },
  { name: 'metrics' },
);
