import { DataError } from '../../../src/data/csv';
import { partSizes, splitRows, takePart } from '../../../src/eval/split';
import { Rng } from '../../../src/core/random';

const sorted = (a: Int32Array): number[] => Array.from(a).sort((x, y) => x - y);

function expectPartition(n: number, s: { train: Int32Array; val: Int32Array; test: Int32Array }): void {
  const all = [...s.train, ...s.val, ...s.test].sort((a, b) => a - b);
  expect(all).toEqual(Array.from({ length: n }, (_, i) => i));
}

describe('train/validation/test split', () => {
  it('sizes are 70/15/15', () => {
    expect(partSizes(1000)).toEqual([700, 150, 150]);
    expect(partSizes(17280)).toEqual([12096, 2592, 2592]);
    expect(partSizes(101)).toEqual([71, 15, 15]);
    expect(() => partSizes(10, { train: 0.8, val: 0.15, test: 0.15 })).toThrow(/sum to 1/);
  });

  it('random: a seeded partition, the same for the same seed, different for another', () => {
    const a = splitRows(1000, { mode: 'random', seed: 42 });
    expectPartition(1000, a);
    expect([a.train.length, a.val.length, a.test.length]).toEqual([700, 150, 150]);
    const b = splitRows(1000, { mode: 'random', seed: 42 });
    expect(Array.from(b.test)).toEqual(Array.from(a.test));
    const c = splitRows(1000, { mode: 'random', seed: 43 });
    expect(Array.from(c.test)).not.toEqual(Array.from(a.test));
    // Shuffled, not a block of rows: the test part spans the whole file.
    expect(a.test[0]).toBeLessThan(100);
    expect(a.test[a.test.length - 1]).toBeGreaterThan(900);
    expect(a.bounds).toBeNull();
  });

  it('time: every training row is older than every validation row, which is older than every test row (no leakage)', () => {
    // 4 hosts sharing each timestamp, rows in a scrambled order.
    const n = 4 * 250;
    const base = Array.from({ length: n }, (_, i) => Date.UTC(2026, 0, 1) + Math.floor(i / 4) * 60000);
    const order = Array.from({ length: n }, (_, i) => i);
    const rng = new Rng(5);
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    const ts = order.map((k) => base[k]);
    // 70.1% of 1000 = 701 rows: the cut falls inside a group of 4 rows sharing a timestamp.
    const s = splitRows(n, { mode: 'time', seed: 1, timestamps: ts, fractions: { train: 0.701, val: 0.15, test: 0.149 } });
    expectPartition(n, s);
    const max = (idx: Int32Array) => Math.max(...Array.from(idx, (i) => ts[i]));
    const min = (idx: Int32Array) => Math.min(...Array.from(idx, (i) => ts[i]));
    expect(max(s.train)).toBeLessThan(min(s.val));
    expect(max(s.val)).toBeLessThan(min(s.test));
    // No timestamp is split across parts even though 70.1% falls inside a group of 4.
    expect(s.train.length % 4).toBe(0);
    expect(s.val.length % 4).toBe(0);
    expect(s.bounds).toEqual({ train_end: max(s.train), val_start: min(s.val), val_end: max(s.val), test_start: min(s.test) });
    expect([s.train.length, s.val.length, s.test.length]).toEqual([704, 152, 144]);
  });

  it('time: the seed does not matter, and unreadable timestamps or too few rows are one-line DataErrors', () => {
    const ts = Array.from({ length: 100 }, (_, i) => 1e12 + i * 1000);
    expect(sorted(splitRows(100, { mode: 'time', seed: 1, timestamps: ts }).test)).toEqual(
      sorted(splitRows(100, { mode: 'time', seed: 2, timestamps: ts }).test),
    );
    expect(sorted(splitRows(100, { mode: 'time', seed: 1, timestamps: ts }).test)).toEqual(Array.from({ length: 15 }, (_, i) => 85 + i));
    const bad = [...ts];
    bad[7] = NaN;
    expect(() => splitRows(100, { mode: 'time', seed: 1, timestamps: bad })).toThrow(DataError);
    expect(() => splitRows(100, { mode: 'time', seed: 1, timestamps: new Array(100).fill(5) })).toThrow(/too few distinct timestamps/);
    expect(() => splitRows(3, { mode: 'random', seed: 1 })).toThrow(/too few to split/);
  });

  it('takePart copies the chosen rows, labels, timestamps and hosts', () => {
    const ds = {
      raw: Float64Array.from({ length: 15 }, (_, i) => i),
      labels: Uint8Array.from([0, 1, 0, 1, 1]),
      timestamps: [10, 11, 12, 13, 14],
      hosts: ['a', 'b', 'c', 'd', 'e'],
    };
    const p = takePart(ds, [3, 0]);
    expect(p.n).toBe(2);
    expect(Array.from(p.raw)).toEqual([9, 10, 11, 0, 1, 2]);
    expect(Array.from(p.labels as Uint8Array)).toEqual([1, 0]);
    expect(p.timestamps).toEqual([13, 10]);
    expect(p.hosts).toEqual(['d', 'a']);
  });
});
