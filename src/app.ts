import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import type { Config } from './config';
import { ErrorCode, HttpError } from './errors';
import type { ModelStore } from './model-store';
import { bearerAuth } from './plugins/auth';
import { loadShedding } from './plugins/load-shedding';
import { metricsPlugin, type ServiceMetrics } from './plugins/metrics';
import { lazyChildLogger } from './plugins/request-logger';
import { pointRoutes } from './routes/detect';
import { artifactMetrics } from './core/artifact';
import type { Detector } from './core/detector';
import type { MetricDef } from './core/metrics';
import { hostLearningOptions } from './core/host-learning';
import { StreamingDetector } from './core/streaming';
import { healthRoutes, type HealthContributor } from './routes/health';
import { adminRoutes } from './routes/admin';
import { OPERATION_EXAMPLES, withExamples } from './routes/examples';
import { docsFor, fastCheckFor, SECURITY_SCHEMES, sharedSchemas, zodFor } from './routes/schemas';
import type { ModelReloader } from './reloader';

/** Everything the app needs, injected (tests pass their own). */
export interface AppDeps {
  config: Config;
  models: ModelStore;
  metrics: ServiceMetrics;
  /** A pino logger or logger options; false for none. */
  logger?: FastifyServerOptions['logger'] | FastifyServerOptions['loggerInstance'];
  health?: HealthContributor[];
  /** Reloads the model for POST /admin/reload, registered when ADMIN_TOKEN is set. */
  reloader?: Pick<ModelReloader, 'reload'>;
  /** Registers further routes. */
  extend?: (app: FastifyInstance) => Promise<void>;
  /**
   * With DETECT_LEARN: the metric set of /detect's learner (its inputs, with their
   * declarations), which the points must give. Default: the loaded model's metrics.
   */
  metricSet?: readonly MetricDef[];
}

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelStore;
  }
}

export const API_VERSION = '1.0.0';

/**
 * One zod issue of a request body, bounded: zod names every unknown key in one message,
 * which for a body of 370,000 keys would be a reply of megabytes.
 */
function bodyIssue(i: z.core.$ZodIssue): { field: string; message: string } {
  const field = (i.path.length > 6 ? [...i.path.slice(0, 6), '...'] : i.path).join('.').slice(0, 200) || '(body)';
  if (i.code === 'unrecognized_keys') {
    const names = i.keys.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 50)));
    return { field, message: `has ${i.keys.length} unknown key(s): ${names.join(', ')}${i.keys.length > 5 ? ', ...' : ''}` };
  }
  return { field, message: i.message.length > 300 ? `${i.message.slice(0, 300)}...` : i.message };
}

/**
 * The 400 for a JSON body Fastify's parser refused: the syntax error (V8's message, with
 * where it is), or, for a body that is valid JSON, the prototype key it refuses. Other
 * parser errors (an empty body) keep their own message.
 */
function jsonRefusal(err: Error & { code?: string }, body: string): Error {
  if (err.code !== 'FST_ERR_CTP_INVALID_JSON_BODY') return err;
  try {
    JSON.parse(body);
  } catch (e) {
    const why = (e as Error).message;
    return new HttpError(400, ErrorCode.InvalidRequest, `body is not valid JSON: ${why.length > 300 ? `${why.slice(0, 300)}...` : why}`);
  }
  return new HttpError(
    400,
    ErrorCode.InvalidRequest,
    'body has a "__proto__" key or a "constructor" key holding "prototype": refused (prototype poisoning)',
  );
}

/**
 * Request ids where the client sends none: this process's random prefix and a counter,
 * unique across replicas and restarts without a UUID per request.
 */
function requestIds(): () => string {
  const prefix = randomBytes(6).toString('hex');
  let next = 0;
  return () => `${prefix}-${(next++).toString(36)}`;
}

