import { formatPoint, int } from '../../../src/influx/line-protocol';
import { parseLine, splitLines } from '../../../src/influx/line-parser';

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
