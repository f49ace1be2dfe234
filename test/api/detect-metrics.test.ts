import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { buildApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import type { Detector } from '../../src/core/detector';
import { NODE_METRICS, type MetricDef } from '../../src/core/metrics';
import { Rng } from '../../src/core/random';
import { ModelStore } from '../../src/model-store';
import { createMetrics } from '../../src/plugins/metrics';
import { normalPoint, testApp } from '../helpers/fixtures';
import { metricSetDetector, typicalValue } from '../helpers/node-model';

/** Named metrics in /detect and /validate (issue 13, item 3). */

const post = (app: FastifyInstance, url: string, payload: unknown) =>
  app.inject({
    method: 'POST',
    url,
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    headers: { 'content-type': 'application/json' },
  });

async function appWith(detector: Detector, env: NodeJS.ProcessEnv = {}): Promise<FastifyInstance> {
  const app = await buildApp({
    config: loadConfig({ MAX_EVENT_LOOP_DELAY_MS: '0', ...env }),
    models: ModelStore.fromDetector(detector, 'test:metric-set'),
    metrics: createMetrics(new Registry(), false),
    logger: false,
  });
  await app.ready();
  return app;
}

const named = (p: ReturnType<typeof normalPoint>) => ({
  host: p.host,
  timestamp: p.timestamp,
  metrics: { cpu_usage: p.cpu_usage, memory_usage: p.memory_usage, network_load: p.network_load },
});

const NODE_NAMES = NODE_METRICS.map((d) => d.name);

/** A point of the node set: the three at the top level and the other ten under metrics, or all 13 under metrics. */
function nodePoint(i: number, allNamed = false): Record<string, unknown> {
  const r = new Rng(100 + i);
  const values = Object.fromEntries(NODE_METRICS.map((d) => [d.name, typicalValue(d, r)]));
  const { cpu_usage, memory_usage, network_load, ...rest } = values;
  const base = { host: `node-${i % 3}`, timestamp: 1767607200000 + i * 10_000 };
  return allNamed ? { ...base, metrics: values } : { ...base, cpu_usage, memory_usage, network_load, metrics: rest };
}

describe('named metrics with the bundled model (the basic set)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    // Room for the 6 MB body of 370,000 keys.
    app = await testApp({ MAX_EVENT_LOOP_DELAY_MS: '0', BODY_LIMIT: String(16 << 20) });
  });
  afterAll(() => app.close());

  it('scores the three by name exactly as the three fields, alone or mixed, a value given twice alike', async () => {
    const points = Array.from({ length: 30 }, (_, i) => ({ ...normalPoint(i), cpu_usage: 20 + ((i * 7) % 80) }));
    const fields = await post(app, '/detect', { points });
    expect(fields.statusCode).toBe(200);
    const byName = await post(app, '/detect', { points: points.map(named) });
    expect(byName.payload).toBe(fields.payload);
    const mixed = points.map((p, i) =>
      i % 3 === 0
        ? {
            host: p.host,
            timestamp: p.timestamp,
            cpu_usage: p.cpu_usage,
            metrics: { memory_usage: p.memory_usage, network_load: p.network_load },
          }
        : i % 3 === 1
          ? { ...p, metrics: { cpu_usage: p.cpu_usage } }
          : { ...p, metrics: {} },
    );
    expect((await post(app, '/detect', { points: mixed })).payload).toBe(fields.payload);
    const v = await post(app, '/validate', { points: points.map(named) });
    expect(v.json()).toEqual({ valid: true, results: points.map((_, index) => ({ index, valid: true, issues: [] })) });
    const keys = Object.keys(byName.json().results[0].contributions);
    expect(keys).toEqual(['cpu_usage', 'memory_usage', 'network_load']);
  });

  it('refuses a metric given twice with different values, naming metrics.<name>', async () => {
    const res = await post(app, '/detect', { points: [normalPoint(0), { ...normalPoint(1), metrics: { cpu_usage: 99 } }] });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: 'invalid_points',
      message: '1 of 2 point(s) are invalid; nothing was scored',
      details: [
        { index: 1, field: 'metrics.cpu_usage', message: 'is given twice, as cpu_usage and in metrics, with different values', value: 99 },
      ],
    });
  });

  it('names unknown metrics, invalid names, bad values and missing metrics under metrics', async () => {
    const res = await post(app, '/validate', {
      points: [
        { metrics: { cpu_usage: 1, memory_usage: 2, network_load: 3, disk_read_bytes: 3e6 } },
        { metrics: { cpu_usage: 101, memory_usage: 'x', 'Bad-Name': 1 } },
        { cpu_usage: 1, metrics: { memory_usage: -1, network_load: 1e16 } },
      ],
    });
    expect(res.statusCode).toBe(200);
    const [a, b, c] = res.json().results;
    expect(a.issues).toEqual([
      {
        field: 'metrics.disk_read_bytes',
        message: 'is not a metric of the model (its metrics: cpu_usage, memory_usage, network_load)',
        value: 3e6,
      },
    ]);
    expect(b.issues).toEqual([
      { field: 'metrics.cpu_usage', message: 'must be <= 100', value: 101 },
      { field: 'metrics.memory_usage', message: 'must be a finite number', value: 'x' },
      { field: 'metrics.network_load', message: 'is required' },
      {
        field: 'metrics.Bad-Name',
        message: 'is not a valid metric name (lower case letters, digits and _, starting with a letter; at most 63)',
        value: 1,
      },
    ]);
    expect(c.issues).toEqual([
      { field: 'metrics.memory_usage', message: 'must be >= 0', value: -1 },
      { field: 'metrics.network_load', message: 'must be <= 1000000000000000', value: 1e16 },
    ]);
  });

  it.each([
    ['an array', []],
    ['null', null],
    ['a number', 5],
    ['a string', 'cpu_usage=1'],
    ['true', true],
  ])('refuses metrics that is %s with a 400 naming the field', async (_name, metrics) => {
    const res = await post(app, '/detect', { points: [{ ...normalPoint(0), metrics }] });
    expect(res.statusCode).toBe(400);
    expect(res.json().details).toEqual([
      {
        index: 0,
        field: 'metrics',
        message: 'must be an object of metric values by name',
        value: Array.isArray(metrics) ? '[array]' : metrics,
      },
    ]);
  });

  it('refuses prototype keys in metrics without touching any prototype', async () => {
    for (const key of ['constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype']) {
      const res = await post(app, '/detect', { points: [{ ...normalPoint(0), metrics: { [key]: 1 } }] });
      expect([key, res.statusCode]).toEqual([key, 400]);
      expect(res.json().details[0]).toMatchObject({ index: 0, field: `metrics.${key}` });
    }
    // __proto__ (and constructor.prototype) are refused by the body parser, before any route.
    for (const body of [
      `{"points":[{"cpu_usage":1,"memory_usage":1,"network_load":1,"metrics":{"__proto__":{"polluted":1}}}]}`,
      `{"points":[{"cpu_usage":1,"memory_usage":1,"network_load":1,"metrics":{"constructor":{"prototype":{"polluted":1}}}}]}`,
    ]) {
      const res = await post(app, '/detect', body);
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toBe('invalid_request');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // A metric set never finds a metric on Object.prototype: constructor is not cpu_usage.
    const ok = await post(app, '/detect', { points: [{ metrics: { cpu_usage: 1, memory_usage: 1, network_load: 1 } }] });
    expect(ok.statusCode).toBe(200);
  });

  it('answers a point with 370,000 unknown keys under metrics with a bounded 400, from one pass over them', async () => {
    const metrics: Record<string, number> = {};
    for (let k = 0; k < 370_000; k++) metrics[`m${k}`] = k;
    const body = JSON.stringify({ points: [{ ...normalPoint(0), metrics }] });
    const t0 = Date.now();
    const res = await post(app, '/detect', body);
    const ms = Date.now() - t0;
    expect(res.statusCode).toBe(400);
    expect(res.payload.length).toBeLessThan(10_000);
    const reply = res.json();
    expect(reply.details).toHaveLength(20);
    expect(reply.details[0]).toMatchObject({ index: 0, field: 'metrics.m0', value: 0 });
    expect(reply.details_omitted).toBe(370_000 - 20);
    expect(reply.message).toBe('1 of 1 point(s) are invalid; nothing was scored; 20 issue(s) listed, 369980 more not listed');
    // Parsing the 6 MB body is most of it; a pass per issue would take minutes.
    expect(ms).toBeLessThan(20_000);
    const v = await post(app, '/validate', body);
    expect(v.statusCode).toBe(200);
    expect(v.payload.length).toBeLessThan(10_000);
    expect(v.json()).toMatchObject({
      valid: false,
      issues_omitted: 370_000 - 20,
      results: [{ index: 0, valid: false, issues_omitted: 369_980 }],
    });
  });

  it('bounds the issues of many points with named metrics: 100 in all, the rest counted', async () => {
    const points = Array.from({ length: 50 }, (_, i) => ({
      ...normalPoint(i),
      metrics: Object.fromEntries(Array.from({ length: 30 }, (_, k) => [`x${k}`, k])),
    }));
    const res = await post(app, '/detect', { points });
    expect(res.statusCode).toBe(400);
    expect(res.json().details).toHaveLength(100);
    expect(res.json().details_omitted).toBe(50 * 30 - 100);
  });
});

