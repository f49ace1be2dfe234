import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
import { testApp } from '../helpers/fixtures';

/**
 * The three-field form must give exactly the replies it gave before named metrics came
 * (issue 13, item 3): the replies below were recorded at commit 05109af (before the named
 * form) with `WRITE_GOLDEN=1 npx jest test/api/three-fields-golden`, and every later build
 * must give the same bytes, status and content type for the same requests.
 */
const GOLDEN = join(__dirname, 'fixtures', 'three-fields-replies.json');

type Case = { app: 'basic' | 'learn' | 'temporal' | 'small'; url: string; body: string };
type Reply = { status: number; type: string | undefined; payload: string };

function cases(): Record<string, Case> {
  const r = new Rng(11);
  const T0 = 1767607200000;
  const many = Array.from({ length: 300 }, (_, i) => ({
    host: `h-${i % 7}`,
    timestamp: i % 3 === 0 ? T0 + i * 10_000 : new Date(T0 + i * 10_000).toISOString().replace('Z', '+00:00'),
    cpu_usage: Math.round(r.next() * 1000) / 10,
    memory_usage: r.next() * 100,
    network_load: r.next() < 0.05 ? 1e9 * r.next() : 3e5 * (1 + r.next()),
  }));
  const noHost = many.slice(0, 40).map(({ cpu_usage, memory_usage, network_load }) => ({ cpu_usage, memory_usage, network_load }));
  const bad = [
    many[0],
    { cpu_usage: 'high', memory_usage: null, network_load: -5 },
    { cpu_usage: 101, memory_usage: 50, network_load: 1, color: 'red' },
    { host: '', timestamp: '2026-02-30T10:00:00Z', cpu_usage: 1, memory_usage: 1 },
    42,
    null,
    [1, 2],
    { cpu_usage: 1, memory_usage: 1, network_load: 1e308, timestamp: 1.5 },
    Object.fromEntries([
      ['cpu_usage', 1],
      ['memory_usage', 1],
      ['network_load', 1],
      ...Array.from({ length: 1000 }, (_, k) => [`k${k}`, k]),
    ]),
  ];
  const j = (points: unknown) => JSON.stringify({ points });
  return {
    detectOne: { app: 'basic', url: '/detect', body: j([many[5]]) },
    detectMany: { app: 'basic', url: '/detect', body: j(many) },
    detectNoHost: { app: 'basic', url: '/detect', body: j(noHost) },
    detectBad: { app: 'basic', url: '/detect', body: j(bad) },
    validateMixed: { app: 'basic', url: '/validate', body: j([...bad, ...many.slice(0, 5)]) },
    validateOk: { app: 'basic', url: '/validate', body: j(many.slice(0, 10)) },
    emptyPoints: { app: 'basic', url: '/detect', body: '{"points":[]}' },
    topLevelKey: { app: 'basic', url: '/detect', body: '{"points":[{"cpu_usage":1,"memory_usage":1,"network_load":1}],"debug":true}' },
    notArray: { app: 'basic', url: '/validate', body: '{"points":{"cpu_usage":1}}' },
    array: { app: 'basic', url: '/detect', body: '[1,2,3]' },
    tooMany: { app: 'small', url: '/detect', body: j(many.slice(0, 6)) },
    tooManyValidate: { app: 'small', url: '/validate', body: j(many.slice(0, 6)) },
    learnMany: { app: 'learn', url: '/detect', body: j([...many, ...noHost.slice(0, 3)]) },
    temporalMany: { app: 'temporal', url: '/detect', body: j([...many, ...noHost.slice(0, 3)]) },
  };
}

function temporalDetector(): Detector {
  const r = new Rng(1);
  const n = 600;
  const raw = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) {
    raw[i * 3] = 20 + r.normal();
    raw[i * 3 + 1] = 40 + r.normal();
    raw[i * 3 + 2] = 3e5 * (1 + 0.05 * r.normal());
  }
  return new Detector(
    trainModel(raw, n, {
      nEstimators: 50,
      maxSamples: 128,
      seed: 1,
      contamination: 0.02,
      createdAt: '2026-01-01T00:00:00.000Z',
      features: hostTemporalFeatures(30, 3),
      keys: Array.from({ length: n }, () => 'train'),
      times: Array.from({ length: n }, (_, i) => i * 10_000),
    }),
  );
}

async function replies(): Promise<Record<string, Reply>> {
  const apps: Record<Case['app'], FastifyInstance> = {
    basic: await testApp(),
    learn: await testApp({ DETECT_LEARN: 'true' }),
    small: await testApp({ MAX_POINTS_PER_REQUEST: '5' }),
    temporal: await buildApp({
      config: loadConfig({ MAX_EVENT_LOOP_DELAY_MS: '0' }),
      models: ModelStore.fromDetector(temporalDetector(), 'test:temporal'),
      metrics: createMetrics(new Registry(), false),
      logger: false,
    }),
  };
  // The learner and a temporal model keep per-host state from request to request: one request each, always from fresh.
  const out: Record<string, Reply> = {};
  try {
    for (const [name, c] of Object.entries(cases())) {
      const res = await apps[c.app].inject({
        method: 'POST',
        url: c.url,
        payload: c.body,
        headers: { 'content-type': 'application/json' },
      });
      out[name] = { status: res.statusCode, type: res.headers['content-type'] as string | undefined, payload: res.payload };
    }
  } finally {
    for (const app of Object.values(apps)) await app.close();
  }
  return out;
}

describe('the three-field form, byte for byte', () => {
  it('gives the replies recorded before named metrics (status, content type and body bytes)', async () => {
    const got = await replies();
    if (process.env.WRITE_GOLDEN === '1') writeFileSync(GOLDEN, `${JSON.stringify(got, null, 1)}\n`);
    expect(existsSync(GOLDEN)).toBe(true);
    const want = JSON.parse(readFileSync(GOLDEN, 'utf8')) as Record<string, Reply>;
    expect(Object.keys(got)).toEqual(Object.keys(want));
    for (const name of Object.keys(want)) expect([name, got[name]]).toEqual([name, want[name]]);
    // The recording covers what it should: scored batches and bounded 400s.
    expect(want.detectMany.status).toBe(200);
    expect(JSON.parse(want.detectMany.payload).results).toHaveLength(300);
    expect(want.detectBad.status).toBe(400);
    expect(want.learnMany.payload).toContain('"learning":');
    expect(want.tooMany.status).toBe(400);
  });
});
