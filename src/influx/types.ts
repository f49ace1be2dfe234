/**
 * The one interface the service uses to talk to InfluxDB; two adapters implement it
 * (v1.ts: InfluxQL + line protocol over the v1 HTTP API; v2.ts: Flux via the v2 client).
 * No Fastify here: plugins only hand an instance to the app.
 */
import { ExpectedError } from '../errors';

/** A numeric field value; absent and non-numeric values read as null. */
export type MetricValue = number | null;

/** One row of one group: time in epoch milliseconds and one value per requested field. */
export interface SeriesRow {
  time: number;
  values: Record<string, MetricValue>;
  /**
   * Integer fields beyond 2^53 exactly (int64 counters; `values` holds the nearest
   * number). Only the v1 adapter fills it; rates of counters are computed from it.
   */
  exact?: Record<string, bigint>;
}

/** Rows of one group (e.g. one host), sorted by time ascending. */
export interface SeriesGroup {
  /** One entry per groupBy tag; "" where the points have no such tag. */
  tags: Record<string, string>;
  rows: SeriesRow[];
}

/** What {@link MetricsStore.readSeries} reads: one query per call. */
export interface ReadSeriesSpec {
  measurement: string;
  /** Field keys to read (e.g. `usage_user`, `used_percent`, `bytes_recv`). */
  fields: readonly string[];
  /**
   * Tag filters: every key must match; an array matches any of its values. An empty
   * array matches nothing (readSeries then returns [] without a query).
   */
  where?: Readonly<Record<string, string | readonly string[]>>;
  /**
   * One tag that must equal one of many values (a poller shard's hosts): v1 matches them
   * with one anchored regex of the escaped values, v2 with an OR of equalities. An empty
   * list matches nothing (readSeries then returns [] without a query).
   */
  tagIn?: { key: string; values: readonly string[] };
  /** Tag values to leave out (e.g. `{ interface: ['lo'] }`); filtered by the server. */
  exclude?: Readonly<Record<string, readonly string[]>>;
  /** Tags to group by; default `['host']`. Series that differ in other tags are merged. */
  groupBy?: readonly string[];
  /** Inclusive lower bound (epoch ms or Date). */
  from: number | Date;
  /** Exclusive upper bound (epoch ms or Date); default: no bound (v1) or now (v2). */
  to?: number | Date;
  /**
   * Per-group watermarks, keyed by the value of the first groupBy tag: rows at or before
   * a group's watermark are dropped. Lets a poller read every host from its own
   * watermark in ONE query (`from` = the smallest watermark): InfluxQL cannot OR time
   * ranges, so this filter runs on the client.
   */
  after?: ReadonlyMap<string, number>;
}

/** Options of {@link MetricsStore.latestTimes}. */
export interface LatestTimesOptions {
  /** A field every point carries; default: any field. */
  field?: string;
  /** Only look at points at or after this time (bounds the scan). */
  since?: number | Date;
  /** Only look at points at or before this time (a point from the future must not hide the real latest one). */
  until?: number | Date;
}

/**
 * Reads and writes metrics for the poller, backfill and CLI. Errors are
 * {@link InfluxError}s carrying the HTTP status and InfluxDB's own message.
 */
export interface MetricsStore {
  /** `v1` (InfluxQL, line protocol) or `v2` (Flux). */
  readonly kind: 'v1' | 'v2';
  /** Resolves when the server answers its ping endpoint (does not check credentials). */
  ping(): Promise<void>;
  /** Reads `fields` of `measurement` grouped by tags; groups without rows are left out. */
  readSeries(spec: ReadSeriesSpec): Promise<SeriesGroup[]>;
  /**
   * Latest point time (epoch ms) per value of `groupByTag` (points without the tag are
   * under ""). Used to restore per-host watermarks from `ai_predictions` at start.
   */
  latestTimes(measurement: string, groupByTag: string, options?: LatestTimesOptions): Promise<Map<string, number>>;
  /**
   * The values of tag `key` in any of `measurements`, each once, sorted (the index, not
   * the points: v1 `SHOW TAG VALUES`; v2 `schema.tagValues` from `since`, default 30 days
   * back). Poller shards discover their hosts with it.
   */
  tagValues(measurements: readonly string[], key: string, options?: { since?: number }): Promise<string[]>;
  /** Bytes of query responses received so far (v1; undefined where the client does not tell). */
  readonly queryBytes?: number;
  /** Writes line protocol lines (see line-protocol.ts), in batches; nothing for []. */
  writeLines(lines: readonly string[]): Promise<void>;
  /** Creates the database when missing (v1 only; v2 buckets are provisioned outside). */
  createDatabase?(): Promise<void>;
  /** Releases sockets; the store is unusable afterwards. */
  close(): Promise<void>;
}

/** One series of a raw InfluxQL result (v1 `/query` JSON). */
export interface SeriesResult {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

/** Raw InfluxQL access (v1 adapter), for admin statements and tests. */
export interface InfluxQLClient {
  /** Runs InfluxQL; statement errors reject with an {@link InfluxError}. */
  query(influxql: string, options?: { database?: string | null }): Promise<SeriesResult[]>;
}

/** Which request failed. */
export type InfluxOperation = 'ping' | 'query' | 'write';

/** A failed InfluxDB request, with the HTTP status and InfluxDB's message when there was a reply. */
export class InfluxError extends ExpectedError {
  override readonly name = 'InfluxError';
  constructor(
    readonly operation: InfluxOperation,
    message: string,
    /** HTTP status; undefined when no response came (refused, timed out). */
    readonly status?: number,
    /** InfluxDB's error text, as it sent it. */
    readonly influxMessage?: string,
    /** Node/axios error code such as ECONNREFUSED or ETIMEDOUT. */
    readonly code?: string,
  ) {
    super(message);
  }
}
