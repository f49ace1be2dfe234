import { formatPoint, int } from '../../../src/influx/line-protocol';
import { LineReader, parseEscaped, parseLine, splitLines } from '../../../src/influx/line-parser';

const ok = (line: string) => {
  const r = parseLine(line);
  if (!r.ok) throw new Error(`${line}: ${r.reason}`);
  return r.point;
};

describe('parseLine', () => {
  it('reads measurement, tags, typed fields and a nanosecond timestamp', () => {
    const p = ok('cpu,cpu=cpu-total,host=web-1 usage_idle=97.5,usage_user=2i,up=true,note="a b, c=d" 1700000000123456789');
    expect(p).toEqual({
      measurement: 'cpu',
      tags: { cpu: 'cpu-total', host: 'web-1' },
      fields: { usage_idle: 97.5, usage_user: 2, up: 1 },
      time: 1700000000123,
    });
  });

  it('reads what formatPoint writes, escapes included (round trip)', () => {
    const tags = { host: 'we ird,host=x', interface: 'C:\\temp', 'k ey': 'v=1' };
    const line = formatPoint(
      {
        measurement: 'my net,work',
        tags,
        fields: { 'bytes recv': int(12), rate: 1.5e-7, s: 'quote " and \\ back' },
        time: 1_700_000_000_001,
      },
      'ns',
    );
    const p = ok(line);
    expect(p.measurement).toBe('my net,work');
    expect(p.tags).toEqual(tags);
    expect(p.fields).toEqual({ 'bytes recv': 12, rate: 1.5e-7 });
    expect(p.time).toBe(1_700_000_000_001);
  });

  it('keeps integers beyond 2^53 exactly', () => {
    const p = ok('net,host=a bytes_recv=18446744073709551000u,x=9007199254740993i 1');
    expect(p.exact).toEqual({ bytes_recv: 18446744073709551000n, x: 9007199254740993n });
    expect(p.time).toBe(0);
  });

  it('floors timestamps before 1970 to their millisecond', () => {
    expect(ok('m,host=a v=1 -1').time).toBe(-1);
    expect(ok('m,host=a v=1 -1000000').time).toBe(-1);
    expect(ok('m,host=a v=1 -1000001').time).toBe(-2);
  });

  it.each([
    ['', 'syntax'],
    ['cpu', 'syntax'],
    ['cpu,host', 'syntax'],
    ['cpu,host=a', 'syntax'],
    ['cpu,=a v=1 1', 'syntax'],
    ['cpu,host= v=1 1', 'syntax'],
    ['cpu,host=a  1', 'no_fields'],
    ['cpu,host=a v=1', 'no_timestamp'],
    ['cpu,host=a v=1 ', 'no_timestamp'],
    ['cpu,host=a v=1 12x', 'bad_timestamp'],
    ['cpu,host=a v=1 99999999999999999999', 'bad_timestamp'],
    ['cpu,host=a v=abc 1', 'bad_value'],
    ['cpu,host=a v=1.2.3 1', 'bad_value'],
    ['cpu,host=a v=NaN 1', 'bad_value'],
    ['cpu,host=a v=1e999 1', 'bad_value'],
    ['cpu,host=a v=-5u 1', 'bad_value'],
    ['cpu,host=a v="unterminated 1', 'syntax'],
    ['cpu,host=a v=1,w 1', 'syntax'],
  ])('refuses %j with reason %s, without throwing', (line, reason) => {
    expect(parseLine(line)).toEqual({ ok: false, reason });
  });

  it('reads plain lines (its fast path) exactly as the full parser does', () => {
    let seed = 3;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let k = 0; k < 2000; k++) {
      const v = (rand() - 0.5) * 10 ** Math.floor(rand() * 30 - 10);
      const ts = BigInt(Math.floor(rand() * 2 ** 52)) * BigInt(1 + Math.floor(rand() * 2000));
      const big = BigInt(Math.floor(rand() * 2 ** 53)) * 4099n;
      const line = `net,host=h${k},interface=eth${k % 3} bytes_recv=${big}i,v=${v},up=${rand() < 0.5 ? 't' : 'FALSE'},n=${k}u ${ts}`;
      // A quoted string field sends the same line through the full parser.
      const slow = line.replace(' bytes_recv', ' s="x",bytes_recv');
      expect(parseLine(line)).toEqual(parseLine(slow));
    }
    for (const odd of ['m,a==b v=1 1', 'm,a=b=c v=1 1', 'm,,a=b v=1 1', 'm v= 1', 'm v=1 1 2', 'm v=1 -5', 'm v=1 9223372036854775808'])
      expect(parseLine(odd)).toEqual(parseLine(odd.replace(' v=', ' s="x",v=')));
  });

  it('refuses a long run of digits ending in a bad character at once (the full parser: no backtracking regex)', () => {
    // A quoted field sends the line to the full parser. Its old float pattern was quadratic
    // in the digits (about 15 s for 80,000 here), so one such message held the event loop
    // for seconds: the bound below is a regression guard with a margin of some 1,000 times.
    const digits = '1'.repeat(60_000);
    const line = (v: string) => parseLine(`mem,host=a\\ b s="x",used_percent=${v} 1700000000000000000`);
    const t0 = performance.now();
    for (const v of [`${digits}x`, `${digits}.${digits}e`, `.${digits}e+`, `-${digits}.-`])
      expect([v.length, line(v)]).toEqual([v.length, { ok: false, reason: 'bad_value' }]);
    expect(line(`0.${digits}`)).toEqual(expect.objectContaining({ ok: true }));
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('never throws on random bytes', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const alphabet = 'ab=, "\\\n1i.e-u#tT\u0000\u00e9';
    for (let k = 0; k < 5000; k++) {
      let s = '';
      const len = Math.floor(rand() * 40);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
      for (const line of splitLines(s)) expect(() => parseLine(line)).not.toThrow();
    }
  });
});

