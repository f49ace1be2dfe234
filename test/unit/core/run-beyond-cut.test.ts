import { DEFAULT_GATE } from '../../../src/core/gate';
import { DEFAULT_HOST_LEARNING, hostLearningOptions } from '../../../src/core/host-learning';
import { Rng } from '../../../src/core/random';
import { StreamingDetector, type StreamingOptions } from '../../../src/core/streaming';
import { valueStreamOptions } from '../../helpers/value-stream';

/**
 * Two raw inputs: `value`, which the forest scores, and `flag`, constant 0 in training, so
 * no split and no out-of-range term can see it: only the cut (on flag's column) does.
 */
function options(runBeyondCut: boolean): StreamingOptions {
  const base = valueStreamOptions({ points: 0, minFitRows: 2, priorSeverity: 1, trainBelow: { columns: [1], max: 0.5 }, runBeyondCut });
  return {
    ...base,
    inputs: ['value', 'flag'],
    features: [...base.features, { name: 'flag', source: 'flag', transform: 'raw', unit: 'v', min: -1e300, max: null }],
    outOfRangeWeight: 0,
  };
}

describe('a run of raw anomalies goes on through rows beyond the training cut (learning.runBeyondCut)', () => {
  const r = new Rng(9);
  const warmN = 300;
  const warm = {
    keys: new Array<string>(warmN).fill('h'),
    times: Array.from({ length: warmN }, (_, i) => i * 10_000),
    raw: Float64Array.from({ length: 2 * warmN }, (_, k) => (k % 2 === 0 ? 20 + r.normal() : 0)),
    n: warmN,
  };
  // One far-off value, then values of the normal that are beyond the cut (flag 1); later
  // the same without the far-off value first.
  const rows: Array<[number, number]> = [];
  for (let i = 0; i < 40; i++) rows.push([20 + r.normal(), 0]);
  rows.push([60, 1], [20, 1], [20.2, 1], [19.9, 1]);
  for (let i = 0; i < 40; i++) rows.push([20 + r.normal(), 0]);
  rows.push([20, 1], [20.2, 1], [19.9, 1], [20.1, 1]);
  const n = rows.length;
  const live = {
    keys: new Array<string>(n).fill('h'),
    times: Array.from({ length: n }, (_, i) => (warmN + i) * 10_000),
    raw: Float64Array.from(rows.flat()),
    n,
  };

  it('alerts on a raw anomaly followed by rows beyond the cut; not without the option, and not without the raw anomaly', () => {
    const on = StreamingDetector.start(options(true), warm).process(live);
    const off = StreamingDetector.start(options(false), warm).process(live);
    // The far-off value is the only raw anomaly; the rows beyond the cut score as normal ones.
    expect(Array.from(on.anomalies.slice(40, 44))).toEqual([1, 0, 0, 0]);
    expect(Array.from(on.scores)).toEqual(Array.from(off.scores));
    expect(on.anomalies.reduce((a, b) => a + b, 0)).toBe(1);
    // Three in a row (the raw anomaly and two rows beyond the cut) alert, and the fourth
    // (this gate has no repeat rule); the rows beyond the cut with no raw anomaly first do not.
    expect(Array.from(on.alerts.slice(40, 44))).toEqual([0, 0, 1, 1]);
    expect(on.alerts.reduce((a, b) => a + b, 0)).toBe(2);
    expect(off.alerts.reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('is on in the host defaults', () => {
    expect(hostLearningOptions({ gate: DEFAULT_GATE, maxKeys: 10 }).learning?.runBeyondCut).toBe(true);
    const off = hostLearningOptions({ gate: DEFAULT_GATE, maxKeys: 10, params: { ...DEFAULT_HOST_LEARNING, runBeyondCut: 0 } });
    expect(off.learning?.runBeyondCut).toBeUndefined();
  });
});
