import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';

/** The service's Prometheus instruments, all on one Registry. */
export interface ServiceMetrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  connectionsDropped: Counter;
  pointsScored: Counter<'source'>;
  anomalies: Counter<'source'>;
  scores: Histogram<'source'>;
  modelInfo: Gauge<'version'>;
  reloads: Counter<'outcome'>;
  // The InfluxDB loop (zero while it is off)
  cycleDuration: Histogram<'outcome'>;
  lag: Gauge;
  pointsRead: Counter;
  queries: Counter<'purpose'>;
  queryBytes: Counter<'purpose'>;
  alerts: Counter;
  skipped: Counter<'reason'>;
  cycleErrors: Counter;
  hosts: Gauge;
  written: Counter;
  writeErrors: Counter;
  dropped: Counter;
  writeRefused: Counter;
  buffered: Gauge;
  psi: Gauge<'feature'>;
  // Per-host history of temporal models (zero for a raw-feature model)
  historyHosts: Gauge<'source'>;
  historyEvictions: Counter<'source'>;
  // Learning each host (the poller's streaming detector)
  learningHosts: Gauge;
  refitFailures: Counter;
  backpressure: Counter;
  // The Kafka source (zero while it is off)
  kafkaLag: Gauge<'partition'>;
  kafkaMessages: Counter;
  kafkaPartitions: Gauge;
  kafkaReplayed: Counter;
}

/**
 * The known values of each label. Every one gets its series at 0 when the instruments are
 * created, so a dashboard or an alert on a counter sees 0 rather than no data before the
 * first increment. A new label value used in code belongs here too.
 */
export const METRIC_LABELS = {
  source: ['http', 'poller', 'kafka'],
  reloadOutcome: ['ok', 'failed', 'refit', 'refit_failed'],
  skipped: [
    'incomplete',
    'invalid',
    // The poller at MAX_HOSTS with every host followed reporting: a new host's steps.
    'max_hosts',
    'unwritable',
    'future_prediction',
    // The Kafka source: messages or points not scored (src/kafka/partition.ts).
    'syntax',
    'no_fields',
    'no_timestamp',
    'bad_timestamp',
    'bad_value',
    'too_large',
    'unused_measurement',
    'no_host',
    'late',
    // A Kafka partition with more hosts than MAX_HOSTS: a host's open step dropped with it.
    'evicted',
    // Kafka points before 2000 (not nanoseconds) or beyond the clock plus MAX_FUTURE_SKEW_MS.
    'not_nanoseconds',
    'too_far_ahead',
  ],
  cycleOutcome: ['ok', 'error'],
  queryPurpose: ['read', 'discovery', 'restore'],
} as const;

/** Creates the instruments on `registry` (a fresh one per app, so tests do not collide). */
export function createMetrics(registry: Registry, withDefaults = true): ServiceMetrics {
  if (withDefaults) collectDefaultMetrics({ register: registry, prefix: 'anomaly_detector_' });
  const m = instruments(registry);
  for (const source of METRIC_LABELS.source) {
    m.pointsScored.inc({ source }, 0);
    m.anomalies.inc({ source }, 0);
    m.scores.zero({ source });
    m.historyHosts.set({ source }, 0);
    m.historyEvictions.inc({ source }, 0);
  }
  for (const outcome of METRIC_LABELS.reloadOutcome) m.reloads.inc({ outcome }, 0);
  for (const reason of METRIC_LABELS.skipped) m.skipped.inc({ reason }, 0);
  for (const outcome of METRIC_LABELS.cycleOutcome) m.cycleDuration.zero({ outcome });
  for (const purpose of METRIC_LABELS.queryPurpose) {
    m.queries.inc({ purpose }, 0);
    m.queryBytes.inc({ purpose }, 0);
  }
  return m;
}

