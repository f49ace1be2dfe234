import { DataError } from '../../../src/data/csv';
import {
  MAX_DUPLICATE_FRACTION,
  MAX_RANGE_VIOLATION_FRACTION,
  describe as describeStats,
  failureLine,
  formatValidation,
  iqrOutliers,
  tokenizeCsv,
  validateText,
  type CheckName,
  type ValidationReport,
} from '../../../src/eval/validate';

const HEADER = 'timestamp,host,cpu_usage,memory_usage,network_load,anomaly';

/** n distinct, in-range rows (minute steps, one host). */
function rows(
  n: number,
  f: (i: number) => [number | string, number | string, number | string, string?] = (i) => [20 + (i % 50), 40 + (i % 30), 1000 + i],
): string[] {
  return Array.from({ length: n }, (_, i) => {
    const [c, m, net, label] = f(i);
    return `${new Date(Date.UTC(2026, 0, 1) + i * 60000).toISOString()},h1,${c},${m},${net},${label ?? (i % 20 === 0 ? '1' : '0')}`;
  });
}

const csv = (lines: string[], header = HEADER): string => `${[header, ...lines].join('\n')}\n`;
const check = (r: ValidationReport, name: CheckName) => r.checks.find((c) => c.name === name) as ValidationReport['checks'][number];

describe('lenient CSV tokenizer', () => {
  it('handles quotes, embedded commas and newlines, CRLF, a BOM and blank lines, and keeps line numbers', () => {
    const text = '\ufeffa,b\r\n"x,1","say ""hi"""\r\n\r\n"multi\nline",2\n3\n';
    const recs = tokenizeCsv(text);
    expect(recs.map((r) => r.fields)).toEqual([['a', 'b'], ['x,1', 'say "hi"'], ['multi\nline', '2'], ['3']]);
    expect(recs.map((r) => r.line)).toEqual([1, 2, 4, 6]);
  });

  it('fails with one line only when nothing can be read', () => {
    expect(() => tokenizeCsv('  \n', 'f.csv')).toThrow(new DataError('f.csv: the file is empty'));
    expect(() => tokenizeCsv('a,b\n"open,2\n', 'f.csv')).toThrow(/unterminated quoted field starting on line 2/);
  });
});

