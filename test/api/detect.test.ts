import type { FastifyInstance } from 'fastify';
import { testApp, normalPoint } from '../helpers/fixtures';

const post = (app: FastifyInstance, url: string, payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({
    method: 'POST',
    url,
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    headers: { 'content-type': 'application/json', ...headers },
  });

describe('POST /detect', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await testApp();
  });
  afterAll(() => app.close());

  it('scores points with score, threshold, flag, severity and contributions', async () => {
    const res = await post(app, '/detect', {
      points: [
        normalPoint(0),
        { host: 'db-1', timestamp: '2026-01-05T10:00:00+02:00', cpu_usage: 99.5, memory_usage: 98, network_load: 2e7 },
      ],
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.model.version).toMatch(/^\d{8}-[0-9a-f]{12}$/);
    expect(body.results).toHaveLength(2);
    const [ok, bad] = body.results;
    expect(ok.host).toBe('host-0');
    expect(ok.timestamp).toBe(new Date(1767607200000).toISOString());
    expect(bad.timestamp).toBe('2026-01-05T08:00:00.000Z');
    expect(ok.is_anomaly).toBe(false);
    expect(bad.is_anomaly).toBe(true);
    for (const r of body.results) {
      expect(r.severity).toBeCloseTo(r.score / r.threshold, 12);
      expect(Object.keys(r.contributions).sort()).toEqual(['cpu_usage', 'memory_usage', 'network_load']);
    }
    expect(bad.score).toBeGreaterThan(ok.score);
    expect(bad.contributions.cpu_usage).toBeGreaterThan(0);
  });

  it('explains a network-only spike mostly by network_load', async () => {
    const res = await post(app, '/detect', { points: [{ cpu_usage: 25, memory_usage: 45, network_load: 5e7 }] });
    const c = res.json().results[0].contributions;
    expect(c.network_load).toBeGreaterThan(c.cpu_usage);
    expect(c.network_load).toBeGreaterThan(c.memory_usage);
  });

  it('accepts 10,000 points and rejects 10,001', async () => {
    const points = Array.from({ length: 10000 }, (_, i) => normalPoint(i));
    const ok = await post(app, '/detect', { points });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().results).toHaveLength(10000);
    const tooMany = await post(app, '/detect', { points: [...points, normalPoint(1)] });
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json()).toMatchObject({
      error: 'invalid_request',
      details: [{ field: 'points', message: 'must hold at most 10000 points' }],
    });
  });

  it('lists every bad point and field, and scores nothing', async () => {
    const res = await post(app, '/detect', {
      points: [
        normalPoint(0),
        { cpu_usage: 'high', memory_usage: null, network_load: -5 },
        normalPoint(2),
        { cpu_usage: 101, memory_usage: 50, network_load: 1, color: 'red' },
      ],
    });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error).toBe('invalid_points');
    expect(body.message).toMatch(/2 of 4 point\(s\) are invalid/);
    const got = body.details.map((d: { index: number; field: string }) => `${d.index}:${d.field}`).sort();
    expect(got).toEqual(['1:cpu_usage', '1:memory_usage', '1:network_load', '3:color', '3:cpu_usage']);
    expect(body.details.find((d: { field: string; value: unknown }) => d.field === 'cpu_usage' && d.value === 'high').message).toBe(
      'must be a finite number',
    );
  });

  it.each([
    ['an empty body', '', 400],
    ['invalid JSON', '{"points": [', 400],
    ['NaN literal', '{"points":[{"cpu_usage":NaN,"memory_usage":1,"network_load":1}]}', 400],
    ['Infinity literal', '{"points":[{"cpu_usage":Infinity,"memory_usage":1,"network_load":1}]}', 400],
    ['a huge number that overflows to Infinity', '{"points":[{"cpu_usage":1,"memory_usage":1,"network_load":1e400}]}', 400],
    ['a JSON array', '[1,2,3]', 400],
    ['a JSON string', '"points"', 400],
    ['null', 'null', 400],
    ['no points', '{"points":[]}', 400],
    ['points not an array', '{"points":{"cpu_usage":1}}', 400],
    ['an unknown top-level field', '{"points":[{"cpu_usage":1,"memory_usage":1,"network_load":1}],"debug":true}', 400],
    ['a point that is not an object', '{"points":[42]}', 400],
    ['a point that is null', '{"points":[null]}', 400],
    ['__proto__ pollution', '{"points":[{"cpu_usage":1,"memory_usage":1,"network_load":1}],"__proto__":{"x":1}}', 400],
    ['constructor pollution', '{"points":[{"cpu_usage":1,"memory_usage":1,"network_load":1,"constructor":{"prototype":{"x":1}}}]}', 400],
    ['deep nesting', `{"points":[{"cpu_usage":${'['.repeat(5000)}${']'.repeat(5000)},"memory_usage":1,"network_load":1}]}`, 400],
    ['very deep nesting', `{"points":${'['.repeat(200000)}${']'.repeat(200000)}}`, 400],
    ['an empty host', '{"points":[{"host":"","cpu_usage":1,"memory_usage":1,"network_load":1}]}', 400],
    ['a 257-character host', `{"points":[{"host":"${'h'.repeat(257)}","cpu_usage":1,"memory_usage":1,"network_load":1}]}`, 400],
    ['a malformed timestamp', '{"points":[{"timestamp":"yesterday","cpu_usage":1,"memory_usage":1,"network_load":1}]}', 400],
    ['an impossible date', '{"points":[{"timestamp":"2026-02-30T99:00:00Z","cpu_usage":1,"memory_usage":1,"network_load":1}]}', 400],
    ['a fractional epoch', '{"points":[{"timestamp":1.5,"cpu_usage":1,"memory_usage":1,"network_load":1}]}', 400],
    ['a boolean metric', '{"points":[{"cpu_usage":true,"memory_usage":1,"network_load":1}]}', 400],
    ['a missing metric', '{"points":[{"cpu_usage":1,"memory_usage":1}]}', 400],
  ])('answers %s with a 4xx JSON error, never a 500', async (_name, payload, status) => {
    const res = await post(app, '/detect', payload);
    expect(res.statusCode).toBe(status);
    const body = res.json();
    expect(typeof body.error).toBe('string');
    expect(typeof body.message).toBe('string');
    expect(Array.isArray(body.details)).toBe(true);
  });

  it('says why a JSON body was refused: where its syntax breaks, or which prototype key it has', async () => {
    const broken = await post(app, '/detect', '{"points": [{"cpu_usage": 1,}]}');
    expect(broken.statusCode).toBe(400);
    expect(broken.json()).toMatchObject({
      error: 'invalid_request',
      message: expect.stringMatching(/^body is not valid JSON: .*position 28/),
    });
    for (const body of [
      '{"points":[{"cpu_usage":1,"memory_usage":1,"network_load":1}],"__proto__":{"x":1}}',
      '{"points":[{"cpu_usage":1,"memory_usage":1,"network_load":1}],"\\u005f_proto__":{"x":1}}',
      '{"points":[{"cpu_usage":1,"memory_usage":1,"network_load":1,"constructor":{"prototype":{"x":1}}}]}',
    ]) {
      const res = await post(app, '/detect', body);
      expect([body, res.statusCode, res.json().message]).toEqual([body, 400, expect.stringContaining('prototype poisoning')]);
    }
    const empty = await post(app, '/detect', '');
    expect(empty.statusCode).toBe(400);
    expect(empty.json().message).toMatch(/empty/);
  });

  it('answers a wrong content type with 415', async () => {
    const res = await app.inject({ method: 'POST', url: '/detect', payload: 'cpu=1', headers: { 'content-type': 'text/plain' } });
    expect(res.statusCode).toBe(415);
    expect(res.json().error).toBe('unsupported_media_type');
  });

  it('answers a body over the limit with 413', async () => {
    const small = await testApp({ BODY_LIMIT: '2048' });
    const points = Array.from({ length: 100 }, (_, i) => normalPoint(i));
    const res = await post(small, '/detect', { points });
    expect(res.statusCode).toBe(413);
    expect(res.json().error).toBe('payload_too_large');
    await small.close();
  });

  it('answers an unknown route with a JSON 404', async () => {
    const res = await app.inject({ method: 'GET', url: '/nope?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: 'not_found', message: 'no route GET /nope', details: [] });
  });
});

