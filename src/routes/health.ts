import type { FastifyPluginAsync } from 'fastify';
import { errorReplies, ref } from './schemas';

/** A component that adds its state to /health (the poller, the model source, ...). */
export interface HealthContributor {
  /** Key in the /health body. */
  name: string;
  /** Its state; `degraded: true` turns the overall status to degraded (still 200). */
  check(): { degraded: boolean; body: Record<string, unknown> };
}

/** GET /health (readiness) and GET /health/live (liveness). */
export const healthRoutes: FastifyPluginAsync<{ startedAt: number; contributors: HealthContributor[] }> = async (app, opts) => {
  app.get(
    '/health/live',
    {
      logLevel: 'warn',
      config: { shed: false },
      schema: {
        summary: 'Liveness: 200 while the process runs',
        tags: ['operations'],
        operationId: 'liveness',
        response: { 200: ref('Liveness', 'The process runs (never shed under load)'), ...errorReplies([500]) },
      },
    },
    async () => ({ status: 'alive' }),
  );

  app.get(
    '/health',
    {
      logLevel: 'warn',
      schema: {
        summary: 'Readiness: 200 with a model loaded, 503 without',
        tags: ['operations'],
        operationId: 'readiness',
        response: {
          200: ref('Health', 'A model is loaded (status ok, or degraded while a component is)'),
          // No model (a Health body), or shed under load (an Error body). The description is
          // the response's only, not repeated in its schema.
          503: {
            'x-response-description':
              'No model is loaded (status unavailable, a Health body), or overloaded (an Error body, with Retry-After)',
            anyOf: [ref('Health'), ref('Error')],
          },
          ...errorReplies([500]),
        },
      },
    },
    async (_request, reply) => {
      const model = app.models.current;
      const extra: Record<string, unknown> = {};
      let degraded = false;
      for (const c of opts.contributors) {
        const r = c.check();
        extra[c.name] = r.body;
        degraded ||= r.degraded;
      }
      const body = {
        status: !model ? 'unavailable' : degraded ? 'degraded' : 'ok',
        model: model
          ? {
              version: model.detector.version,
              loaded_at: model.loadedAt.toISOString(),
              features: model.detector.features.map((f) => f.name),
              source: model.source,
            }
          : null,
        uptime_s: Math.round((Date.now() - opts.startedAt) / 100) / 10,
        ...extra,
      };
      return reply.code(model ? 200 : 503).send(body);
    },
  );
};
