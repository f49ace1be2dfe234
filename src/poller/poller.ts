import type { Counter, Gauge, Histogram } from 'prom-client';
import type { Detector } from '../core/detector';
import { psi, RecentWindow } from '../core/drift';
import { RefitWindow, refitDetector } from '../core/refit';
import type { SeriesStateStore } from '../core/features';
import { gate, newGateState, type GateOptions, type GateState } from '../core/gate';
import { METRIC_NAMES, type MetricName } from '../core/metrics';
import { formatPoint, int, LineProtocolError } from '../influx/line-protocol';
import type { MetricsStore, ReadSeriesSpec } from '../influx/types';
import type { ModelStore } from '../model-store';
import type { HealthContributor } from '../routes/health';
import { isValidPoint } from '../validation/point';
import { ownsHost, type Shard } from './shard';
import { addMetric, isComplete, stepOf, type CounterHistory, type HostSteps, type Mapping, type MetricMapping } from './telegraf';
import { backoffMs, LineWriter, type WriterMetrics, type WriterOptions } from './writer';

/**
 * The read of one metric for steps [from, to). A rate also needs the sample before (two
 * steps back: one may be missing), unless `warm`: earlier samples are in the poller's
 * counter history.
 */
export function readSpec(m: MetricMapping, from: number, to: number, interval: number, warm = false): ReadSeriesSpec {
  return {
    measurement: m.measurement,
    fields: m.fields,
    where: m.where,
    exclude: m.sumOver && m.exclude.length > 0 ? { [m.sumOver]: m.exclude } : undefined,
    groupBy: m.sumOver ? ['host', m.sumOver] : ['host'],
    from: m.transform === 'rate' && !warm ? from - 2 * interval : from,
    to,
  };
}

export const PREDICTIONS_MEASUREMENT = 'ai_predictions';
export const DRIFT_MEASUREMENT = 'ai_drift';

export interface PollerOptions {
  intervalMs: number;
  maxLookbackMs: number;
  /** Telegraf's collection interval: the three measurements are joined on it. */
  collectionIntervalMs: number;
  /** How long an incomplete step may wait for its missing metrics before it is skipped. */
  settleMs: number;
  mapping: Mapping;
  gate: GateOptions;
  shard: Shard;
  /** Most hosts tracked; the least recently seen are forgotten beyond it. */
  maxHosts: number;
  writer: WriterOptions;
  /** Retry delays of failed cycles. */
  baseBackoffMs: number;
  maxBackoffMs: number;
  drift: { windowPoints: number; intervalMs: number; warnPsi: number };
  /**
   * Periodic refit on recent normal points (absent: off): every `intervalMs` of clock
   * time, once the window holds `minPoints` rows, a model like the current one is
   * trained on the last `windowPoints` rows that raised no alert.
   */
  refit?: { intervalMs: number; windowPoints: number; minPoints: number };
}

export interface PollerMetrics extends WriterMetrics {
  cycleDuration: Histogram<'outcome'>;
  lag: Gauge;
  pointsRead: Counter;
  pointsScored: Counter<'source'>;
  anomalies: Counter<'source'>;
  alerts: Counter;
  skipped: Counter<'reason'>;
  cycleErrors: Counter;
  hosts: Gauge;
  psi: Gauge<'feature'>;
  scores: Histogram<'source'>;
  historyHosts: Gauge<'source'>;
  historyEvictions: Counter<'source'>;
  reloads: Counter<'outcome'>;
  modelInfo: Gauge<'version'>;
}

interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface HostState {
  /** Start of the last collection step handled (scored or skipped), epoch ms. */
  watermark: number;
  gate: GateState;
  /** Clock time at which new data of the host was last found. */
  seenAt: number;
  /** The first incomplete step, and when it was first seen incomplete (it waits settleMs from then). */
  pendingStep?: number;
  pendingSince?: number;
}

/**
 * The per-host history a temporal model reads, and whether it already holds the points
 * before the first one scored. Unprimed (after a start, or a reload to a model with
 * other temporal features), the next read also goes back the model's history length
 * (within MAX_LOOKBACK_S) and feeds the points already scored, so a restart does not
 * blind the temporal features. It reads twice the history length, so that missing or
 * invalid steps (up to the history length of them) do not shorten the history.
 */
