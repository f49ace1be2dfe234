import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { buildApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { ModelStore } from '../../src/model-store';
import { createMetrics } from '../../src/plugins/metrics';
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
  it('openapi.yaml equals what the server serves at /openapi.json', async () => {
    const app = await testApp();
    const served = (await app.inject({ url: '/openapi.json' })).json();
    const file = parse(readFileSync(resolve(ROOT, 'openapi.yaml'), 'utf8'));
    expect(file).toEqual(served);
    expect(Object.keys(served.paths).sort()).toEqual(['/detect', '/health', '/health/live', '/validate']);
    // The documented body is the full point schema, not the loose envelope.
    const point = served.paths['/detect'].post.requestBody.content['application/json'].schema.properties.points.items;
    expect(point.properties.cpu_usage).toMatchObject({ minimum: 0, maximum: 100 });
    expect(point.required.sort()).toEqual(['cpu_usage', 'memory_usage', 'network_load']);
    const docs = await app.inject({ url: '/docs' });
    expect([200, 302]).toContain(docs.statusCode);
    // Every response is described; the operations behind API_TOKEN declare the bearer scheme.
    for (const [path, ops] of Object.entries(
      served.paths as Record<string, Record<string, { responses: Record<string, { description: string }>; security?: unknown }>>,
    )) {
      for (const op of Object.values(ops)) {
        for (const r of Object.values(op.responses)) expect(r.description).not.toBe('Default Response');
        expect(op.security).toEqual(path === '/detect' || path === '/validate' ? [{ bearer: [] }] : undefined);
      }
    }
    await app.close();
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