describe('POST /validate', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await testApp();
  });
  afterAll(() => app.close());

  it('reports each point without scoring it', async () => {
    const res = await post(app, '/validate', {
      points: [normalPoint(0), { cpu_usage: -1, memory_usage: 50, network_load: 'lots', timestamp: 'noon' }, 'nonsense'],
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.valid).toBe(false);
    expect(body.results[0]).toEqual({ index: 0, valid: true, issues: [] });
    expect(body.results[1].valid).toBe(false);
    expect(body.results[1].issues.map((i: { field: string }) => i.field).sort()).toEqual(['cpu_usage', 'network_load', 'timestamp']);
    expect(body.results[2].issues[0]).toMatchObject({ field: '(point)', message: 'must be an object' });
  });

  it('is valid when every point is', async () => {
    const res = await post(app, '/validate', { points: [normalPoint(0), { ...normalPoint(1), timestamp: '2026-01-05T10:00:00.123456Z' }] });
    expect(res.json().valid).toBe(true);
  });

  it('answers a body that is not of the shape with 400', async () => {
    for (const payload of ['{"pts":[]}', '[]', '{"points":"x"}', '{"points":[]}']) {
      const res = await post(app, '/validate', payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBe('invalid_request');
    }
  });
});

describe('API token', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await testApp({ API_TOKEN: 's3cret-token' });
  });
  afterAll(() => app.close());

  it('requires the bearer token on /detect and /validate when API_TOKEN is set', async () => {
    for (const url of ['/detect', '/validate']) {
      expect((await post(app, url, { points: [normalPoint(0)] })).statusCode).toBe(401);
      expect((await post(app, url, { points: [normalPoint(0)] }, { authorization: 'Bearer wrong' })).statusCode).toBe(401);
      expect((await post(app, url, { points: [normalPoint(0)] }, { authorization: 'Basic czNjcmV0LXRva2Vu' })).statusCode).toBe(401);
      const ok = await post(app, url, { points: [normalPoint(0)] }, { authorization: 'Bearer s3cret-token' });
      expect(ok.statusCode).toBe(200);
    }
    const res = await post(app, '/detect', { points: [normalPoint(0)] });
    expect(res.json()).toEqual({ error: 'unauthorized', message: 'missing or invalid bearer token', details: [] });
  });

  it('leaves /health and /metrics open for probes and scrapers', async () => {
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(200);
  });
});
