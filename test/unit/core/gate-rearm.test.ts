import { newRepeatGateState, repeatGate, type RepeatGateOptions } from '../../../src/core/gate';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const BASE: RepeatGateOptions = { level: 0, windowMs: DAY, peak: true, margin: 0.03, peakWindowMs: 6 * HOUR };

/** Feeds 5-minute scores and returns the indexes that alerted. */
function alerts(opts: RepeatGateOptions, scores: number[]): number[] {
  const s = newRepeatGateState();
  const out: number[] = [];
  scores.forEach((v, i) => {
    if (repeatGate(opts, s, v, i * 5 * MIN)) out.push(i);
  });
  return out;
}

/** A first incident at 0.9 (row 10), quiet at `quiet` for `gapRows` rows, then a second one at 0.8. */
function twoIncidents(quiet: number, gapRows: number): number[] {
  return [...new Array<number>(10).fill(0.3), 0.9, 0.85, ...new Array<number>(gapRows).fill(quiet), 0.8, 0.3];
}

describe('repeat gate re-arming', () => {
  const rearm: RepeatGateOptions = { ...BASE, rearm: { below: 0.8, forMs: 3 * HOUR } };

  it('without rearm, a second, smaller incident within a day stays suppressed (the rule as before)', () => {
    const scores = twoIncidents(0.3, 100); // 100 rows: 8.3 hours later
    expect(alerts(BASE, scores)).toEqual([0, 10]);
  });

  it('with rearm, a second incident after a quiet stretch alerts', () => {
    const scores = twoIncidents(0.3, 100);
    expect(alerts(rearm, scores)).toEqual([0, 10, 112]);
  });

  it('does not re-arm while scores stay high (the same incident), nor after a quiet stretch shorter than forMs', () => {
    // Scores at 0.75 are above 0.8 * 0.9 = 0.72: not quiet.
    expect(alerts(rearm, twoIncidents(0.75, 100))).toEqual([0, 10]);
    // Quiet for 30 rows (2.5 h < 3 h), but the peak window (6 h) still holds 0.9.
    expect(alerts(rearm, twoIncidents(0.3, 30))).toEqual([0, 10]);
  });

  it('a rise that breaks a quiet stretch resets it', () => {
    // 20 quiet rows, one score at 0.8 (not quiet, suppressed), 20 quiet rows, then 0.8: 21 * 5 min < 3 h of quiet each time.
    const scores = [
      ...new Array<number>(10).fill(0.3),
      0.9,
      ...new Array<number>(20).fill(0.3),
      0.8,
      ...new Array<number>(20).fill(0.3),
      0.8,
    ];
    const short: RepeatGateOptions = { ...BASE, peakWindowMs: HOUR, rearm: { below: 0.8, forMs: 2 * HOUR } };
    expect(alerts(short, scores)).toEqual([0, 10]);
    // With 30 quiet rows (2.4 h) before the last rise it re-arms.
    const longer = [
      ...new Array<number>(10).fill(0.3),
      0.9,
      ...new Array<number>(20).fill(0.3),
      0.8,
      ...new Array<number>(30).fill(0.3),
      0.8,
    ];
    expect(alerts(short, longer)).toEqual([0, 10, 62]);
  });
});
