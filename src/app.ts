import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Config } from './config';
import { ErrorCode, HttpError } from './errors';
import type { ModelStore } from './model-store';
import { bearerAuth } from './plugins/auth';
import { loadShedding } from './plugins/load-shedding';
import { metricsPlugin, type ServiceMetrics } from './plugins/metrics';
import { pointRoutes } from './routes/detect';
import type { Detector } from './core/detector';
import { hostLearningOptions } from './core/host-learning';
import { StreamingDetector } from './core/streaming';
import { healthRoutes, type HealthContributor } from './routes/health';
import { docsFor, zodFor } from './routes/schemas';

/** Everything the app needs, injected (tests pass their own). */
export interface AppDeps {
  config: Config;
  models: ModelStore;
  metrics: ServiceMetrics;
  /** A pino logger or logger options; false for none. */
  logger?: FastifyServerOptions['logger'] | FastifyServerOptions['loggerInstance'];
  health?: HealthContributor[];
  /** Registers further routes (the admin API, for example). */
  extend?: (app: FastifyInstance) => Promise<void>;
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

/** Builds the Fastify app: plugins, routes and the error handler. No I/O of its own. */
/** Descriptions of the responses whose schema gives none (OpenAPI requires one). */
const RESPONSE_DESCRIPTIONS: Record<string, string> = {
  '200': 'Success',
  '400': 'Invalid request: the error body lists the issues (bounded, with a count of those left out)',
  '401': 'Missing or wrong bearer token',
  '404': 'Not found',
  '413': 'Body larger than BODY_LIMIT',
  '415': 'Unsupported content type or encoding',
  '503': 'No model loaded, overloaded (Retry-After), or not ready',
};

/** Operations that need a bearer token: /detect and /validate when API_TOKEN is set, /admin/reload (ADMIN_TOKEN). */
const TOKEN_ROUTES = new Set(['/detect', '/validate', '/admin/reload']);

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
    genReqId: () => randomUUID(),
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
  // Compressed bodies are not decoded: say so (415) instead of failing them as bad JSON.
  app.addHook('preParsing', async (request) => {
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && request.method !== 'GET' && request.method !== 'HEAD' && encoding.trim().toLowerCase() !== 'identity') {
      throw new HttpError(
        415,
        ErrorCode.UnsupportedMediaType,
        `content-encoding ${JSON.stringify(encoding.slice(0, 50))} is not supported: send the body uncompressed`,
      );
    }
  });
  // JSON only: anything else is a 415, not a string that fails validation.
  app.removeContentTypeParser(['text/plain']);

  // Request bodies are checked by the zod schema paired with each JSON Schema.
  app.setValidatorCompiler(({ schema }) => {
    const zod = zodFor(schema);
    if (!zod) throw new Error('route schema was not built with schemaOf()');
    return (data: unknown) => {
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
  // An unknown route is answered before its body is read, and the connection closed: a
  // slow client must not hold it by trickling a body nobody will read.
  app.addHook('onRequest', async (request, reply) => {
    if (!request.is404) return;
    if (!request.raw.complete) reply.header('connection', 'close');
    return notFound(request, reply);
  });
  app.setNotFoundHandler((request, reply) => {
    notFound(request, reply);
  });

  // Liveness and metrics are exempt (config.shed false): a busy pod is not a dead one.
  await app.register(loadShedding, { maxEventLoopDelayMs: config.maxEventLoopDelayMs, maxConcurrent: config.maxConcurrentRequests });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Infrastructure anomaly detector',
        version: API_VERSION,
        description: 'Scores CPU, memory and network metric points with an Isolation Forest and explains each score per metric.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: ({ schema, url }) => {
      const s = schema as Record<string, unknown> | undefined;
      if (!s) return { schema: schema as never, url };
      const out: Record<string, unknown> = { ...s };
      if (s.body) out.body = docsFor(s.body as Record<string, unknown>);
      // Every response described; the token-protected operations say so.
      if (s.response) {
        out.response = Object.fromEntries(
          Object.entries(s.response as Record<string, Record<string, unknown>>).map(([code, r]) => [
            code,
            r.description ? r : { ...r, description: RESPONSE_DESCRIPTIONS[code] ?? 'Response' },
          ]),
        );
      }
      if (TOKEN_ROUTES.has(url)) out.security = [{ bearer: [] }];
      return { schema: out as never, url };
    },
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
              StreamingDetector.learner(hostLearningOptions({ prior, gate: config.poller.gate, maxKeys: config.detectHistoryHosts })),
          }
        : {}),
    });
  });

  if (deps.extend) await deps.extend(app);
  return app;
}
