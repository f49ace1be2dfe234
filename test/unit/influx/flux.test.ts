import { fluxString as clientFluxString } from '@influxdata/influxdb-client';
import { fluxColumn, fluxString, fluxStringArray, fluxTime } from '../../../src/influx/flux';
import { latestTimesFlux, readSeriesFlux, tagValuesFlux } from '../../../src/influx/v2';
import { HOSTILE, randomStrings, UNREPRESENTABLE_NAMES } from './hostile';

/**
 * Reads a Flux string literal at the start of `s`: escapes `\n \r \t \\ \" \$`; an
 * unescaped `${` would start interpolation and is an error here.
 */
function scanFlux(s: string): { value: string; rest: string } {
  if (s[0] !== '"') throw new Error('no opening quote');
  let value = '';
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (c === '"') return { value, rest: s.slice(i + 1) };
    if (c === '$' && s[i + 1] === '{') throw new Error('interpolation');
    if (c === '\\') {
      const e = s[++i];
      const map: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', '"': '"', $: '$' };
      if (!(e in map)) throw new Error(`bad escape \\${e}`);
      value += map[e];
    } else value += c;
  }
  throw new Error('unterminated');
}

const NAMED = [...HOSTILE, ...UNREPRESENTABLE_NAMES, '${', 'a${b}c', '$$${{'];
const ALL = [...NAMED, ...randomStrings(500, 11)];

describe('Flux quoting', () => {
  it.each(NAMED.map((s) => [s]))('string literal of %j is one token that reads back exactly', (s) => {
    const { value, rest } = scanFlux(fluxString(s) + ')');
    expect(value).toBe(s);
    expect(rest).toBe(')');
  });

  it('escapes interpolation and agrees with the official client on what it reads back', () => {
    expect(fluxString('${r.token}')).toBe('"\\${r.token}"');
    const failures = ALL.filter((s) => {
      const ours = scanFlux(fluxString(s) + ')');
      return ours.value !== s || ours.rest !== ')' || scanFlux(clientFluxString(s).toString()).value !== s;
    });
    expect(failures).toEqual([]);
  });

  it('builds columns, arrays and times', () => {
    expect(fluxColumn('ho"st')).toBe('r["ho\\"st"]');
    expect(fluxStringArray(['_time', 'a b'])).toBe('["_time", "a b"]');
    expect(fluxTime(1700000000123)).toBe('time(v: "2023-11-14T22:13:20.123Z")');
    expect(() => fluxTime(NaN)).toThrow(RangeError);
  });

  it('puts hostile names into readSeries and latestTimes queries only as literals', () => {
    const evil = '") |> drop() //${x}';
    const q = readSeriesFlux(evil, {
      measurement: evil,
      fields: [evil, 'usage'],
      where: { [evil]: [evil, 'b'] },
      groupBy: ['host'],
      from: 0,
      to: 1000,
    });
    expect(q).toBe(
      [
        'from(bucket: "\\") |> drop() //\\${x}")',
        '  |> range(start: time(v: "1970-01-01T00:00:00.000Z"), stop: time(v: "1970-01-01T00:00:01.000Z"))',
        '  |> filter(fn: (r) => r._measurement == "\\") |> drop() //\\${x}")',
        '  |> filter(fn: (r) => r._field == "\\") |> drop() //\\${x}" or r._field == "usage")',
        '  |> filter(fn: (r) => r["\\") |> drop() //\\${x}"] == "\\") |> drop() //\\${x}" or r["\\") |> drop() //\\${x}"] == "b")',
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")',
        '  |> group(columns: ["host"])',
        '  |> keep(columns: ["_time", "host", "\\") |> drop() //\\${x}", "usage"])',
        '  |> sort(columns: ["_time"])',
      ].join('\n'),
    );
    const l = latestTimesFlux('b', 'ai_predictions', evil, { field: 'score', since: 1000 });
    expect(l).toContain(`group(columns: ["\\") |> drop() //\\\${x}"])`);
    expect(l).toContain('r._field == "score"');
    expect(l).toContain('range(start: time(v: "1970-01-01T00:00:01.000Z"))');
  });
});

describe('shard reads in Flux', () => {
  it('a host set is an OR of string literals, and tag discovery uses schema.tagValues', () => {
    const q = readSeriesFlux('b', { measurement: 'cpu', fields: ['v'], tagIn: { key: 'host', values: ['a"b', '${x}'] }, from: 0 });
    expect(q).toContain('|> filter(fn: (r) => r["host"] == "a\\"b" or r["host"] == "\\${x}")');
    const t = tagValuesFlux('b', ['cpu', 'mem', 'cpu'], 'host', 1000);
    expect(t).toBe(
      'import "influxdata/influxdb/schema"\nschema.tagValues(bucket: "b", tag: "host", predicate: (r) => r._measurement == "cpu" or r._measurement == "mem", start: time(v: "1970-01-01T00:00:01.000Z"))',
    );
  });
});
