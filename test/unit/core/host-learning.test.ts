import { DEFAULT_GATE } from '../../../src/core/gate';
import { hostLearningOptions } from '../../../src/core/host-learning';
import { StreamingDetector } from '../../../src/core/streaming';
import { loadDetectorFile } from '../../../src/model-store';
import { MODEL_PATH } from '../../helpers/fixtures';

/**
 * The prior while hosts learn, with no fleet yet (a fresh start on one busy host): the
 * bundled model alerts only on blatant values, once, not on a host that is merely busy.
 */
function run(level: [number, number, number], steps: number) {
  const engine = StreamingDetector.learner(hostLearningOptions({ prior: loadDetectorFile(MODEL_PATH), gate: DEFAULT_GATE, maxKeys: 10 }));
  const raw = new Float64Array(steps * 3);
  for (let i = 0; i < steps; i++) raw.set([level[0] - (i % 3) * 0.1, level[1] - (i % 2) * 0.1, level[2] + (i % 5) * 100], i * 3);
  return engine.process({
    keys: new Array<string>(steps).fill('h'),
    times: Array.from({ length: steps }, (_, i) => i * 10_000),
    raw,
    n: steps,
  });
}

describe('host learning: the prior with no fleet', () => {
  it('does not page a host that starts out busy (CPU at 100 %, memory low)', () => {
    const res = run([100, 7, 5e4], 50);
    expect(Array.from(res.learning).every((l) => l === 1)).toBe(true);
    expect(res.alerts.reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('alerts once within three steps on CPU and memory at 100 %, then suppresses the repeats', () => {
    const res = run([100, 100, 1e5], 50);
    const first = res.alerts.indexOf(1);
    expect(first).toBeGreaterThanOrEqual(0);
    expect(first).toBeLessThanOrEqual(2);
    expect(res.alerts.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(3);
  });
});
