import { Registry } from 'prom-client';
import { buildApp } from '../app';
import { loadConfig } from '../config';
import { ModelStore } from '../model-store';
import { createMetrics } from '../plugins/metrics';

/**
 * The environment the OpenAPI description is built with: the defaults, and ADMIN_TOKEN so
 * that POST /admin/reload is described (a server with ADMIN_TOKEN set serves the same
 * document; without it, the same minus /admin/reload). The token is never used.
 */
export const OPENAPI_ENV: NodeJS.ProcessEnv = { ADMIN_TOKEN: 'openapi-description-only' };

/** The OpenAPI document of an app built with OPENAPI_ENV. */
export async function openApiDocument(): Promise<Record<string, unknown>> {
  const app = await buildApp({
    config: loadConfig(OPENAPI_ENV),
    models: new ModelStore(),
    metrics: createMetrics(new Registry(), false),
    logger: false,
    reloader: { reload: () => Promise.reject(new Error('the OpenAPI app does not reload')) },
  });
  await app.ready();
  const doc = app.swagger() as unknown as Record<string, unknown>;
  await app.close();
  return doc;
}
