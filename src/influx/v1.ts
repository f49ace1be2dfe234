/**
 * MetricsStore over the InfluxDB v1 HTTP API: InfluxQL on /query, line protocol on
 * /write. Served by InfluxDB 1.x, by 2.x through its v1 compatibility API (token auth)
 * and by 3.x.
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import axios, { AxiosError, type AxiosInstance, type AxiosRequestConfig, type AxiosResponse } from 'axios';
import type { Precision } from './line-protocol';
import { quoteIdent, quoteMeasurement, tagCondition, tagExclusion, tagInCondition, timeLiteral } from './influxql';
import { retryStaleSocket } from './stale-socket';
import { ConfigError } from '../errors';
import { DEFAULT_GROUP_BY, GroupCollector, matchesNothing, parseInfluxJson, toMetricValue, toMs, uniqueFields } from './series';
import {
  InfluxError,
  type InfluxOperation,
  type InfluxQLClient,
  type LatestTimesOptions,
  type MetricsStore,
  type ReadSeriesSpec,
  type SeriesGroup,
  type SeriesResult,
} from './types';

/** Options of {@link InfluxV1Store}. */
export interface InfluxV1Options {
  /** Base URL, e.g. `http://127.0.0.1:8086` (a path prefix is kept). */
  url: string;
  database: string;
  /** Retention policy for reads and writes; default: the database's default. */
  retentionPolicy?: string;
  /** Username/password auth (InfluxDB 1.x with auth-enabled). */
  username?: string;
  password?: string;
  /** How username/password are sent: `basic` (Authorization header, default) or `query` (u/p parameters). */
  authMethod?: 'basic' | 'query';
  /** Token auth (`Authorization: Token ...`), for 2.x's v1 compatibility API and 3.x. */
  token?: string;
  /** Per-request timeout; default 10 s. */
  timeoutMs?: number;
  /** Lines per /write request; default 5000 (InfluxDB's recommended batch). */
  batchSize?: number;
  /** Rows per chunk of chunked query responses; default 10000. */
  chunkSize?: number;
  /** Timestamp precision of the lines given to writeLines; default `ms`. */
  precision?: Precision;
}

interface V1Result {
  statement_id?: number;
  series?: SeriesResult[];
  error?: string;
}

interface V1Body {
  results?: V1Result[];
  error?: string;
}

/** InfluxDB's message from an error body (`{"error": "..."}`), or the body's start. */
function influxMessageOf(body: unknown): string | undefined {
  if (typeof body !== 'string' || body === '') return undefined;
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON: fall through to the raw text
  }
  return body.trim().slice(0, 500);
}

/** v1 adapter of {@link MetricsStore}; also gives raw InfluxQL access. */
export class InfluxV1Store implements MetricsStore, InfluxQLClient {
  readonly kind = 'v1' as const;
  private readonly http: AxiosInstance;
  private readonly agent: http.Agent;
  private readonly batchSize: number;
  private readonly chunkSize: number;
  private readonly timeoutMs: number;
  private readonly authParams: Record<string, string> = {};
  private bytes = 0;

  /** Bytes of /query responses received so far. */
  get queryBytes(): number {
    return this.bytes;
  }

  constructor(private readonly options: InfluxV1Options) {
    if (!options.database) throw new ConfigError('invalid configuration: InfluxDB v1: database is required (INFLUX_DATABASE)');
    if (options.token && options.username)
      throw new ConfigError(
        'invalid configuration: InfluxDB v1: give either a token or a username, not both (INFLUX_TOKEN, INFLUX_USERNAME)',
      );
    this.batchSize = options.batchSize ?? 5000;
    this.chunkSize = options.chunkSize ?? 10000;
    this.timeoutMs = options.timeoutMs ?? 10000;
    const isHttps = options.url.startsWith('https:');
    this.agent = isHttps ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
    const headers: Record<string, string> = {};
    let auth: AxiosRequestConfig['auth'];
    if (options.token) headers.Authorization = `Token ${options.token}`;
    else if (options.username !== undefined) {
      const password = options.password ?? '';
      if ((options.authMethod ?? 'basic') === 'basic') auth = { username: options.username, password };
      else {
        this.authParams.u = options.username;
        this.authParams.p = password;
      }
    }
    this.http = axios.create({
      baseURL: options.url.replace(/\/+$/, ''),
      timeout: this.timeoutMs,
      headers,
      auth,
      httpAgent: isHttps ? undefined : this.agent,
      httpsAgent: isHttps ? this.agent : undefined,
      // InfluxDB runs beside the service; environment proxies must not reroute it.
      proxy: false,
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      validateStatus: () => true,
    });
  }