export interface HistoryState {
  store?: SeriesStateStore;
  primed: boolean;
}

/** True if a complete step's values pass the point rules (the live path scores only those). */
function isUsable(host: string, v: Record<MetricName, number | undefined>): v is Record<MetricName, number> {
  return isValidPoint({ host, cpu_usage: v.cpu_usage, memory_usage: v.memory_usage, network_load: v.network_load });
}

/** What one cycle did (for tests and logs). */
export interface CycleReport {
  read: number;
  scored: number;
  anomalies: number;
  alerts: number;
  skipped: number;
  hosts: number;
  from: number;
  to: number;
}

/**
 * The InfluxDB loop: every interval, read the new cpu, mem and net points of all hosts
 * (one query per measurement), join them per host and collection step, score each
 * complete step exactly once through the Detector, gate alerts per host, and queue the
 * predictions for writing. Watermarks per host come back from ai_predictions at start,
 * so a restart neither rescores nor skips. Cycles never overlap; failures back off.
 */
export class Poller {
  private readonly hosts = new Map<string, HostState>();
  private restored = false;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private stopped = false;
  private failures = 0;
  private lastSuccess: number | null = null;
  private lastError: string | null = null;
  private lastDrift = 0;
  /** Recent feature rows of the live loop for drift (made for the loaded model by followLoads). */
  private window: RecentWindow | null = null;
  /** The model whose features the drift window holds. */
  private readonly history: HistoryState = { primed: false };
  /**
   * The model loaded (from a file or MLflow) that refits descend from, the model this
   * poller last swapped in, refits since the load, and the refit window.
   */
  private base: Detector | undefined;
  private installed: Detector | undefined;
  private refits = 0;
  private lastFit = 0;
  private lastRefitAt: number | null = null;
  private lastRefitError: string | null = null;
  private refitWindow: RefitWindow | null = null;
  private psiValues: Record<string, number> = {};
  private scoredTotal = 0;
  /** Lag in seconds at the last successful cycle (null before any host was seen). */
  private lag: number | null = null;
  /** Counter samples of the live loop, so rates need no re-read; `readTo` is where they end. */
  private readonly counters: CounterHistory = new Map();
  private readTo: number | null = null;
  readonly writer: LineWriter;

  constructor(
    private readonly store: MetricsStore,
    private readonly models: ModelStore,
    private readonly opts: PollerOptions,
    private readonly metrics: PollerMetrics,
    private readonly log: Log,
    private readonly clock: () => number = Date.now,
  ) {
    this.writer = new LineWriter(store, opts.writer, metrics, log);
  }

