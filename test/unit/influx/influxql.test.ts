import {
  exactRegex,
  quoteIdent,
  quoteMeasurement,
  quoteString,
  regexLiteral,
  tagCondition,
  tagInCondition,
  timeLiteral,
} from '../../../src/influx/influxql';
import { HOSTILE, randomStrings, UNREPRESENTABLE_NAMES } from './hostile';

/**
 * Reads one quoted token at the start of `s` the way InfluxQL's scanner does: `\\`,
 * `\'`, `\"` and `\n` are escapes, any other escape or a literal newline is an error.
 * Returns the value and what follows the closing quote.
 */
function scanQuoted(s: string, quote: string): { value: string; rest: string } {
  if (s[0] !== quote) throw new Error('no opening quote');
  let value = '';
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (c === '\n') throw new Error('literal newline');
    if (c === quote) return { value, rest: s.slice(i + 1) };
    if (c === '\\') {
      const e = s[++i];
      if (e === 'n') value += '\n';
      else if (e === '\\' || e === "'" || e === '"') value += e;
      else throw new Error(`bad escape \\${e}`);
    } else value += c;
  }
  throw new Error('unterminated');
}

/** Refused by the quoting (no escape carries them; checked against influxd 1.6.7: a raw CR in quotes is a parse error). */
const unquotable = (s: string) => s.includes('\r') || s.includes('\u0000');
const NAMED = [...HOSTILE, ...UNREPRESENTABLE_NAMES].filter((s) => !unquotable(s));

describe('InfluxQL quoting', () => {
  it('quotes examples as InfluxDB expects', () => {
    expect(quoteString("'; DROP DATABASE x; --")).toBe("'\\'; DROP DATABASE x; --'");
    expect(quoteIdent('" OR 1=1')).toBe('"\\" OR 1=1"');
    expect(quoteString('a\\b\nc')).toBe("'a\\\\b\\nc'");
    expect(quoteIdent('cpu')).toBe('"cpu"');
  });

  it('refuses what no escape carries (NUL, carriage return) with a clear error, not a query InfluxDB cannot parse', () => {
    expect(() => quoteString('a\rb')).toThrow(/NUL or carriage return/);
    expect(() => quoteIdent('a\u0000b')).toThrow(RangeError);
  });

  it.each(NAMED.map((s) => [s]))('string literal of %j is one token that reads back exactly', (s) => {
    const { value, rest } = scanQuoted(quoteString(s) + ' AND x', "'");
    expect(value).toBe(s);
    expect(rest).toBe(' AND x');
  });

  it.each(NAMED.map((s) => [s]))('identifier of %j is one token that reads back exactly', (s) => {
    const { value, rest } = scanQuoted(quoteIdent(s) + ' FROM', '"');
    expect(value).toBe(s);
    expect(rest).toBe(' FROM');
  });

  it('reads back 500 random strings exactly, as literals and identifiers', () => {
    const strings = randomStrings(500, 7);
    for (const s of strings.filter(unquotable)) expect(() => quoteString(s)).toThrow(RangeError);
    const failures = strings
      .filter((s) => !unquotable(s))
      .filter((s) => {
        const lit = scanQuoted(quoteString(s) + ';', "'");
        const id = scanQuoted(quoteIdent(s) + ';', '"');
        return lit.value !== s || lit.rest !== ';' || id.value !== s || id.rest !== ';';
      });
    expect(failures).toEqual([]);
  });

  it('builds tag conditions and measurement references', () => {
    expect(tagCondition('host', "a'b")).toBe(`"host"::tag = 'a\\'b'`);
    expect(tagCondition('host', ['a', 'b'])).toBe(`("host"::tag = 'a' OR "host"::tag = 'b')`);
    expect(() => tagCondition('host', [])).toThrow(/no values/);
    expect(quoteMeasurement('cpu')).toBe('"cpu"');
    expect(quoteMeasurement('cpu', 'a"rp')).toBe('"a\\"rp"."cpu"');
  });

  it('writes times as integer epoch milliseconds', () => {
    expect(timeLiteral(1700000000123)).toBe('1700000000123ms');
    expect(timeLiteral(new Date(5.9))).toBe('5ms');
    expect(() => timeLiteral(NaN)).toThrow(RangeError);
  });
});

/**
 * Decodes an InfluxQL regex literal as InfluxQL's scanner does (ScanDelimited with `/`
 * as the only escape, other backslashes passed through, a newline an error).
 */
function scanRegexLiteral(s: string): string {
  if (s[0] !== '/' || s[s.length - 1] !== '/') throw new Error('not a regex literal');
  let out = '';
  for (let i = 1; i < s.length - 1; i++) {
    const c = s[i];
    if (c === '\n') throw new Error('newline in regex');
    if (c === '/') throw new Error('unescaped / ends the literal early');
    if (c === '\\' && s[i + 1] === '/') {
      out += '/';
      i++;
    } else out += c;
  }
  return out;
}

describe('host sets as one anchored regex (shard reads)', () => {
  const names = [
    ...HOSTILE,
    ...randomStrings(300, 7),
    'a.b',
    'x*',
    '(g)',
    '[ab]',
    '{2}',
    'q?',
    '^c$',
    'p|q',
    'sl/ash',
    'b\\/s',
    '\\',
    'line\nbreak',
    'nul\u0000in',
    'cr\rin',
    'del\u007fand\u0001soh',
  ];

  it('matches exactly the values given (JS regexes agree with Go on these escapes)', () => {
    // Go's `\x{hh}` is JavaScript's `\u{hh}` (with the u flag).
    const re = new RegExp(exactRegex(names).replace(/\\x\{/g, '\\u{'), 'u');
    for (const n of names) expect([n, re.test(n)]).toEqual([n, true]);
    for (const n of ['aXb', 'xxx', 'g', 'a', 'b', 'q', 'c', 'p', 'slash', 'b/s', '', 'plain ', `${names[0]}x`, 'line', 'break'])
      if (!names.includes(n)) expect([n, re.test(n)]).toEqual([n, false]);
  });

  it('survives the InfluxQL scanner unchanged, with no raw newline', () => {
    const re = exactRegex(names);
    const literal = regexLiteral(re);
    expect(literal).not.toContain('\n');
    expect(scanRegexLiteral(literal)).toBe(re);
    expect(tagInCondition('host', ['a/b'])).toBe('"host"::tag =~ /^(?:a\\/b)$/');
    expect(() => tagInCondition('host', [])).toThrow(RangeError);
  });
});