  private async request(op: InfluxOperation, config: AxiosRequestConfig): Promise<AxiosResponse<string>> {
    const res = await this.send<string>(op, config);
    if (res.status < 200 || res.status >= 300) throw this.refusal(op, res, res.data);
    return res;
  }

  /** Sends one request (once more on a stale socket); a request that got no response becomes an InfluxError. */
  private async send<T>(op: InfluxOperation, config: AxiosRequestConfig): Promise<AxiosResponse<T>> {
    try {
      return await retryStaleSocket(() => this.http.request<T>(config));
    } catch (err) {
      const e = err as AxiosError;
      const timedOut = e.code === 'ECONNABORTED' || e.code === AxiosError.ETIMEDOUT;
      const message = timedOut ? `timed out after ${this.timeoutMs} ms` : e.message;
      throw new InfluxError(op, `InfluxDB ${op} failed: ${message}`, undefined, undefined, timedOut ? 'ETIMEDOUT' : e.code);
    }
  }

  /** The error of a response outside 2xx, with InfluxDB's message from its body or header. */
  private refusal(op: InfluxOperation, res: AxiosResponse<unknown>, body: string): InfluxError {
    const influxMessage = influxMessageOf(body) ?? (res.headers['x-influxdb-error'] as string | undefined);
    return new InfluxError(
      op,
      `InfluxDB ${op} failed: HTTP ${res.status}${influxMessage ? `: ${influxMessage}` : ''}`,
      res.status,
      influxMessage,
    );
  }

  /** GET /ping; resolves on 2xx. */
  async ping(): Promise<void> {
    await this.request('ping', { method: 'GET', url: '/ping' });
  }

  /**
   * Runs InfluxQL (POSTed as a form, so names stay out of URLs and logs), chunked so no
   * server row limit truncates it. Series split across chunks are merged.
   * `database: null` runs without a database (CREATE DATABASE, SHOW DATABASES).
   */
  async query(influxql: string, options: { database?: string | null } = {}): Promise<SeriesResult[]> {
    const merged = new Map<string, SeriesResult>();
    await this.querySeries(
      influxql,
      (s, statementId) => {
        const key = JSON.stringify([statementId, s.name, s.tags ?? {}]);
        const prev = merged.get(key);
        if (prev) for (const v of s.values) prev.values.push(v);
        else merged.set(key, { name: s.name, tags: s.tags, columns: s.columns, values: s.values });
      },
      options,
    );
    return [...merged.values()];
  }

  /**
   * Runs InfluxQL as {@link query} does, but hands each series of each chunk of the
   * response to `each` as the chunk arrives (in the order InfluxDB sends them; a series
   * split across chunks comes in several calls), so that neither the whole response nor
   * all its parsed rows are held at once: one chunk of at most `chunkSize` rows is parsed
   * at a time. A read that stalls for the timeout fails as a request does.
   */
  async querySeries(
    influxql: string,
    each: (series: SeriesResult, statementId: number) => void,
    options: { database?: string | null } = {},
  ): Promise<void> {
    const database = options.database === undefined ? this.options.database : options.database;
    const params: Record<string, string> = { ...this.authParams, epoch: 'ms', chunked: 'true', chunk_size: String(this.chunkSize) };
    if (database !== null) params.db = database;
    const res = await this.send<Readable>('query', {
      method: 'POST',
      url: '/query',
      params,
      data: new URLSearchParams({ q: influxql }).toString(),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      responseType: 'stream',
    });
    const ok = res.status >= 200 && res.status < 300;
    const errorBody: Buffer[] = [];
    const onLine = (line: string): void => {
      if (!ok) {
        errorBody.push(Buffer.from(`${line}\n`));
        return;
      }
      if (line.trim() === '') return;
      let body: V1Body;
      try {
        body = parseInfluxJson(line) as V1Body;
      } catch {
        throw new InfluxError('query', `InfluxDB query failed: unreadable response: ${line.slice(0, 200)}`, res.status);
      }
      if (body.error) throw new InfluxError('query', `InfluxDB query failed: ${body.error}`, res.status, body.error);
      for (const result of body.results ?? []) {
        if (result.error) throw new InfluxError('query', `InfluxDB query failed: ${result.error}`, res.status, result.error);
        for (const s of result.series ?? []) each(s, result.statement_id ?? 0);
      }
    };
    await this.readLines(res.data, onLine);
    if (!ok) throw this.refusal('query', res, Buffer.concat(errorBody).toString('utf8').replace(/\n$/, ''));
  }

