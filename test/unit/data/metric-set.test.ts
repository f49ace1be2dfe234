import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultFeatures, hostTemporalFeatures } from '../../../src/core/features';
import { BASIC_METRICS, MAX_METRIC_VALUE, METRIC_NAMES, NODE_METRICS } from '../../../src/core/metrics';
import { parseCsv } from '../../../src/data/csv';
import { toDataset } from '../../../src/data/dataset';
import {
  BASIC_SET,
  declaredSet,
  isBasicSet,
  mappingFileSet,
  metricSetOf,
  parseMetricsOption,
  setFeatures,
  setTemporalFeatures,
} from '../../../src/data/metric-set';
import { DataError, UsageError } from '../../../src/errors';

const TMP = mkdtempSync(join(tmpdir(), 'iad-metric-set-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const NODE_NAMES = NODE_METRICS.map((d) => d.name);

/** A small synthetic CSV with the node columns, in a shuffled column order; value of metric k at row i: 10 * k + i. */
function nodeCsv(rows: number, columns: string[] = [...NODE_NAMES].reverse()): string {
  const header = ['timestamp', 'host', ...columns, 'anomaly'];
  const lines = Array.from({ length: rows }, (_, i) => [
    new Date(Date.UTC(2026, 0, 1) + i * 60000).toISOString(),
    'h1',
    ...columns.map((c) => String(10 * NODE_NAMES.indexOf(c) + i)),
    i === 2 ? '1' : '0',
  ]);
  return `${[header, ...lines].map((l) => l.join(',')).join('\n')}\n`;
}

describe('--metrics', () => {
  it("names a preset: basic (the default, the three) or node (13, with the presets' units and ranges)", () => {
    expect(parseMetricsOption('basic').defs).toEqual(BASIC_METRICS);
    expect(isBasicSet(parseMetricsOption('basic'))).toBe(true);
    const node = parseMetricsOption('node');
    expect(node.label).toBe('node');
    expect(node.names).toEqual(NODE_NAMES);
    expect(node.defs.find((d) => d.name === 'swap_used_percent')).toEqual({ name: 'swap_used_percent', unit: 'percent', min: 0, max: 100 });
    expect(isBasicSet(node)).toBe(false);
    expect(metricSetOf({})).toBe(BASIC_SET);
  });

  it('or lists columns: known names keep their declarations, others are unitless with no range of their own', () => {
    const s = parseMetricsOption(' load1, fan_rpm ,temp_c');
    expect(s.label).toBe('columns');
    expect(s.names).toEqual(['load1', 'fan_rpm', 'temp_c']);
    expect(s.defs[0]).toEqual({ name: 'load1', unit: 'load', min: 0, max: null });
    expect(s.defs[1]).toEqual({ name: 'fan_rpm', unit: 'value', min: -MAX_METRIC_VALUE, max: null });
    // The three in their order are the basic set (the artifact keeps its original layout).
    expect(isBasicSet(parseMetricsOption(METRIC_NAMES.join(',')))).toBe(true);
    expect(isBasicSet(parseMetricsOption('memory_usage,cpu_usage,network_load'))).toBe(false);
  });

  it.each([
    ['CPU', /"CPU" is neither a preset \(basic, node\) nor a metric name/],
    ['cpu_usage,disk-read', /"disk-read" is neither a preset/],
    ['cpu_usage,,load1', /"" is neither a preset/],
    ['cpu_usage,host', /host is not a metric column/],
    ['load1,load5,load1', /load1 is named twice/],
    [Array.from({ length: 65 }, (_, i) => `m${i}`).join(','), /65 metrics, more than the 64/],
  ])('refuses %j with one line', (value, pattern) => {
    expect(() => parseMetricsOption(value)).toThrow(UsageError);
    expect(() => parseMetricsOption(value)).toThrow(pattern);
  });

  it('--metrics and --mapping together are refused', () => {
    expect(() => metricSetOf({ metrics: 'node', mapping: 'm.json' })).toThrow(/give one of them/);
  });
});

describe('--mapping', () => {
  it("takes a mapping file's metrics in its order, with the units and ranges it declares", () => {
    const file = join(TMP, 'mapping.json');
    writeFileSync(
      file,
      JSON.stringify({
        cpu_usage: { measurement: 'cpu', fields: ['usage_idle'], where: { cpu: 'cpu-total' }, transform: 'complement100' },
        temp_c: { measurement: 'sensors', fields: ['temp_input'], transform: 'value', unit: 'celsius', min: -40, max: 120 },
      }),
    );
    const s = mappingFileSet(file);
    expect(s.label).toBe(`mapping ${file}`);
    expect(s.defs).toEqual([
      { name: 'cpu_usage', unit: 'percent', min: 0, max: 100 },
      { name: 'temp_c', unit: 'celsius', min: -40, max: 120 },
    ]);
    expect(metricSetOf({ mapping: file }).names).toEqual(['cpu_usage', 'temp_c']);
  });

  it.each([
    ['missing.json', null, /--mapping .*missing\.json: no such file/],
    ['bad.json', '{"cpu_usage":', /--mapping .*bad\.json: not valid JSON/],
    [
      'name.json',
      JSON.stringify({ 'Disk-Read': { measurement: 'diskio', fields: ['read_bytes'] } }),
      /Disk-Read: metric names are lower case/,
    ],
    ['empty.json', '{}', /a mapping needs at least one metric/],
  ])('refuses %s with one line', (name, body, pattern) => {
    const file = join(TMP, name);
    if (body !== null) writeFileSync(file, body);
    expect(() => mappingFileSet(file)).toThrow(DataError);
    expect(() => mappingFileSet(file)).toThrow(pattern);
  });
});

describe('features of a set', () => {
  it('the basic set has exactly the features it always had (so its artifacts keep their bytes)', () => {
    expect(setFeatures(BASIC_SET)).toEqual(defaultFeatures());
    expect(setTemporalFeatures(BASIC_SET, 20, 3)).toEqual(hostTemporalFeatures(20, 3));
  });

  it('another set: each metric raw with its unit and range, and the temporal ones of each', () => {
    const s = parseMetricsOption('swap_used_percent,fan_rpm');
    expect(setFeatures(s)).toEqual([
      { name: 'swap_used_percent', source: 'swap_used_percent', transform: 'raw', unit: 'percent', min: 0, max: 100 },
      { name: 'fan_rpm', source: 'fan_rpm', transform: 'raw', unit: 'value', min: -MAX_METRIC_VALUE, max: null },
    ]);
    const t = setTemporalFeatures(s, 10, 3);
    expect(t.map((f) => f.name)).toEqual([
      'swap_used_percent',
      'fan_rpm',
      ...['swap_used_percent', 'fan_rpm'].flatMap((m) => [`${m}_robust_z`, `${m}_diff`, `${m}_level_shift`]),
    ]);
    expect(t.find((f) => f.name === 'fan_rpm_level_shift')?.params).toEqual({ window: 10, span: 3 });
  });
});

describe('toDataset over a metric set', () => {
  it("reads the node columns in the set's order, whatever their order in the file", () => {
    const ds = toDataset(parseCsv(nodeCsv(4)), 'node.csv', parseMetricsOption('node'));
    expect(ds.metrics).toEqual(NODE_NAMES);
    expect(ds.raw.length).toBe(4 * 13);
    // Row 1, metric k: 10 * k + 1.
    expect(Array.from(ds.raw.subarray(13, 26))).toEqual(NODE_NAMES.map((_, k) => 10 * k + 1));
    expect(Array.from(ds.labels as Uint8Array)).toEqual([0, 0, 1, 0]);
  });

  it('reads custom columns and leaves the others alone', () => {
    const text = 'timestamp,host,fan_rpm,temp_c,note\n1,a,1200,40.5,x\n2,a,1300,41,y\n';
    const ds = toDataset(parseCsv(text), 'c.csv', parseMetricsOption('temp_c,fan_rpm'));
    expect(Array.from(ds.raw)).toEqual([40.5, 1200, 41, 1300]);
    expect(() => toDataset(parseCsv(text.replace('1300', 'fast')), 'c.csv', parseMetricsOption('temp_c,fan_rpm'))).toThrow(
      /line 3 fan_rpm="fast"/,
    );
  });

  it('a missing column is one line naming it, where the set came from, and the columns found', () => {
    const text = nodeCsv(
      3,
      NODE_NAMES.filter((n) => n !== 'disk_io_time' && n !== 'load5'),
    );
    let msg = '';
    try {
      toDataset(parseCsv(text), 'node.csv', parseMetricsOption('node'));
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/^node\.csv: missing column\(s\) load5, disk_io_time of --metrics node \(columns found: timestamp,host,cpu_usage,/);
    expect(msg).not.toMatch(/\n/);
    // The default set names itself as the default.
    expect(() => toDataset(parseCsv('timestamp,host,cpu_usage\n1,a,2\n'), 'b.csv')).toThrow(
      'b.csv: missing column(s) memory_usage, network_load of the default metric set basic (columns found: timestamp,host,cpu_usage)',
    );
  });
});

describe('declaredSet', () => {
  it("labels a model's declarations with the preset of the same names, else with where they came from", () => {
    expect(declaredSet('model v1', BASIC_METRICS).label).toBe('basic');
    expect(declaredSet('model v1', NODE_METRICS).label).toBe('node');
    const custom = declaredSet('model v1', parseMetricsOption('temp_c').defs);
    expect(custom.label).toBe('model v1');
    expect(custom.option).toBe('model v1');
  });
});
