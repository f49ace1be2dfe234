/**
 * Hostile names against a real influxd: what line protocol writes, InfluxQL reads back
 * exactly, and an injection attempt is only ever a string to compare.
 */
import { quoteString } from '../../src/influx/influxql';
import { formatPoint, int } from '../../src/influx/line-protocol';
import { InfluxV1Store } from '../../src/influx/v1';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { HOSTILE } from '../unit/influx/hostile';

// Regex metacharacters (shard reads match hosts with one regex), each beside a host that
// the unescaped pattern would also match.
const REGEX_HOSTS = [
  'a.b',
  'aXb',
  'x*',
  'xxx',
  '(g)',
  'g',
  '[ab]',
  'b',
  '{2}',
  'q?',
  'q',
  '^c$',
  'c',
  'p|q',
  'p',
  'sl/ash',
  'b\\/s',
  'b\\d',
  '9',
  '+',
  '$',
  '^',
];
const HOSTS = [...HOSTILE, 'tab\tin\tthe\tmiddle', '#hash', 'web-01', 'hôte-ü-日本-🚀', ...REGEX_HOSTS];
const T0 = 1_700_000_000_000;

let influxd: Influxd;
let store: InfluxV1Store;

async function showDatabases(): Promise<string[]> {
  const body = (await influxd.rawQuery('SHOW DATABASES')) as { results: Array<{ series?: Array<{ values: string[][] }> }> };
  return body.results[0].series![0].values.map((v) => v[0]).sort();
}

beforeAll(async () => {
  influxd = await startInfluxd();
  store = new InfluxV1Store({ url: influxd.url, database: 'hostile' });
  await store.createDatabase();
  // The victim of the injection attempts below.
  await new InfluxV1Store({ url: influxd.url, database: 'x' }).createDatabase();
  await new InfluxV1Store({ url: influxd.url, database: 'x' }).writeLines(['keep v=1 1000']);
  await store.writeLines(
    HOSTS.map((host, i) =>
      formatPoint({
        measurement: 'cpu',
        tags: { host, cpu: 'cpu-total' },
        fields: { v: i, n: int(i), s: `${host}\n"${i}"` },
        time: T0 + i,
      }),
    ),
  );
}, 120_000);

afterAll(async () => {
  await store?.close();
  await influxd?.cleanup();
});

