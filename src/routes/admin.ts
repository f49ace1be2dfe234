import type { FastifyPluginAsync } from 'fastify';
import { ErrorCode, HttpError } from '../errors';
import { bearerAuth } from '../plugins/auth';
import type { ModelReloader } from '../reloader';

/** POST /admin/reload (bearer ADMIN_TOKEN): reloads the model atomically. */
export const adminRoutes: FastifyPluginAsync<{ token: string; reloader: ModelReloader }> = async (app, opts) => {
  app.addHook('onRequest', bearerAuth(opts.token));
  app.post('/admin/reload', { schema: { hide: true } }, async () => {
    const r = await opts.reloader.reload();
    if (!r.ok) throw new HttpError(422, ErrorCode.ReloadFailed, `reload failed, still serving ${r.version ?? 'no model'}: ${r.reason}`);
    return { reloaded: true, model: { version: r.version, source: r.source }, previous_version: r.previous };
  });
};
