import type { FastifyInstance } from 'fastify';
import { normalPoint, testApp } from '../helpers/fixtures';

/** Hostile-client cases of issue 11 that app.inject can reach. */

const post = (app: FastifyInstance, url: string, payload: unknown) =>
  app.inject({ method: 'POST', url, payload: typeof payload === 'string' ? payload : JSON.stringify(payload), headers: { 'content-type': 'application/json' } });

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
    const points = Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? normalPoint(i) : manyKeys(30, { cpu_usage: 'x', memory_usage: 1, network_load: 1 })));
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
    expect(res.json()).toMatchObject({ error: 'invalid_request', message: 'invalid request body: (body) has 100000 unknown key(s): "k0", "k1", "k2", "k3", "k4", ...' });
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
    expect(res.json().details).toEqual([{ index: 0, field: 'timestamp', message: expect.stringMatching(/^is not a valid date/), value: timestamp }]);
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
    const res = await app.inject({ method: 'POST', url: '/detect', payload: gzipSync(JSON.stringify({ points: [normalPoint(0)] })), headers: { 'content-type': 'application/json', 'content-encoding': encoding } });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toEqual({ error: 'unsupported_media_type', message: `content-encoding ${JSON.stringify(encoding)} is not supported: send the body uncompressed`, details: [] });
  });

  it('accepts content-encoding identity', async () => {
    const res = await app.inject({ method: 'POST', url: '/detect', payload: JSON.stringify({ points: [normalPoint(0)] }), headers: { 'content-type': 'application/json', 'content-encoding': 'identity' } });
    expect(res.statusCode).toBe(200);
  });
});
