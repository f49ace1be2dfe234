/**
 * Contract test of the v2 adapter. No InfluxDB 2.x runs on these machines, so a local
 * HTTP server records each request and answers the way InfluxDB 2.x does (annotated CSV
 * for Flux, 204 for writes, JSON {code, message} for errors). It checks what the adapter
 * sends (Flux text, org/bucket/token, line protocol body) and how it reads the answers.
 */
import http from 'node:http';
import type net from 'node:net';
import { formatPoint } from '../../src/influx/line-protocol';
import { InfluxError } from '../../src/influx/types';
import { InfluxV2Store, latestTimesFlux, readSeriesFlux, type InfluxV2Options } from '../../src/influx/v2';
import { freePort } from '../helpers/influxd';

interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface Reply {
  status: number;
  body?: string;
  contentType?: string;
  delayMs?: number;
}

let server: http.Server;
let url: string;
let requests: Recorded[] = [];
let replies: Reply[] = [];
const stores: InfluxV2Store[] = [];

const ORG = 'my org & co';
const BUCKET = 'system_metrics/autogen';
const TOKEN = 'tok3n==';
const T0 = Date.UTC(2023, 10, 14, 22, 13, 20);

function open(extra: Partial<InfluxV2Options> = {}): InfluxV2Store {
  const s = new InfluxV2Store({ url, token: TOKEN, org: ORG, bucket: BUCKET, timeoutMs: 2000, ...extra });
  stores.push(s);
  return s;
}

/** Queue what the next request gets (default: 204 for /write and /ping). */
function reply(r: Reply): void {
  replies.push(r);
}

function csv(rows: string[]): Reply {
  return { status: 200, contentType: 'text/csv; charset=utf-8', body: rows.join('\r\n') + '\r\n\r\n' };
}

async function influxError(p: Promise<unknown>): Promise<InfluxError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InfluxError);
  return err as InfluxError;
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
        query: u.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      const r = replies.shift() ?? { status: 204 };
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(r.status, r.contentType ? { 'content-type': r.contentType } : {});
        res.end(r.body ?? '');
      };
      if (r.delayMs) setTimeout(send, r.delayMs).unref();
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});

beforeEach(() => {
  requests = [];
  replies = [];
});

