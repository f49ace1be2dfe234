/**
 * MetricsStore over the InfluxDB 2.x API with @influxdata/influxdb-client: Flux on
 * /api/v2/query, line protocol on /api/v2/write, token auth. Every name and value in a
 * Flux query is a Flux string literal (see flux.ts).
 */
import { HttpError, InfluxDB, RequestTimedOutError, type QueryApi } from '@influxdata/influxdb-client';
import { fluxColumn, fluxString, fluxStringArray, fluxTime } from './flux';
import type { Precision } from './line-protocol';
import { retryStaleSocket } from './stale-socket';
import { DEFAULT_GROUP_BY, GroupCollector, matchesNothing, toMetricValue, toMs, uniqueFields } from './series';
import {
  InfluxError,
  type InfluxOperation,
  type LatestTimesOptions,
  type MetricsStore,
  type ReadSeriesSpec,
  type SeriesGroup,
} from './types';

/** Options of {@link InfluxV2Store}. */
export interface InfluxV2Options {
  /** Base URL, e.g. `http://127.0.0.1:8086`. */
  url: string;
  /** API token (sent as `Authorization: Token ...`). */
  token: string;
  /** Organization name or ID. */
  org: string;
  bucket: string;
  /** Per-request timeout; default 10 s. */
  timeoutMs?: number;
  /** Lines per write request; default 5000. */
  batchSize?: number;
  /** Timestamp precision of the lines given to writeLines; default `ms`. */
  precision?: Precision;
}

/** The Flux text of {@link MetricsStore.readSeries} (exported for tests). */
export function readSeriesFlux(bucket: string, spec: ReadSeriesSpec): string {
  const fields = uniqueFields(spec.fields);
  const groupBy = spec.groupBy ?? DEFAULT_GROUP_BY;
  const range =
    spec.to === undefined ? `start: ${fluxTime(toMs(spec.from))}` : `start: ${fluxTime(toMs(spec.from))}, stop: ${fluxTime(toMs(spec.to))}`;
  const lines = [
    `from(bucket: ${fluxString(bucket)})`,
    `  |> range(${range})`,
    `  |> filter(fn: (r) => r._measurement == ${fluxString(spec.measurement)})`,
    `  |> filter(fn: (r) => ${fields.map((f) => `r._field == ${fluxString(f)}`).join(' or ')})`,
  ];
  for (const [key, v] of Object.entries(spec.where ?? {})) {
    const values = typeof v === 'string' ? [v] : v;
    lines.push(`  |> filter(fn: (r) => ${values.map((x) => `${fluxColumn(key)} == ${fluxString(x)}`).join(' or ')})`);
  }
  if (spec.tagIn)
    lines.push(
      `  |> filter(fn: (r) => ${spec.tagIn.values.map((x) => `${fluxColumn(spec.tagIn?.key ?? '')} == ${fluxString(x)}`).join(' or ')})`,
    );
  for (const [key, values] of Object.entries(spec.exclude ?? {})) {
    if (values.length > 0)
      lines.push(`  |> filter(fn: (r) => ${values.map((x) => `${fluxColumn(key)} != ${fluxString(x)}`).join(' and ')})`);
  }
  lines.push(
    '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")',
    `  |> group(columns: ${fluxStringArray(groupBy)})`,
    `  |> keep(columns: ${fluxStringArray(['_time', ...groupBy, ...fields])})`,
    '  |> sort(columns: ["_time"])',
  );
  return lines.join('\n');
}

/** The Flux text of {@link MetricsStore.latestTimes} (exported for tests). */
export function latestTimesFlux(bucket: string, measurement: string, groupByTag: string, options: LatestTimesOptions = {}): string {
  const lines = [
    `from(bucket: ${fluxString(bucket)})`,
    `  |> range(start: ${fluxTime(options.since === undefined ? 0 : toMs(options.since))}` +
      `${options.until === undefined ? '' : `, stop: ${fluxTime(toMs(options.until) + 1)}`})`,
    `  |> filter(fn: (r) => r._measurement == ${fluxString(measurement)})`,
  ];
  if (options.field !== undefined) lines.push(`  |> filter(fn: (r) => r._field == ${fluxString(options.field)})`);
  // last() per series (each is time-ordered), then the newest of those per tag value.
  lines.push(
    '  |> last()',
    `  |> group(columns: ${fluxStringArray([groupByTag])})`,
    '  |> max(column: "_time")',
    `  |> keep(columns: ${fluxStringArray(['_time', groupByTag])})`,
  );
  return lines.join('\n');
}

/** The Flux text of {@link MetricsStore.tagValues} (exported for tests). */
export function tagValuesFlux(bucket: string, measurements: readonly string[], key: string, since?: number): string {
  const predicate = [...new Set(measurements)].map((m) => `r._measurement == ${fluxString(m)}`).join(' or ');
  return [
    'import "influxdata/influxdb/schema"',
    `schema.tagValues(bucket: ${fluxString(bucket)}, tag: ${fluxString(key)}, predicate: (r) => ${predicate}, ` +
      `start: ${since === undefined ? '-30d' : fluxTime(toMs(since))})`,
  ].join('\n');
}

