import {
  escapeMeasurement,
  escapeTag,
  formatPoint,
  formatPoints,
  formatTimestamp,
  int,
  LineProtocolError,
  quoteFieldString,
} from '../../../src/influx/line-protocol';
import { HOSTILE, randomStrings, UNREPRESENTABLE_NAMES } from './hostile';

/**
 * A reference parser with InfluxDB 1.x's rules: a backslash always takes the next
 * character with it while scanning; double quotes matter only in field values; after
 * scanning, only the escape codes of the part are unescaped (`\,` `\ ` in measurements,
 * plus `\=` in tags and field keys).
 */
function split(s: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      cur += c + (s[i + 1] ?? '');
      i++;
    } else if (c === sep) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts;
}
const unescape = (s: string, codes: string) => s.replace(/\\(.)/gs, (m, c: string) => (codes.includes(c) ? c : m));
const unquote = (s: string) => {
  expect(s.startsWith('"') && s.endsWith('"')).toBe(true);
  return s.slice(1, -1).replace(/\\(["\\])/g, '$1');
};

/** Field set and timestamp: [key, rawValue][] and the rest after the first space outside values. */
function parseFields(s: string): { fields: Array<[string, string]>; rest: string } {
  const fields: Array<[string, string]> = [];
  let key = '';
  let value = '';
  let inValue = false;
  let inQuotes = false;
  let i = 0;
  for (; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      if (inValue) value += c + (s[i + 1] ?? '');
      else key += c + (s[i + 1] ?? '');
      i++;
    } else if (inValue && c === '"') {
      inQuotes = !inQuotes;
      value += c;
    } else if (!inValue && c === '=') inValue = true;
    else if (inValue && !inQuotes && (c === ',' || c === ' ')) {
      fields.push([key, value]);
      key = '';
      value = '';
      inValue = false;
      if (c === ' ') break;
    } else if (inValue) value += c;
    else key += c;
  }
  if (i >= s.length) fields.push([key, value]);
  expect(inQuotes).toBe(false);
  for (const [k, v] of fields) {
    expect(k).not.toMatch(/[\n\r]/);
    if (!v.startsWith('"')) expect(v).not.toMatch(/[\n\r]/);
  }
  return { fields, rest: s.slice(i + 1) };
}

function parseLine(line: string) {
  const [key] = split(line, ' ');
  // Newlines may appear only inside quoted string values (InfluxDB's scanner honours quotes there).
  expect(key).not.toMatch(/[\n\r]/);
  const { fields: fieldList, rest: ts } = parseFields(line.slice(key.length + 1));
  const [m, ...tagParts] = split(key, ',');
  const tags: Record<string, string> = {};
  for (const t of tagParts) {
    const kv = split(t, '=');
    expect(kv).toHaveLength(2);
    tags[unescape(kv[0], ',= ')] = unescape(kv[1], ',= ');
  }
  const fields: Record<string, string> = {};
  for (const [k, v] of fieldList) fields[unescape(k, ',= ')] = v;
  return { measurement: unescape(m, ', '), tags, fields, ts };
}

describe('line protocol escaping', () => {
  it('escapes the separators of each part', () => {
    expect(escapeMeasurement('cpu load,x=1')).toBe('cpu\\ load\\,x=1');
    expect(escapeTag('a,b=c d')).toBe('a\\,b\\=c\\ d');
    expect(quoteFieldString('say "hi" \\ bye')).toBe('"say \\"hi\\" \\\\ bye"');
  });

  it.each(HOSTILE)('round-trips hostile name %j through a 1.x-rules parser', (s) => {
    const line = formatPoint({ measurement: s, tags: { [s]: s, host: s }, fields: { [s]: 1, str: s }, time: 1000 });
    const parsed = parseLine(line);
    expect(parsed.measurement).toBe(s);
    expect(parsed.tags).toEqual(s === 'host' ? { host: s } : { [s]: s, host: s });
    expect(parsed.fields[s]).toBe('1');
    expect(unquote(parsed.fields.str)).toBe(s);
    expect(parsed.ts).toBe('1000');
  });

  it.each(UNREPRESENTABLE_NAMES)('rejects %j as a name instead of rewriting it', (s) => {
    expect(() => escapeTag(s)).toThrow(LineProtocolError);
    expect(() => escapeMeasurement(s)).toThrow(LineProtocolError);
    expect(() => formatPoint({ measurement: 'm', tags: { host: s }, fields: { v: 1 } })).toThrow(/tag value/);
    expect(() => formatPoint({ measurement: 'm', fields: { [s]: 1 } })).toThrow(/field key/);
  });

  it('carries newlines and every other character in string field values', () => {
    const s = 'line1\nline2\r\n"q" \\ \\" end\\';
    const parsed = parseLine(formatPoint({ measurement: 'm', fields: { s } }));
    expect(unquote(parsed.fields.s)).toBe(s);
  });

  it('round-trips or rejects (exactly the documented cases) 1000 random strings', () => {
    const failures: string[] = [];
    let accepted = 0;
    for (const s of randomStrings(1000)) {
      const unrepresentable = /[\n\r]/.test(s) || /\\($|[\\, =])/.test(s);
      // string values are always representable
      if (unquote(parseLine(formatPoint({ measurement: 'm', fields: { s } })).fields.s) !== s) failures.push(`string ${JSON.stringify(s)}`);
      if (unrepresentable) {
        if (!throwsLineProtocolError(() => escapeTag(s))) failures.push(`accepted ${JSON.stringify(s)}`);
        continue;
      }
      accepted++;
      const parsed = parseLine(formatPoint({ measurement: s, tags: { k: s }, fields: { [s]: s } }));
      if (parsed.measurement !== s || parsed.tags.k !== s || unquote(parsed.fields[s]) !== s) failures.push(`changed ${JSON.stringify(s)}`);
    }
    expect(failures).toEqual([]);
    expect(accepted).toBeGreaterThan(200);
  });
});

function throwsLineProtocolError(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (err) {
    return err instanceof LineProtocolError;
  }
}

describe('formatPoint', () => {
  it('formats float, integer, bool and string fields and sorts tags', () => {
    const line = formatPoint({
      measurement: 'ai_predictions',
      tags: { model: 'v1', host: 'web-1' },
      fields: { score: 0.5, is_anomaly: true, n: int(42), big: 9007199254740993n, note: 'ok', neg: -1.5e-7, huge: 1e21 },
      time: 1700000000123,
    });
    expect(line).toBe(
      'ai_predictions,host=web-1,model=v1 score=0.5,is_anomaly=true,n=42i,big=9007199254740993i,note="ok",neg=-1.5e-7,huge=1e+21 1700000000123',
    );
  });

  it('keeps floats exact in their shortest form', () => {
    for (const v of [0.1, 1 / 3, 123456.789, -0.000001234, 2 ** 53 + 2, 5e-324]) {
      const line = formatPoint({ measurement: 'm', fields: { v } });
      expect(Number(line.split('=')[1])).toBe(v);
    }
  });

  it('omits empty and undefined tags and undefined fields; omits the timestamp when absent', () => {
    expect(formatPoint({ measurement: 'm', tags: { a: '', b: undefined, c: 'x' }, fields: { v: 1, w: undefined } })).toBe('m,c=x v=1');
  });

  it('formats timestamps in ms or ns', () => {
    expect(formatTimestamp(1700000000123, 'ms')).toBe('1700000000123');
    expect(formatTimestamp(new Date(1700000000123), 'ns')).toBe('1700000000123000000');
    expect(formatTimestamp(1700000000123456789n, 'ns')).toBe('1700000000123456789');
    expect(formatTimestamp(1700000000123456789n, 'ms')).toBe('1700000000123');
    expect(formatPoint({ measurement: 'm', fields: { v: 1 }, time: 5 }, 'ns')).toBe('m v=1 5000000');
    expect(
      formatPoints([
        { measurement: 'm', fields: { v: 1 }, time: 5 },
        { measurement: 'n', fields: { v: 2 }, time: 6 },
      ]),
    ).toEqual(['m v=1 5', 'n v=2 6']);
  });

  it('rejects what InfluxDB cannot store', () => {
    expect(() => formatPoint({ measurement: '', fields: { v: 1 } })).toThrow(/measurement name is empty/);
    expect(() => formatPoint({ measurement: 'm', fields: {} })).toThrow(/no fields/);
    expect(() => formatPoint({ measurement: 'm', fields: { v: undefined } })).toThrow(/no fields/);
    expect(() => formatPoint({ measurement: 'm', fields: { v: NaN } })).toThrow(/finite/);
    expect(() => formatPoint({ measurement: 'm', fields: { v: Infinity } })).toThrow(/finite/);
    expect(() => formatPoint({ measurement: 'm', fields: { v: 1 }, time: 1.5 })).toThrow(/integer number of milliseconds/);
    expect(() => formatPoint({ measurement: 'm', fields: { v: 1 }, time: new Date(NaN) })).toThrow(LineProtocolError);
    expect(() => formatPoint({ measurement: 'm', tags: { '': 'x' }, fields: { v: 1 } })).toThrow(/tag key is empty/);
    expect(() => int(1.5)).toThrow(LineProtocolError);
    expect(() => int(2 ** 60)).toThrow(LineProtocolError);
  });
});

describe('comment lines', () => {
  it('rejects a measurement starting with # (the line would be a comment) but allows # elsewhere', () => {
    expect(() => escapeMeasurement('#cpu')).toThrow(/comment/);
    expect(formatPoint({ measurement: 'c#pu', tags: { host: '#1' }, fields: { '#f': 1 } })).toBe('c#pu,host=#1 #f=1');
  });
});