describe('splitLines', () => {
  it('drops blank lines, comments and carriage returns', () => {
    expect(splitLines('# c\r\ncpu,host=a v=1 1\r\n\n  \nmem,host=a v=2 2\n')).toEqual(['cpu,host=a v=1 1', 'mem,host=a v=2 2']);
  });
});

/** Random lines of line protocol, mostly well formed, with every kind of separator out of place now and then. */
function randomLines(count: number, seed: number): string[] {
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)];
  const names = ['cpu', 'mem', 'net', 'disk', 'c', 'cpu0', ''];
  const keys = ['host', 'cpu', 'interface', 'name', 'h', 'hostx', ''];
  const values = ['a', 'web-1', 'cpu-total', 'eth0', 'lo', 'x=y', 'a b', '', 'é'];
  const fieldKeys = ['usage_idle', 'used_percent', 'bytes_recv', 'bytes_sent', 'v', ''];
  const numbers = [
    '1',
    '-0',
    '97.5',
    '.5',
    '5.',
    '-.5e-3',
    '+1E+9',
    '1e',
    '1.2.3',
    'abc',
    '',
    '12i',
    '-0i',
    '-12i',
    '007i',
    '18446744073709551000u',
    '9007199254740993i',
    '-9007199254740993i',
    '1234567890123456i',
    '123456789012345i',
    '5u',
    '-5u',
    'i',
    '-i',
    't',
    'TRUE',
    'False',
    'tru',
    'f',
    '1e999',
    'NaN',
    '0x10',
  ];
  const times = [
    '1700000000123456789',
    '1',
    '0',
    '999999',
    '1000000',
    '-1',
    '-1000001',
    '9223372036854775807',
    '9223372036854775808',
    '92233720368547758070',
    '12x',
    '',
    ' 17',
    '17 ',
    '0001',
  ];
  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    let line = pick(names);
    const tags = Math.floor(rand() * 4);
    for (let t = 0; t < tags; t++) line += `${rand() < 0.05 ? ',,' : ','}${pick(keys)}${rand() < 0.05 ? '==' : '='}${pick(values)}`;
    line += rand() < 0.1 ? '  ' : ' ';
    const fields = Math.floor(rand() * 4);
    for (let f = 0; f < fields; f++) line += `${f > 0 ? ',' : ''}${pick(fieldKeys)}=${pick(numbers)}`;
    if (rand() < 0.9) line += `${rand() < 0.1 ? '   ' : ' '}${pick(times)}`;
    if (rand() < 0.05) line += ' 2';
    out.push(line);
  }
  return out;
}

