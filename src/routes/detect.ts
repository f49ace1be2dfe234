import type { FastifyPluginAsync } from 'fastify';
import type { Detector } from '../core/detector';
import type { SeriesStateStore } from '../core/features';
import type { StreamingDetector } from '../core/streaming';
import { artifactMetrics } from '../core/artifact';
import { BASIC_METRICS, columnsOf, sameNames, type MetricDef } from '../core/metrics';
import { ErrorCode, HttpError, type FieldIssue } from '../errors';
import { histogramSeries } from '../plugins/metrics';
import { MAX_FUTURE_SKEW_MS, MAX_ISSUES_PER_POINT, MAX_ISSUES_PER_REQUEST, pointReader, type PointReader } from '../validation/point';
import { detectReplyWriter, type DetectRows } from './detect-json';
import { errorReplies, isPointsEnvelope, PointsEnvelopeSchema, ref, schemaOf } from './schemas';

interface Body {
  points: unknown[];
}

/** The points of a metric set: how they are read, and how the reply is written. */
interface MetricSetRoute {
  reader: PointReader;
  write: ReturnType<typeof detectReplyWriter>;
}

const routeFor = (defs: readonly MetricDef[]): MetricSetRoute => ({
  reader: pointReader(defs),
  write: detectReplyWriter(defs.map((d) => d.name)),
});

const JSON_TYPE = 'application/json; charset=utf-8';

const API_TOKEN_401 = 'Missing or wrong bearer token (only when API_TOKEN is set)';

/** POST /detect and POST /validate. */

/** Requests above this many points yield to the event loop between validation, scoring and the reply. */
const YIELD_ABOVE_POINTS = 500;
const yieldTurn = (): Promise<void> => new Promise((r) => setImmediate(r));
/** Large requests processed at once. */
const HEAVY_AT_ONCE = 2;

/** A counting semaphore: at most `n` holders; the others wait in arrival order. */
class Turns {
  private held = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly n: number) {}
  async acquire(): Promise<void> {
    if (this.held < this.n) {
      this.held++;
      return;
    }
    await new Promise<void>((r) => this.waiting.push(r));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.held--;
  }
}