function toInfluxError(op: InfluxOperation, err: unknown, timeoutMs: number): InfluxError {
  if (err instanceof HttpError) {
    const json = err.json as { message?: unknown } | undefined;
    const influxMessage = typeof json?.message === 'string' ? json.message : err.body?.trim().slice(0, 500) || err.statusMessage;
    return new InfluxError(
      op,
      `InfluxDB ${op} failed: HTTP ${err.statusCode}${influxMessage ? `: ${influxMessage}` : ''}`,
      err.statusCode,
      influxMessage,
    );
  }
  if (err instanceof RequestTimedOutError)
    return new InfluxError(op, `InfluxDB ${op} failed: timed out after ${timeoutMs} ms`, undefined, undefined, 'ETIMEDOUT');
  const e = err as Error & { code?: string };
  return new InfluxError(op, `InfluxDB ${op} failed: ${e.message}`, undefined, undefined, e.code);
}

/** v2 adapter of {@link MetricsStore}. */
export class InfluxV2Store implements MetricsStore {
  readonly kind = 'v2' as const;
  private readonly client: InfluxDB;
  private readonly queryApi: QueryApi;
  private readonly timeoutMs: number;
  private readonly batchSize: number;

  constructor(private readonly options: InfluxV2Options) {
    if (!options.token || !options.org || !options.bucket) throw new RangeError('InfluxDB v2: url, token, org and bucket are required');
    this.timeoutMs = options.timeoutMs ?? 10000;
    this.batchSize = options.batchSize ?? 5000;
    this.client = new InfluxDB({ url: options.url, token: options.token, timeout: this.timeoutMs });
    this.queryApi = this.client.getQueryApi({ org: options.org, gzip: false });
  }

  private async rows(flux: string): Promise<Record<string, unknown>[]> {
    try {
      return await retryStaleSocket(() => this.queryApi.collectRows(flux, (values, meta) => meta.toObject(values)));
    } catch (err) {
      throw toInfluxError('query', err, this.timeoutMs);
    }
  }

  /** GET /ping. */
  async ping(): Promise<void> {
    try {
      await retryStaleSocket(() => this.client.transport.request('/ping', '', { method: 'GET' }));
    } catch (err) {
      throw toInfluxError('ping', err, this.timeoutMs);
    }
  }

  async readSeries(spec: ReadSeriesSpec): Promise<SeriesGroup[]> {
    const fields = uniqueFields(spec.fields);
    const groupBy = spec.groupBy ?? DEFAULT_GROUP_BY;
    if (matchesNothing(spec.where) || spec.tagIn?.values.length === 0) return [];
    const collector = new GroupCollector(groupBy);
    for (const row of await this.rows(readSeriesFlux(this.options.bucket, spec))) {
      const time = Date.parse(String(row._time));
      if (!Number.isFinite(time)) continue;
      const values: Record<string, number | null> = {};
      for (const f of fields) values[f] = toMetricValue(row[f]);
      collector.group(row).rows.push({ time, values });
    }
    return collector.finish(spec.after);
  }

  async latestTimes(measurement: string, groupByTag: string, options: LatestTimesOptions = {}): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const row of await this.rows(latestTimesFlux(this.options.bucket, measurement, groupByTag, options))) {
      const t = Date.parse(String(row._time));
      if (!Number.isFinite(t)) continue;
      const v = row[groupByTag];
      const tag = typeof v === 'string' ? v : '';
      const prev = out.get(tag);
      if (prev === undefined || t > prev) out.set(tag, t);
    }
    return out;
  }

  async tagValues(measurements: readonly string[], key: string, options: { since?: number } = {}): Promise<string[]> {
    if (measurements.length === 0) return [];
    const out = new Set<string>();
    for (const row of await this.rows(tagValuesFlux(this.options.bucket, measurements, key, options.since)))
      if (typeof row._value === 'string') out.add(row._value);
    return [...out].sort();
  }

  /** POST /api/v2/write in batches, without the client's buffering or retries (the poller decides). */
  async writeLines(lines: readonly string[]): Promise<void> {
    const q = new URLSearchParams({ org: this.options.org, bucket: this.options.bucket, precision: this.options.precision ?? 'ms' });
    for (let i = 0; i < lines.length; i += this.batchSize) {
      try {
        const body = lines.slice(i, i + this.batchSize).join('\n');
        await retryStaleSocket(() =>
          this.client.transport.request(`/api/v2/write?${q.toString()}`, body, {
            method: 'POST',
            headers: { 'content-type': 'text/plain; charset=utf-8' },
          }),
        );
      } catch (err) {
        throw toInfluxError('write', err, this.timeoutMs);
      }
    }
  }

  async close(): Promise<void> {
    // The client keeps no sockets or timers of its own between requests.
  }
}