/** The tags of the operations, in the order Swagger UI shows them. */
const TAGS = [
  { name: 'detection', description: 'Score metric points, or only check them' },
  { name: 'operations', description: 'Liveness and readiness probes' },
  { name: 'admin', description: 'Model reload (only with ADMIN_TOKEN)' },
];

/** Builds the Fastify app: plugins, routes and the error handler. No I/O of its own. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const loggerOpt =
    deps.logger && typeof (deps.logger as { info?: unknown }).info === 'function'
      ? { loggerInstance: deps.logger as FastifyServerOptions['loggerInstance'] }
      : { logger: deps.logger ?? false };
  const app = Fastify({
    ...loggerOpt,
    bodyLimit: config.bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: requestIds(),
    // Each request's logger is made when it first logs (a 1-point /detect logs nothing).
    childLoggerFactory: lazyChildLogger,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Slow or idle clients must not hold connections (and file descriptors) for ever: a
    // request must arrive within requestTimeout (else 408), checked every few seconds;
    // a silent connection is closed after connectionTimeout.
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.connectionTimeoutMs,
    keepAliveTimeout: Math.min(72_000, config.connectionTimeoutMs),
    http: {
      requestTimeout: config.requestTimeoutMs,
      headersTimeout: Math.min(60_000, config.requestTimeoutMs),
      connectionsCheckingInterval: Math.max(250, Math.min(30_000, config.requestTimeoutMs / 4)),
    },
    routerOptions: { ignoreTrailingSlash: true },
  } as unknown as FastifyServerOptions);

  app.decorate('models', deps.models);
  // JSON only: anything else is a 415, not a string that fails validation.
  app.removeContentTypeParser(['text/plain']);
  // Fastify's JSON parser (prototype poisoning refused), with a refusal that says why:
  // its own message is the same for a syntax error and for a `__proto__` key.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) =>
    parseJson(request, body as string, (err, value) => (err ? done(jsonRefusal(err, body as string), undefined) : done(null, value))),
  );

  // Request bodies are checked by the zod schema paired with each JSON Schema.
  app.setValidatorCompiler(({ schema }) => {
    const zod = zodFor(schema);
    if (!zod) throw new Error('route schema was not built with schemaOf()');
    // A body the schema's fast check accepts is taken as it is; the others go to zod for the messages.
    const fast = fastCheckFor(schema);
    return (data: unknown) => {
      if (fast?.(data)) return { value: data };
      const r = zod.safeParse(data);
      if (r.success) return { value: r.data };
      const details = r.error.issues.slice(0, 100).map(bodyIssue);
      return {
        error: new HttpError(400, ErrorCode.InvalidRequest, `invalid request body: ${details[0].field} ${details[0].message}`, details),
      };
    };
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; validation?: unknown }, request, reply) => {
    // Refused before its body was read (401, 413, 415): close the connection after the
    // reply rather than keep reading what a slow client sends.
    if (!request.raw.complete) reply.header('connection', 'close');
    if (err instanceof HttpError) {
      if (err.statusCode === 503) reply.header('retry-after', '5');
      return reply.code(err.statusCode).send({
        error: err.code,
        message: err.message,
        details: err.details,
        ...(err.omitted > 0 ? { details_omitted: err.omitted } : {}),
      });
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) {
      request.log.error({ err }, 'request failed');
      const code = status === 503 ? ErrorCode.Overloaded : ErrorCode.Internal;
      return reply
        .code(status)
        .send({ error: code, message: status === 503 ? 'service unavailable, retry later' : 'internal error', details: [] });
    }
    const code =
      status === 413
        ? ErrorCode.PayloadTooLarge
        : status === 415
          ? ErrorCode.UnsupportedMediaType
          : status === 401
            ? ErrorCode.Unauthorized
            : ErrorCode.InvalidRequest;
    return reply.code(status).send({ error: code, message: err.message, details: [] });
  });

  const notFound = (request: FastifyRequest, reply: FastifyReply) =>
    reply
      .code(404)
      .send({ error: ErrorCode.NotFound, message: `no route ${request.method} ${request.url.split('?')[0].slice(0, 200)}`, details: [] });
  // One hook before the body is read (hooks with a callback rather than async ones: no
  // promise per request). An unknown route is answered at once, and the connection closed:
  // a slow client must not hold it by trickling a body nobody will read. Compressed bodies
  // are not decoded: say so (415) instead of failing them as bad JSON.
  app.addHook('onRequest', (request, reply, done) => {
    if (request.is404) {
      if (!request.raw.complete) reply.header('connection', 'close');
      notFound(request, reply);
      return;
    }
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && request.method !== 'GET' && request.method !== 'HEAD' && encoding.trim().toLowerCase() !== 'identity') {
      done(
        new HttpError(
          415,
          ErrorCode.UnsupportedMediaType,
          `content-encoding ${JSON.stringify(encoding.slice(0, 50))} is not supported: send the body uncompressed`,
        ),
      );
      return;
    }
    done();
  });
  app.setNotFoundHandler((request, reply) => {
    notFound(request, reply);
  });

  // Liveness and metrics are exempt (config.shed false): a busy pod is not a dead one.
  await app.register(loadShedding, { maxEventLoopDelayMs: config.maxEventLoopDelayMs, maxConcurrent: config.maxConcurrentRequests });

  // The schemas shared by the routes: response serialization and the OpenAPI components
  // (request bodies are validated by zod, see setValidatorCompiler above).
  for (const schema of Object.values(sharedSchemas(config.maxPointsPerRequest))) app.addSchema(schema);

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Infrastructure anomaly detector',
        version: API_VERSION,
        description: 'Scores CPU, memory and network metric points with an Isolation Forest and explains each score per metric.',
      },
      tags: TAGS,
      components: { securitySchemes: SECURITY_SCHEMES },
    },
    // Components are named after the $id of the shared schemas (Point, Error, ...).
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
    // The documented body is the full one (PointsRequest), not the envelope Fastify checks.
    transform: ({ schema, url }) => {
      const s = schema as Record<string, unknown> | undefined;
      if (!s?.body) return { schema: schema as never, url };
      return { schema: { ...s, body: docsFor(s.body as Record<string, unknown>) } as never, url };
    },
    transformObject: (documentObject) =>
      withExamples((documentObject as { openapiObject: Record<string, unknown> }).openapiObject, OPERATION_EXAMPLES),
  });
  if (config.docsEnabled) await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(metricsPlugin, { metrics: deps.metrics });
  const version = deps.models.current?.detector.version;
  if (version) {
    deps.metrics.modelInfo.reset();
    deps.metrics.modelInfo.set({ version }, 1);
  }

  await app.register(healthRoutes, { startedAt: Date.now(), contributors: deps.health ?? [] });

  await app.register(async (scoped) => {
    if (config.apiToken) scoped.addHook('onRequest', bearerAuth(config.apiToken));
    await scoped.register(pointRoutes, {
      maxPoints: config.maxPointsPerRequest,
      historyHosts: config.detectHistoryHosts,
      ...(config.detectLearn
        ? {
            learner: (prior: Detector) =>
              StreamingDetector.learner(
                hostLearningOptions({
                  prior,
                  gate: config.poller.gate,
                  maxKeys: config.detectHistoryHosts,
                  // The learner's inputs: the metric set given, else the loaded model's (the prior's).
                  metrics: (deps.metricSet ?? artifactMetrics(prior.artifact)).map((d) => d.name),
                }),
              ),
            ...(deps.metricSet ? { metricSet: deps.metricSet } : {}),
          }
        : {}),
    });
  });

  if (config.adminToken && deps.reloader) await app.register(adminRoutes, { token: config.adminToken, reloader: deps.reloader });
  if (deps.extend) await deps.extend(app);
  return app;
}