describe('hostile host tags on a real influxd', () => {
  it('stores every hostile host exactly as given', async () => {
    const body = (await influxd.rawQuery('SHOW TAG VALUES FROM "cpu" WITH KEY = "host"', { db: 'hostile' })) as {
      results: Array<{ series: Array<{ values: string[][] }> }>;
    };
    expect(body.results[0].series[0].values.map((v) => v[1]).sort()).toEqual([...HOSTS].sort());
  });

  it.each(HOSTS.map((h, i) => [h, i] as const))('reads host %j back exactly with WHERE host = <quoted>', async (host, i) => {
    const groups = await store.readSeries({ measurement: 'cpu', fields: ['v', 'n'], where: { host }, from: T0 });
    expect(groups).toEqual([{ tags: { host }, rows: [{ time: T0 + i, values: { v: i, n: i } }] }]);
    const raw = await store.query(`SELECT "s" FROM "cpu" WHERE "host" = ${quoteString(host)}`);
    expect(raw).toHaveLength(1);
    expect(raw[0].values).toEqual([[T0 + i, `${host}\n"${i}"`]]);
  });

  it('groups all hosts apart in one query', async () => {
    const groups = await store.readSeries({ measurement: 'cpu', fields: ['v'], groupBy: ['host'], from: T0, to: T0 + HOSTS.length });
    expect(groups.map((g) => g.tags.host).sort()).toEqual([...HOSTS].sort());
    for (const g of groups) expect(g.rows).toEqual([{ time: T0 + HOSTS.indexOf(g.tags.host), values: { v: HOSTS.indexOf(g.tags.host) } }]);
  });

  it('lists every hostile host from the tag index exactly (tagValues, as shard discovery does)', async () => {
    await expect(store.tagValues(['cpu', 'no such measurement'], 'host')).resolves.toEqual([...HOSTS].sort());
  });

  it.each(HOSTS.map((h, i) => [h, i] as const))('reads host %j alone with a host set (tagIn: one anchored regex)', async (host, i) => {
    const groups = await store.readSeries({ measurement: 'cpu', fields: ['v'], tagIn: { key: 'host', values: [host] }, from: T0 });
    expect(groups).toEqual([{ tags: { host }, rows: [{ time: T0 + i, values: { v: i } }] }]);
  });

  it('reads exactly the hosts of a set, whatever they hold, and nothing for names that are not there', async () => {
    // Every other host: the regex must not let the neighbours of its metacharacters in.
    const subset = HOSTS.filter((_, i) => i % 2 === 0);
    const groups = await store.readSeries({ measurement: 'cpu', fields: ['v'], tagIn: { key: 'host', values: subset }, from: T0 });
    expect(groups.map((g) => g.tags.host).sort()).toEqual([...subset].sort());
    const absent = ['line\nbreak', '.*', 'a.', '', '|', 'x\\', "' OR '1'='1" + 'x'];
    await expect(
      store.readSeries({ measurement: 'cpu', fields: ['v'], tagIn: { key: 'host', values: absent }, from: T0 }),
    ).resolves.toEqual([]);
    await expect(store.readSeries({ measurement: 'cpu', fields: ['v'], tagIn: { key: 'host', values: [] }, from: T0 })).resolves.toEqual(
      [],
    );
    const all = await store.readSeries({
      measurement: 'cpu',
      fields: ['v'],
      tagIn: { key: 'host', values: [...HOSTS, ...absent] },
      from: T0,
    });
    expect(all.map((g) => g.tags.host).sort()).toEqual([...HOSTS].sort());
  });

  it('reads hosts holding control characters with a host set (a NUL or CR written raw by another client)', async () => {
    // formatPoint refuses a CR (line protocol reads it as the end of a line when it ends one);
    // InfluxDB stores both when they are inside a tag value. A regex must not carry them raw:
    // InfluxQL's scanner ends the query at a NUL and reads a CR as a newline.
    const control = ['nul\u0000host', 'cr\rhost', 'bell\u0007del\u007f'];
    const db = new InfluxV1Store({ url: influxd.url, database: 'control' });
    await db.createDatabase();
    await db.writeLines(control.map((h, i) => `cpu,host=${h} v=${i} ${T0 + i}`));
    const listed = await db.tagValues(['cpu'], 'host');
    expect([...listed].sort()).toEqual([...control].sort());
    for (const [i, host] of control.entries()) {
      const groups = await db.readSeries({ measurement: 'cpu', fields: ['v'], tagIn: { key: 'host', values: [host] }, from: T0 });
      expect(groups.map((g) => [g.tags.host, g.rows.map((r) => r.values.v)])).toEqual([[host, [i]]]);
    }
    const all = await db.readSeries({
      measurement: 'cpu',
      fields: ['v'],
      tagIn: { key: 'host', values: [...control, 'web-01'] },
      from: T0,
    });
    expect(all.map((g) => g.tags.host).sort()).toEqual([...control].sort());
    await db.close();
  });

  it('round-trips hostile measurement names, tag keys and field keys', async () => {
    const names = ['cpu load,x=1', `it's "q"`, "'; DROP DATABASE x; --", 'ünï 😀', 'a\\b'];
    await store.writeLines(names.map((n, i) => formatPoint({ measurement: n, tags: { [n]: n }, fields: { [n]: i + 0.5 }, time: T0 })));
    for (const [i, n] of names.entries()) {
      const groups = await store.readSeries({ measurement: n, fields: [n], where: { [n]: n }, groupBy: [n], from: T0 });
      expect(groups).toEqual([{ tags: { [n]: n }, rows: [{ time: T0, values: { [n]: i + 0.5 } }] }]);
    }
  });

  it('treats injection attempts as plain strings: nothing dropped, nothing extra read', async () => {
    const before = await showDatabases();
    expect(before).toEqual(expect.arrayContaining(['hostile', 'x']));
    const attempts = ["x'; DROP DATABASE x; --", "' OR '1'='1", '" OR 1=1', "x' OR host =~ /.*/ --", 'x\\\'; DROP DATABASE "x"'];
    expect(attempts.filter((a) => HOSTS.includes(a))).toEqual(["' OR '1'='1", '" OR 1=1']);
    for (const attempt of attempts) {
      // Only a host literally named like the attempt matches (two of HOSTS are).
      const i = HOSTS.indexOf(attempt);
      const expected = i < 0 ? [] : [{ tags: { host: attempt }, rows: [{ time: T0 + i, values: { v: i } }] }];
      await expect(store.readSeries({ measurement: 'cpu', fields: ['v'], where: { host: attempt }, from: 0 })).resolves.toEqual(expected);
      await expect(store.latestTimes('cpu', attempt)).resolves.toEqual(new Map([['', T0 + HOSTS.length - 1]]));
      await expect(store.readSeries({ measurement: attempt, fields: [attempt], from: 0 })).resolves.toEqual([]);
    }
    expect(await showDatabases()).toEqual(before);
    const kept = await new InfluxV1Store({ url: influxd.url, database: 'x' }).readSeries({
      measurement: 'keep',
      fields: ['v'],
      groupBy: [],
      from: 0,
    });
    expect(kept).toEqual([{ tags: {}, rows: [{ time: 1000, values: { v: 1 } }] }]);
    const all = await store.readSeries({ measurement: 'cpu', fields: ['v'], from: 0 });
    expect(all).toHaveLength(HOSTS.length);
  });
});