describe('a model of the node set (13 metrics)', () => {
  let app: FastifyInstance;
  let detector: Detector;
  beforeAll(async () => {
    detector = metricSetDetector();
    app = await appWith(detector);
  });
  afterAll(() => app.close());

  it('takes its metrics by name (and the three at the top level), scores them in its column order, one contribution each', async () => {
    const points = Array.from({ length: 20 }, (_, i) => nodePoint(i));
    // A blatant point: disk and load far above the training data.
    const BLATANT = { disk_read_bytes: 5e9, disk_write_bytes: 4e9, disk_io_time: 1000, load1: 50, load5: 40, load15: 30 };
    Object.assign(points[7].metrics as Record<string, number>, BLATANT);
    const res = await post(app, '/detect', { points });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.model.version).toBe(detector.version);
    for (const r of body.results) expect(Object.keys(r.contributions)).toEqual(NODE_NAMES);
    // The same as the detector on the rows in its input order, whatever the order of the keys sent.
    const raw = Float64Array.from(
      points.flatMap((p) => NODE_NAMES.map((name) => (p[name] as number | undefined) ?? (p.metrics as Record<string, number>)[name])),
    );
    const ref = detector.scoreRaw(raw, points.length);
    body.results.forEach((r: { score: number; contributions: Record<string, number> }, i: number) => {
      expect(r.score).toBe(ref.scores[i]);
      NODE_NAMES.forEach((name, k) => expect(r.contributions[name]).toBe(ref.contributions[i * 13 + k]));
    });
    // The point judged most anomalous, for its disk and load.
    const scores = body.results.map((r: { score: number }) => r.score);
    expect(Math.max(...scores)).toBe(scores[7]);
    expect(body.results[7].is_anomaly).toBe(true);
    const top = Object.entries(body.results[7].contributions as Record<string, number>).sort((a, b) => b[1] - a[1])[0][0];
    expect(Object.keys(BLATANT)).toContain(top);
    // All 13 by name, keys in reverse order: the same reply.
    const reversed = points.map((p, i) => {
      const all = nodePoint(i, true);
      const m = all.metrics as Record<string, number>;
      if (i === 7) Object.assign(m, BLATANT);
      return { ...all, metrics: Object.fromEntries(Object.entries(m).reverse()) };
    });
    expect((await post(app, '/detect', { points: reversed })).payload).toBe(res.payload);
  });

  it('needs every metric of the set: the three fields alone are not a point of it', async () => {
    const res = await post(app, '/detect', { points: [normalPoint(0)] });
    expect(res.statusCode).toBe(400);
    const { details } = res.json();
    expect(details.map((d: { field: string }) => d.field)).toEqual(NODE_NAMES.slice(3).map((n) => `metrics.${n}`));
    for (const d of details) expect(d).toEqual({ index: 0, field: d.field, message: 'is required' });
  });

  it("checks each value against the model's declarations (ranges of the node set)", async () => {
    const p = nodePoint(0);
    const res = await post(app, '/validate', {
      points: [
        { ...p, metrics: { ...(p.metrics as object), swap_used_percent: 101, disk_io_time: -1, load1: 'high', tcp_retrans_segs: 2e15 } },
      ],
    });
    expect(res.json().results[0].issues).toEqual([
      { field: 'metrics.load1', message: 'must be a finite number', value: 'high' },
      { field: 'metrics.disk_io_time', message: 'must be >= 0', value: -1 },
      { field: 'metrics.swap_used_percent', message: 'must be <= 100', value: 101 },
      { field: 'metrics.tcp_retrans_segs', message: 'must be <= 1000000000000000', value: 2e15 },
    ]);
  });
});

