import { checkPoint, isValidPoint, parseRfc3339, PointSchema, timestampMs } from '../../src/validation/point';

const base = { cpu_usage: 1, memory_usage: 1, network_load: 1 };

describe('strict RFC 3339 timestamps (issue 11, item 10)', () => {
  it.each([
    '2026-02-30T00:00:00Z',
    '2025-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-01-05T24:00:00Z',
    '2026-01-05T10:60:00Z',
    '2026-01-05T10:00:61Z',
    '2026-13-01T00:00:00Z',
    '2026-00-10T00:00:00Z',
    '2026-01-00T00:00:00Z',
    '2026-01-05T10:00:00+24:00',
    '2026-01-05T10:00:00+01:60',
    '2026-01-05T12:59:60Z',
    '2026-01-05T23:58:60Z',
  ])('refuses %s instead of rolling it over', (ts) => {
    expect(parseRfc3339(ts)).toBeNaN();
    expect(isValidPoint({ ...base, timestamp: ts })).toBe(false);
    expect(PointSchema.safeParse({ ...base, timestamp: ts }).success).toBe(false);
    const issues = checkPoint({ ...base, timestamp: ts });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ field: 'timestamp' });
  });

  it.each([
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['2000-02-29T12:00:00Z', Date.UTC(2000, 1, 29, 12)],
    ['2026-01-05T10:00:00.123456789+02:00', Date.UTC(2026, 0, 5, 8, 0, 0, 123)],
    ['2026-01-05t10:00:00.5z', Date.UTC(2026, 0, 5, 10, 0, 0, 500)],
    ['2026-01-05 10:00:00-05:30', Date.UTC(2026, 0, 5, 15, 30)],
    ['0050-06-01T00:00:00Z', Date.parse('0050-06-01T00:00:00Z')],
  ])('reads %s exactly', (ts, ms) => {
    expect(parseRfc3339(ts)).toBe(ms);
    expect(timestampMs(ts)).toBe(ms);
    expect(checkPoint({ ...base, timestamp: ts })).toEqual([]);
  });

  it('reads the leap second 23:59:60 UTC as 23:59:59.999Z, between its neighbours', () => {
    const leap = parseRfc3339('2016-12-31T23:59:60Z');
    expect(leap).toBe(Date.UTC(2016, 11, 31, 23, 59, 59, 999));
    expect(leap).toBeGreaterThan(parseRfc3339('2016-12-31T23:59:59.998Z'));
    expect(leap).toBeLessThan(parseRfc3339('2017-01-01T00:00:00Z'));
    // The same instant written with an offset.
    expect(parseRfc3339('2016-12-31T18:59:60-05:00')).toBe(leap);
    expect(checkPoint({ ...base, timestamp: '2016-12-31T23:59:60Z' })).toEqual([]);
  });
});

describe('host length: one rule everywhere (issue 11, item 11)', () => {
  it('counts characters (code points) in the fast check and the schema alike', () => {
    for (const [host, ok] of [
      ['😀'.repeat(200), true],
      ['😀'.repeat(256), true],
      ['😀'.repeat(257), false],
      ['h'.repeat(256), true],
      ['h'.repeat(257), false],
      [`${'h'.repeat(255)}😀`, true],
      ['', false],
    ] as const) {
      const p = { ...base, host };
      expect([host.length, isValidPoint(p)]).toEqual([host.length, ok]);
      expect([host.length, PointSchema.safeParse(p).success]).toEqual([host.length, ok]);
      expect([host.length, checkPoint(p).length === 0]).toEqual([host.length, ok]);
    }
  });
});
