import { Rng } from '../../../src/core/random';
import { StreamingDetector, type StreamingOptions, type StreamResult } from '../../../src/core/streaming';
import { valueStreamOptions } from '../../helpers/value-stream';

function options(refitWindow: number, holdAfterAlert?: number): StreamingOptions {
  return valueStreamOptions(
    { points: 0, minFitRows: 2, priorSeverity: 1, ...(holdAfterAlert !== undefined ? { holdAfterAlert } : {}) },
    refitWindow,
  );
}

/** Rows the window gains under the hold rule: no alerted row, and none of the `hold` rows after an alert. */
function keptRows(res: StreamResult, hold: number): number {
  let left = 0;
  let kept = 0;
  for (let i = 0; i < res.n; i++) {
    if (res.alerts[i] === 1) left = hold;
    else if (left > 0) left--;
    else kept++;
  }
  return kept;
}

describe('the hold after an alert (learning.holdAfterAlert)', () => {
  const r = new Rng(9);
  const warmN = 200;
  const n = 600;
  const times = Array.from({ length: warmN + n }, (_, i) => i * 10_000);
  // Two incidents of 8 points well above the noise.
  const values = Float64Array.from({ length: warmN + n }, (_, i) =>
    (i >= 400 && i < 408) || (i >= 600 && i < 608) ? 60 : 20 + r.normal(),
  );
  const warm = { keys: new Array<string>(warmN).fill('h'), times: times.slice(0, warmN), raw: values.slice(0, warmN), n: warmN };
  const live = { keys: new Array<string>(n).fill('h'), times: times.slice(warmN), raw: values.slice(warmN), n };

  it('keeps the points after an alert out of a window that is still filling, and scores the same', () => {
    const plain = StreamingDetector.start(options(10_000), warm);
    const held = StreamingDetector.start(options(10_000, 5), warm);
    const a = plain.process(live);
    const b = held.process(live);
    expect(Array.from(b.scores)).toEqual(Array.from(a.scores));
    expect(Array.from(b.alerts)).toEqual(Array.from(a.alerts));
    expect(b.alerts.reduce((s, v) => s + v, 0)).toBeGreaterThanOrEqual(2);
    expect(plain.stats().windowRows).toBe(warmN + keptRows(a, 0));
    expect(held.stats().windowRows).toBe(warmN + keptRows(b, 5));
  });

  it('has no effect once the window is full', () => {
    // A window of 150 rows, already full with the warm-up's last 150.
    const plain = StreamingDetector.start(options(150), warm);
    const held = StreamingDetector.start(options(150, 5), warm);
    const a = plain.process(live);
    held.process(live);
    expect(a.alerts.reduce((s, v) => s + v, 0)).toBeGreaterThanOrEqual(2);
    const rows = (s: StreamingDetector) => Array.from((s as unknown as { window: { rows(): Float64Array } }).window.rows());
    expect(rows(held)).toEqual(rows(plain));
  });
});
