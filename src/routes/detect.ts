import type { FastifyPluginAsync } from 'fastify';
import type { Detector } from '../core/detector';
import type { SeriesStateStore } from '../core/features';
import type { StreamingDetector } from '../core/streaming';
import { METRIC_NAMES } from '../core/metrics';
import { ErrorCode, HttpError, type FieldIssue } from '../errors';
import {
  inspectPoint,
  isoTimestamp,
  isValidPoint,
  MAX_ISSUES_PER_POINT,
  MAX_ISSUES_PER_REQUEST,
  timestampMs,
  type Point,
} from '../validation/point';
import { errorReplies, PointsEnvelopeSchema, ref, schemaOf } from './schemas';

interface Body {
  points: unknown[];
}

const m = METRIC_NAMES.length;

const API_TOKEN_401 = 'Missing or wrong bearer token (only when API_TOKEN is set)';

/** POST /detect and POST /validate. */
/**
 * How far ahead of this server's clock a point's timestamp may be and still join its
 * host's history. A later one (a skewed clock, a typo, a hostile client) is scored on its
 * raw values and left out: otherwise it would become the host's latest point and every
 * real point after it would count as late.
 */
export const MAX_FUTURE_SKEW_MS = 5 * 60_000;

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

/** One point's result: its score against the threshold of the model that judged it, and row `k` of the contributions. */
function pointResult(p: Point, time: number, score: number, threshold: number, c: Float64Array, k: number) {
  return {
    host: p.host ?? null,
    timestamp: Number.isNaN(time) ? null : isoTimestamp(time),
    score,
    threshold,
    is_anomaly: score > threshold,
    severity: threshold > 0 ? score / threshold : 0,
    contributions: { cpu_usage: c[k * m], memory_usage: c[k * m + 1], network_load: c[k * m + 2] },
  };
}