describe('validation checks', () => {
  it('passes clean data and reports all six checks, statistics and labels', () => {
    const r = validateText(csv(rows(200)), 'ok.csv');
    expect(r.passed).toBe(true);
    expect(r.checks.map((c) => [c.name, c.status])).toEqual([
      ['schema', 'pass'],
      ['ranges', 'pass'],
      ['missing_values', 'pass'],
      ['duplicates', 'pass'],
      ['statistics', 'info'],
      ['outliers', 'info'],
    ]);
    expect(r.rows).toBe(200);
    expect(r.labels).toEqual({ present: true, positives: 10, fraction: 0.05 });
    expect(r.statistics.network_load.min).toBe(1000);
    expect(r.statistics.network_load.max).toBe(1199);
  });

  it('computes mean, sample std, linear quartiles (numpy/pandas) and IQR outliers exactly', () => {
    const s = describeStats(Float64Array.from([4, 1, 3, 2]));
    expect(s).toEqual({ count: 4, mean: 2.5, std: Math.sqrt(5 / 3), min: 1, q25: 1.75, median: 2.5, q75: 3.25, max: 4 });
    // 1..20 and 100: Q1 = 6, Q3 = 16, IQR 10 -> bounds -9 and 31; only 100 is outside.
    const o = iqrOutliers(Float64Array.from([...Array.from({ length: 20 }, (_, i) => i + 1), 100]));
    expect(o).toEqual({ count: 1, fraction: 1 / 21, lower: -9, upper: 31 });
  });

  it('ranges: fails only when more than 5% of rows are out of range, and counts per metric and bound', () => {
    expect(MAX_RANGE_VIOLATION_FRACTION).toBe(0.05);
    // 5 of 100 rows (exactly 5%): passes.
    const five = validateText(csv(rows(100, (i) => [i < 3 ? 101 : 20, i >= 3 && i < 5 ? -1 : 40, 1000 + i])), 'r5.csv');
    expect(check(five, 'ranges').status).toBe('pass');
    expect(check(five, 'ranges').details).toMatchObject({
      violating_rows: 5,
      fraction: 0.05,
      per_metric: { cpu_usage: { below: 0, above: 3 }, memory_usage: { below: 2, above: 0 } },
    });
    // 6 of 100 rows: fails; a row with two bad metrics counts once.
    const six = validateText(csv(rows(100, (i) => [i < 6 ? 150 : 20, i < 2 ? 120 : 40, i === 99 ? 0 : 1000 + i])), 'r6.csv');
    expect(check(six, 'ranges').status).toBe('fail');
    expect(check(six, 'ranges').details).toMatchObject({ violating_rows: 6 });
    expect(check(six, 'ranges').summary).toMatch(/^6 of 100 rows \(6\.00%\) out of range.*line 2 cpu_usage=150/);
    // network_load has no upper bound
    expect(check(validateText(csv(rows(50, (i) => [20, 40, 1e12 + i])), 'big.csv'), 'ranges').status).toBe('pass');
    expect(six.passed).toBe(false);
  });

  it('missing values: any empty or non-numeric metric cell fails, naming the lines', () => {
    const r = validateText(csv(rows(30, (i) => [i === 4 ? '' : 20, i === 7 ? 'high' : 40, i === 9 ? 'NaN' : 1000 + i])), 'm.csv');
    const c = check(r, 'missing_values');
    expect(c.status).toBe('fail');
    expect(c.details).toMatchObject({
      missing: { cpu_usage: 1, memory_usage: 0, network_load: 1 },
      non_numeric: { cpu_usage: 0, memory_usage: 1, network_load: 0 },
    });
    expect(c.summary).toBe('3 non-numeric or missing values: line 6 cpu_usage=""; line 9 memory_usage="high"; line 11 network_load="NaN"');
    // The statistics skip the bad cells rather than failing.
    expect(r.statistics.cpu_usage.count).toBe(29);
  });

  it('duplicates: fails only above 10% of rows', () => {
    expect(MAX_DUPLICATE_FRACTION).toBe(0.1);
    const base = rows(90);
    const ten = validateText(csv([...base, ...base.slice(0, 10)]), 'd10.csv'); // 10 of 100
    expect(check(ten, 'duplicates').status).toBe('pass');
    expect(check(ten, 'duplicates').details).toMatchObject({ duplicates: 10, fraction: 0.1 });
    const eleven = validateText(csv([...rows(89), ...rows(89).slice(0, 11)]), 'd11.csv'); // 11 of 100
    expect(check(eleven, 'duplicates').status).toBe('fail');
    expect(check(eleven, 'duplicates').summary).toMatch(/^11 duplicate row\(s\) \(11\.00%.*line 91 repeats line 2/);
  });

  it('schema: missing columns, ragged rows, bad labels and bad timestamps fail with clear lines', () => {
    const noCol = validateText(csv(['1,h,5'], 'timestamp,host,cpu_usage'), 'nocol.csv');
    expect(check(noCol, 'schema').status).toBe('fail');
    expect(check(noCol, 'schema').summary).toMatch(
      /missing column\(s\) memory_usage, network_load of the default metric set basic \(columns found: timestamp,host,cpu_usage\)/,
    );

    const ragged = validateText(
      csv([...rows(5), '2026-01-01T09:00:00Z,h1,1,2', ...rows(5).map((l) => l.replace('h1', 'h2'))]),
      'ragged.csv',
    );
    expect(check(ragged, 'schema').summary).toMatch(/1 row\(s\) do not have the header's 6 fields \(line 7 has 4 fields\)/);
    expect(ragged.statistics.cpu_usage.count).toBe(10); // the ragged row is left out, the rest still checked

    const labels = validateText(csv(rows(10, (i) => [20, 40, 1000 + i, i === 2 ? 'yes' : '0'])), 'labels.csv');
    expect(check(labels, 'schema').summary).toMatch(/1 label\(s\) are not 0 or 1 \(line 4 anomaly="yes"\)/);
    expect(labels.labels.positives).toBeNull();

    const ts = validateText(csv(rows(3)).replace('2026-01-01T00:01:00.000Z', '01/01/2026'), 'ts.csv');
    expect(check(ts, 'schema').summary).toMatch(
      /1 timestamp\(s\) are neither RFC 3339 nor epoch milliseconds \(line 3 timestamp="01\/01\/2026"\)/,
    );

    const noRows = validateText(`${HEADER}\n`, 'header-only.csv');
    expect(noRows.passed).toBe(false);
    expect(check(noRows, 'schema').summary).toMatch(/no data rows/);
  });

  it('accepts data without optional columns and says there are no labels', () => {
    const r = validateText('cpu_usage,memory_usage,network_load\n1,2,3\n4,5,6\n', 'min.csv');
    expect(r.passed).toBe(true);
    expect(r.labels.present).toBe(false);
    expect(check(r, 'schema').summary).toMatch(/optional: none \(no labels\)/);
  });

  it('prints a table with every check and the result, and a failure line naming failed checks', () => {
    const bad = validateText(csv(rows(20, (i) => [i < 5 ? 'x' : 20, 40, 1000 + i])), 'bad.csv');
    const table = formatValidation(bad);
    for (const name of ['schema', 'ranges', 'missing_values', 'duplicates', 'statistics', 'outliers'])
      expect(table).toMatch(new RegExp(`^${name}\\s+(PASS|FAIL|INFO)\\s`, 'm'));
    expect(table).toMatch(/Result: FAILED \(missing_values\)/);
    expect(failureLine(bad)).toMatch(/^missing_values: 5 non-numeric or missing values: line 2 cpu_usage="x"/);
    expect(failureLine(bad)).not.toContain('\n');
    expect(formatValidation(validateText(csv(rows(20)), 'good.csv'))).toMatch(/Result: PASSED/);
  });
});
