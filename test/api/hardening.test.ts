import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { buildApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { Detector } from '../../src/core/detector';
import { hostTemporalFeatures } from '../../src/core/features';
import { Rng } from '../../src/core/random';
import { trainModel } from '../../src/core/train';
import { ModelStore } from '../../src/model-store';
import { createMetrics } from '../../src/plugins/metrics';
import { connectionsFromDescriptorLimit, descriptorLimit } from '../../src/server';
import { isValidPoint } from '../../src/validation/point';
import { normalPoint, testApp } from '../helpers/fixtures';

/** Hostile-client cases of issue 11 that app.inject can reach. */

const post = (app: FastifyInstance, url: string, payload: unknown) =>
  app.inject({
    method: 'POST',
    url,
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    headers: { 'content-type': 'application/json' },
  });

function manyKeys(n: number, base: Record<string, unknown> = { cpu_usage: 1, memory_usage: 1, network_load: 1 }): Record<string, unknown> {
  const p: Record<string, unknown> = { ...base };
  for (let k = 0; k < n; k++) p[`k${k}`] = 1;
  return p;
}

describe('bounded error replies (item 2)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    // Building 100,000-key bodies blocks the test's own event loop: no shedding here.
    app = await testApp({ MAX_EVENT_LOOP_DELAY_MS: '0' });
  });
  afterAll(() => app.close());

  it('/detect: a point with 100,000 unknown keys gets a small 400 that counts what it leaves out', async () => {
    const res = await post(app, '/detect', { points: [manyKeys(100_000)] });
    expect(res.statusCode).toBe(400);
    expect(res.payload.length).toBeLessThan(10_000);
    const body = res.json();
    expect(body.details).toHaveLength(20);
    expect(body.details_omitted).toBe(100_000 - 20);
    expect(body.message).toBe('1 of 1 point(s) are invalid; nothing was scored; 20 issue(s) listed, 99980 more not listed');
  });

  it('/detect: many bad points: at most 100 issues in all, the rest counted', async () => {
    const points = Array.from({ length: 1000 }, (_, i) =>
      i % 2 === 0 ? normalPoint(i) : manyKeys(30, { cpu_usage: 'x', memory_usage: 1, network_load: 1 }),
    );
    const res = await post(app, '/detect', { points });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.details).toHaveLength(100);
    // 500 bad points, 31 issues each (cpu_usage and 30 unknown keys).
    expect(body.details_omitted).toBe(500 * 31 - 100);
    expect(body.message).toMatch(/^500 of 1000 point\(s\) are invalid/);
    // Field issues come first within a point.
    expect(body.details[0]).toMatchObject({ index: 1, field: 'cpu_usage', message: 'must be a finite number' });
    expect(new Set(body.details.map((d: { index: number }) => d.index))).toEqual(new Set([1, 3, 5, 7, 9]));
  });

  it('/validate: bounded per point and per request, counted per point and in all, every point judged', async () => {
    const points = [manyKeys(50_000), normalPoint(1), ...Array.from({ length: 20 }, () => manyKeys(10))];
    const res = await post(app, '/validate', { points });
    expect(res.statusCode).toBe(200);
    expect(res.payload.length).toBeLessThan(20_000);
    const body = res.json();
    expect(body.valid).toBe(false);
    expect(body.results).toHaveLength(22);
    expect(body.results[0]).toMatchObject({ index: 0, valid: false, issues_omitted: 50_000 - 20 });
    expect(body.results[0].issues).toHaveLength(20);
    expect(body.results[1]).toEqual({ index: 1, valid: true, issues: [] });
    const listed = body.results.reduce((s: number, r: { issues: unknown[] }) => s + r.issues.length, 0);
    expect(listed).toBe(100);
    // Past the request's budget a bad point is still judged, its issues counted.
    expect(body.results[21]).toEqual({ index: 21, valid: false, issues: [], issues_omitted: 10 });
    expect(body.issues_omitted).toBe(50_000 + 20 * 10 - 100);
  });

  it.each(['/detect', '/validate'])('%s: a body with 100,000 unknown top-level keys gets a small 400', async (url) => {
    const res = await post(app, url, manyKeys(100_000, { points: [normalPoint(0)] }));
    expect(res.statusCode).toBe(400);
    expect(res.payload.length).toBeLessThan(2_000);
    expect(res.json()).toMatchObject({
      error: 'invalid_request',
      message: 'invalid request body: (body) has 100000 unknown key(s): "k0", "k1", "k2", "k3", "k4", ...',
    });
  });
});

