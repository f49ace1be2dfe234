import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseCsv } from '../../../src/data/csv';
import { parseTimestamp, toDataset } from '../../../src/data/dataset';
import { validateText } from '../../../src/eval/validate';

const ROOT = join(__dirname, '..', '..', '..');

describe('CSV timestamps and columns', () => {
  it('reads a date and time without a zone as UTC, whatever the machine zone (no DST duplicates)', () => {
    // A process whose zone is New York's (DST began on 8 March 2026 at 02:00), on the build.
    const script = `const { parseTimestamp } = require(${JSON.stringify(join(ROOT, 'dist', 'src', 'data', 'dataset.js'))});
      console.log(JSON.stringify([new Date(2026, 0, 1).getTimezoneOffset(), parseTimestamp('2026-03-08 02:30:00'), parseTimestamp('2026-03-08 03:30:00')]));`;
    const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, TZ: 'America/New_York' }, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual([300, Date.UTC(2026, 2, 8, 2, 30), Date.UTC(2026, 2, 8, 3, 30)]);
    expect(parseTimestamp('2026-03-08 02:30:00')).toBe(Date.UTC(2026, 2, 8, 2, 30));
    expect(parseTimestamp('2026-03-08T02:30')).toBe(Date.UTC(2026, 2, 8, 2, 30));
    expect(parseTimestamp('2026-03-08T02:30:00.250')).toBe(Date.UTC(2026, 2, 8, 2, 30, 0, 250));
    // With a zone, the zone holds.
    expect(parseTimestamp('2026-03-08T02:30:00+01:00')).toBe(Date.UTC(2026, 2, 8, 1, 30));
    expect(parseTimestamp('2026-03-08T02:30:00Z')).toBe(Date.UTC(2026, 2, 8, 2, 30));
    expect(parseTimestamp('1700000000000')).toBe(1_700_000_000_000);
    expect(parseTimestamp('yesterday')).toBeNaN();
  });

  it('refuses a file of blank records only (an empty quoted field) with one line, not a TypeError', () => {
    expect(() => parseCsv('""\n', 'q.csv')).toThrow(/q\.csv: no header line/);
    expect(() => validateText('""\n', 'q.csv')).toThrow(/no header line/);
  });

  it('refuses a metric, timestamp or host column given twice (it would be read from its first copy only)', () => {
    const text = 'timestamp,host,cpu_usage,memory_usage,network_load,cpu_usage\n2026-01-01T00:00:00Z,a,1,2,3,4\n';
    expect(() => toDataset(parseCsv(text), 'dup.csv')).toThrow(/dup\.csv: duplicate column name\(s\) cpu_usage/);
  });
});