afterAll(async () => {
  for (const s of stores) await s.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('InfluxDB v2 adapter contract test (fake HTTP server: no InfluxDB 2.x runs on this machine)', () => {
  it('readSeries posts the Flux query with org and token, and reads annotated CSV into groups', async () => {
    const spec = {
      measurement: 'cpu',
      fields: ['usage_user', 'usage_system'],
      where: { cpu: 'cpu-total' },
      groupBy: ['host'],
      from: T0,
      to: T0 + 60_000,
      after: new Map([['web-1', T0]]),
    };
    reply(
      csv([
        '#datatype,string,long,dateTime:RFC3339,string,double,double',
        '#group,false,false,false,true,false,false',
        '#default,_result,,,,,',
        ',result,table,_time,host,usage_user,usage_system',
        ',,0,2023-11-14T22:13:20Z,web-1,1.5,2',
        ',,0,2023-11-14T22:13:30.123456789Z,web-1,2.5,',
        ',,1,2023-11-14T22:13:30Z,"a,b ""c""",3.5,1',
        ',,1,2023-11-14T22:13:20Z,"a,b ""c""",4.5,0',
      ]),
    );
    const groups = await open().readSeries(spec);

    expect(requests).toHaveLength(1);
    const [req] = requests;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/api/v2/query');
    expect(req.query.get('org')).toBe(ORG);
    expect(req.headers.authorization).toBe(`Token ${TOKEN}`);
    expect(req.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(req.body) as { query: string; type: string };
    expect(body.type).toBe('flux');
    expect(body.query).toBe(readSeriesFlux(BUCKET, spec));
    expect(body.query).toBe(
      [
        'from(bucket: "system_metrics/autogen")',
        '  |> range(start: time(v: "2023-11-14T22:13:20.000Z"), stop: time(v: "2023-11-14T22:14:20.000Z"))',
        '  |> filter(fn: (r) => r._measurement == "cpu")',
        '  |> filter(fn: (r) => r._field == "usage_user" or r._field == "usage_system")',
        '  |> filter(fn: (r) => r["cpu"] == "cpu-total")',
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")',
        '  |> group(columns: ["host"])',
        '  |> keep(columns: ["_time", "host", "usage_user", "usage_system"])',
        '  |> sort(columns: ["_time"])',
      ].join('\n'),
    );

    // web-1's row at its watermark is dropped; rows come back sorted; empty cells are null.
    expect(groups).toEqual([
      { tags: { host: 'web-1' }, rows: [{ time: T0 + 10_123, values: { usage_user: 2.5, usage_system: null } }] },
      {
        tags: { host: 'a,b "c"' },
        rows: [
          { time: T0, values: { usage_user: 4.5, usage_system: 0 } },
          { time: T0 + 10_000, values: { usage_user: 3.5, usage_system: 1 } },
        ],
      },
    ]);
  });

  it('escapes hostile names as Flux string literals in the query it sends', async () => {
    reply(
      csv([
        '#datatype,string,long,dateTime:RFC3339,string,double',
        '#group,false,false,false,true,false',
        '#default,_result,,,,',
        ',result,table,_time,host,v',
      ]),
    );
    const evil = '" or true) |> yield() //${r.token}\\';
    await expect(open({ bucket: evil }).readSeries({ measurement: evil, fields: ['v'], where: { host: evil }, from: 0 })).resolves.toEqual(
      [],
    );
    const q = (JSON.parse(requests[0].body) as { query: string }).query;
    const lit = '"\\" or true) |> yield() //\\${r.token}\\\\"';
    expect(q).toContain(`from(bucket: ${lit})`);
    expect(q).toContain(`r._measurement == ${lit})`);
    expect(q).toContain(`r["host"] == ${lit})`);
    expect(q).not.toContain('range(start: time(v: "1970-01-01T00:00:00.000Z"), stop');
  });

  it('latestTimes sends last() per series then max per tag, and reads one time per host', async () => {
    reply(
      csv([
        '#datatype,string,long,string,dateTime:RFC3339',
        '#group,false,false,true,false',
        '#default,_result,,,',
        ',result,table,host,_time',
        ',,0,web-1,2023-11-14T22:13:20.5Z',
        ',,1,web-2,2023-11-14T22:13:21Z',
      ]),
    );
    const times = await open().latestTimes('ai_predictions', 'host', { field: 'score', since: T0 - 3_600_000 });
    expect(times).toEqual(
      new Map([
        ['web-1', T0 + 500],
        ['web-2', T0 + 1000],
      ]),
    );
    const q = (JSON.parse(requests[0].body) as { query: string }).query;
    expect(q).toBe(latestTimesFlux(BUCKET, 'ai_predictions', 'host', { field: 'score', since: T0 - 3_600_000 }));
    expect(q).toBe(
      [
        'from(bucket: "system_metrics/autogen")',
        '  |> range(start: time(v: "2023-11-14T21:13:20.000Z"))',
        '  |> filter(fn: (r) => r._measurement == "ai_predictions")',
        '  |> filter(fn: (r) => r._field == "score")',
        '  |> last()',
        '  |> group(columns: ["host"])',
        '  |> max(column: "_time")',
        '  |> keep(columns: ["_time", "host"])',
      ].join('\n'),
    );
  });

  it('writeLines posts line protocol with org, bucket, precision and token, in batches', async () => {
    const lines = ['web-1', 'web 2', 'a,b=c'].map((host, i) =>
      formatPoint({ measurement: 'ai_predictions', tags: { host }, fields: { score: 0.5 + i, is_anomaly: i === 2 }, time: T0 + i }),
    );
    await open({ batchSize: 2 }).writeLines(lines);
    await open().writeLines([]);
    expect(requests).toHaveLength(2);
    for (const r of requests) {
      expect(r.method).toBe('POST');
      expect(r.path).toBe('/api/v2/write');
      expect(Object.fromEntries(r.query)).toEqual({ org: ORG, bucket: BUCKET, precision: 'ms' });
      expect(r.headers.authorization).toBe(`Token ${TOKEN}`);
      expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    }
    expect(requests.map((r) => r.body)).toEqual([
      `ai_predictions,host=web-1 score=0.5,is_anomaly=false ${T0}\nai_predictions,host=web\\ 2 score=1.5,is_anomaly=false ${T0 + 1}`,
      `ai_predictions,host=a\\,b\\=c score=2.5,is_anomaly=true ${T0 + 2}`,
    ]);
  });

  it('ping is GET /ping', async () => {
    await open().ping();
    expect(requests.map((r) => [r.method, r.path])).toEqual([['GET', '/ping']]);
  });

  it('errors carry the status and InfluxDB 2.x message, and failed writes are not retried', async () => {
    reply({ status: 401, contentType: 'application/json; charset=utf-8', body: '{"code":"unauthorized","message":"unauthorized access"}' });
    const q = await influxError(open().readSeries({ measurement: 'cpu', fields: ['v'], from: 0 }));
    expect(q.status).toBe(401);
    expect(q.message).toBe('InfluxDB query failed: HTTP 401: unauthorized access');
    expect(q.message).not.toContain(TOKEN);

    reply({
      status: 404,
      contentType: 'application/json; charset=utf-8',
      body: `{"code":"not found","message":"bucket \\"${BUCKET}\\" not found"}`,
    });
    const w = await influxError(open().writeLines(['m v=1']));
    expect(w.status).toBe(404);
    expect(w.operation).toBe('write');
    expect(w.influxMessage).toBe(`bucket "${BUCKET}" not found`);

    reply({ status: 503, contentType: 'application/json; charset=utf-8', body: '{"code":"unavailable","message":"service unavailable"}' });
    const u = await influxError(open().writeLines(['m v=1']));
    expect(u.status).toBe(503);
    expect(requests).toHaveLength(3);

    reply({
      status: 400,
      contentType: 'application/json; charset=utf-8',
      body: '{"code":"invalid","message":"compilation failed: error at @1:1-1:5: undefined identifier"}',
    });
    const bad = await influxError(open().readSeries({ measurement: 'cpu', fields: ['v'], from: 0 }));
    expect(bad.message).toBe('InfluxDB query failed: HTTP 400: compilation failed: error at @1:1-1:5: undefined identifier');
  });

  it('refused connections and timeouts have no status but a code', async () => {
    const refused = await influxError(open({ url: `http://127.0.0.1:${await freePort()}` }).ping());
    expect(refused.status).toBeUndefined();
    expect(refused.code).toBe('ECONNREFUSED');

    reply({ status: 204, delayMs: 1500 });
    const started = Date.now();
    const slow = await influxError(open({ timeoutMs: 200 }).writeLines(['m v=1']));
    expect(slow.message).toBe('InfluxDB write failed: timed out after 200 ms');
    expect(slow.code).toBe('ETIMEDOUT');
    expect(Date.now() - started).toBeLessThan(1400);
  });
});
