import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { buildApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { ModelStore } from '../../src/model-store';
import { createMetrics } from '../../src/plugins/metrics';
import { OPENAPI_ENV, openApiDocument } from '../../src/cli/openapi';
import { normalPoint, ROOT, testApp } from '../helpers/fixtures';

describe('GET /health', () => {
  it('reports the model, its load time and features', async () => {
    const app = await testApp();
    const res = await app.inject({ url: '/health' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.status).toBe('ok');
    expect(body.model.version).toMatch(/^\d{8}-/);
    expect(Date.parse(body.model.loaded_at)).toBeLessThanOrEqual(Date.now());
    expect(body.model.features).toEqual(['cpu_usage', 'memory_usage', 'network_load']);
    expect(body.uptime_s).toBeGreaterThanOrEqual(0);
    expect((await app.inject({ url: '/health/live' })).statusCode).toBe(200);
    await app.close();
  });

  it('answers 503 without a model, while /health/live stays 200 and /detect says why', async () => {
    const app = await buildApp({
      config: loadConfig({}),
      models: new ModelStore(),
      metrics: createMetrics(new Registry(), false),
      logger: false,
    });
    const res = await app.inject({ url: '/health' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'unavailable', model: null });
    expect((await app.inject({ url: '/health/live' })).statusCode).toBe(200);
    const d = await app.inject({ method: 'POST', url: '/detect', payload: { points: [normalPoint(0)] } });
    expect(d.statusCode).toBe(503);
    expect(d.headers['retry-after']).toBe('5');
    expect(d.json().error).toBe('model_unavailable');
    await app.close();
  });

  it('lets other components report degraded state (still 200)', async () => {
    const app = await testApp(
      {},
      { health: [{ name: 'influx', check: () => ({ degraded: true, body: { enabled: true, status: 'unreachable' } }) }] },
    );
    const res = await app.inject({ url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'degraded', influx: { enabled: true, status: 'unreachable' } });
    await app.close();
  });
});

describe('GET /metrics', () => {
  it('exposes request durations, points, anomalies, scores and the model version', async () => {
    const app = await testApp();
    await app.inject({
      method: 'POST',
      url: '/detect',
      payload: { points: [normalPoint(0), normalPoint(1), { cpu_usage: 100, memory_usage: 99, network_load: 1e8 }] },
    });
    const res = await app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    const text = res.body;
    expect(text).toMatch(/anomaly_detector_http_request_duration_seconds_count\{method="POST",route="\/detect",status_code="200"\} 1/);
    expect(text).toMatch(/anomaly_detector_points_scored_total\{source="http"\} 3/);
    expect(text).toMatch(/anomaly_detector_anomalies_total\{source="http"\} 1/);
    expect(text).toMatch(/anomaly_detector_score_count\{source="http"\} 3/);
    const version = app.models.current?.detector.version;
    expect(text).toContain(`anomaly_detector_model_info{version="${version}"} 1`);
    await app.close();
  });

  it('includes process metrics when defaults are on', async () => {
    const metrics = createMetrics(new Registry(), true);
    const text = await metrics.registry.metrics();
    expect(text).toContain('anomaly_detector_process_resident_memory_bytes');
  });
});

describe('OpenAPI', () => {
  type Op = {
    operationId: string;
    tags: string[];
    security?: unknown;
    requestBody?: { content: Record<string, { schema: unknown; examples?: Record<string, { value: unknown }> }> };
    responses: Record<
      string,
      { description: string; content?: Record<string, { schema: unknown; examples?: Record<string, { value: unknown }> }> }
    >;
  };
  const reloader = { reload: () => Promise.reject(new Error('not in this test')) };

  it('openapi.yaml equals what a server with ADMIN_TOKEN serves; without it, the same minus /admin/reload', async () => {
    const app = await testApp(OPENAPI_ENV, { reloader });
    const served = (await app.inject({ url: '/openapi.json' })).json();
    const file = parse(readFileSync(resolve(ROOT, 'openapi.yaml'), 'utf8'));
    expect(file).toEqual(served);
    expect(Object.keys(served.paths).sort()).toEqual(['/admin/reload', '/detect', '/health', '/health/live', '/validate']);
    const docs = await app.inject({ url: '/docs' });
    expect([200, 302]).toContain(docs.statusCode);
    await app.close();
    const plain = await testApp();
    const { '/admin/reload': admin, ...paths } = file.paths;
    expect(admin).toBeDefined();
    expect((await plain.inject({ url: '/openapi.json' })).json()).toEqual({ ...file, paths });
    await plain.close();
  });

  it('describes every response, tags every operation and declares the token each one needs', async () => {
    const doc = await openApiDocument();
    const tags = (doc.tags as { name: string }[]).map((t) => t.name);
    expect(tags).toEqual(['detection', 'operations', 'admin']);
    const security: Record<string, unknown> = {
      detect: [{ apiToken: [] }],
      validate: [{ apiToken: [] }],
      reload: [{ adminToken: [] }],
      liveness: undefined,
      readiness: undefined,
    };
    const ops = Object.values(doc.paths as Record<string, Record<string, Op>>).flatMap((item) => Object.values(item));
    expect(ops.map((o) => o.operationId).sort()).toEqual(Object.keys(security).sort());
    for (const op of ops) {
      expect(op.tags).toHaveLength(1);
      expect(tags).toContain(op.tags[0]);
      expect(op.security).toEqual(security[op.operationId]);
      for (const [status, r] of Object.entries(op.responses)) {
        expect(r.description).toBeTruthy();
        expect(r.description).not.toBe('Default Response');
        // Every error reply is the shared Error body (or, /health's 503, Health or Error).
        if (Number(status) >= 400 && !(op.operationId === 'readiness' && status === '503')) {
          expect(r.content?.['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
        }
      }
    }
    const schemes = (doc.components as { securitySchemes: Record<string, unknown> }).securitySchemes;
    expect(Object.keys(schemes).sort()).toEqual(['adminToken', 'apiToken']);
  });

  it('keeps the shared schemas in components, referenced by $ref, with the full point schema', async () => {
    const doc = await openApiDocument();
    const schemas = (doc.components as { schemas: Record<string, Record<string, unknown>> }).schemas;
    for (const name of ['Point', 'PointsRequest', 'PointResult', 'DetectResponse', 'ValidateResponse', 'Error', 'Health']) {
      expect(schemas[name]).toBeDefined();
    }
    // Every reference resolves, and no component is left unreferenced.
    const text = JSON.stringify(doc);
    const refs = new Set([...text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]));
    expect([...refs].sort()).toEqual(Object.keys(schemas).sort());
    const paths = doc.paths as Record<string, Record<string, Op>>;
    for (const path of ['/detect', '/validate']) {
      expect(paths[path].post.requestBody?.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/PointsRequest' });
    }
    // The documented body is the full point schema, not the loose envelope Fastify checks.
    expect(schemas.PointsRequest).toMatchObject({
      properties: { points: { maxItems: 10000, items: { $ref: '#/components/schemas/Point' } } },
    });
    const point = schemas.Point as { properties: Record<string, unknown>; required?: string[] };
    expect(point.properties.cpu_usage).toMatchObject({ minimum: 0, maximum: 100 });
    // Both forms: the three top-level fields or metrics by name, so no field is required as such.
    expect(point.required ?? []).toEqual([]);
    expect(point.properties.metrics).toMatchObject({ type: 'object', additionalProperties: { type: 'number' } });
    expect(schemas.Contributions).toMatchObject({ type: 'object', additionalProperties: { type: 'number' } });
    const examples = Object.keys(paths['/detect'].post.requestBody?.content['application/json'].examples ?? {});
    expect(examples).toEqual(expect.arrayContaining(['twoPoints', 'namedMetrics']));
  });

  it('gives examples of /detect and /validate that are what the bundled model answers', async () => {
    const doc = await openApiDocument();
    const app = await testApp();
    const paths = doc.paths as Record<string, Record<string, Op>>;
    for (const path of ['/detect', '/validate']) {
      const op = paths[path].post;
      const requests = Object.entries(op.requestBody?.content['application/json'].examples ?? {});
      expect(requests.length).toBeGreaterThan(0);
      const responses = Object.entries(op.responses).flatMap(([status, r]) =>
        Object.entries(r.content?.['application/json'].examples ?? {}).map(([name, e]) => ({ status, name, value: e.value })),
      );
      expect(responses.map((r) => r.status)).toContain('200');
      // Each request example has the response example of the same name.
      expect(responses.map((r) => r.name).sort()).toEqual(requests.map(([name]) => name).sort());
      for (const [name, e] of requests) {
        const expected = responses.find((r) => r.name === name);
        const res = await app.inject({ method: 'POST', url: path, payload: e.value as object });
        expect({ name, status: String(res.statusCode), body: res.json() }).toEqual({
          name,
          status: expected?.status,
          body: expected?.value,
        });
      }
    }
    await app.close();
  });
});

describe('response bodies', () => {
  it('/validate lists a missing field without a value (200, not a 500)', async () => {
    const app = await testApp();
    const res = await app.inject({ method: 'POST', url: '/validate', payload: { points: [{ cpu_usage: 1, memory_usage: 2 }] } });
    expect(res.statusCode).toBe(200);
    expect(res.json().results[0].issues).toEqual([{ field: 'network_load', message: 'is required' }]);
    await app.close();
  });

  it('/health shed under load answers 503 overloaded (an Error body), not a 500', async () => {
    const app = await testApp({ MAX_CONCURRENT_REQUESTS: '1' });
    const [a, b] = await Promise.all([app.inject({ url: '/health' }), app.inject({ url: '/health' })]);
    expect(a.statusCode).toBe(200);
    expect(b.statusCode).toBe(503);
    expect(b.headers['retry-after']).toBe('5');
    expect(b.json()).toMatchObject({ error: 'overloaded', details: [] });
    await app.close();
  });
});

describe('POST /admin/reload', () => {
  it('exists with ADMIN_TOKEN only, needs the token, and answers the documented bodies', async () => {
    const results = [
      { ok: true as const, version: 'v2', previous: 'v1', source: '/models/model.json' },
      { ok: false as const, reason: 'bad signature', version: 'v2' },
    ];
    const app = await testApp({ ADMIN_TOKEN: 'admin-token-1' }, { reloader: { reload: async () => results.shift() ?? results[0] } });
    const post = (auth?: string) => app.inject({ method: 'POST', url: '/admin/reload', headers: auth ? { authorization: auth } : {} });
    const denied = await post('Bearer wrong-token');
    expect(denied.statusCode).toBe(401);
    expect(denied.json()).toEqual({ error: 'unauthorized', message: 'missing or invalid bearer token', details: [] });
    const ok = await post('Bearer admin-token-1');
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toBe('{"reloaded":true,"model":{"version":"v2","source":"/models/model.json"},"previous_version":"v1"}');
    const failed = await post('Bearer admin-token-1');
    expect(failed.statusCode).toBe(422);
    expect(failed.json()).toEqual({ error: 'reload_failed', message: 'reload failed, still serving v2: bad signature', details: [] });
    await app.close();
    const without = await testApp({}, { reloader: { reload: async () => results[0] } });
    expect((await without.inject({ method: 'POST', url: '/admin/reload' })).statusCode).toBe(404);
    await without.close();
  });
});

describe('load shedding', () => {
  it('answers 503 with Retry-After while the event loop lags past the bound', async () => {
    const app = await testApp({ MAX_EVENT_LOOP_DELAY_MS: '20' });
    let shed = null;
    for (let attempt = 0; attempt < 20 && !shed; attempt++) {
      const until = Date.now() + 200;
      while (Date.now() < until) {
        // keep the event loop busy
      }
      await new Promise((r) => setTimeout(r, 30));
      const res = await app.inject({ method: 'POST', url: '/detect', payload: { points: [normalPoint(0)] } });
      if (res.statusCode === 503) shed = res;
    }
    expect(shed).not.toBeNull();
    expect(shed?.headers['retry-after']).toBe('5');
    expect(shed?.json().error).toBe('overloaded');
    await app.close();
  });
});
