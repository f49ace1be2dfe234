import { BASIC_METRICS, NODE_METRICS } from '../../src/core/metrics';
import { Rng } from '../../src/core/random';
import { inspectPoint, isValidPoint, pointReader, timestampMs } from '../../src/validation/point';

/** Random values near the rules' edges, of every JSON type. */
function value(r: Rng): unknown {
  const pick = [
    () => r.next() * 120 - 10,
    () => (r.next() < 0.5 ? 0 : 100),
    () => 1e15,
    () => 1.0000001e15,
    () => NaN,
    () => '5',
    () => null,
    () => [1],
    () => ({}),
    () => 1767607200000,
    () => 1.5,
    () => '2026-01-05T10:00:00Z',
    () => '2026-02-30T10:00:00Z',
    () => 'h'.repeat(r.int(300)),
    () => '',
    () => undefined,
  ];
  return pick[r.int(pick.length)]();
}

describe('pointReader', () => {
  it('basic set, three fields: says what isValidPoint says, reads the values and the time', () => {
    const reader = pointReader(BASIC_METRICS);
    const raw = new Float64Array(3);
    const times = new Float64Array(1);
    const r = new Rng(5);
    let valid = 0;
    for (let i = 0; i < 30000; i++) {
      const p: Record<string, unknown> = {};
      for (const k of ['host', 'timestamp', 'cpu_usage', 'memory_usage', 'network_load', 'extra']) {
        const v =
          k === 'extra'
            ? r.next() < 0.05
              ? 1
              : undefined
            : r.next() < 0.7 && k !== 'host' && k !== 'timestamp'
              ? r.next() * 100
              : value(r);
        if (v !== undefined) p[k] = v;
      }
      const ok = reader.read(p, raw, 0, times);
      expect([p, ok]).toEqual([p, isValidPoint(p)]);
      if (ok) {
        valid++;
        expect(Array.from(raw)).toEqual([p.cpu_usage, p.memory_usage, p.network_load]);
        expect(times[0]).toEqual(timestampMs(p.timestamp as string | number | undefined) ?? NaN);
      } else expect(reader.inspect(p, 0, 20)).toEqual(inspectPoint(p, 0, 20, true));
    }
    expect(valid).toBeGreaterThan(500);
  });

  it('named metrics: a point is valid exactly when inspect finds no issue; issues are bounded and counted', () => {
    for (const defs of [BASIC_METRICS, NODE_METRICS]) {
      const reader = pointReader(defs);
      const raw = new Float64Array(defs.length);
      const times = new Float64Array(1);
      const r = new Rng(defs.length);
      let valid = 0;
      for (let i = 0; i < 20000; i++) {
        const p: Record<string, unknown> = {};
        const metrics: Record<string, unknown> = {};
        for (const d of defs) {
          const v = r.next() < 0.97 ? r.next() * 90 : value(r);
          const where = r.int(3);
          if (where === 0 && ['cpu_usage', 'memory_usage', 'network_load'].includes(d.name)) p[d.name] = v;
          else if (where === 1 && ['cpu_usage', 'memory_usage', 'network_load'].includes(d.name)) {
            p[d.name] = v;
            metrics[d.name] = r.next() < 0.9 ? v : value(r);
          } else if (v !== undefined) metrics[d.name] = v;
        }
        if (r.next() < 0.03) metrics[['disk', 'Bad', 'constructor', '__x'][r.int(4)]] = 1;
        if (r.next() < 0.5) p.host = r.next() < 0.9 ? 'h-1' : value(r);
        p.metrics = r.next() < 0.98 ? metrics : value(r);
        // As a body arrives: no undefined values, NaN as null.
        const q = JSON.parse(JSON.stringify(p)) as Record<string, unknown>;
        const ok = reader.read(q, raw, 0, times);
        const { issues, omitted } = reader.inspect(q, 3, 2);
        if (ok) {
          valid++;
          expect([q, issues, omitted]).toEqual([q, [], 0]);
          const named = (q.metrics ?? {}) as Record<string, unknown>;
          defs.forEach((d, k) => expect(raw[k]).toBe((named[d.name] ?? q[d.name]) as number));
        } else {
          expect([q, issues.length > 0]).toEqual([q, true]);
          expect(issues.length).toBeLessThanOrEqual(2);
          for (const issue of issues) expect(issue.index).toBe(3);
        }
      }
      expect(valid).toBeGreaterThan(1000);
    }
  });
});