function instruments(registry: Registry): ServiceMetrics {
  return {
    registry,
    httpDuration: new Histogram({
      name: 'anomaly_detector_http_request_duration_seconds',
      help: 'HTTP request duration by route and status code',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    connectionsDropped: new Counter({
      name: 'anomaly_detector_http_connections_dropped_total',
      help: 'Connections refused because MAX_CONNECTIONS were open',
      registers: [registry],
    }),
    pointsScored: new Counter({
      name: 'anomaly_detector_points_scored_total',
      help: 'Points scored',
      labelNames: ['source'],
      registers: [registry],
    }),
    anomalies: new Counter({
      name: 'anomaly_detector_anomalies_total',
      help: 'Points whose score exceeded the threshold',
      labelNames: ['source'],
      registers: [registry],
    }),
    scores: new Histogram({
      name: 'anomaly_detector_score',
      help: 'Anomaly scores s(x) in (0, 1]',
      labelNames: ['source'],
      buckets: [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9],
      registers: [registry],
    }),
    modelInfo: new Gauge({
      name: 'anomaly_detector_model_info',
      help: 'The loaded model (value 1)',
      labelNames: ['version'],
      registers: [registry],
    }),
    reloads: new Counter({
      name: 'anomaly_detector_model_reloads_total',
      help: 'Model reloads by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    cycleDuration: new Histogram({
      name: 'anomaly_detector_poll_cycle_duration_seconds',
      help: 'Duration of a poll cycle (read, score, queue writes)',
      labelNames: ['outcome'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: [registry],
    }),
    lag: new Gauge({
      name: 'anomaly_detector_poll_lag_seconds',
      help: 'Now minus the oldest watermark of the hosts being followed',
      registers: [registry],
    }),
    pointsRead: new Counter({ name: 'anomaly_detector_poll_points_read_total', help: 'Rows read from InfluxDB', registers: [registry] }),
    queries: new Counter({
      name: 'anomaly_detector_poll_queries_total',
      help: "The poller's queries to InfluxDB, by purpose (read: metrics; discovery: a shard's hosts from the tag index; restore: watermarks at start)",
      labelNames: ['purpose'],
      registers: [registry],
    }),
    queryBytes: new Counter({
      name: 'anomaly_detector_poll_query_bytes_total',
      help: 'Bytes of the query responses the poller received from InfluxDB, by purpose (v1 API only)',
      labelNames: ['purpose'],
      registers: [registry],
    }),
    alerts: new Counter({
      name: 'anomaly_detector_alerts_total',
      help: 'Gated (sustained) alerts raised by the poller',
      registers: [registry],
    }),
    skipped: new Counter({
      name: 'anomaly_detector_poll_points_skipped_total',
      help:
        'Collection steps not scored, by reason (incomplete: a metric missing; invalid; late: arrived after a later step of its host was handled; ' +
        'unwritable; future_prediction; evicted: a Kafka host dropped beyond MAX_HOSTS with a step open)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    cycleErrors: new Counter({ name: 'anomaly_detector_poll_errors_total', help: 'Failed poll cycles', registers: [registry] }),
    hosts: new Gauge({ name: 'anomaly_detector_poll_hosts', help: 'Hosts followed by this replica', registers: [registry] }),
    written: new Counter({
      name: 'anomaly_detector_points_written_total',
      help: 'Lines written to InfluxDB (predictions and drift)',
      registers: [registry],
    }),
    writeErrors: new Counter({
      name: 'anomaly_detector_write_errors_total',
      help: 'Failed write requests to InfluxDB',
      registers: [registry],
    }),
    dropped: new Counter({
      name: 'anomaly_detector_write_dropped_points_total',
      help: 'Lines dropped because the write buffer was full',
      registers: [registry],
    }),
    writeRefused: new Counter({
      name: 'anomaly_detector_write_refused_points_total',
      help: 'Lines InfluxDB refused for good (HTTP 400/422: field type conflicts, bad lines), or the results topic refused as too large; dropped, not retried, the reason logged',
      registers: [registry],
    }),
    buffered: new Gauge({ name: 'anomaly_detector_write_buffer_points', help: 'Lines waiting to be written', registers: [registry] }),
    psi: new Gauge({
      name: 'anomaly_detector_feature_psi',
      help: 'Population stability index of recent inputs against the training data, per feature',
      labelNames: ['feature'],
      registers: [registry],
    }),
    learningHosts: new Gauge({
      name: 'anomaly_detector_learning_hosts',
      help: 'Hosts still learning their normal (judged by the prior until they have enough points)',
      registers: [registry],
    }),
    refitFailures: new Counter({
      name: 'anomaly_detector_refit_failures_total',
      help: 'Refits of the streaming detector that failed (the previous model kept serving)',
      registers: [registry],
    }),
    backpressure: new Counter({
      name: 'anomaly_detector_poll_backpressure_cycles_total',
      help: 'Poll cycles that scored nothing because the write buffer had no room (InfluxDB not accepting writes); the steps are scored later',
      registers: [registry],
    }),
    kafkaLag: new Gauge({
      name: 'anomaly_detector_kafka_consumer_lag_messages',
      help: 'Messages of each assigned partition not yet processed (high watermark minus next offset)',
      labelNames: ['partition'],
      registers: [registry],
    }),
    kafkaMessages: new Counter({
      name: 'anomaly_detector_kafka_messages_total',
      help: 'Messages consumed from the topic',
      registers: [registry],
    }),
    kafkaPartitions: new Gauge({
      name: 'anomaly_detector_kafka_partitions',
      help: 'Partitions assigned to this replica',
      registers: [registry],
    }),
    kafkaReplayed: new Counter({
      name: 'anomaly_detector_kafka_replayed_steps_total',
      help: "Host steps replayed into a newly assigned partition's detector (history before its committed offset; not written)",
      registers: [registry],
    }),
    historyHosts: new Gauge({
      name: 'anomaly_detector_history_hosts',
      help: 'Hosts with history kept for a temporal model, by reader (http, poller)',
      labelNames: ['source'],
      registers: [registry],
    }),
    historyEvictions: new Counter({
      name: 'anomaly_detector_history_evictions_total',
      help: 'Hosts whose history was dropped to stay within the bound (steady growth: raise DETECT_HISTORY_HOSTS or MAX_HOSTS, or shard)',
      labelNames: ['source'],
      registers: [registry],
    }),
  };
}

/** prom-client's per-series state of a histogram (15.x), read by {@link histogramSeries}. */
interface HistogramSeries {
  labels: Record<string, unknown>;
  bucketValues: Record<string, number>;
  sum: number;
  count: number;
}

type LabelValues = Record<string, string | number>;

const sameLabels = (a: Record<string, unknown>, b: LabelValues): boolean => {
  const keys = Object.keys(b);
  return Object.keys(a).length === keys.length && keys.every((k) => a[k] === b[k]);
};

/**
 * Observes values into one series of a histogram (`h.observe(labels, v)` for each), faster:
 * prom-client's observe hashes and checks the labels on every call, which was 5 % of a
 * 1,000-point /detect request (one score per point) and 3 µs of a 1-point one. This keeps
 * the series prom-client made at the first observe and adds to its buckets, sum and count
 * as observe does (the sum in the same order), so /metrics reads the same (a test checks
 * it). After a reset or a removal of the series it is looked up again; where prom-client
 * keeps its state otherwise (not 15.x), or a value is not finite (observe throws as it
 * would), it calls observe.
 */
export function histogramSeries(h: Histogram<string>, labels: LabelValues): (values: ArrayLike<number>, n: number) => void {
  const internals = h as unknown as { hashMap?: Record<string, HistogramSeries>; upperBounds?: unknown };
  const bounds = Array.isArray(internals.upperBounds) ? (internals.upperBounds as number[]) : null;
  // The buckets' keys as prom-client writes them (a number key would be converted on every use).
  const bucketKeys = bounds ? bounds.map(String) : [];
  let map: Record<string, HistogramSeries> | undefined;
  let key = '';
  let series: HistogramSeries | undefined;
  const find = (): HistogramSeries | undefined => {
    map = internals.hashMap;
    for (const [k, s] of Object.entries(map ?? {}))
      if (
        s &&
        typeof s.sum === 'number' &&
        typeof s.count === 'number' &&
        s.labels &&
        sameLabels(s.labels, labels) &&
        s.bucketValues &&
        bucketKeys.every((b) => typeof (s.bucketValues as Record<string, unknown>)[b] === 'number')
      ) {
        key = k;
        return s;
      }
    return undefined;
  };
  return (values, n) => {
    if (n === 0) return;
    let from = 0;
    if (!bounds || !series || internals.hashMap !== map || map?.[key] !== series) {
      // The first value through observe makes (or finds) the series.
      h.observe(labels, values[0]);
      from = 1;
      series = bounds ? find() : undefined;
    }
    if (!series || !bounds) {
      for (let i = from; i < n; i++) h.observe(labels, values[i]);
      return;
    }
    let sum = series.sum;
    const b = series.bucketValues;
    for (let i = from; i < n; i++) {
      const v = values[i];
      if (!Number.isFinite(v)) {
        series.sum = sum;
        series.count += i - from;
        h.observe(labels, v);
        return;
      }
      sum += v;
      let j = 0;
      while (j < bounds.length && !(v <= bounds[j])) j++;
      if (j < bounds.length) b[bucketKeys[j]]++;
    }
    series.sum = sum;
    series.count += n - from;
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ServiceMetrics;
  }
}

/** Times every request into the duration histogram and serves GET /metrics. */
export const metricsPlugin = fp<{ metrics: ServiceMetrics }>(
  async (app, opts) => {
    app.decorate('metrics', opts.metrics);
    // One series handle per (method, route, status): observing through it skips prom-client's label hashing.
    const durations = new Map<string, (values: ArrayLike<number>, n: number) => void>();
    const one = new Float64Array(1);
    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched';
      const status = reply.statusCode;
      const key = `${request.method} ${route} ${status}`;
      let observe = durations.get(key);
      if (!observe) {
        observe = histogramSeries(opts.metrics.httpDuration, { method: request.method, route, status_code: String(status) });
        // Bounded: methods, routes and statuses are few; past the bound, plain observe.
        if (durations.size < 1000) durations.set(key, observe);
      }
      one[0] = reply.elapsedTime / 1000;
      observe(one, 1);
      done();
    });
    app.get('/metrics', { logLevel: 'warn', config: { shed: false }, schema: { hide: true } }, async (_request, reply) => {
      const body = await opts.metrics.registry.metrics();
      return reply.type(opts.metrics.registry.contentType).send(body);
    });
  },
  { name: 'metrics' },
);
