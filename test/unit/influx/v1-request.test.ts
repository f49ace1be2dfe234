/**
 * What the v1 adapter puts on the wire for each auth mode (a recording loopback server;
 * the behaviour against a real influxd is in test/integration/influx-v1.test.ts).
 */
import http from 'node:http';
import type net from 'node:net';
import { GroupCollector } from '../../../src/influx/series';
import { InfluxV1Store, type InfluxV1Options } from '../../../src/influx/v1';

interface Recorded {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization?: string;
  contentType?: string;
  body: string;
}

let server: http.Server;
let url: string;
let requests: Recorded[] = [];
const stores: InfluxV1Store[] = [];

function open(extra: Partial<InfluxV1Options>): InfluxV1Store {
  const s = new InfluxV1Store({ url, database: 'db', ...extra });
  stores.push(s);
  return s;
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x');
      requests.push({
        method: req.method ?? '',
        path: u.pathname,
        query: Object.fromEntries(u.searchParams),
        authorization: req.headers.authorization,
        contentType: req.headers['content-type'],
        body: Buffer.concat(chunks).toString('utf8'),
      });
      if (u.pathname === '/query') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"results":[{"statement_id":0}]}\n');
      } else {
        res.writeHead(204);
        res.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});

beforeEach(() => {
  requests = [];
});

afterAll(async () => {
  for (const s of stores) await s.close();
  await new Promise((r) => server.close(r));
});

describe('InfluxDB v1 requests', () => {
  it('sends a token as Authorization: Token', async () => {
    await open({ token: 'abc==' }).writeLines(['m v=1']);
    expect(requests[0]).toEqual({
      method: 'POST',
      path: '/write',
      query: { db: 'db', precision: 'ms' },
      authorization: 'Token abc==',
      contentType: 'text/plain; charset=utf-8',
      body: 'm v=1',
    });
  });

  it('sends username/password as basic auth by default, or as u/p when asked', async () => {
    await open({ username: 'ü', password: 'p:w' }).query('SHOW DATABASES');
    await open({ username: 'u', password: 'p&w', authMethod: 'query', retentionPolicy: 'rp' }).writeLines(['m v=1']);
    expect(requests[0].authorization).toBe(`Basic ${Buffer.from('ü:p:w').toString('base64')}`);
    expect(requests[0].query).toEqual({ db: 'db', epoch: 'ms', chunked: 'true', chunk_size: '10000' });
    expect(requests[1].authorization).toBeUndefined();
    expect(requests[1].query).toEqual({ u: 'u', p: 'p&w', db: 'db', rp: 'rp', precision: 'ms' });
  });

  it('posts InfluxQL as a form body, never in the URL', async () => {
    await open({}).readSeries({ measurement: 'cpu', fields: ['usage_user'], where: { host: "a'b" }, from: 1000, to: 2000 });
    expect(requests[0].method).toBe('POST');
    expect(requests[0].contentType).toBe('application/x-www-form-urlencoded');
    expect(new URLSearchParams(requests[0].body).get('q')).toBe(
      `SELECT "usage_user", "host"::tag AS "__tag0" FROM "cpu" WHERE time >= 1000ms AND time < 2000ms AND "host"::tag = 'a\\'b'`,
    );
    expect(JSON.stringify(requests[0].query)).not.toContain('cpu');
  });

  it('asks for the latest time per tag with ORDER BY time DESC LIMIT 1', async () => {
    await open({ retentionPolicy: 'autogen' }).latestTimes('ai_predictions', 'host', { field: 'score', since: 5 });
    expect(new URLSearchParams(requests[0].body).get('q')).toBe(
      'SELECT "score" FROM "autogen"."ai_predictions" WHERE time >= 5ms GROUP BY "host" ORDER BY time DESC LIMIT 1',
    );
  });

  it('rejects ambiguous options', () => {
    expect(() => new InfluxV1Store({ url, database: '' })).toThrow(/database is required/);
    expect(() => new InfluxV1Store({ url, database: 'd', token: 't', username: 'u' })).toThrow(/either a token or a username/);
  });
});

