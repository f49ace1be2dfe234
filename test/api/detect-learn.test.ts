import { DEFAULT_GATE } from '../../src/core/gate';
import { hostLearningOptions } from '../../src/core/host-learning';
import { StreamingDetector } from '../../src/core/streaming';
import { loadDetectorFile } from '../../src/model-store';
import { MODEL_PATH, testApp } from '../helpers/fixtures';

/**
 * DETECT_LEARN=true: /detect runs the poller's streaming detector per host. Fed in
 * requests of any size, a host's points get the scores one pass of the detector gives;
 * points without host or time, or not after their host's latest point, are judged by the
 * prior alone and change nothing.
 */
const T0 = Date.parse('2026-11-01T00:00:00Z');

function points(host: string, from: number, to: number, level: number) {
  return Array.from({ length: to - from }, (_, k) => {
    const i = from + k;
    return {
      host,
      timestamp: T0 + i * 10_000,
      cpu_usage: level + 2 * Math.sin(i / 7) + ((i * 37) % 11) / 10,
      memory_usage: 60 + ((i * 13) % 7) / 10,
      network_load: 2e6 + ((i * 29) % 17) * 1e4,
    };
  });
}

describe('/detect with DETECT_LEARN', () => {
  it('learns each host: results equal one pass of the streaming detector, in batches of any size', async () => {
    const app = await testApp({ DETECT_LEARN: 'true' });
    const busy = points('busy', 0, 300, 90);
    const idle = points('idle', 0, 300, 2);
    const all = busy.flatMap((p, i) => [p, idle[i]]);
    const got: Array<{ score: number; alert: boolean; learning: boolean }> = [];
    for (let from = 0; from < all.length;) {
      const to = Math.min(all.length, from + 1 + ((from * 7) % 97));
      const r = await app.inject({ method: 'POST', url: '/detect', payload: { points: all.slice(from, to) } });
      expect(r.statusCode).toBe(200);
      const body = r.json() as { model: { version: string }; results: Array<{ score: number; alert: boolean; learning: boolean }> };
      expect(body.model.version).toBe('learned');
      got.push(...body.results);
      from = to;
    }
    // The reference: one pass, rows in (time, host) order as the route orders them.
    const engine = StreamingDetector.learner(
      hostLearningOptions({ prior: loadDetectorFile(MODEL_PATH), gate: DEFAULT_GATE, maxKeys: 10_000 }),
    );
    const ref = engine.process({
      keys: all.map((p) => p.host),
      times: all.map((p) => p.timestamp),
      raw: Float64Array.from(all.flatMap((p) => [p.cpu_usage, p.memory_usage, p.network_load])),
      n: all.length,
    });
    got.forEach((g, i) => {
      expect(g.score).toBe(ref.scores[i]);
      expect(g.alert).toBe(ref.alerts[i] === 1);
      expect(g.learning).toBe(ref.learning[i] === 1);
    });
    // Both hosts learned their own level: after learning, neither alerts on its normal.
    expect(got.slice(2 * 120).filter((g) => g.alert).length).toBe(0);
    expect(got.slice(2 * 120).every((g) => !g.learning)).toBe(true);
    await app.close();
  });

  it('judges points without host or timestamp, and late points, by the prior alone', async () => {
    const app = await testApp({ DETECT_LEARN: 'true' });
    const first = await app.inject({ method: 'POST', url: '/detect', payload: { points: points('h', 0, 10, 30) } });
    expect(first.statusCode).toBe(200);
    const r = await app.inject({
      method: 'POST',
      url: '/detect',
      payload: { points: [{ cpu_usage: 30, memory_usage: 40, network_load: 1e5 }, { ...points('h', 3, 4, 30)[0] }] },
    });
    expect(r.statusCode).toBe(200);
    const results = (r.json() as { results: Array<{ learning: boolean; alert: boolean; score: number; threshold: number }> }).results;
    const prior = loadDetectorFile(MODEL_PATH);
    for (const x of results) {
      expect(x).toMatchObject({ learning: true, alert: false, threshold: prior.threshold });
    }
    expect(results[0].score).toBe(prior.scoreRaw(Float64Array.from([30, 40, 1e5]), 1).scores[0]);
    await app.close();
  });

  it('is off by default: the loaded model judges every point, results carry no learning fields', async () => {
    const app = await testApp();
    const r = await app.inject({ method: 'POST', url: '/detect', payload: { points: points('h', 0, 3, 30) } });
    const res = r.json() as { model: { version: string }; results: Array<Record<string, unknown>> };
    expect(res.model.version).toBe(loadDetectorFile(MODEL_PATH).version);
    expect(res.results[0].learning).toBeUndefined();
    await app.close();
  });
});