export const pointRoutes: FastifyPluginAsync<{
  maxPoints: number;
  historyHosts: number;
  learner?: (prior: Detector) => StreamingDetector;
}> = async (app, opts) => {
  const turns = new Turns(HEAVY_AT_ONCE);
  // DETECT_LEARN: the streaming detector the poller runs, for the hosts /detect sees (its
  // own, apart from the poller's), made at the first request with the loaded model as prior.
  let learner: StreamingDetector | null = null;
  // A temporal model's per-host history of the points /detect has seen (its own, apart
  // from the poller's), bounded in hosts; kept across reloads of models with the same
  // temporal features, dropped while a raw-feature model serves.
  let history: SeriesStateStore | undefined;
  // Fastify checks the envelope; each point is checked on its own so that every bad
  // point is reported. The OpenAPI description shows the full point schema (PointsRequest).
  const bodySchema = schemaOf(
    PointsEnvelopeSchema.extend({
      points: PointsEnvelopeSchema.shape.points.max(opts.maxPoints, `must hold at most ${opts.maxPoints} points`),
    }),
    ref('PointsRequest'),
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
          'Scores every point or none (any invalid point: 400). With a model of raw features each point is scored on its own. ' +
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
    async (request) => {
      // Large requests take turns (HEAVY_AT_ONCE at a time, each yielding between its
      // stages), so probes and small requests wait for a few stages, not for every large
      // request in flight.
      const heavy = request.body.points.length > YIELD_ABOVE_POINTS;
      if (heavy) await turns.acquire();
      try {
        const points = request.body.points;
        // Bounded answer: at most MAX_ISSUES_PER_POINT issues of a point and
        // MAX_ISSUES_PER_REQUEST in all are listed; the rest are only counted.
        const details: FieldIssue[] = [];
        let bad = 0;
        let omitted = 0;
        for (let i = 0; i < points.length; i++) {
          if (isValidPoint(points[i])) continue;
          bad++;
          const r = inspectPoint(points[i], i, Math.min(MAX_ISSUES_PER_POINT, MAX_ISSUES_PER_REQUEST - details.length), true);
          for (const issue of r.issues) details.push(issue);
          omitted += r.omitted;
        }
        if (bad > 0) {
          const more = omitted > 0 ? `; ${details.length} issue(s) listed, ${omitted} more not listed` : '';
          throw new HttpError(
            400,
            ErrorCode.InvalidPoints,
            `${bad} of ${points.length} point(s) are invalid; nothing was scored${more}`,
            details,
            omitted,
          );
        }
        // Give the event loop a turn between the stages of a large request, so that probes
        // (/health/live, /metrics) and small requests are not queued behind every large one.
        if (points.length > YIELD_ABOVE_POINTS) await yieldTurn();
        const model = app.models.current;
        if (!model) throw new HttpError(503, ErrorCode.ModelUnavailable, 'no model is loaded');
        const valid = points as Point[];
        const n = valid.length;
        const raw = new Float64Array(n * m);
        // Each point's time, parsed once (NaN: none given).
        const pointTimes = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          const p = valid[i];
          raw[i * m] = p.cpu_usage;
          raw[i * m + 1] = p.memory_usage;
          raw[i * m + 2] = p.network_load;
          pointTimes[i] = timestampMs(p.timestamp) ?? NaN;
        }
        const { detector } = model;
        if (opts.learner) return learnAndScore(detector, valid, raw, pointTimes);
        let scored;
        if (detector.temporal) {
          // A point with host and timestamp reads and joins its host's history; one without
          // either, or too far in the future (time NaN), or not later than its host's latest
          // point, is judged on its raw values alone (temporal features neutral).
          const store = detector.stateFor(history, opts.historyHosts);
          history = store;
          const keys = new Array<string>(n);
          const times = new Float64Array(n);
          const latest = Date.now() + MAX_FUTURE_SKEW_MS;
          for (let i = 0; i < n; i++) {
            const host = valid[i].host;
            keys[i] = host ?? '';
            times[i] = host !== undefined && pointTimes[i] <= latest ? pointTimes[i] : NaN;
          }
          scored = detector.scoreSeries(keys, times, raw, n, { state: store });
          app.metrics.historyHosts.set({ source: 'http' }, store.size);
          app.metrics.historyEvictions.inc({ source: 'http' }, store.takeEvictions());
        } else {
          history = undefined;
          scored = detector.scoreRaw(raw, n);
        }
        const { scores, contributions: c } = scored;
        if (n > YIELD_ABOVE_POINTS) await yieldTurn();
        const threshold = detector.threshold;
        let anomalies = 0;
        const scoreHistogram = app.metrics.scores.labels('http');
        const results = new Array(n);
        for (let i = 0; i < n; i++) {
          const p = valid[i];
          const score = scores[i];
          const isAnomaly = detector.isAnomaly(score);
          if (isAnomaly) anomalies++;
          scoreHistogram.observe(score);
          results[i] = pointResult(p, pointTimes[i], score, threshold, c, i);
        }
        app.metrics.pointsScored.inc({ source: 'http' }, n);
        if (anomalies > 0) app.metrics.anomalies.inc({ source: 'http' }, anomalies);
        return { model: { version: detector.version }, results };
      } finally {
        if (heavy) turns.release();
      }
    },
  );

  /**
   * /detect with DETECT_LEARN: points with host and timestamp run through the learner in
   * (time, host) order, each host after its latest point; the others (no host or time, too
   * far ahead, or not after their host's latest point) are judged by the prior on their raw
   * values and leave the learner alone. Results keep the request's order.
   */
  function learnAndScore(prior: Detector, valid: Point[], raw: Float64Array, pointTimes: Float64Array) {
    const make = opts.learner as (prior: Detector) => StreamingDetector;
    learner ??= make(prior);
    learner.setPrior(prior);
    const n = valid.length;
    const latest = Date.now() + MAX_FUTURE_SKEW_MS;
    const last = new Map<string, number>();
    const streamed: number[] = [];
    const alone: number[] = [];
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (pointTimes[a] || 0) - (pointTimes[b] || 0) || a - b);
    for (const i of order) {
      const host = valid[i].host;
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
        ((valid[a].host as string) < (valid[b].host as string) ? -1 : (valid[a].host as string) > (valid[b].host as string) ? 1 : a - b),
    );
    const results = new Array(n);
    const histogram = app.metrics.scores.labels('http');
    let anomalies = 0;
    const put = (i: number, score: number, threshold: number, c: Float64Array, k: number, learning: boolean, alert: boolean) => {
      const anomalous = score > threshold;
      if (anomalous) anomalies++;
      histogram.observe(score);
      results[i] = { ...pointResult(valid[i], pointTimes[i], score, threshold, c, k), learning, alert };
    };
    if (streamed.length > 0) {
      const rows = new Float64Array(streamed.length * m);
      streamed.forEach((i, k) => rows.set(raw.subarray(i * m, i * m + m), k * m));
      const res = learner.process({
        keys: streamed.map((i) => valid[i].host as string),
        times: streamed.map((i) => pointTimes[i]),
        raw: rows,
        n: streamed.length,
      });
      streamed.forEach((i, k) =>
        put(i, res.scores[k], res.thresholds[k], res.contributions, k, res.learning[k] === 1, res.alerts[k] === 1),
      );
    }
    if (alone.length > 0) {
      const rows = new Float64Array(alone.length * m);
      alone.forEach((i, k) => rows.set(raw.subarray(i * m, i * m + m), k * m));
      const res = prior.scoreRaw(rows, alone.length);
      alone.forEach((i, k) => put(i, res.scores[k], prior.threshold, res.contributions, k, true, false));
    }
    app.metrics.historyHosts.set({ source: 'http' }, learner.store.size);
    app.metrics.pointsScored.inc({ source: 'http' }, n);
    if (anomalies > 0) app.metrics.anomalies.inc({ source: 'http' }, anomalies);
    return { model: { version: 'learned' }, results };
  }

  app.post<{ Body: Body }>(
    '/validate',
    {
      schema: {
        summary: 'Check metric points without scoring them',
        description:
          "Checks every point against the rules /detect applies and lists the issues of each (bounded like /detect's); " +
          'needs no model. A body of another shape (no points array, unknown keys) is a 400.',
        tags: ['detection'],
        operationId: 'validate',
        security: [{ apiToken: [] }],
        body: bodySchema,
        response: { 200: ref('ValidateResponse', 'One verdict per point (200 whether or not the points are valid)'), ...errors(false) },
      },
    },
    async (request) => {
      // Every point gets its verdict; issues are listed within the same bounds as
      // /detect's, and what is left out is counted per point and in all.
      let budget = MAX_ISSUES_PER_REQUEST;
      let omitted = 0;
      let valid = true;
      const results = request.body.points.map((p, index) => {
        if (isValidPoint(p)) return { index, valid: true, issues: [] };
        valid = false;
        const r = inspectPoint(p, undefined, Math.min(MAX_ISSUES_PER_POINT, budget), true);
        budget -= r.issues.length;
        omitted += r.omitted;
        const issues = r.issues.map(({ field, message, value }) => ({ field, message, value }));
        return r.omitted > 0 ? { index, valid: false, issues, issues_omitted: r.omitted } : { index, valid: false, issues };
      });
      return omitted > 0 ? { valid, results, issues_omitted: omitted } : { valid, results };
    },
  );
};
