import { gate, newGateState, DEFAULT_GATE } from '../../../src/core/gate';
import { psi, RecentWindow } from '../../../src/core/drift';
import { quantile } from '../../../src/core/stats';
import { gaussian } from '../../helpers/fixtures';

describe('sustained-anomaly gate', () => {
  it('alerts only after N consecutive raw anomalies with a surge', () => {
    const s = newGateState();
    const seq = [true, true, false, true, true, true, true].map((raw, i) => gate(DEFAULT_GATE, s, raw, i, 50, 50, 1e5));
    expect(seq).toEqual([false, false, false, false, false, true, true]);
  });
  it('needs a surge unless the surge test is off', () => {
    const quiet = (opts = DEFAULT_GATE) => {
      const s = newGateState();
      return [0, 1, 2].map((i) => gate(opts, s, true, i, 5, 20, 1000)).pop();
    };
    expect(quiet()).toBe(false);
    expect(quiet({ ...DEFAULT_GATE, surge: null })).toBe(true);
  });
  it('suppresses repeats within the cooldown', () => {
    const s = newGateState();
    const opts = { ...DEFAULT_GATE, consecutive: 1, cooldownMs: 100 };
    expect([0, 50, 99, 100, 150, 250].map((t) => gate(opts, s, true, t, 50, 50, 1e5))).toEqual([true, false, false, true, false, true]);
  });
  it('with the repeat rule, a further alert within the window needs a higher score (by the margin); it resets after the window', () => {
    const s = newGateState();
    const opts = { ...DEFAULT_GATE, consecutive: 1, repeat: { level: 0, windowMs: 100, peak: false, margin: 0.01 } };
    const run = (t: number, score: number, raw = true) => gate(opts, s, raw, t, 50, 50, 1e5, score);
    expect(run(0, 0.7)).toBe(true);
    expect(run(10, 0.7)).toBe(false); // same score: a repeat
    expect(run(20, 0.705)).toBe(false); // not above the margin
    expect(run(30, 0.72)).toBe(true); // worse: alerts
    expect(run(40, 0.9, false)).toBe(false); // not a raw anomaly: the other rules say no
    expect(run(50, 0.75)).toBe(true); // the refused 0.9 did not count as an alert
    expect(run(160, 0.6)).toBe(true); // past the window
    expect(s.lastAlert).toBe(160);
  });
  it('with the peak option, a sustained alert must also top every score of the window, refused points included', () => {
    const s = newGateState();
    const opts = { ...DEFAULT_GATE, consecutive: 2, repeat: { level: 0, windowMs: 100, peak: true } };
    // The first raw anomaly (0.9) cannot alert (consecutive 2) but enters the window.
    expect(gate(opts, s, true, 0, 50, 50, 1e5, 0.9)).toBe(false);
    expect(gate(opts, s, true, 10, 50, 50, 1e5, 0.8)).toBe(false);
    expect(gate(opts, s, true, 20, 50, 50, 1e5, 0.95)).toBe(true);
  });
});

describe('population stability index', () => {
  const train = gaussian(20000, 1, 1);
  const deciles = Array.from({ length: 11 }, (_, k) => quantile(train, k / 10));
  it('is near 0 for the same distribution and large for a shifted one', () => {
    const same = gaussian(5000, 1, 2);
    const shifted = gaussian(5000, 1, 3).map((v) => v + 1);
    expect(psi(deciles, same)).toBeLessThan(0.02);
    expect(psi(deciles, shifted)).toBeGreaterThan(0.25);
  });
  it('copes with a feature of few distinct values', () => {
    const flat = [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3];
    const d = Array.from({ length: 11 }, (_, k) => quantile(flat, k / 10));
    expect(Number.isFinite(psi(d, flat))).toBe(true);
    expect(psi(d, flat)).toBeLessThan(0.1);
    expect(psi(d, [5, 5, 5, 5])).toBeGreaterThan(1);
  });
  it('keeps only the most recent rows', () => {
    const w = new RecentWindow(2, 3);
    for (let i = 0; i < 5; i++) w.push([i, 10 * i]);
    expect(w.size).toBe(3);
    expect(Array.from(w.column(1)).sort((a, b) => a - b)).toEqual([20, 30, 40]);
  });
});
