import { gate, newGateState, type GateOptions } from '../../../src/core/gate';
import { hostLearningOptions, DEFAULT_HOST_LEARNING } from '../../../src/core/host-learning';
import { StreamingDetector } from '../../../src/core/streaming';
import { loadDetectorFile } from '../../../src/model-store';
import { MODEL_PATH } from '../../helpers/fixtures';

const STEP = 10_000;

function rows(hosts: string[], steps: number, from = 0, t0 = 0) {
  const keys: string[] = [];
  const times: number[] = [];
  const raw: number[] = [];
  let seed = 3;
  const rnd = (): number => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  for (let s = from; s < from + steps; s++)
    for (const h of hosts) {
      keys.push(h);
      times.push(t0 + s * STEP);
      raw.push(20 + 5 * rnd(), 40 + rnd(), 1e5 * (0.9 + 0.2 * rnd()));
    }
  return { keys, times, raw: Float64Array.from(raw), n: keys.length };
}

describe('young hosts: the threshold factor', () => {
  it('does not raise the threshold of a lone new host (its model was trained on its own young rows)', () => {
    const engine = StreamingDetector.learner(
      hostLearningOptions({ prior: loadDetectorFile(MODEL_PATH), gate: DEFAULT_GATE_ON, maxKeys: 10 }),
    );
    const res = engine.process(rows(['h'], 150));
    const model = engine.model;
    expect(model).not.toBeNull();
    // After the last fit (120 rows, at step 150 - none of them from an old host), every learned row is judged against the plain threshold.
    for (let i = 60; i < 150; i++) if (res.refits[i] === engine.refits) expect(res.thresholds[i]).toBe(model?.threshold);
  });

  it('raises it, up to youngSeverity, for a new host judged by a model trained on older hosts', () => {
    const engine = StreamingDetector.learner(
      hostLearningOptions({ prior: loadDetectorFile(MODEL_PATH), gate: DEFAULT_GATE_ON, maxKeys: 10 }),
    );
    // Three hosts, long past their young phase (youngPoints), and a full refit window of their old rows.
    engine.process(rows(['a', 'b', 'c'], 2 * DEFAULT_HOST_LEARNING.youngPoints));
    const t0 = 2 * DEFAULT_HOST_LEARNING.youngPoints * STEP;
    const res = engine.process(rows(['new'], 80, 0, t0));
    const model = engine.model;
    const i = 70; // learned (60 points), young, no refit since (the hourly refit is later)
    expect(res.learning[i]).toBe(0);
    // The window still holds the old hosts' own young rows (about half of it): the factor is in between.
    expect(res.thresholds[i] / (model?.threshold ?? NaN)).toBeGreaterThan(1.05);
    expect(res.thresholds[i] / (model?.threshold ?? NaN)).toBeLessThanOrEqual(DEFAULT_HOST_LEARNING.youngSeverity);
  });
});

describe('gate: the repeat rule per group', () => {
  const opts: GateOptions = {
    consecutive: 1,
    surge: null,
    cooldownMs: 0,
    repeat: { level: 0, windowMs: 30 * 60_000, peak: false, margin: 0 },
  };
  it('suppresses a lower repeat of the same group within the window, not one of another group', () => {
    const st = newGateState();
    expect(gate(opts, st, true, 0, 0, 0, 0, 0.8, 2)).toBe(true);
    expect(gate(opts, st, true, STEP, 0, 0, 0, 0.7, 2)).toBe(false);
    expect(gate(opts, st, true, 2 * STEP, 0, 0, 0, 0.7, 0)).toBe(true);
    expect(gate(opts, st, true, 3 * STEP, 0, 0, 0, 0.75, 0)).toBe(true);
    expect(gate(opts, st, true, 4 * STEP, 0, 0, 0, 0.7, 1)).toBe(true);
    expect(gate(opts, st, true, 5 * STEP, 0, 0, 0, 0.79, 2)).toBe(false);
  });
});

const DEFAULT_GATE_ON: GateOptions = { consecutive: 3, surge: { cpu_usage: 10, memory_usage: 30, network_load: 15000 }, cooldownMs: 0 };