  /**
   * Reads a response body line by line (InfluxDB's chunked JSON: one chunk per line), each
   * line handed to `onLine` once complete; the bytes count in {@link queryBytes}. A body
   * that sends nothing for the timeout, or breaks off, fails the query.
   */
  private async readLines(body: Readable, onLine: (line: string) => void): Promise<void> {
    const pieces: Buffer[] = [];
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    let last = Date.now();
    const arm = (): void => {
      last = Date.now();
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        body.destroy(new Error('timed out'));
      }, this.timeoutMs);
    };
    try {
      arm();
      for await (const chunk of body as AsyncIterable<Buffer>) {
        arm();
        this.bytes += chunk.length;
        let start = 0;
        // A newline byte is never part of a multi-byte UTF-8 character: lines split on it whole.
        for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
          pieces.push(chunk.subarray(start, nl));
          const line = pieces.length === 1 ? pieces[0].toString('utf8') : Buffer.concat(pieces).toString('utf8');
          pieces.length = 0;
          start = nl + 1;
          onLine(line);
        }
        if (start < chunk.length) pieces.push(chunk.subarray(start));
      }
      if (pieces.length > 0) onLine(Buffer.concat(pieces).toString('utf8'));
    } catch (err) {
      body.destroy();
      if (err instanceof InfluxError) throw err;
      // The socket's own idle timeout (the same length, counted from the socket's last
      // bytes, a little before this loop saw them) may end a stalled body first: it breaks
      // the stream off. A body silent for (nearly) the timeout before that timed out.
      timedOut ||= Date.now() - last >= 0.9 * this.timeoutMs;
      const e = err as { message?: string; code?: string };
      throw new InfluxError(
        'query',
        `InfluxDB query failed: ${timedOut ? `timed out after ${this.timeoutMs} ms` : (e.message ?? String(err))}`,
        undefined,
        undefined,
        timedOut ? 'ETIMEDOUT' : e.code,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * One SELECT per call; see {@link ReadSeriesSpec}. The group-by tags are selected as
   * columns (`"host"::tag`) and grouped here instead of with GROUP BY: with thousands of
   * hosts, InfluxDB 1.x answers one series several times faster than thousands.
   */
  async readSeries(spec: ReadSeriesSpec): Promise<SeriesGroup[]> {
    const fields = uniqueFields(spec.fields);
    const groupBy = spec.groupBy ?? DEFAULT_GROUP_BY;
    if (matchesNothing(spec.where) || spec.tagIn?.values.length === 0) return [];
    const conditions = [`time >= ${timeLiteral(toMs(spec.from))}`];
    if (spec.to !== undefined) conditions.push(`time < ${timeLiteral(toMs(spec.to))}`);
    for (const [key, values] of Object.entries(spec.where ?? {})) conditions.push(tagCondition(key, values));
    if (spec.tagIn) conditions.push(tagInCondition(spec.tagIn.key, spec.tagIn.values));
    for (const [key, values] of Object.entries(spec.exclude ?? {})) {
      const c = tagExclusion(key, values);
      if (c) conditions.push(c);
    }
    // Aliases keep tag columns apart from a field of the same name.
    const columns = [...fields.map(quoteIdent), ...groupBy.map((t, i) => `${quoteIdent(t)}::tag AS ${quoteIdent(`__tag${i}`)}`)];
    let q = `SELECT ${columns.join(', ')} FROM ${quoteMeasurement(spec.measurement, this.options.retentionPolicy)}`;
    q += ` WHERE ${conditions.join(' AND ')}`;

    // Each chunk of the response becomes rows as it arrives (see querySeries): the read
    // holds its rows, not also the response text and its parsed arrays.
    const collector = new GroupCollector(groupBy);
    const tagValues: unknown[] = groupBy.map(() => undefined);
    await this.querySeries(q, (s) => {
      const timeIdx = s.columns.indexOf('time');
      const idx = fields.map((f) => s.columns.indexOf(f));
      const tagIdx = groupBy.map((_, i) => s.columns.indexOf(`__tag${i}`));
      for (const row of s.values) {
        for (let i = 0; i < tagIdx.length; i++) tagValues[i] = tagIdx[i] < 0 ? undefined : row[tagIdx[i]];
        const values: Record<string, number | null> = {};
        let exact: Record<string, bigint> | undefined;
        for (let i = 0; i < fields.length; i++) {
          const v = idx[i] < 0 ? null : row[idx[i]];
          values[fields[i]] = toMetricValue(v);
          if (typeof v === 'bigint') (exact ??= {})[fields[i]] = v;
        }
        collector
          .groupOf(tagValues)
          .rows.push(exact ? { time: row[timeIdx] as number, values, exact } : { time: row[timeIdx] as number, values });
      }
    });
    return collector.finish(spec.after);
  }

  /** Latest time per tag value: `SELECT ... GROUP BY tag ORDER BY time DESC LIMIT 1`. */
  async latestTimes(measurement: string, groupByTag: string, options: LatestTimesOptions = {}): Promise<Map<string, number>> {
    const select = options.field === undefined ? '*' : quoteIdent(options.field);
    let q = `SELECT ${select} FROM ${quoteMeasurement(measurement, this.options.retentionPolicy)}`;
    const where: string[] = [];
    if (options.since !== undefined) where.push(`time >= ${timeLiteral(toMs(options.since))}`);
    if (options.until !== undefined) where.push(`time <= ${timeLiteral(toMs(options.until))}`);
    if (where.length > 0) q += ` WHERE ${where.join(' AND ')}`;
    q += ` GROUP BY ${quoteIdent(groupByTag)} ORDER BY time DESC LIMIT 1`;
    const out = new Map<string, number>();
    for (const s of await this.query(q)) {
      const timeIdx = s.columns.indexOf('time');
      const tag = s.tags?.[groupByTag] ?? '';
      for (const row of s.values) {
        const t = row[timeIdx] as number;
        const prev = out.get(tag);
        if (prev === undefined || t > prev) out.set(tag, t);
      }
    }
    return out;
  }

  /** `SHOW TAG VALUES FROM "m1", "m2" WITH KEY = "key"` (the index; `since` is not used: InfluxDB 1.x lists every value its shards hold). */
  async tagValues(measurements: readonly string[], key: string): Promise<string[]> {
    if (measurements.length === 0) return [];
    const from = [...new Set(measurements)].map((m) => quoteMeasurement(m, this.options.retentionPolicy)).join(', ');
    const out = new Set<string>();
    for (const s of await this.query(`SHOW TAG VALUES FROM ${from} WITH KEY = ${quoteIdent(key)}`)) {
      const idx = s.columns.indexOf('value');
      for (const row of s.values) if (typeof row[idx] === 'string') out.add(row[idx]);
    }
    return [...out].sort();
  }

  /** POST /write (precision `ms` unless configured) in batches of `batchSize` lines, one batch at a time. */
  async writeLines(lines: readonly string[]): Promise<void> {
    const params: Record<string, string> = { ...this.authParams, db: this.options.database, precision: this.options.precision ?? 'ms' };
    if (this.options.retentionPolicy) params.rp = this.options.retentionPolicy;
    for (let i = 0; i < lines.length; i += this.batchSize) {
      await this.request('write', {
        method: 'POST',
        url: '/write',
        params,
        data: lines.slice(i, i + this.batchSize).join('\n'),
        headers: { 'Content-Type': 'text/plain; charset=utf-8' },
      });
    }
  }

  /** CREATE DATABASE (a no-op when it exists). */
  async createDatabase(): Promise<void> {
    await this.query(`CREATE DATABASE ${quoteIdent(this.options.database)}`, { database: null });
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}