describe('strict timestamps in /detect (item 10)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await testApp();
  });
  afterAll(() => app.close());

  it.each(['2026-02-30T00:00:00Z', '2026-01-05T24:00:00Z'])('refuses %s with a 400 naming the field', async (timestamp) => {
    const res = await post(app, '/detect', { points: [{ ...normalPoint(0), timestamp }] });
    expect(res.statusCode).toBe(400);
    expect(res.json().details).toEqual([
      { index: 0, field: 'timestamp', message: expect.stringMatching(/^is not a valid date/), value: timestamp },
    ]);
  });

  it('accepts the leap second 23:59:60Z and answers it as 23:59:59.999Z', async () => {
    const res = await post(app, '/detect', { points: [{ ...normalPoint(0), timestamp: '2016-12-31T23:59:60Z' }] });
    expect(res.statusCode).toBe(200);
    expect(res.json().results[0].timestamp).toBe('2016-12-31T23:59:59.999Z');
  });
});

describe('load shedding (item 3)', () => {
  /** Keeps the event loop busy in 100 ms blocks for `ms`. */
  async function lag(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const until = Date.now() + 100;
      while (Date.now() < until) {
        // busy
      }
      await new Promise((r) => setImmediate(r));
    }
  }

  it('sheds /detect with 503 while the event loop lags, never /health/live or /metrics', async () => {
    const app = await testApp({ MAX_EVENT_LOOP_DELAY_MS: '20' });
    try {
      // Longer than two samples, so the last sample before the end saw only lag.
      await lag(2200);
      const [live, metrics, detect] = await Promise.all([
        app.inject({ url: '/health/live' }),
        app.inject({ url: '/metrics' }),
        post(app, '/detect', { points: [normalPoint(0)] }),
      ]);
      expect([live.statusCode, metrics.statusCode, detect.statusCode]).toEqual([200, 200, 503]);
      expect(detect.json()).toMatchObject({ error: 'overloaded' });
      expect(detect.headers['retry-after']).toBe('5');
    } finally {
      await app.close();
    }
  });
});

describe('content encodings (item 11)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await testApp();
  });
  afterAll(() => app.close());

  it.each(['gzip', 'deflate', 'br', 'GZIP'])('answers a %s-encoded body with 415, not "not valid JSON"', async (encoding) => {
    const { gzipSync } = await import('node:zlib');
    const res = await app.inject({
      method: 'POST',
      url: '/detect',
      payload: gzipSync(JSON.stringify({ points: [normalPoint(0)] })),
      headers: { 'content-type': 'application/json', 'content-encoding': encoding },
    });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toEqual({
      error: 'unsupported_media_type',
      message: `content-encoding ${JSON.stringify(encoding)} is not supported: send the body uncompressed`,
      details: [],
    });
  });

  it('accepts content-encoding identity', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/detect',
      payload: JSON.stringify({ points: [normalPoint(0)] }),
      headers: { 'content-type': 'application/json', 'content-encoding': 'identity' },
    });
    expect(res.statusCode).toBe(200);
  });
});