describe('a model without the three', () => {
  const defs: MetricDef[] = [
    { name: 'load1', unit: 'load', min: 0, max: null },
    { name: 'disk_io_time', unit: 'ms/s', min: 0, max: 1000 },
  ];
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await appWith(metricSetDetector(defs));
  });
  afterAll(() => app.close());

  it('refuses a top-level cpu_usage as a metric it does not have, and scores its own by name', async () => {
    const res = await post(app, '/detect', { points: [{ cpu_usage: 5, metrics: { load1: 1, disk_io_time: 1001 } }] });
    expect(res.statusCode).toBe(400);
    expect(res.json().details).toEqual([
      { index: 0, field: 'metrics.disk_io_time', message: 'must be <= 1000', value: 1001 },
      { index: 0, field: 'cpu_usage', message: 'is not a metric of the model (its metrics: load1, disk_io_time)', value: 5 },
    ]);
    const ok = await post(app, '/detect', { points: [{ metrics: { load1: 1, disk_io_time: 40 } }] });
    expect(ok.statusCode).toBe(200);
    expect(Object.keys(ok.json().results[0].contributions)).toEqual(['load1', 'disk_io_time']);
  });
});

describe('DETECT_LEARN over the node set (metricSet), the bundled model as prior', () => {
  it("learns over the 13 metrics; points it cannot stream are judged by the prior on its three, the others' contributions 0", async () => {
    const app = await testApp({ DETECT_LEARN: 'true' }, { metricSet: NODE_METRICS });
    try {
      const points = Array.from({ length: 40 }, (_, i) => nodePoint(i, true));
      const res = await post(app, '/detect', { points: [...points, { ...points[0], host: undefined }] });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.model.version).toBe('learned');
      for (const r of body.results) expect(Object.keys(r.contributions)).toEqual(NODE_NAMES);
      const alone = body.results[40];
      expect(alone).toMatchObject({ host: null, learning: true, alert: false });
      for (const name of NODE_NAMES.slice(3)) expect(alone.contributions[name]).toBe(0);
      expect(alone.contributions.cpu_usage).not.toBe(0);
      // The three fields alone are not points of the learner's set.
      expect((await post(app, '/detect', { points: [normalPoint(0)] })).statusCode).toBe(400);
    } finally {
      await app.close();
    }
  });
});

describe('no model loaded', () => {
  it('/validate checks against the basic set; /detect checks the points, then answers 503', async () => {
    const app = await buildApp({
      config: loadConfig({ MAX_EVENT_LOOP_DELAY_MS: '0' }),
      models: new ModelStore(),
      metrics: createMetrics(new Registry(), false),
      logger: false,
    });
    try {
      expect((await post(app, '/validate', { points: [named(normalPoint(0))] })).json().valid).toBe(true);
      expect((await post(app, '/detect', { points: [{ metrics: { disk_read_bytes: 1 } }] })).statusCode).toBe(400);
      const res = await post(app, '/detect', { points: [named(normalPoint(0))] });
      expect(res.statusCode).toBe(503);
      expect(res.json().error).toBe('model_unavailable');
    } finally {
      await app.close();
    }
  });
});
