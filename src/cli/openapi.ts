import { Registry } from 'prom-client';
import { buildApp } from '../app';
import { loadConfig } from '../config';
import { ModelStore } from '../model-store';
import { createMetrics } from '../plugins/metrics';

/** The OpenAPI document of an app built with default configuration. */
export async function openApiDocument(): Promise<Record<string, unknown>> {
  const app = await buildApp({
    config: loadConfig({}),
    models: new ModelStore(),
    metrics: createMetrics(new Registry(), false),
    logger: false,
  });
  await app.ready();
  const doc = app.swagger() as unknown as Record<string, unknown>;
  await app.close();
  return doc;
}
