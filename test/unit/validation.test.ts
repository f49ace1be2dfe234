import { checkPoint, isoTimestamp, isValidPoint, PointSchema } from '../../src/validation/point';
import { Rng } from '../../src/core/random';

/** Random values near every rule's edges, of every JSON type. */
function randomValue(r: Rng): unknown {
  const pick = [
    () => r.next() * 120 - 10,
    () => Math.round(r.next() * 100),
    () => (r.next() < 0.5 ? 0 : 100),
    () => -0,
    () => Number.POSITIVE_INFINITY,
    () => NaN,
    () => String(r.int(100)),
    () => null,
    () => true,
    () => [1],
    () => ({}),
    () => 1767607200000 + r.int(1000),
    () => 1.5,
    () => '2026-01-05T10:00:00Z',
    () => '2026-01-05T10:00:00.123+02:00',
    () => '2026-02-30T10:00:00Z',
    () => '2026-13-05T10:00:00Z',
    () => '2026-01-05 10:00:00Z',
    () => 'h'.repeat(r.int(300)),
    () => '',
    () => undefined,
  ];
  return pick[r.int(pick.length)]();
}

describe('point validation', () => {
  it('the fast check never accepts what the schema rejects, and agrees on valid points', () => {
    const r = new Rng(7);
    let accepted = 0;
    for (let i = 0; i < 50000; i++) {
      const p: Record<string, unknown> = {};
      for (const k of ['host', 'timestamp', 'cpu_usage', 'memory_usage', 'network_load', 'extra']) {
        const v = k === 'extra' ? (r.next() < 0.05 ? 1 : undefined) : randomValue(r);
        if (v !== undefined) p[k] = v;
      }
      const fast = isValidPoint(p);
      const schema = PointSchema.safeParse(p).success;
      if (fast) {
        accepted++;
        expect([p, schema]).toEqual([p, true]);
      }
      // Whatever the fast check says, checkPoint's verdict is the schema's.
      expect(checkPoint(p).length === 0).toBe(schema);
    }
    expect(accepted).toBeGreaterThan(50);
  });

  it('accepts the typical point through the fast check', () => {
    expect(isValidPoint({ host: 'a', timestamp: 1767607200000, cpu_usage: 1, memory_usage: 2, network_load: 3 })).toBe(true);
    expect(isValidPoint({ cpu_usage: 100, memory_usage: 0, network_load: 0 })).toBe(true);
    expect(isValidPoint({ cpu_usage: 100.0001, memory_usage: 0, network_load: 0 })).toBe(false);
  });
});

describe('isoTimestamp', () => {
  it('equals Date.prototype.toISOString for random, edge, fractional and pre-1970 times', () => {
    const r = new Rng(17);
    const edges = [
      0, 1, 999, 1000, 86_399_999, 86_400_000, 951_782_400_000, 4_102_444_800_000, 253_402_300_799_999, 253_402_300_800_000, -1,
      -86_400_001, 1.5, 1767607200000.999, 8.64e15, -8.64e15,
    ];
    const values = [
      ...edges,
      ...Array.from({ length: 20_000 }, () => Math.floor(r.next() * 253_402_300_800_000)),
      ...Array.from({ length: 2000 }, () => 1767607200000 + Math.floor(r.next() * 5 * 86_400_000)),
    ];
    for (const v of values) expect(isoTimestamp(v)).toBe(new Date(v).toISOString());
  });
});
