import type { FastifyPluginAsync } from 'fastify';
import { ErrorCode, HttpError } from '../errors';
import { bearerAuth } from '../plugins/auth';
import type { ModelReloader } from '../reloader';
import { errorReplies, ref } from './schemas';

/** POST /admin/reload (bearer ADMIN_TOKEN): reloads the model atomically. */
export const adminRoutes: FastifyPluginAsync<{ token: string; reloader: Pick<ModelReloader, 'reload'> }> = async (app, opts) => {
  app.addHook('onRequest', bearerAuth(opts.token));
  app.post(
    '/admin/reload',
    {
      schema: {
        summary: 'Reload the model',
        description:
          'Reloads the model from its source (MODEL_PATH, or MODEL_URI from MLflow) and swaps it in atomically, as SIGHUP does. ' +
          'A model that fails verification leaves the previous one serving (422). Present only when ADMIN_TOKEN is set.',
        tags: ['admin'],
        operationId: 'reload',
        security: [{ adminToken: [] }],
        response: {
          200: ref('ReloadResponse', 'The new model is serving'),
          ...errorReplies([401, 422, 500, 503], { 401: 'Missing or wrong bearer token (ADMIN_TOKEN)' }),
        },
      },
    },
    async () => {
      const r = await opts.reloader.reload();
      if (!r.ok) throw new HttpError(422, ErrorCode.ReloadFailed, `reload failed, still serving ${r.version ?? 'no model'}: ${r.reason}`);
      return { reloaded: true, model: { version: r.version, source: r.source }, previous_version: r.previous };
    },
  );
};