describe('InfluxDB v1 query responses, read as they arrive', () => {
  /** A loopback server whose /query answer `respond` writes by hand. */
  async function serving(respond: (res: http.ServerResponse) => void): Promise<{ url: string; close: () => Promise<void> }> {
    const sockets = new Set<net.Socket>();
    const srv = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => respond(res));
    });
    srv.on('connection', (s) => sockets.add(s));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return {
      url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`,
      close: async () => {
        for (const s of sockets) s.destroy();
        await new Promise((r) => srv.close(r));
      },
    };
  }

  it('joins chunks cut anywhere, inside a multi-byte character too, and merges a series split across chunks', async () => {
    const chunk = (rows: unknown[][]) =>
      `${JSON.stringify({ results: [{ statement_id: 0, series: [{ name: 'cpu', columns: ['time', 'v', '__tag0'], values: rows }] }] })}\n`;
    const body = Buffer.from(
      chunk([
        [1000, 1.5, 'hôst-ü'],
        [1000, 2, 'b'],
      ]) + chunk([[2000, 3, 'hôst-ü']]),
    );
    const srv = await serving((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // One byte per write, each flushed on its own: every cut a TCP read can make.
      let i = 0;
      const next = (): void => {
        if (i >= body.length) return void res.end();
        res.write(body.subarray(i, ++i), () => setImmediate(next));
      };
      next();
    });
    try {
      const store = new InfluxV1Store({ url: srv.url, database: 'db' });
      stores.push(store);
      expect(await store.readSeries({ measurement: 'cpu', fields: ['v'], from: 0 })).toEqual([
        {
          tags: { host: 'hôst-ü' },
          rows: [
            { time: 1000, values: { v: 1.5 } },
            { time: 2000, values: { v: 3 } },
          ],
        },
        { tags: { host: 'b' }, rows: [{ time: 1000, values: { v: 2 } }] },
      ]);
      expect(store.queryBytes).toBe(body.length);
      const raw = await store.query('SELECT');
      expect(raw).toHaveLength(1);
      expect(raw[0].values).toEqual([
        [1000, 1.5, 'hôst-ü'],
        [1000, 2, 'b'],
        [2000, 3, 'hôst-ü'],
      ]);
    } finally {
      await srv.close();
    }
  });

  it('fails a response that stalls after its first chunk (timeout) or breaks off, instead of returning part of it', async () => {
    const first = `${JSON.stringify({ results: [{ statement_id: 0, series: [{ name: 'cpu', columns: ['time', 'v', '__tag0'], values: [[1, 1, 'a']] }] }] })}\n`;
    const stalls = await serving((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(first);
    });
    const breaks = await serving((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(first.slice(0, 40), () => setTimeout(() => res.socket?.destroy(), 20));
    });
    try {
      const slow = new InfluxV1Store({ url: stalls.url, database: 'db', timeoutMs: 200 });
      const cut = new InfluxV1Store({ url: breaks.url, database: 'db' });
      stores.push(slow, cut);
      const started = Date.now();
      await expect(slow.readSeries({ measurement: 'cpu', fields: ['v'], from: 0 })).rejects.toMatchObject({
        name: 'InfluxError',
        operation: 'query',
        message: 'InfluxDB query failed: timed out after 200 ms',
        code: 'ETIMEDOUT',
      });
      expect(Date.now() - started).toBeLessThan(3000);
      await expect(cut.readSeries({ measurement: 'cpu', fields: ['v'], from: 0 })).rejects.toMatchObject({
        name: 'InfluxError',
        operation: 'query',
      });
    } finally {
      await stalls.close();
      await breaks.close();
    }
  });
});

describe('GroupCollector', () => {
  it('merges rows per group, fills missing tags with "", sorts by time and applies watermarks', () => {
    const c = new GroupCollector(['host', 'dc']);
    c.group({ host: 'a', dc: 'x' }).rows.push({ time: 3, values: {} }, { time: 1, values: {} });
    c.group({ host: 'a', dc: 'x' }).rows.push({ time: 2, values: {} });
    c.group({ host: 'b' }).rows.push({ time: 1, values: {} });
    c.group(undefined).rows.push({ time: 9, values: {} });
    expect(
      c.finish(
        new Map([
          ['b', 1],
          ['a', 1],
        ]),
      ),
    ).toEqual([
      {
        tags: { host: 'a', dc: 'x' },
        rows: [
          { time: 2, values: {} },
          { time: 3, values: {} },
        ],
      },
      { tags: { host: '', dc: '' }, rows: [{ time: 9, values: {} }] },
    ]);
  });
});
