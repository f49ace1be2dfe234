import { gate, newGateState, newRepeatGateState, repeatGate, type GateOptions, type RepeatGateOptions } from '../../../src/core/gate';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const BASE: RepeatGateOptions = { level: 0, windowMs: DAY, peak: true, margin: 0.03, peakWindowMs: 6 * HOUR };
const EXCESS: RepeatGateOptions = { ...BASE, excess: { factor: 1.05 } };

type Point = [score: number, excess: number];

/** Feeds 5-minute (score, excess) points and returns the indexes that alerted. */
function alerts(opts: RepeatGateOptions, points: Point[]): number[] {
  const s = newRepeatGateState();
  const out: number[] = [];
  points.forEach(([score, excess], i) => {
    if (repeatGate(opts, s, score, i * 5 * MIN, true, excess)) out.push(i);
  });
  return out;
}

const quiet = (n: number): Point[] => new Array<Point>(n).fill([0.3, 10]);

/**
 * A first incident scoring 0.9 at value 40 (row 10), 100 quiet rows (8.3 hours, past the
 * peak look-back), then a second one at row 112 that scores lower (0.8) at `value`.
 */
const twoIncidents = (value: number, score = 0.8): Point[] => [
  ...quiet(10),
  [0.9, 40],
  [0.85, 38],
  ...quiet(100),
  [score, value],
  [0.3, 10],
];

describe('repeat gate: worse by value (excess)', () => {
  it('without the option, a second, lower-scoring incident within a day stays suppressed whatever its value', () => {
    expect(alerts(BASE, twoIncidents(45))).toEqual([0, 10]);
  });

  it('with it, a second incident scoring lower but beyond factor x the incident value alerts', () => {
    expect(alerts(EXCESS, twoIncidents(45))).toEqual([0, 10, 112]);
  });

  it('a value not beyond factor x the bar, or none (NaN), changes nothing', () => {
    expect(alerts(EXCESS, twoIncidents(41))).toEqual([0, 10]); // 41 < 1.05 * 40
    expect(alerts(EXCESS, twoIncidents(NaN))).toEqual([0, 10]);
  });

  it('the bar is the largest value since the last alert, not only the alert value', () => {
    // The first incident kept rising after its alert (to 50, scoring lower): 45 is not beyond it.
    const points: Point[] = [...quiet(10), [0.9, 40], [0.85, 50], ...quiet(100), [0.8, 45], ...quiet(1)];
    expect(alerts(EXCESS, points)).toEqual([0, 10]);
    points[112] = [0.8, 53];
    expect(alerts(EXCESS, points)).toEqual([0, 10, 112]);
  });

  it('a score just above the last alert (within the margin: the same incident rising) still needs the margin', () => {
    expect(alerts(EXCESS, twoIncidents(60, 0.92))).toEqual([0, 10]);
  });

  it('the level and peak tests still apply', () => {
    // Two rows after the first alert: 0.9 is in the peak look-back.
    expect(
      alerts(EXCESS, [
        [0.3, 10],
        [0.9, 40],
        [0.5, 20],
        [0.8, 90],
      ]),
    ).toEqual([0, 1]);
    expect(alerts({ ...EXCESS, level: 0.85 }, twoIncidents(45))).toEqual([10]);
  });

  it('an alert by value leaves the score bar: a later point still needs to beat the first alert or a new value', () => {
    // 91 alerts by value (45); 172 scores 0.85 (above 0.8, below 0.9 + margin) at 46 (not
    // beyond 1.05 x 45): no alert; 253 (20 hours after the first alert) at 49 is beyond 1.05 x 46.
    const points: Point[] = [...quiet(10), [0.9, 40], ...quiet(80), [0.8, 45], ...quiet(80), [0.85, 46], ...quiet(80), [0.85, 49]];
    expect(alerts(EXCESS, points)).toEqual([0, 10, 91, 253]);
  });

  it('gate() passes the excess to the repeat rule', () => {
    const opts: GateOptions = { consecutive: 0, surge: null, cooldownMs: 0, repeat: EXCESS };
    const s = newGateState();
    const out = twoIncidents(45).map(([score, e], i) => gate(opts, s, true, i * 5 * MIN, 0, 0, 0, score, 0, e));
    expect(out.flatMap((a, i) => (a ? [i] : []))).toEqual([0, 10, 112]);
  });
});