  /** Starts the timer; the first cycle runs at once. */
  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops the timer, waits for a cycle in flight, and gives the writer `drainMs` to flush. */
  async stop(drainMs = 5000): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    const left = await this.writer.drain(drainMs);
    if (left > 0) this.log.warn({ unwritten: left }, 'stopping with predictions unwritten; they are rescored at the next start');
    this.writer.close();
    this.log.info({ scored_total: this.scoredTotal, hosts: this.hosts.size }, 'poller stopped');
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const started = this.clock();
      this.running = this.runCycle().then(
        () => {
          this.failures = 0;
          this.schedule(Math.max(0, this.opts.intervalMs - (this.clock() - started)));
        },
        (e: unknown) => {
          this.failures++;
          this.lastError = (e as Error).message;
          this.metrics.cycleErrors.inc();
          const delay = backoffMs(this.failures, this.opts.baseBackoffMs, this.opts.maxBackoffMs);
          this.log.warn({ err: this.lastError, failures: this.failures, retryInMs: Math.round(delay) }, 'poll cycle failed');
          this.schedule(delay);
        },
      );
    }, delayMs);
    this.timer.unref();
  }

  /** Restores per-host watermarks from the latest prediction of each host. */
  private async restore(now: number): Promise<void> {
    const latest = await this.store.latestTimes(PREDICTIONS_MEASUREMENT, 'host', { since: now - this.opts.maxLookbackMs });
    for (const [host, t] of latest) {
      if (host === '' || !ownsHost(this.opts.shard, host)) continue;
      this.hosts.set(host, { watermark: t, gate: newGateState(), seenAt: now });
    }
    this.restored = true;
    this.log.info({ hosts: this.hosts.size }, 'watermarks restored from ai_predictions');
  }

  /**
   * True for hosts that had new data shortly before the last successful cycle. Only they
   * hold the read window back: a host that went quiet (decommissioned, or cut off) stops
   * dragging every read back to its old watermark; when it reports again its new points
   * are read as any new host's are. Measured from the last success, so an InfluxDB
   * outage keeps every host active and the first read after it starts where it stopped.
   */
  private isActive(h: HostState, now: number): boolean {
    const window = 2 * this.opts.collectionIntervalMs + this.opts.settleMs + this.opts.intervalMs;
    return h.seenAt >= (this.lastSuccess ?? now) - window;
  }

  /** Earliest time a host still needs: the oldest watermark of the active hosts. */
  private readFrom(now: number): number {
    const floor = now - this.opts.maxLookbackMs;
    let from = Infinity;
    for (const h of this.hosts.values()) if (this.isActive(h, now) && h.watermark + 1 < from) from = h.watermark + 1;
    return from === Infinity ? floor : Math.max(floor, from);
  }

  /** One read, score, gate and write pass. Exposed for tests and backfill. */
  async runCycle(): Promise<CycleReport> {
    const t0 = process.hrtime.bigint();
    const now = this.clock();
    try {
      const report = await this.cycleBody(now);
      this.lastSuccess = now;
      this.lastError = null;
      this.metrics.cycleDuration.observe({ outcome: 'ok' }, Number(process.hrtime.bigint() - t0) / 1e9);
      return report;
    } catch (e) {
      this.metrics.cycleDuration.observe({ outcome: 'error' }, Number(process.hrtime.bigint() - t0) / 1e9);
      throw e;
    }
  }

  private async cycleBody(now: number): Promise<CycleReport> {
    if (!this.models.current) throw new Error('no model loaded');
    if (!this.restored) await this.restore(now);
    this.followLoads(now);
    const report = await this.process(this.readFrom(now), now + 1, now, this.hosts, this.opts.settleMs, this.history, this.counters);
    this.forgetOldHosts();
    this.updateLag(now);
    this.maybeDrift(now, this.base ?? this.models.current.detector);
    this.maybeRefit(now);
    this.metrics.hosts.set(this.hosts.size);
    return report;
  }

  /** Notices a model loaded or reloaded since the last cycle: refits start again from it. */
  private followLoads(now: number): void {
    const current = (this.models.current as NonNullable<ModelStore['current']>).detector;
    if (current === this.installed) return;
    this.base = current;
    this.installed = current;
    this.refits = 0;
    this.lastFit = now;
    const r = this.opts.refit;
    this.refitWindow = r ? new RefitWindow(current.features.length, r.windowPoints) : null;
    // Drift compares the loaded model's features with its own training deciles (a
    // refit's inputs keep being compared with the loaded model's): start afresh.
    this.window = new RecentWindow(current.features.length, this.opts.drift.windowPoints);
    this.psiValues = {};
    this.metrics.psi.reset();
  }

  /** Refits when due; the new model is swapped in unless a reload replaced the model meanwhile. */
  private maybeRefit(now: number): void {
    const r = this.opts.refit;
    const win = this.refitWindow;
    if (!r || !win || !this.base || now - this.lastFit < r.intervalMs || win.size < r.minPoints) return;
    const current = this.models.current?.detector;
    if (current !== this.installed || current === undefined) return;
    this.lastFit = now;
    const t0 = process.hrtime.bigint();
    let next: Detector;
    try {
      next = refitDetector(current, win, new Date(now).toISOString());
    } catch (e) {
      // The predictions of this cycle are queued already: a failed refit must not fail
      // the cycle (that would report InfluxDB as unreachable); the model keeps serving.
      this.lastRefitError = (e as Error).message;
      this.metrics.reloads.inc({ outcome: 'refit_failed' });
      this.log.error({ err: this.lastRefitError, base: this.base.version }, 'refit failed; the current model keeps serving');
      return;
    }
    this.lastRefitError = null;
    this.models.swap({ detector: next, loadedAt: new Date(now), source: `refit of ${this.base.version} on ${win.size} recent normal points` });
    this.installed = next;
    this.refits++;
    this.lastRefitAt = now;
    this.metrics.reloads.inc({ outcome: 'refit' });
    this.metrics.modelInfo.reset();
    this.metrics.modelInfo.set({ version: next.version }, 1);
    this.log.info({ version: next.version, base: this.base.version, rows: win.size, refits: this.refits, ms: Number(process.hrtime.bigint() - t0) / 1e6 }, 'model refitted on recent normal points');
  }

  /**
   * Scores every complete step of [from, to) again and queues the predictions (they
   * overwrite earlier ones: same series, same timestamps). Gate state starts fresh at
   * `from`; the live watermarks are not touched. A temporal model's history is read from
   * the points before `from` (its history length). Pass the same `state` and `history`
   * to consecutive calls over adjacent ranges. Used by `anomaly-detector backfill`.
   */
  async backfill(from: number, to: number, state: Map<string, HostState> = new Map(), history: HistoryState = { primed: false }): Promise<CycleReport> {
    if (!this.models.current) throw new Error('no model loaded');
    return this.process(from, to, Infinity, state, 0, history);
  }

  /** Reads [from, to), scores the new complete steps of each host, queues the lines. */
  private async process(
    rawFrom: number,
    to: number,
    now: number,
    hosts: Map<string, HostState>,
    settleMs: number,
    history: HistoryState,
    counters?: CounterHistory,
  ): Promise<CycleReport> {
    const detector = (this.models.current as NonNullable<ModelStore['current']>).detector;
    const live = history === this.history;
    const interval = this.opts.collectionIntervalMs;
    // Whole collection steps only, so a step is never half read.
    const from = stepOf(rawFrom + interval - 1, interval);
    // A temporal model reads each host's history; an unprimed one first gets the points
    // before `from` (and those already scored), read once.
    let store: SeriesStateStore | undefined;
    let readFrom = from;
    if (!detector.temporal) {
      // A later temporal model starts afresh (and primes) rather than reading stale points.
      history.store = undefined;
      history.primed = false;
    } else {
      store = detector.stateFor(history.store, this.opts.maxHosts);
      if (store !== history.store) {
        history.store = store;
        history.primed = false;
      }
      if (!history.primed) {
        const floor = Number.isFinite(now) ? stepOf(now - this.opts.maxLookbackMs + interval - 1, interval) : -Infinity;
        // Twice the history length: a host that missed steps, or had invalid ones, still
        // gets its last historyPoints usable points (up to historyPoints of them missing).
        readFrom = Math.min(from, Math.max(floor, from - 2 * detector.historyPoints * interval));
      }
    }
    const priming = store !== undefined && !history.primed;
    const steps: HostSteps = new Map();
    let read = 0;
    // The three reads run concurrently: InfluxDB answers them on its own threads.
    // The counter history (the last few samples before readTo) holds the sample before
    // `readFrom` when the read starts just inside it: then no look-back is needed.
    const warm = counters !== undefined && this.readTo !== null && readFrom <= this.readTo && readFrom >= this.readTo - 4 * interval;
    const results = await Promise.all(METRIC_NAMES.map((metric) => this.store.readSeries(readSpec(this.opts.mapping[metric], readFrom, to, interval, warm))));
    METRIC_NAMES.forEach((metric, k) => {
      for (const g of results[k]) read += g.rows.length;
      const mine = this.opts.shard.count > 1 ? results[k].filter((g) => ownsHost(this.opts.shard, g.tags.host ?? '')) : results[k];
      addMetric(steps, metric, this.opts.mapping[metric], mine, interval, counters);
    });
    if (counters) this.readTo = to;
    this.metrics.pointsRead.inc(read);

    // Select, per host, the steps to score now, in time order.
    const rowHosts: string[] = [];
    const rowTimes: number[] = [];
    const rowValues: number[] = [];
    const histHosts: string[] = [];
    const histTimes: number[] = [];
    const histValues: number[] = [];
    let skipped = 0;
    for (const [host, byStep] of steps) {
      if (!ownsHost(this.opts.shard, host)) continue;
      const known = hosts.get(host);
      const watermark = known?.watermark ?? -Infinity;
      if (priming) {
        // Points before the first one this cycle may score: history only, and only those
        // the live path would have scored.
        const earlier = [...byStep.keys()].filter((t) => t < to && (t < from || t <= watermark)).sort((a, b) => a - b);
        for (const t of earlier) {
          const v = byStep.get(t) as Record<MetricName, number | undefined>;
          if (!isComplete(v) || !isUsable(host, v)) continue;
          histHosts.push(host);
          histTimes.push(t);
          histValues.push(v.cpu_usage, v.memory_usage, v.network_load);
        }
      }
      const times = [...byStep.keys()].filter((t) => t > watermark && t >= from && t < to).sort((a, b) => a - b);
      // A host seen only in the priming read is not followed: its points are older than
      // what this cycle scores.
      if (!known && times.length === 0) continue;
      let state = known;
      if (!state) {
        state = { watermark: -Infinity, gate: newGateState(), seenAt: now };
        hosts.set(host, state);
      }
      if (times.length > 0 && Number.isFinite(now)) state.seenAt = now;
      for (const t of times) {
        const v = byStep.get(t) as Record<MetricName, number | undefined>;
        if (!isComplete(v)) {
          // Its other metrics may still arrive: wait settleMs from the moment the step was
          // first seen incomplete, so late data (a Telegraf buffer flushed after an
          // outage, a write half visible to a query) gets the same grace as fresh data.
          if (settleMs > 0) {
            if (state.pendingStep !== t) {
              state.pendingStep = t;
              state.pendingSince = now;
            }
            if (now - (state.pendingSince as number) < settleMs) break;
          }
          this.metrics.skipped.inc({ reason: 'incomplete' });
          skipped++;
          state.watermark = t;
          continue;
        }
        if (!isUsable(host, v)) {
          this.metrics.skipped.inc({ reason: 'invalid' });
          skipped++;
          state.watermark = t;
          continue;
        }
        rowHosts.push(host);
        rowTimes.push(t);
        rowValues.push(v.cpu_usage, v.memory_usage, v.network_load);
        state.watermark = t;
      }
    }
    if (store !== undefined && priming) {
      detector.remember(histHosts, histTimes, Float64Array.from(histValues), histHosts.length, store);
      history.primed = true;
    }
    if (live) {
      this.metrics.historyHosts.set({ source: 'poller' }, store?.size ?? 0);
      if (store) this.metrics.historyEvictions.inc({ source: 'poller' }, store.takeEvictions());
    }
    const n = rowHosts.length;
    let anomalies = 0;
    let alerts = 0;
    // The live loop tags predictions with the loaded model's version (a refit only adds
    // a field: a new tag value per refit would multiply InfluxDB's series), learns and
    // feeds the drift window; a backfill does neither.
    const tagVersion = live && this.base ? this.base.version : detector.version;
    const refitCount = live ? this.refits : 0;
    const learn = live ? this.refitWindow : null;
    const drift = live ? this.window : null;
    if (n > 0) {
      const raw = Float64Array.from(rowValues);
      const d = detector.features.length;
      const features = new Float64Array(n * d);
      const { scores, contributions: c } = store ? detector.scoreSeries(rowHosts, rowTimes, raw, n, { state: store, featuresOut: features }) : detector.scoreRaw(raw, n, features);
      const threshold = detector.threshold;
      const lines: string[] = [];
      for (let i = 0; i < n; i++) {
        const host = rowHosts[i];
        const state = hosts.get(host) as HostState;
        const score = scores[i];
        const rawAnomaly = detector.isAnomaly(score);
        const cpu = raw[i * 3];
        const mem = raw[i * 3 + 1];
        const net = raw[i * 3 + 2];
        const alert = gate(this.opts.gate, state.gate, rawAnomaly, rowTimes[i], cpu, mem, net, score);
        if (rawAnomaly) anomalies++;
        if (alert) alerts++;
        this.metrics.scores.observe({ source: 'poller' }, score);
        drift?.push(features, i * d);
        // Every point that raised no alert: keeping only those under the threshold would
        // make each refit flag the top share of what the last one found normal, so the
        // raw-anomaly rate would climb refit after refit on unchanged traffic.
        if (learn && !alert) learn.remember(features, i);
        try {
          lines.push(
            formatPoint({
              measurement: PREDICTIONS_MEASUREMENT,
              tags: { host, model_version: tagVersion },
              fields: {
                is_anomaly: int(alert ? 1 : 0),
                raw_anomaly: int(rawAnomaly ? 1 : 0),
                score,
                severity: detector.severity(score),
                threshold,
                cpu_val: cpu,
                mem_val: mem,
                net_val: net,
                shap_cpu: c[i * 3],
                shap_memory: c[i * 3 + 1],
                shap_network: c[i * 3 + 2],
                model_refit: int(refitCount),
              },
              time: rowTimes[i],
            }),
          );
        } catch (e) {
          // A host name line protocol cannot carry (InfluxDB would not have sent one, but
          // another writer might): count it, never crash the loop.
          if (!(e instanceof LineProtocolError)) throw e;
          this.metrics.skipped.inc({ reason: 'unwritable' });
          skipped++;
        }
      }
      this.writer.enqueue(lines);
      this.metrics.pointsScored.inc({ source: 'poller' }, n);
      this.scoredTotal += n;
      if (anomalies > 0) this.metrics.anomalies.inc({ source: 'poller' }, anomalies);
      if (alerts > 0) this.metrics.alerts.inc(alerts);
    }
    return { read, scored: n, anomalies, alerts, skipped, hosts: hosts.size, from, to };
  }

  private forgetOldHosts(): void {
    if (this.hosts.size <= this.opts.maxHosts) return;
    const byAge = [...this.hosts.entries()].sort((a, b) => a[1].seenAt - b[1].seenAt);
    const gone = new Set<string>();
    for (let i = 0; i < byAge.length - this.opts.maxHosts; i++) {
      this.hosts.delete(byAge[i][0]);
      gone.add(byAge[i][0]);
    }
    for (const key of this.counters.keys()) if (gone.has(key.slice(0, key.indexOf('\u0000')))) this.counters.delete(key);
  }

  /** Lag of the active hosts (now minus their oldest watermark), for /metrics and /health. */
  private updateLag(now: number): void {
    let oldest = Infinity;
    for (const h of this.hosts.values()) if (this.isActive(h, now) && Number.isFinite(h.watermark)) oldest = Math.min(oldest, h.watermark);
    this.lag = oldest === Infinity ? null : Math.max(0, (now - oldest) / 1000);
    this.metrics.lag.set(this.lag ?? 0);
  }

  /** PSI of each model feature over the recent window against the training deciles. */
  private maybeDrift(now: number, detector: Detector): void {
    const window = this.window;
    if (!window || window.size === 0 || now - this.lastDrift < this.opts.drift.intervalMs) return;
    this.lastDrift = now;
    const lines: string[] = [];
    const quantiles = detector.artifact.training.feature_quantiles;
    const version = detector.version;
    detector.features.forEach(({ name }, f) => {
      const value = psi(quantiles[f], window.column(f));
      this.psiValues[name] = value;
      this.metrics.psi.set({ feature: name }, value);
      lines.push(formatPoint({ measurement: DRIFT_MEASUREMENT, tags: { feature: name, model_version: version }, fields: { psi: value, window_points: int(window.size) }, time: now }));
    });
    this.writer.enqueue(lines);
  }

  /** The poller's part of /health. */
  health(): HealthContributor {
    return {
      name: 'influx',
      check: () => {
        const failing = this.lastError !== null || this.writer.failing;
        const drifted = Object.entries(this.psiValues).filter(([, v]) => v > this.opts.drift.warnPsi);
        return {
          degraded: failing,
          body: {
            enabled: true,
            status: this.lastSuccess === null && this.lastError === null ? 'starting' : failing ? 'unreachable' : 'ok',
            last_success: this.lastSuccess === null ? null : new Date(this.lastSuccess).toISOString(),
            last_error: this.lastError ?? this.writer.lastError,
            lag_s: this.lag,
            hosts: this.hosts.size,
            write_buffer: this.writer.size,
            refit: this.opts.refit
              ? {
                  enabled: true,
                  base_version: this.base?.version ?? null,
                  refits: this.refits,
                  last_refit: this.lastRefitAt === null ? null : new Date(this.lastRefitAt).toISOString(),
                  last_error: this.lastRefitError,
                  window_points: this.refitWindow?.size ?? 0,
                }
              : { enabled: false },
            drift: { psi: this.psiValues, warn_above: this.opts.drift.warnPsi, warning: drifted.length > 0 ? `input drift on ${drifted.map(([k]) => k).join(', ')}` : null },
          },
        };
      },
    };
  }
}