export const pointRoutes: FastifyPluginAsync<{
  maxPoints: number;
  historyHosts: number;
  learner?: (prior: Detector) => StreamingDetector;
  /**
   * With `learner`: the declarations of its inputs (its `opts.inputs`, in order), the
   * metric set the points must give. Default: the loaded model's metrics. Without a
   * learner the set is always the loaded model's (its artifact's declarations).
   */
  metricSet?: readonly MetricDef[];
}> = async (app, opts) => {
  const turns = new Turns(HEAVY_AT_ONCE);
  // DETECT_LEARN: the streaming detector the poller runs, for the hosts /detect sees (its
  // own, apart from the poller's), made at the first request with the loaded model as prior.
  let learner: StreamingDetector | null = null;
  // A temporal model's per-host history of the points /detect has seen (its own, apart
  // from the poller's), bounded in hosts; kept across reloads of models with the same
  // temporal features, dropped while a raw-feature model serves.
  let history: SeriesStateStore | undefined;
  // The metric set of the points: the learner's (metricSet), else the loaded model's
  // declarations, compiled once per model; with no model loaded, metricSet or the basic
  // set (/validate needs no model; /detect checks the points, then answers 503).
  const learnerSet = opts.learner && opts.metricSet ? routeFor(opts.metricSet) : null;
  const noModelSet = routeFor(opts.metricSet ?? BASIC_METRICS);
  const modelSets = new WeakMap<Detector, MetricSetRoute>();
  const setOf = (detector: Detector | undefined): MetricSetRoute => {
    if (!detector) return noModelSet;
    if (learnerSet) return learnerSet;
    let s = modelSets.get(detector);
    if (!s) {
      s = routeFor(artifactMetrics(detector.artifact));
      modelSets.set(detector, s);
    }
    return s;
  };
  // Fastify checks the envelope; each point is checked on its own so that every bad
  // point is reported. The OpenAPI description shows the full point schema (PointsRequest).
  const bodySchema = schemaOf(
    PointsEnvelopeSchema.extend({
      points: PointsEnvelopeSchema.shape.points.max(opts.maxPoints, `must hold at most ${opts.maxPoints} points`),
    }),
    ref('PointsRequest'),
    (body) => isPointsEnvelope(body, opts.maxPoints),
  );
  const errors = (noModel: boolean) =>
    errorReplies(
      [400, 401, 413, 415, 500, 503],
      noModel
        ? { 401: API_TOKEN_401, 503: 'No model is loaded (model_unavailable), or overloaded (overloaded); retry after Retry-After seconds' }
        : { 401: API_TOKEN_401 },
    );

  app.post<{ Body: Body }>(
    '/detect',
    {
      schema: {
        summary: 'Score metric points',
        description:
          "Scores every point or none (any invalid point: 400). Each point gives every metric of the model's set: the three " +
          'of the first form as top-level fields (cpu_usage, memory_usage, network_load), any metric by name in `metrics`, ' +
          "or both where they agree; the rules (range, required) are the model's declarations. " +
          'With a model of raw features each point is scored on its own. ' +
          'With a model of temporal features, a point with host and timestamp reads the earlier points of its host seen by /detect ' +
          '(bounded by DETECT_HISTORY_HOSTS) and joins them; a point without host or timestamp, more than 5 minutes ahead of ' +
          "the server's clock, or not later than its host's latest point is judged on its raw values (temporal features neutral) " +
          'and leaves the history alone; the first point of a host with no history is judged on its raw values too.',
        tags: ['detection'],
        operationId: 'detect',
        security: [{ apiToken: [] }],
        body: bodySchema,
        response: { 200: ref('DetectResponse', 'One result per point'), ...errors(true) },
      },
    },
    async (request, reply) => {
      const points = request.body.points;
      // Large requests take turns (HEAVY_AT_ONCE at a time, each yielding between its
      // stages), so probes and small requests wait for a few stages, not for every large
      // request in flight.
      const heavy = points.length > YIELD_ABOVE_POINTS;
      if (heavy) await turns.acquire();
      try {
        const model = app.models.current;
        const set = setOf(model?.detector);
        const { reader } = set;
        const n = points.length;
        const m = reader.names.length;
        // Each point's metrics (n x m, in the set's order) and time (NaN: none given), read once.
        const raw = new Float64Array(n * m);
        const times = new Float64Array(n);
        let bad: number[] | null = null;
        for (let i = 0; i < n; i++) if (!reader.read(points[i], raw, i, times)) (bad ??= []).push(i);
        if (bad) throw invalidPoints(reader, points, bad);
        // Give the event loop a turn between the stages of a large request, so that probes
        // (/health/live, /metrics) and small requests are not queued behind every large one.
        if (heavy) await yieldTurn();
        if (!model) throw new HttpError(503, ErrorCode.ModelUnavailable, 'no model is loaded');
        const { detector } = model;
        const hosts = new Array<string | undefined>(n);
        for (let i = 0; i < n; i++) hosts[i] = (points[i] as { host?: string }).host;
        let version = detector.version;
        let rows: DetectRows;
        if (opts.learner) {
          rows = learnAndScore(detector, reader.names, hosts, raw, times);
          version = 'learned';
        } else {
          let scored;
          if (detector.temporal) {
            // A point with host and timestamp reads and joins its host's history; one without
            // either, or too far in the future (time NaN), or not later than its host's latest
            // point, is judged on its raw values alone (temporal features neutral).
            const store = detector.stateFor(history, opts.historyHosts);
            history = store;
            const keys = new Array<string>(n);
            const seriesTimes = new Float64Array(n);
            const latest = Date.now() + MAX_FUTURE_SKEW_MS;
            for (let i = 0; i < n; i++) {
              const host = hosts[i];
              keys[i] = host ?? '';
              seriesTimes[i] = host !== undefined && times[i] <= latest ? times[i] : NaN;
            }
            scored = detector.scoreSeries(keys, seriesTimes, raw, n, { state: store });
            observeHistory(store.size, store.takeEvictions());
          } else {
            history = undefined;
            scored = detector.scoreRaw(raw, n);
          }
          rows = { n, hosts, times, scores: scored.scores, thresholds: detector.threshold, contributions: scored.contributions };
        }
        if (heavy) await yieldTurn();
        count(rows);
        reply.header('content-type', JSON_TYPE);
        return set.write(version, rows);
      } finally {
        if (heavy) turns.release();
      }
    },
  );

  /** The 400 of a request with invalid points: their issues, bounded, and the count of the rest. */
  function invalidPoints(reader: PointReader, points: unknown[], bad: number[]): HttpError {
    // Bounded answer: at most MAX_ISSUES_PER_POINT issues of a point and
    // MAX_ISSUES_PER_REQUEST in all are listed; the rest are only counted.
    const details: FieldIssue[] = [];
    let omitted = 0;
    for (const i of bad) {
      const r = reader.inspect(points[i], i, Math.min(MAX_ISSUES_PER_POINT, MAX_ISSUES_PER_REQUEST - details.length));
      for (const issue of r.issues) details.push(issue);
      omitted += r.omitted;
    }
    const more = omitted > 0 ? `; ${details.length} issue(s) listed, ${omitted} more not listed` : '';
    return new HttpError(
      400,
      ErrorCode.InvalidPoints,
      `${bad.length} of ${points.length} point(s) are invalid; nothing was scored${more}`,
      details,
      omitted,
    );
  }

  /** The history's gauge and evictions, set only when they change (each is a label lookup). */
  let historySize = -1;
  function observeHistory(size: number, evictions: number): void {
    if (size !== historySize) app.metrics.historyHosts.set({ source: 'http' }, (historySize = size));
    if (evictions > 0) app.metrics.historyEvictions.inc({ source: 'http' }, evictions);
  }

  /** The score histogram and the counters of a scored batch. */
  const observeScores = histogramSeries(app.metrics.scores, { source: 'http' });
  function count(rows: DetectRows): void {
    observeScores(rows.scores, rows.n);
    let anomalies = 0;
    const { scores, thresholds } = rows;
    if (typeof thresholds === 'number') {
      for (let i = 0; i < rows.n; i++) if (scores[i] > thresholds) anomalies++;
    } else for (let i = 0; i < rows.n; i++) if (scores[i] > thresholds[i]) anomalies++;
    app.metrics.pointsScored.inc({ source: 'http' }, rows.n);
    if (anomalies > 0) app.metrics.anomalies.inc({ source: 'http' }, anomalies);
  }

  /**
   * /detect with DETECT_LEARN: points with host and timestamp run through the learner in
   * (time, host) order, each host after its latest point; the others (no host or time, too
   * far ahead, or not after their host's latest point) are judged by the prior on its own
   * metrics of their raw values and leave the learner alone. Results keep the request's order.
   */
  function learnAndScore(
    prior: Detector,
    names: readonly string[],
    hosts: Array<string | undefined>,
    raw: Float64Array,
    pointTimes: Float64Array,
  ): DetectRows {
    const make = opts.learner as (prior: Detector) => StreamingDetector;
    learner ??= make(prior);
    // The learner keeps the inputs it was made with; a reload to a model of another set
    // (without metricSet) cannot feed it.
    if (!sameNames(learner.opts.inputs, names))
      throw new HttpError(
        503,
        ErrorCode.ModelUnavailable,
        `DETECT_LEARN: /detect reads (${names.join(', ')}), but its learner takes (${learner.opts.inputs.join(', ')})`,
      );
    learner.setPrior(prior);
    const n = hosts.length;
    const m = names.length;
    const latest = Date.now() + MAX_FUTURE_SKEW_MS;
    const last = new Map<string, number>();
    const streamed: number[] = [];
    const alone: number[] = [];
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (pointTimes[a] || 0) - (pointTimes[b] || 0) || a - b);
    for (const i of order) {
      const host = hosts[i];
      const t = pointTimes[i];
      if (host === undefined || !(t <= latest)) {
        alone.push(i);
        continue;
      }
      const prev = last.get(host) ?? learner.lastTime(host);
      if (t > prev) {
        last.set(host, t);
        streamed.push(i);
      } else alone.push(i);
    }
    streamed.sort(
      (a, b) =>
        pointTimes[a] - pointTimes[b] ||
        ((hosts[a] as string) < (hosts[b] as string) ? -1 : (hosts[a] as string) > (hosts[b] as string) ? 1 : a - b),
    );
    const rows: DetectRows = {
      n,
      hosts,
      times: pointTimes,
      scores: new Float64Array(n),
      thresholds: new Float64Array(n),
      contributions: new Float64Array(n * m),
      learning: new Uint8Array(n),
      alerts: new Uint8Array(n),
    };
    const thresholds = rows.thresholds as Float64Array;
    if (streamed.length > 0) {
      const part = new Float64Array(streamed.length * m);
      streamed.forEach((i, k) => part.set(raw.subarray(i * m, i * m + m), k * m));
      const res = learner.process({
        keys: streamed.map((i) => hosts[i] as string),
        times: streamed.map((i) => pointTimes[i]),
        raw: part,
        n: streamed.length,
      });
      streamed.forEach((i, k) => {
        rows.scores[i] = res.scores[k];
        thresholds[i] = res.thresholds[k];
        rows.contributions.set(res.contributions.subarray(k * m, k * m + m), i * m);
        (rows.learning as Uint8Array)[i] = res.learning[k];
        (rows.alerts as Uint8Array)[i] = res.alerts[k];
      });
    }
    if (alone.length > 0) {
      // The prior judges its own metrics of each point (all of them, for the basic set);
      // the others get no contribution. A prior of other metrics cannot judge: score 0 of 1.
      const cols = columnsOf(prior.inputs, names);
      const pm = prior.inputs.length;
      if (cols) {
        const part = new Float64Array(alone.length * pm);
        alone.forEach((i, k) => cols.forEach((c, x) => (part[k * pm + x] = raw[i * m + c])));
        const res = prior.scoreRaw(part, alone.length);
        alone.forEach((i, k) => {
          rows.scores[i] = res.scores[k];
          thresholds[i] = prior.threshold;
          for (let x = 0; x < pm; x++) rows.contributions[i * m + cols[x]] = res.contributions[k * pm + x];
        });
      } else for (const i of alone) thresholds[i] = 1;
      for (const i of alone) (rows.learning as Uint8Array)[i] = 1;
    }
    app.metrics.historyHosts.set({ source: 'http' }, learner.store.size);
    return rows;
  }

  app.post<{ Body: Body }>(
    '/validate',
    {
      schema: {
        summary: 'Check metric points without scoring them',
        description:
          "Checks every point against the rules /detect applies (the loaded model's metric set; with no model loaded, the " +
          "basic set) and lists the issues of each (bounded like /detect's); needs no model. A body of another shape " +
          '(no points array, unknown keys) is a 400.',
        tags: ['detection'],
        operationId: 'validate',
        security: [{ apiToken: [] }],
        body: bodySchema,
        response: { 200: ref('ValidateResponse', 'One verdict per point (200 whether or not the points are valid)'), ...errors(false) },
      },
    },
    async (request) => {
      const { reader } = setOf(app.models.current?.detector);
      const raw = new Float64Array(reader.names.length);
      const time = new Float64Array(1);
      // Every point gets its verdict; issues are listed within the same bounds as
      // /detect's, and what is left out is counted per point and in all.
      let budget = MAX_ISSUES_PER_REQUEST;
      let omitted = 0;
      let valid = true;
      const results = request.body.points.map((p, index) => {
        if (reader.read(p, raw, 0, time)) return { index, valid: true, issues: [] };
        valid = false;
        const r = reader.inspect(p, undefined, Math.min(MAX_ISSUES_PER_POINT, budget));
        budget -= r.issues.length;
        omitted += r.omitted;
        const issues = r.issues.map(({ field, message, value }) => ({ field, message, value }));
        return r.omitted > 0 ? { index, valid: false, issues, issues_omitted: r.omitted } : { index, valid: false, issues };
      });
      return omitted > 0 ? { valid, results, issues_omitted: omitted } : { valid, results };
    },
  );
};
