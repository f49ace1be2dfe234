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

/** /detect serving a model with temporal features: per-host history, bounded, kept across reloads. */
const T0 = Date.parse('2026-03-01T00:00:00Z');
const STEP = 10_000;

function trainTemporal(seed: number): Detector {
  const r = new Rng(seed);
  const hosts = 4;
  const steps = 300;
  const n = hosts * steps;
  const raw = new Float64Array(n * 3);
  const keys: string[] = [];
  const times: number[] = [];
  let i = 0;
  for (let h = 0; h < hosts; h++)
    for (let s = 0; s < steps; s++, i++) {
      // Hosts at different levels: a level normal for one host is a jump for another.
      raw[i * 3] = 20 + 15 * h + r.normal();
      raw[i * 3 + 1] = 40 + 5 * h + 0.5 * r.normal();
      raw[i * 3 + 2] = 3e5 * (1 + h) * (1 + 0.05 * r.normal());
      keys.push(`train-${h}`);
      times.push(T0 + s * STEP);
    }
  return new Detector(
    trainModel(raw, n, {
      nEstimators: 100,
      maxSamples: 128,
      seed,
      contamination: 0.02,
      createdAt: '2026-01-01T00:00:00.000Z',
      features: hostTemporalFeatures(30, 3),
      keys,
      times,
    }),
  );
}

const calm = (host: string, k: number, r: Rng) => ({
  host,
  timestamp: T0 + k * STEP,
  cpu_usage: 20 + r.normal(),
  memory_usage: 40 + 0.5 * r.normal(),
  network_load: 3e5 * (1 + 0.05 * r.normal()),
});
/** A jump to another host's normal level: only history tells it apart. */
const jump = (host: string | undefined, k: number) => ({
  ...(host === undefined ? {} : { host, timestamp: T0 + k * STEP }),
  cpu_usage: 65,
  memory_usage: 55,
  network_load: 1.2e6,
});

describe('POST /detect with a temporal model', () => {
  let app: FastifyInstance;
  let models: ModelStore;
  const det = trainTemporal(3);

  async function start(env: NodeJS.ProcessEnv = {}): Promise<void> {
    models = ModelStore.fromDetector(det, 'test:temporal');
    app = await buildApp({ config: loadConfig(env), models, metrics: createMetrics(new Registry(), false), logger: false });
    await app.ready();
  }
  afterEach(() => app.close());

  const detect = async (points: unknown[]) => {
    const res = await app.inject({ method: 'POST', url: '/detect', payload: { points } });
    expect(res.statusCode).toBe(200);
    return (res.json() as { results: Array<{ score: number; is_anomaly: boolean; host: string | null }> }).results;
  };
  const rawScore = (p: ReturnType<typeof jump>) => det.scoreRaw(Float64Array.of(p.cpu_usage, p.memory_usage, p.network_load), 1).scores[0];

  it("reads each host's history across requests; a host with no history, or a point without host, is judged on raw values", async () => {
    await start();
    const r = new Rng(5);
    // 40 calm points of host a over two requests.
    await detect(Array.from({ length: 20 }, (_, k) => calm('a', k, r)));
    await detect(Array.from({ length: 20 }, (_, k) => calm('a', 20 + k, r)));
    const [a, b, anon] = await detect([jump('a', 40), jump('b', 40), jump(undefined, 0)]);
    expect(b.score).toBe(rawScore(jump('b', 40)));
    expect(anon.score).toBe(b.score);
    expect(anon.host).toBeNull();
    expect(a.is_anomaly).toBe(true);
    expect(a.score).toBeGreaterThan(b.score + 0.05);
  });

  it("a point not later than its host's latest is scored without history and does not change it", async () => {
    await start();
    const r = new Rng(6);
    await detect(Array.from({ length: 40 }, (_, k) => calm('a', k, r)));
    const [late] = await detect([jump('a', 10)]);
    expect(late.score).toBe(rawScore(jump('a', 10)));
    const [after] = await detect([jump('a', 40)]);
    // Same as in the first test's fresh app: the late point left the history alone.
    expect(after.is_anomaly).toBe(true);
    expect(after.score).toBeGreaterThan(late.score + 0.05);
  });

  it('holds at most DETECT_HISTORY_HOSTS hosts: the least recently used loses its history, and /metrics counts it', async () => {
    await start({ DETECT_HISTORY_HOSTS: '1' });
    const r = new Rng(7);
    await detect(Array.from({ length: 40 }, (_, k) => calm('a', k, r)));
    await detect(Array.from({ length: 40 }, (_, k) => calm('c', k, r)));
    const [c, a] = await detect([jump('c', 40), jump('a', 40)]);
    expect(a.score).toBe(rawScore(jump('a', 40)));
    expect(c.score).toBeGreaterThan(a.score + 0.05);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/anomaly_detector_history_hosts\{source="http"\} 1\b/);
    expect(metrics).toMatch(/anomaly_detector_history_evictions_total\{source="http"\} 2\b/);
  });

  it("a point stamped more than 5 minutes ahead of the clock neither joins nor blinds its host's history", async () => {
    await start();
    const r = new Rng(9);
    await detect(Array.from({ length: 40 }, (_, k) => calm('a', k, r)));
    const future = { ...calm('a', 0, r), timestamp: '9999-12-31T23:59:59Z' };
    const [f] = await detect([future]);
    expect(f.score).toBe(det.scoreRaw(Float64Array.of(future.cpu_usage, future.memory_usage, future.network_load), 1).scores[0]);
    const [after] = await detect([jump('a', 40)]);
    expect(after.is_anomaly).toBe(true);
    expect(after.score).toBeGreaterThan(rawScore(jump('a', 40)) + 0.05);
  });

  it('keeps the history through a reload to a model with the same features', async () => {
    await start();
    const r = new Rng(8);
    await detect(Array.from({ length: 40 }, (_, k) => calm('a', k, r)));
    const next = trainTemporal(4);
    models.swap({ detector: next, loadedAt: new Date(), source: 'test:temporal-2' });
    const [a] = await detect([jump('a', 40)]);
    const cold = next.scoreRaw(Float64Array.of(65, 55, 1.2e6), 1).scores[0];
    expect(a.score).toBeGreaterThan(cold + 0.05);
  });
});