describe('the plain-line scanner', () => {
  it('reads lines without escapes exactly as the full parser does (random lines, every field, and only wanted ones)', () => {
    const wanted = new Map([
      ['cpu', new Set(['usage_idle', 'v'])],
      ['mem', new Set(['used_percent'])],
      ['net', new Set(['bytes_recv', 'bytes_sent'])],
    ]);
    const reasons = new Set<string>();
    for (const line of randomLines(20_000, 11)) {
      const r = parseLine(line);
      expect(r).toEqual(parseEscaped(line));
      expect(parseLine(line, wanted)).toEqual(parseEscaped(line, wanted));
      reasons.add(r.ok ? 'ok' : r.reason);
    }
    expect([...reasons].sort()).toEqual(['bad_timestamp', 'bad_value', 'no_fields', 'no_timestamp', 'ok', 'syntax']);
  });
});

describe('LineReader', () => {
  const specs = [
    { measurement: 'cpu', fields: ['usage_idle', 'v'], tags: ['host', 'cpu'] },
    { measurement: 'mem', fields: ['used_percent'], tags: ['host'] },
    { measurement: 'net', fields: ['bytes_recv', 'bytes_sent'], tags: ['host', 'interface'] },
  ];
  const wanted = new Map(specs.map((s) => [s.measurement, new Set(s.fields)]));

  /** What parseLine says of a line, in the reader's terms. */
  function expected(line: string) {
    const r = parseLine(line, wanted);
    if (!r.ok) return r.reason;
    const spec = specs.find((s) => s.measurement === r.point.measurement) as (typeof specs)[number];
    return {
      measurement: specs.indexOf(spec),
      tags: spec.tags.map((t) => (Object.hasOwn(r.point.tags, t) ? r.point.tags[t] : undefined)),
      fields: spec.fields.map((f) => (Object.hasOwn(r.point.fields, f) ? r.point.fields[f] : undefined)),
      exact: spec.fields.map((f) => r.point.exact?.[f]),
      anyExact: r.point.exact !== undefined,
      time: r.point.time,
    };
  }

  function got(reader: LineReader, text: string, s: number, e: number) {
    const r = reader.read(text, s, e);
    if (r !== null) return r;
    const p = reader.point;
    const spec = specs[p.measurement];
    return {
      measurement: p.measurement,
      tags: spec.tags.map((_, k) => p.tags[k]),
      fields: spec.fields.map((_, k) => (p.has[k] === 1 ? p.values[k] : undefined)),
      exact: spec.fields.map((_, k) => p.exact[k]),
      anyExact: p.anyExact,
      time: p.time,
    };
  }

  it('reads each line of a text in place ([start, end)) as parseLine reads it, escaped lines included', () => {
    const reader = new LineReader(specs);
    const lines = randomLines(20_000, 5).map((l, k) =>
      k % 50 === 0 ? l.replace('=', '="q\\"",') : k % 37 === 0 ? l.replace(' ', '\\ ') : l,
    );
    let read = 0;
    // Messages of 1 to 20 lines, read line by line from the message's text.
    for (let a = 0; a < lines.length;) {
      const n = 1 + (a % 20);
      const group = lines.slice(a, a + n);
      a += n;
      const text = group.join('\n');
      let s = 0;
      for (const line of group) {
        expect(got(reader, text, s, s + line.length)).toEqual(expected(line));
        if (reader.read(text, s, s + line.length) === null) read++;
        s += line.length + 1;
      }
    }
    expect(read).toBeGreaterThan(500);
    // A text read again from its start (the reader's search positions go back).
    const text = `${lines[3]}\n${lines[4]}`;
    expect(got(reader, text, lines[3].length + 1, text.length)).toEqual(expected(lines[4]));
    expect(got(reader, text, 0, lines[3].length)).toEqual(expected(lines[3]));
  });

  it('refuses a measurement, tag or field given twice', () => {
    expect(() => new LineReader([...specs, specs[0]])).toThrow(RangeError);
    expect(() => new LineReader([{ measurement: 'm', fields: ['a', 'a'], tags: [] }])).toThrow(RangeError);
  });
});