describe('huge values with a temporal out-of-range model (item 9)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    const r = new Rng(1);
    const n = 600;
    const raw = new Float64Array(n * 3);
    const keys: string[] = [];
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      raw[i * 3] = 20 + r.normal();
      raw[i * 3 + 1] = 40 + r.normal();
      raw[i * 3 + 2] = 3e5 * (1 + 0.05 * r.normal());
      keys.push('train');
      times.push(i * 10_000);
    }
    const det = new Detector(
      trainModel(raw, n, {
        nEstimators: 50,
        maxSamples: 128,
        seed: 1,
        contamination: 0.02,
        createdAt: '2026-01-01T00:00:00.000Z',
        features: hostTemporalFeatures(30, 3),
        keys,
        times,
        outOfRangeWeight: 4,
      }),
    );
    app = await buildApp({
      config: loadConfig({}),
      models: ModelStore.fromDetector(det, 'test:oor'),
      metrics: createMetrics(new Registry(), false),
      logger: false,
    });
    await app.ready();
  });
  afterAll(() => app.close());

  const pts = (v: number) =>
    [0, 1].map((k) => ({ host: 'big', timestamp: 1767607200000 + k * 10_000, cpu_usage: 20, memory_usage: 40, network_load: v }));

  it('refuses network_load 1e308 with a 400 (it overflowed the features to NaN: a 500), for /detect and the poller alike', async () => {
    const res = await post(app, '/detect', { points: pts(1e308) });
    expect(res.statusCode).toBe(400);
    expect(res.json().details[0]).toMatchObject({ index: 0, field: 'network_load', message: 'must be <= 1000000000000000' });
    // The poller checks its steps with the same rule.
    expect(isValidPoint(pts(1e308)[0])).toBe(false);
  });

  it('scores values up to the bound with finite scores, contributions and metrics', async () => {
    for (const v of [1e15, 9.99e14, 1e12]) {
      const res = await post(app, '/detect', { points: pts(v) });
      expect(res.statusCode).toBe(200);
      expect(res.payload).not.toMatch(/null|NaN|Infinity/);
      for (const r of res.json().results) {
        for (const x of [r.score, r.severity, ...Object.values(r.contributions)]) expect(Number.isFinite(x)).toBe(true);
      }
    }
    // Random extremes of every metric, within the rules, on one host's history.
    const r = new Rng(5);
    const points = Array.from({ length: 200 }, (_, k) => ({
      host: 'edge',
      timestamp: 1767607200000 + k * 10_000,
      cpu_usage: r.next() < 0.5 ? 0 : 100,
      memory_usage: r.next() < 0.5 ? 0 : 100,
      network_load: r.next() < 0.5 ? 0 : 1e15 * r.next(),
    }));
    const res = await post(app, '/detect', { points });
    expect(res.statusCode).toBe(200);
    expect(res.payload).not.toMatch(/null|NaN|Infinity/);
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.payload.split('\n').filter((l) => !l.startsWith('#') && /NaN|Inf/.test(l) && !l.includes(`le="+Inf"`))).toEqual([]);
  });
});

describe('connection bounds (item 1)', () => {
  it('sets the request, idle and keep-alive timeouts from the configuration', async () => {
    const app = await testApp({ REQUEST_TIMEOUT_S: '5', CONNECTION_TIMEOUT_S: '40' });
    expect([app.server.requestTimeout, app.server.headersTimeout, app.server.timeout, app.server.keepAliveTimeout]).toEqual([
      5000, 5000, 40_000, 40_000,
    ]);
    await app.close();
    const d = await testApp();
    expect([d.server.requestTimeout, d.server.headersTimeout, d.server.timeout, d.server.keepAliveTimeout]).toEqual([
      30_000, 30_000, 120_000, 72_000,
    ]);
    await d.close();
  });

  it('derives MAX_CONNECTIONS from the descriptor limit, keeping a quarter (at least 64) free', async () => {
    expect([256, 1024, 1_048_576, Infinity, undefined].map(connectionsFromDescriptorLimit)).toEqual([192, 768, 786_432, 1_000_000, 10_000]);
    expect(descriptorLimit()).toBeGreaterThan(0);
    expect(descriptorLimit('/nonexistent')).toBeUndefined();
  });
});

describe('concurrency bound (items 1 and 3)', () => {
  it('answers 503 at once beyond MAX_CONCURRENT_REQUESTS in progress, never for /health/live or /metrics, and admits again when they finish', async () => {
    const { PassThrough } = await import('node:stream');
    const app = await testApp({ MAX_CONCURRENT_REQUESTS: '2', MAX_EVENT_LOOP_DELAY_MS: '0' });
    try {
      const bodies = [new PassThrough(), new PassThrough()];
      const held = bodies.map((b) =>
        app.inject({ method: 'POST', url: '/detect', payload: b, headers: { 'content-type': 'application/json' } }),
      );
      await new Promise((r) => setTimeout(r, 50));
      const third = await post(app, '/detect', { points: [normalPoint(0)] });
      expect(third.statusCode).toBe(503);
      expect(third.json()).toMatchObject({ error: 'overloaded', message: 'overloaded (2 requests in progress), retry later' });
      expect(third.headers['retry-after']).toBe('5');
      expect((await app.inject({ url: '/health/live' })).statusCode).toBe(200);
      expect((await app.inject({ url: '/metrics' })).statusCode).toBe(200);
      for (const b of bodies) b.end(JSON.stringify({ points: [normalPoint(1)] }));
      expect((await Promise.all(held)).map((r) => r.statusCode)).toEqual([200, 200]);
      expect((await post(app, '/detect', { points: [normalPoint(2)] })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
