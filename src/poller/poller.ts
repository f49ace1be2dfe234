import type { Counter, Gauge, Histogram } from 'prom-client';
import type { Detector } from '../core/detector';
import { psi, RecentWindow } from '../core/drift';
import type { GateOptions } from '../core/gate';
import { artifactMetrics } from '../core/artifact';
import { metricDefs } from '../core/metrics';
import { StreamingDetector, type StreamingOptions } from '../core/streaming';
import { formatPoint, int } from '../influx/line-protocol';
import type { MetricsStore, ReadSeriesSpec, SeriesGroup } from '../influx/types';
import type { ModelStore } from '../model-store';
import type { HealthContributor } from '../routes/health';
import { gapOpened, inGaps, planRows, predictionLines, PREDICTIONS_MEASUREMENT, runPlan, withoutStep, type HostState } from './cycle';
import { ownsHost, type Shard } from './shard';
import { metricRules, type MetricRules } from '../validation/point';
import { addMetric, mappingMetrics, stepOf, type CounterHistory, type HostSteps, type Mapping, type MetricMapping } from './telegraf';
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

export { PREDICTIONS_MEASUREMENT, type HostState } from './cycle';

/**
 * Reads `metrics` over [from, to) with the shared reads (one query per measurement and tag
 * filter; only `hosts` when given) and joins them into `steps`, without counter history
 * (each rate from the samples of this read). Returns the queries made. Used where a read
 * stands apart from the live loop's (the late-step sweep, `export`).
 */
export async function readJoined(
  store: MetricsStore,
  mapping: Mapping,
  metrics: readonly string[],
  range: { from: number; to: number; intervalMs: number; hosts?: string[] },
  steps: HostSteps,
): Promise<number> {
  let queries = 0;
  for (const r of sharedReads(mapping, metrics)) {
    const spec = readSpec(r.source, range.from, range.to, range.intervalMs);
    const groups = await store.readSeries(range.hosts ? { ...spec, tagIn: { key: 'host', values: range.hosts } } : spec);
    queries++;
    for (const metric of r.metrics) addMetric(steps, metric, mapping[metric], groups, range.intervalMs);
  }
  return queries;
}

/**
 * The reads of a cycle: metrics of one measurement with the same tag filters and sums
 * share one query (Telegraf's `system` gives load1, load5 and load15 in one point), its
 * fields those of all of them.
 */
export function sharedReads(mapping: Mapping, metrics: readonly string[]): { source: MetricMapping; metrics: string[] }[] {
  const out = new Map<string, { source: MetricMapping; metrics: string[] }>();
  for (const metric of metrics) {
    const m = mapping[metric];
    if (!m) throw new Error(`the mapping does not provide metric ${metric}`);
    const key = JSON.stringify([m.measurement, m.where, m.sumOver ?? null, m.exclude, m.transform === 'rate']);
    const r = out.get(key);
    if (!r) out.set(key, { source: { ...m, fields: [...m.fields] }, metrics: [metric] });
    else {
      for (const f of m.fields) if (!r.source.fields.includes(f)) r.source.fields.push(f);
      r.metrics.push(metric);
    }
  }
  return [...out.values()];
}

/**
 * The stream around a model the user named (LEARN off): its features, trees and threshold,
 * refitted like it when `refit` is set (REFIT_INTERVAL_S). The poller and the Kafka source
 * both make theirs here.
 */
export function namedModelStream(
  model: Detector,
  refit: PollerOptions['refit'],
  gate: GateOptions,
  maxKeys: number,
  now: number,
): StreamingDetector {
  return StreamingDetector.fromModel(
    model,
    { refitIntervalMs: refit?.intervalMs ?? 0, refitWindow: refit?.windowPoints ?? 2, minRefitRows: refit?.minPoints, gate, maxKeys },
    now,
  );
}

/** Defaults of shard-aware reads (HOST_DISCOVERY_INTERVAL_S, SHARD_READ_CHUNK_HOSTS; measured in docs/benchmarks.md). */
export const DEFAULT_HOST_DISCOVERY = { intervalMs: 60_000, chunkHosts: 5000 };

/** What a query to InfluxDB was for (label of the query and byte counters). */
export type QueryPurpose = 'read' | 'discovery' | 'restore';

/** Splits `list` into pieces of at most `size`. */
/**
 * The end of the steps a write buffer with `room` lines holds from `start` for `hosts`
 * hosts (one line per host and step; at least one step).
 */
function budgetEnd(start: number, room: number, hosts: number, interval: number): number {
  const perHost = Math.max(1, Math.floor(room / Math.max(1, hosts)));
  return stepOf(start + perHost * interval + interval - 1, interval);
}

function chunks<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}
export const DRIFT_MEASUREMENT = 'ai_drift';

/**
 * How often the poller looks for late steps beyond SETTLE_S (see Poller.sweepLate): a step
 * that arrives after a later step of its host was handled is counted (`late`) at the next
 * sweep, not lost silently, within MAX_LOOKBACK_S (older gaps are forgotten).
 */
export const LATE_SWEEP_MS = 5 * 60_000;

/**
 * Series rows a bootstrap chunk reads, about (each row is an object of ~60-100 bytes until
 * joined; the chunk's peak is a few times its rows' size). Measured in docs/benchmarks.md
 * ("The poller").
 */
export const BOOTSTRAP_CHUNK_ROWS = 200_000;

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
  /**
   * Shard-aware reads (used when `shard.count` > 1): the hosts are discovered from the tag
   * index every `intervalMs` (0: every cycle), and only this shard's are read, `chunkHosts`
   * per query. Default: {@link DEFAULT_HOST_DISCOVERY}.
   */
  hostDiscovery?: { intervalMs: number; chunkHosts: number };
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
  /**
   * Learn every host's own normal (the default when no model is named): the streaming
   * detector of `options(prior)` (core/host-learning.ts) around the loaded model as the
   * prior, bootstrapped at start from `windowMs` of history read in chunks of `chunkMs`.
   * Absent: the loaded model judges every host (refitted when `refit` is set).
   */
  learn?: {
    windowMs: number;
    chunkMs: number;
    options: (prior: Detector) => StreamingOptions;
    /** Series rows a bootstrap read holds at most, about (default {@link BOOTSTRAP_CHUNK_ROWS}). */
    chunkRows?: number;
  };
}

export interface PollerMetrics extends WriterMetrics {
  cycleDuration: Histogram<'outcome'>;
  lag: Gauge;
  pointsRead: Counter;
  queries: Counter<'purpose'>;
  queryBytes: Counter<'purpose'>;
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
  learningHosts: Gauge;
  refitFailures: Counter;
  /** Cycles that scored nothing because the write buffer had no room. */
  backpressure: Counter;
}

interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
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
  /** The streaming detector of this reader (the live loop's, or one backfill's), and the loaded model it was made from. */
  engine?: StreamingDetector;
  engineFor?: Detector;
  primed: boolean;
  /** The metric rules of `rulesFor` (the engine's columns). */
  rules?: MetricRules;
  rulesFor?: StreamingDetector;
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
  /** Clock time of the restore, and the hosts resumed from a prediction older than the lookback (host -> watermark). */
  private restoredAt = 0;
  private readonly probation = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private stopped = false;
  private failures = 0;
  private lastSuccess: number | null = null;
  private lastError: string | null = null;
  private lastDrift = 0;
  /** Recent feature rows of the live loop for drift (made for the live engine's features by engineOf). */
  private window: RecentWindow | null = null;
  /** The live loop's streaming detector (see HistoryState). */
  private readonly history: HistoryState = { primed: false };
  /** Bootstrap progress: history read at start in learning mode (null: not started or not learning). */
  private bootstrap: { from: number; to: number; done: number; rows: number; finished: boolean } | null = null;
  private psiValues: Record<string, number> = {};
  /** The last cycle read up to before now (an outage being caught up): the next runs at once. */
  private catchingUp = false;
  /** Clock time of the last sweep for late steps (see sweepLate). */
  private lastSweep = -Infinity;
  /** Scoring paused while the write buffer has no room (see cycleBody); logged once per episode. */
  private backlogged = false;
  private backlogLogged = false;
  private seenStats: { engine: StreamingDetector | null; refits: number; failures: number } = { engine: null, refits: 0, failures: 0 };
  private scoredTotal = 0;
  /** Lag in seconds at the last successful cycle (null before any host was seen). */
  private lag: number | null = null;
  /** Counter samples of the live loop, so rates need no re-read; `readTo` is where they end. */
  private readonly counters: CounterHistory = new Map();
  /** The warning that more hosts report than MAX_HOSTS was logged. */
  private overHostsLogged = false;
  /** Hosts left out at MAX_HOSTS: the last step counted for each (insertion order, bounded). */
  private readonly refused = new Map<string, number>();
  /** Per measurement read: the newest point without a host tag counted (see countNoHost). */
  private readonly noHostSeen = new Map<string, number>();
  /** When counter samples of series gone for MAX_LOOKBACK_S were last dropped (at most once a minute). */
  private countersPrunedAt = -Infinity;
  private readTo: number | null = null;
  /** Each host's prediction line prefix (measurement and tags) for `prefixVersion`, made once. */
  private readonly prefixes = new Map<string, string | null>();
  private prefixVersion = '';
  /** Shard-aware reads: this shard's hosts at the last discovery, and when it ran (null: not sharded, or not yet). */
  private discovery: { hosts: string[]; at: number } | null = null;
  /**
   * Hosts a discovery found that the one before did not: their first read goes back to
   * `from` (just before the previous discovery), so none of their steps is lost.
   */
  private fresh: { hosts: string[]; from: number } | null = null;
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
          this.schedule(this.catchingUp ? 0 : Math.max(0, this.opts.intervalMs - (this.clock() - started)));
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
    this.restoredAt = now;
    // A prediction from the future (a clock far ahead, or a hostile write: any host's
    // Telegraf credentials can write ai_predictions) must not become a watermark that
    // silences its host: only times up to one collection step ahead count.
    const until = now + this.opts.collectionIntervalMs;
    const bytes0 = this.store.queryBytes;
    const latest = await this.store.latestTimes(PREDICTIONS_MEASUREMENT, 'host', { since: now - this.opts.maxLookbackMs, until });
    const ahead = await this.store.latestTimes(PREDICTIONS_MEASUREMENT, 'host', { since: until + 1 });
    if (ahead.size > 0) {
      this.metrics.skipped.inc({ reason: 'future_prediction' }, ahead.size);
      this.log.warn(
        { hosts: ahead.size, example: [...ahead.keys()][0] },
        'ai_predictions holds points from the future: ignored as watermarks',
      );
    }
    for (const [host, t] of latest) {
      if (host === '' || !ownsHost(this.opts.shard, host)) continue;
      this.hosts.set(host, { watermark: t, seenAt: now });
    }
    // Hosts whose latest prediction is older than the lookback (every replica was down for
    // longer): resumed from it, in reads of MAX_LOOKBACK_S each, as after an outage while
    // running, if they still report (a host gone for good must not drag the reads back).
    // On probation: a host that has no data in the stretch after its watermark in which an
    // active host would have reported is dropped again (then it is a host that went quiet,
    // and its new points are read as a new host's are).
    const older = await this.store.latestTimes(PREDICTIONS_MEASUREMENT, 'host', {
      until: now - this.opts.maxLookbackMs - 1,
      field: 'score',
    });
    const stale = [...older].filter(([host]) => host !== '' && !this.hosts.has(host) && ownsHost(this.opts.shard, host));
    if (stale.length > 0) {
      // A gauge of the set (the first metric that is not a counter, whose rate needs two samples).
      const mapped = Object.values(this.opts.mapping);
      const m = mapped.find((x) => x.transform !== 'rate') ?? mapped[0];
      const alive = await this.store.latestTimes(m.measurement, 'host', { since: now - this.opts.maxLookbackMs, field: m.fields[0] });
      for (const [host, t] of stale) {
        if (!alive.has(host)) continue;
        this.hosts.set(host, { watermark: t, seenAt: now - 1 });
        this.probation.set(host, t);
      }
      // None of them may still report (hosts retired long ago): then nothing is resumed.
      if (this.probation.size > 0)
        this.log.info(
          { hosts: this.probation.size, oldest: new Date(Math.min(...this.probation.values())).toISOString() },
          'hosts resumed from predictions older than MAX_LOOKBACK_S',
        );
    }
    this.restored = true;
    this.countQueries('restore', stale.length > 0 ? 4 : 3, bytes0);
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
    return h.seenAt >= (this.lastSuccess ?? now) - this.activeWindowMs();
  }

  /** How long a host may go without new data and still count as active. */
  private activeWindowMs(): number {
    return 2 * this.opts.collectionIntervalMs + this.opts.settleMs + this.opts.intervalMs;
  }

  /** Hosts on probation (see restore): kept once a step of theirs was read, dropped once a read covered the stretch after their watermark without one. */
  private settleProbation(to: number): void {
    for (const [host, w] of this.probation) {
      const h = this.hosts.get(host);
      if (h && h.seenAt === this.restoredAt - 1 && h.watermark === w) {
        if (to < w + this.activeWindowMs()) continue;
        this.hosts.delete(host);
      }
      this.probation.delete(host);
    }
  }

  /** Earliest time a host still needs: the oldest watermark of the active hosts. */
  private readFrom(now: number): number {
    const floor = now - this.opts.maxLookbackMs;
    let from = Infinity;
    for (const h of this.hosts.values()) {
      if (!this.isActive(h, now)) continue;
      // A host with nothing handled yet (its first step still settling) needs the lookback.
      let need = Number.isFinite(h.watermark) ? h.watermark + 1 : floor;
      // A step the watermark passed without data is looked for again for SETTLE_S after
      // that (the grace an incomplete step gets), so that one arriving late is seen and
      // counted (skipped, reason "late"; see planRows), not lost silently.
      for (let i = 0; h.gaps && i < h.gaps.length; i += 3)
        if (h.gaps[i] < need && now - h.gaps[i + 2] < this.opts.settleMs) need = Math.max(floor, h.gaps[i]);
      if (need < from) from = need;
    }
    // An outage longer than MAX_LOOKBACK_S resumes from the watermarks, however far back,
    // in reads of MAX_LOOKBACK_S each (see cycleBody): nothing is lost while the poller runs.
    return from === Infinity ? floor : from;
  }

  /** Counts `n` queries of `purpose`, and the response bytes since `bytes0` (where the store counts them). */
  private countQueries(purpose: QueryPurpose, n: number, bytes0: number | undefined): void {
    if (n > 0) this.metrics.queries.inc({ purpose }, n);
    const bytes = this.store.queryBytes;
    if (bytes !== undefined && bytes0 !== undefined && bytes > bytes0) this.metrics.queryBytes.inc({ purpose }, bytes - bytes0);
  }

  private get sharded(): boolean {
    return this.opts.shard.count > 1;
  }

  /**
   * Shard-aware reads: lists the hosts of the mapped measurements from InfluxDB's tag
   * index and keeps this shard's. A host the previous discovery did not list (it started
   * reporting since) is read from shortly before that discovery (SETTLE_S and two
   * collection steps), within MAX_LOOKBACK_S: it is scored at most HOST_DISCOVERY_INTERVAL_S
   * late, and none of its steps is lost.
   */
  private async discover(now: number): Promise<void> {
    const measurements = [...new Set(Object.values(this.opts.mapping).map((m) => m.measurement))];
    const bytes0 = this.store.queryBytes;
    const all = await this.store.tagValues(measurements, 'host', { since: now - this.opts.maxLookbackMs });
    this.countQueries('discovery', 1, bytes0);
    const mine = all.filter((h) => h !== '' && ownsHost(this.opts.shard, h));
    const prev = this.discovery;
    if (prev) {
      const before = new Set(prev.hosts);
      const fresh = mine.filter((h) => !before.has(h) && !this.hosts.has(h));
      if (fresh.length > 0) {
        const from = Math.max(now - this.opts.maxLookbackMs, prev.at - this.opts.settleMs - 2 * this.opts.collectionIntervalMs);
        this.fresh = { hosts: [...new Set([...(this.fresh?.hosts ?? []), ...fresh])], from: Math.min(this.fresh?.from ?? Infinity, from) };
      }
    }
    this.discovery = { hosts: mine, at: now };
  }

  /**
   * The reads of a pass: one per measurement for all hosts (one shard), or, sharded, this
   * shard's hosts in chunks; hosts just discovered (live cycles only) in their own chunks
   * from their earlier start.
   */
  private readGroups(readFrom: number, live: boolean): Array<{ hosts: string[] | null; from: number; fresh: boolean }> {
    if (!this.sharded) return [{ hosts: null, from: readFrom, fresh: false }];
    const size = (this.opts.hostDiscovery ?? DEFAULT_HOST_DISCOVERY).chunkHosts;
    const mine = this.discovery?.hosts ?? [];
    const fresh = live && this.fresh && this.fresh.from < readFrom ? this.fresh : null;
    const freshSet = new Set(fresh?.hosts ?? []);
    const groups = chunks(
      mine.filter((h) => !freshSet.has(h)),
      size,
    ).map((hosts) => ({ hosts, from: readFrom, fresh: false }));
    if (fresh) for (const hosts of chunks(fresh.hosts, size)) groups.push({ hosts, from: fresh.from, fresh: true });
    return groups;
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
    const discovery = this.opts.hostDiscovery ?? DEFAULT_HOST_DISCOVERY;
    if (this.sharded && (this.discovery === null || now - this.discovery.at >= discovery.intervalMs)) await this.discover(now);
    const engine = this.engineOf(this.history, now, true);
    if (this.opts.learn && !this.bootstrap?.finished) await this.runBootstrap(now);
    if (now - this.lastSweep >= LATE_SWEEP_MS) await this.sweepLate(now, engine);
    const from = this.readFrom(now);
    // At most MAX_LOOKBACK_S per read: catching up after an outage takes several cycles,
    // run back to back (see schedule), each a bounded read.
    let to = Math.min(now + 1, from + this.opts.maxLookbackMs);
    // Backpressure: a cycle scores no more steps than the write buffer has room for (one
    // line per host and step), so predictions are not dropped while InfluxDB refuses or
    // is down: scoring waits, the watermarks stay, and the steps are read and scored once
    // the buffer drains (they are still in InfluxDB). With the buffer empty one step is
    // always scored (more hosts than WRITE_BUFFER_POINTS: the overflow is dropped and counted).
    const interval = this.opts.collectionIntervalMs;
    // Room for the drift lines too (one per feature and drift interval).
    const free = this.opts.writer.maxBuffer - this.writer.size - engine.opts.features.length;
    if (free < Math.max(1, this.hosts.size) && this.writer.size > 0) {
      // The hosts that report stay active while nothing is read (a pause is not silence).
      for (const h of this.hosts.values()) if (this.isActive(h, now)) h.seenAt = now;
      this.backlogged = true;
      this.catchingUp = false;
      this.metrics.backpressure.inc();
      if (!this.backlogLogged) {
        this.backlogLogged = true;
        this.log.warn(
          { buffered: this.writer.size, maxBuffer: this.opts.writer.maxBuffer, lastError: this.writer.lastError },
          'write buffer full: scoring paused until InfluxDB accepts writes again (nothing is dropped; the steps are scored then)',
        );
      }
      this.updateLag(now);
      return { read: 0, scored: 0, anomalies: 0, alerts: 0, skipped: 0, hosts: this.hosts.size, from, to: from };
    }
    if (this.backlogged) this.log.info({ buffered: this.writer.size }, 'write buffer has room again: scoring resumes');
    this.backlogged = false;
    this.backlogLogged = false;
    to = Math.min(to, budgetEnd(from, free, this.hosts.size, interval));
    const report = await this.process(from, to, now, this.hosts, this.opts.settleMs, this.history, 'live', this.counters, free);
    this.catchingUp = report.to < now + 1;
    if (this.probation.size > 0) this.settleProbation(report.to);
    this.forgetOldHosts(now);
    this.updateLag(now);
    this.maybeDrift(now, engine);
    this.noteRefits(engine);
    this.metrics.hosts.set(this.hosts.size);
    const counts = engine.keyCounts();
    this.metrics.learningHosts.set(counts.learning);
    return report;
  }

  /** How far back the gate's state reaches: its run of raw anomalies (twice, for gaps), cooldown and repeat windows. */
  private gateMemoryMs(): number {
    const g = this.opts.gate;
    const interval = this.opts.collectionIntervalMs;
    return Math.max(2 * g.consecutive * interval, g.cooldownMs, g.repeat ? Math.max(g.repeat.windowMs, g.repeat.peakWindowMs ?? 0) : 0);
  }

  /** Refits and failed refits of the live engine since the last cycle: counted and logged. */
  private noteRefits(engine: StreamingDetector): void {
    const st = engine.stats();
    const seen = this.seenStats.engine === engine ? this.seenStats : { engine, refits: 0, failures: 0 };
    if (st.refits > seen.refits) {
      this.metrics.reloads.inc({ outcome: 'refit' }, st.refits - seen.refits);
      this.log.info({ refits: st.refits, rows: st.windowRows, fleet_rows: st.fleetRows }, 'model refitted on recent normal points');
    }
    if (st.refitFailures > seen.failures) {
      this.metrics.refitFailures.inc(st.refitFailures - seen.failures);
      this.metrics.reloads.inc({ outcome: 'refit_failed' }, st.refitFailures - seen.failures);
      this.log.error({ err: st.lastRefitError, failures: st.refitFailures }, 'refit failed; the previous model keeps serving');
    }
    this.seenStats = { engine, refits: st.refits, failures: st.refitFailures };
  }

  /**
   * Late steps beyond the grace: the hosts with a gap older than SETTLE_S (a stretch the
   * watermark passed without data), within MAX_LOOKBACK_S, are read again over their gaps
   * only (chunks of hosts, one query per shared read); a step found there arrived after a
   * later step of its host was handled: counted `late` once (its gap forgets it), never
   * scored (the stream moved past it). Its own join, so the live join and the counters'
   * history are untouched.
   */
  private async sweepLate(now: number, engine: StreamingDetector): Promise<void> {
    this.lastSweep = now;
    const floor = now - this.opts.maxLookbackMs;
    const interval = this.opts.collectionIntervalMs;
    let lo = Infinity;
    let hi = -Infinity;
    const hosts: string[] = [];
    for (const [host, h] of this.hosts) {
      let old = false;
      for (let i = 0; h.gaps && i < h.gaps.length; i += 3) {
        if (now - h.gaps[i + 2] < this.opts.settleMs || h.gaps[i + 1] < floor) continue;
        old = true;
        lo = Math.min(lo, Math.max(floor, h.gaps[i]));
        hi = Math.max(hi, h.gaps[i + 1]);
      }
      if (old) hosts.push(host);
    }
    if (hosts.length === 0) return;
    const names = this.rulesOf(engine, this.history).names;
    const steps: HostSteps = new Map();
    const bytes0 = this.store.queryBytes;
    let queries = 0;
    for (const chunk of chunks(hosts, (this.opts.hostDiscovery ?? DEFAULT_HOST_DISCOVERY).chunkHosts))
      queries += await readJoined(
        this.store,
        this.opts.mapping,
        names,
        { from: lo, to: hi + interval, intervalMs: interval, hosts: chunk },
        steps,
      );
    this.countQueries('read', queries, bytes0);
    let late = 0;
    for (const host of hosts) {
      const h = this.hosts.get(host);
      const byStep = steps.get(host);
      if (!h?.gaps || !byStep) continue;
      for (const t of byStep.keys()) {
        if (t > h.watermark || !inGaps(h.gaps, t) || now - gapOpened(h.gaps, t) < this.opts.settleMs) continue;
        late++;
        h.gaps = withoutStep(h.gaps, t, interval);
        if (h.gaps.length === 0) {
          h.gaps = undefined;
          break;
        }
      }
    }
    if (late > 0) this.metrics.skipped.inc({ reason: 'late' }, late);
  }

  /**
   * The metrics of the engine's rows and their valid ranges: a named model's declarations,
   * or the mapping's (the learned set).
   */
  private rulesOf(engine: StreamingDetector, history: HistoryState): MetricRules {
    if (history.rules && history.rulesFor === engine) return history.rules;
    const declared =
      !this.opts.learn && history.engineFor ? artifactMetrics(history.engineFor.artifact) : mappingMetrics(this.opts.mapping);
    history.rules = metricRules(metricDefs(engine.opts.inputs, declared));
    history.rulesFor = engine;
    return history.rules;
  }

  /**
   * The reader's streaming detector, made when first needed and again when a reload
   * replaced the loaded model. Learning: the learner stays (it learned the hosts) and the
   * loaded model becomes its prior. A named model: a stream around it (refitted like it
   * when refit is set); its hosts' history is read again (primed).
   */
  private engineOf(history: HistoryState, now: number, live: boolean): StreamingDetector {
    const loaded = (this.models.current as NonNullable<ModelStore['current']>).detector;
    if (history.engine && history.engineFor === loaded) return history.engine;
    const learn = this.opts.learn;
    if (learn && history.engine) {
      history.engine.setPrior(loaded);
    } else if (learn) {
      history.engine = StreamingDetector.learner(learn.options(loaded));
    } else {
      history.engine = namedModelStream(loaded, this.opts.refit, this.opts.gate, this.opts.maxHosts, now);
      history.primed = false;
    }
    history.engineFor = loaded;
    if (live) {
      // Drift compares the live features with the model's training deciles: start afresh.
      this.window = new RecentWindow(history.engine.opts.features.length, this.opts.drift.windowPoints);
      this.psiValues = {};
      this.metrics.psi.reset();
    }
    return history.engine;
  }

  /**
   * Learning mode, at start: reads each host's recent history (LEARN_WINDOW_S, in chunks)
   * up to where the live loop starts, and runs it through the learner without writing, so
   * that a restart or a new replica judges its hosts at once where history exists. A failed
   * chunk fails the cycle; the next cycle goes on from that chunk.
   */
  private async runBootstrap(now: number): Promise<void> {
    const learn = this.opts.learn as NonNullable<PollerOptions['learn']>;
    const interval = this.opts.collectionIntervalMs;
    const end = stepOf(this.readFrom(now) + interval - 1, interval);
    if (!this.bootstrap) {
      const from = stepOf(end - learn.windowMs, interval);
      this.bootstrap = { from, to: end, done: from, rows: 0, finished: false };
      this.log.info({ from: new Date(from).toISOString(), to: new Date(end).toISOString() }, "learning: reading the hosts' history");
    }
    const b = this.bootstrap;
    const t0 = Date.now();
    // Reads are bounded in rows, not only in time (10,000 hosts: a 1-hour chunk would be
    // 14 million series rows at once): a chunk starts at one step, and each next one is
    // sized from the rows per step the last one read, to about `rows` series rows (at most
    // 4 times longer than the last, at least one step, at most LEARN_CHUNK_S). The rows of a
    // chunk, their join and the detector's slices are all the bootstrap holds beside the
    // learned state, so this bounds its peak. Empty stretches (no history yet, or before a
    // host existed) cost a query each: the next read doubles while they come back empty.
    const rows = learn.chunkRows ?? BOOTSTRAP_CHUNK_ROWS;
    let len = interval;
    while (b.done < b.to) {
      const chunkTo = Math.min(b.to, b.done + len);
      const r = await this.process(b.done, chunkTo, Infinity, new Map(), 0, this.history, 'learn');
      b.rows += r.scored;
      b.done = chunkTo;
      const want = r.read === 0 ? 2 * len : Math.min(4 * len, (len * rows) / r.read);
      len = Math.min(learn.chunkMs, Math.max(interval, stepOf(want, interval)));
      this.log.info(
        {
          done: new Date(b.done).toISOString(),
          to: new Date(b.to).toISOString(),
          rows: b.rows,
          share: Math.round((100 * (b.done - b.from)) / Math.max(1, b.to - b.from)),
        },
        'learning: history read',
      );
    }
    b.finished = true;
    // The first live read starts where the history ended: nothing is fed twice.
    this.history.primed = true;
    const counts = (this.history.engine as StreamingDetector).keyCounts();
    this.log.info({ rows: b.rows, hosts: counts.keys, learning: counts.learning, ms: Date.now() - t0 }, 'learning: history done');
  }

  /**
   * Scores every complete step of [from, to) again and queues the predictions (they
   * overwrite earlier ones: same series, same timestamps). The stream starts fresh at
   * `from`; the live watermarks are not touched. A temporal model's history is read from
   * the points before `from` (its history length); a learner first learns `learnMs`
   * before `from`. Pass the same `state` and `history` to consecutive calls over adjacent
   * ranges. Used by `anomaly-detector backfill`.
   */
  async backfill(
    from: number,
    to: number,
    state: Map<string, HostState> = new Map(),
    history: HistoryState = { primed: false },
  ): Promise<CycleReport> {
    if (!this.models.current) throw new Error('no model loaded');
    const learn = this.opts.learn;
    if (learn && !history.primed) {
      this.engineOf(history, from, false);
      for (let t = from - learn.windowMs; t < from; t += learn.chunkMs)
        await this.process(t, Math.min(from, t + learn.chunkMs), Infinity, new Map(), 0, history, 'learn');
      history.primed = true;
    }
    return this.process(from, to, Infinity, state, 0, history, 'backfill');
  }

  /**
   * Reads [from, to), runs the new complete steps of each host through the reader's
   * streaming detector in time order (then host), and queues the predictions. `mode`:
   * 'live' (the timer's cycles: watermarks, drift, metrics), 'backfill' (a past range,
   * rewritten), 'learn' (history fed to the detector, nothing written, no watermark moved).
   */
  private async process(
    rawFrom: number,
    to: number,
    now: number,
    hosts: Map<string, HostState>,
    settleMs: number,
    history: HistoryState,
    mode: 'live' | 'backfill' | 'learn',
    counters?: CounterHistory,
    /** Lines the write buffer has room for (live): the steps scored are cut to it (see readPlan). */
    room = Infinity,
  ): Promise<CycleReport> {
    const live = mode === 'live';
    const learnOnly = mode === 'learn';
    const engine = this.engineOf(history, Number.isFinite(now) ? now : rawFrom, live);
    const interval = this.opts.collectionIntervalMs;
    // Whole collection steps only, so a step is never half read.
    const from = stepOf(rawFrom + interval - 1, interval);
    // A temporal model reads each host's history; an unprimed one first gets the points
    // before `from` (and those already scored), read once. A learner's history comes from
    // its bootstrap (the points before `from`), so it primes only the points already scored.
    let readFrom = from;
    const temporal = engine.historyPoints > 0;
    // The gate's memory too: replaying the steps before the watermark restores each host's
    // run of raw anomalies (and cooldown or repeat state), so a restart in the middle of an
    // incident goes on alerting as an uninterrupted run does.
    const gateMemory = this.gateMemoryMs();
    const priming = !learnOnly && (temporal || gateMemory > 0) && !history.primed;
    if (priming && !this.opts.learn) {
      const floor = Number.isFinite(now) ? stepOf(now - this.opts.maxLookbackMs + interval - 1, interval) : -Infinity;
      // Twice the history length: a host that missed steps, or had invalid ones, still
      // gets its last historyPoints usable points (up to historyPoints of them missing).
      readFrom = Math.min(from, Math.max(floor, from - Math.max(2 * engine.historyPoints * interval, gateMemory)));
    }
    const rules = this.rulesOf(engine, history);
    // The reads and their join live in readPlan only: their rows and joined steps can be
    // collected before the detector runs (a bootstrap chunk's are most of its memory).
    const {
      plan,
      read,
      to: planned,
    } = await this.readPlan(readFrom, from, to, now, {
      live,
      mode,
      settleMs,
      hosts,
      priming,
      rules,
      counters,
      room,
    });
    if (!learnOnly && priming) history.primed = true;
    const { incomplete, invalid, late } = plan.skipped;
    if (incomplete > 0) this.metrics.skipped.inc({ reason: 'incomplete' }, incomplete);
    if (invalid > 0) this.metrics.skipped.inc({ reason: 'invalid' }, invalid);
    if (late > 0) this.metrics.skipped.inc({ reason: 'late' }, late);
    let skipped = incomplete + invalid + late;
    const res = runPlan(engine, plan, { keepFeatures: live, discard: learnOnly });
    if (live) {
      this.metrics.historyHosts.set({ source: 'poller' }, engine.store.size);
      this.metrics.historyEvictions.inc({ source: 'poller' }, engine.store.takeEvictions());
    }
    if (!res) return { read, scored: learnOnly ? plan.n : 0, anomalies: 0, alerts: 0, skipped, hosts: hosts.size, from, to: planned };
    // Predictions are tagged with the loaded model's version, or `learned` for the learner
    // (a refit only adds a field: a new tag value per refit would multiply InfluxDB's
    // series). Only the live loop feeds the drift window.
    const version = this.opts.learn ? 'learned' : (history.engineFor as Detector).version;
    if (version !== this.prefixVersion) {
      this.prefixes.clear();
      this.prefixVersion = version;
    }
    const out = predictionLines(plan, res, version, this.prefixes);
    const drift = live ? this.window : null;
    const d = engine.opts.features.length;
    for (const k of out.written) {
      this.metrics.scores.observe({ source: 'poller' }, res.scores[k]);
      if (drift && res.learning[k] === 0) drift.push(res.features, k * d);
    }
    if (out.unwritable > 0) this.metrics.skipped.inc({ reason: 'unwritable' }, out.unwritable);
    skipped += out.unwritable;
    this.writer.enqueue(out.lines);
    if (out.n > 0) this.metrics.pointsScored.inc({ source: 'poller' }, out.n);
    this.scoredTotal += out.n;
    if (out.anomalies > 0) this.metrics.anomalies.inc({ source: 'poller' }, out.anomalies);
    if (out.alerts > 0) this.metrics.alerts.inc(out.alerts);
    const n = out.n;
    const { anomalies, alerts } = out;
    return { read, scored: n, anomalies, alerts, skipped, hosts: hosts.size, from, to: planned };
  }

  /**
   * The reads of [readFrom, to) (each chunk of hosts when sharded), joined per host and
   * step, and the rows chosen from them (see planRows). Only the plan is returned: the
   * series rows and the join are garbage once it is made.
   */
  private async readPlan(
    readFrom: number,
    from: number,
    to: number,
    now: number,
    o: {
      live: boolean;
      mode: 'live' | 'backfill' | 'learn';
      settleMs: number;
      hosts: Map<string, HostState>;
      priming: boolean;
      rules: MetricRules;
      counters?: CounterHistory;
      room: number;
    },
  ): Promise<{ plan: ReturnType<typeof planRows>; read: number; to: number }> {
    const { live, mode, settleMs, hosts, priming, rules, counters, room } = o;
    const interval = this.opts.collectionIntervalMs;
    const steps: HostSteps = new Map();
    let read = 0;
    // The three reads (of each chunk of hosts, when sharded) run concurrently: InfluxDB
    // answers them on its own threads. The counter history (the last few samples before
    // readTo) holds the sample before `readFrom` when the read starts just inside it: then
    // no look-back is needed (not for hosts just discovered: they have no samples yet).
    const warm = counters !== undefined && this.readTo !== null && readFrom <= this.readTo && readFrom >= this.readTo - 4 * interval;
    const groups = this.readGroups(readFrom, live);
    const reads = sharedReads(this.opts.mapping, rules.names);
    const results: SeriesGroup[][] = reads.map(() => []);
    const bytes0 = this.store.queryBytes;
    let queries = 0;
    for (const g of groups) {
      const got = await Promise.all(
        reads.map((r) => {
          const spec = readSpec(r.source, g.from, to, interval, warm && !g.fresh);
          return this.store.readSeries(g.hosts ? { ...spec, tagIn: { key: 'host', values: g.hosts } } : spec);
        }),
      );
      queries += reads.length;
      got.forEach((r, k) => results[k].push(...r));
    }
    this.countQueries('read', queries, bytes0);
    reads.forEach((r, k) => {
      for (const g of results[k]) read += g.rows.length;
      // Sharded reads hold this shard's hosts only; the filter stays as a safeguard.
      const mine = this.sharded ? results[k].filter((g) => ownsHost(this.opts.shard, g.tags.host ?? '')) : results[k];
      for (const metric of r.metrics) addMetric(steps, metric, this.opts.mapping[metric], mine, interval, counters);
    });
    if (counters) this.readTo = to;
    if (live) this.countNoHost(reads, results, from);
    this.metrics.pointsRead.inc(read);
    // Hosts just discovered were read from their own start: their steps from there on are new.
    const freshFrom = groups.some((g) => g.fresh) ? stepOf((this.fresh as { from: number }).from + interval - 1, interval) : Infinity;
    if (live) this.fresh = null;

    // The write budget per host counted the hosts known before this read: with more in it (a
    // first start, new hosts) the steps scored are cut to what the buffer holds for all of
    // them; the rest are read again next cycle (the watermarks stop before them).
    let planned = to;
    if (live && Number.isFinite(room) && steps.size > 0) {
      // Counted from the first new step read (the window may begin long before any data).
      let first = Infinity;
      for (const [host, byStep] of steps) {
        const w = hosts.get(host)?.watermark ?? -Infinity;
        for (const t of byStep.keys()) if (t >= from && t > w && t < first) first = t;
      }
      if (Number.isFinite(first)) planned = Math.min(to, budgetEnd(first, room, steps.size, interval));
    }
    // MAX_HOSTS: the slots left once the followed hosts in this read have theirs.
    let inRead = 0;
    for (const host of steps.keys()) if (hosts.has(host)) inRead++;
    const slots = { free: this.opts.maxHosts - inRead };
    return {
      read,
      to: planned,
      plan: planRows(steps, {
        mode,
        from: Math.min(from, freshFrom),
        to: planned,
        now,
        settleMs,
        intervalMs: interval,
        prime: priming,
        primeFromStart: this.opts.learn !== undefined,
        hosts,
        owns: (h) => ownsHost(this.opts.shard, h),
        rules,
        // Live: gaps are kept while a sweep can still reach them (MAX_LOOKBACK_S).
        ...(live && Number.isFinite(now) ? { gapHorizon: now - this.opts.maxLookbackMs } : {}),
        ...(live ? { admit: (host: string, times: readonly number[]) => this.admit(host, times, slots) } : {}),
      }),
    };
  }

  /**
   * Points without a host tag (another writer's, or a Telegraf without its host tag) are
   * not scored: counted (`no_host`) once each, per measurement read, from the new steps of
   * this read on (reads overlap: a point already counted is not counted again).
   */
  private countNoHost(reads: { source: MetricMapping }[], results: SeriesGroup[][], from: number): void {
    let n = 0;
    reads.forEach((r, k) => {
      const key = r.source.measurement;
      const seen = this.noHostSeen.get(key) ?? -Infinity;
      let newest = seen;
      for (const g of results[k]) {
        if ((g.tags.host ?? '') !== '') continue;
        for (const row of g.rows)
          if (row.time > seen && row.time >= from) {
            n++;
            if (row.time > newest) newest = row.time;
          }
      }
      if (newest > seen) this.noHostSeen.set(key, newest);
    });
    if (n > 0) this.metrics.skipped.inc({ reason: 'no_host' }, n);
  }

  /**
   * Whether a host not followed yet is taken into a read whose followed hosts fill
   * `slots` of MAX_HOSTS (counted once per read: see readPlan). Taken, it may push the map
   * over MAX_HOSTS for the moment: forgetOldHosts then forgets the least recently seen hosts
   * that did not report in this cycle. With no slot left (every followed host reporting), it
   * is left out and its steps are counted (`max_hosts`, each step once). So the hosts
   * followed, and the learner's keys, stay within MAX_HOSTS: more would make the learner's
   * LRU evict hosts that report, and each would be learned again and again.
   */
  private admit(host: string, times: readonly number[], slots: { free: number }): boolean {
    if (slots.free > 0) {
      slots.free--;
      this.refused.delete(host);
      return true;
    }
    // Steps read again by a later cycle are not counted again.
    const counted = this.refused.get(host) ?? -Infinity;
    const fresh = times.filter((t) => t > counted);
    if (fresh.length > 0) {
      this.metrics.skipped.inc({ reason: 'max_hosts' }, fresh.length);
      this.refused.set(host, fresh[fresh.length - 1]);
    }
    if (this.refused.size > this.opts.maxHosts) this.refused.delete(this.refused.keys().next().value as string);
    if (!this.overHostsLogged) {
      this.overHostsLogged = true;
      this.log.warn(
        { hosts: this.hosts.size, maxHosts: this.opts.maxHosts, example: host },
        'more hosts report than MAX_HOSTS: new ones are left out, their steps counted (reason max_hosts); raise MAX_HOSTS or shard',
      );
    }
    return false;
  }

  /**
   * Beyond MAX_HOSTS (new hosts taken in this cycle, see admit; hosts restored from
   * ai_predictions at start), forgets the least recently seen hosts with their counter samples,
   * never one seen in this cycle: forgotten while it reports, a host comes back with no
   * watermark, and its next read would go back MAX_LOOKBACK_S and score its steps again.
   * Once a minute, also drops the counter samples of a series (an interface, a disk) with
   * none in the MAX_LOOKBACK_S before the end of the last read: hosts whose interfaces come
   * and go (containers) keep only the live ones.
   */
  private forgetOldHosts(now: number): void {
    if (this.hosts.size > this.opts.maxHosts) {
      const byAge = [...this.hosts.entries()].filter(([, h]) => h.seenAt < now).sort((a, b) => a[1].seenAt - b[1].seenAt);
      const n = Math.min(byAge.length, this.hosts.size - this.opts.maxHosts);
      for (let i = 0; i < n; i++) {
        this.hosts.delete(byAge[i][0]);
        this.counters.delete(byAge[i][0]);
      }
    }
    if (now - this.countersPrunedAt < 60_000 || this.readTo === null) return;
    this.countersPrunedAt = now;
    // Measured from where the reads got to, not the clock: while scoring pauses (a full write
    // buffer) or catches up, the next read goes on from the samples it left.
    const horizon = this.readTo - this.opts.maxLookbackMs;
    for (const [host, series] of this.counters) {
      for (const [key, samples] of series) if (samples.length === 0 || samples[samples.length - 1].time < horizon) series.delete(key);
      if (series.size === 0) this.counters.delete(host);
    }
  }

  /** Lag of the active hosts (now minus their oldest watermark), for /metrics and /health. */
  private updateLag(now: number): void {
    let oldest = Infinity;
    for (const h of this.hosts.values()) if (this.isActive(h, now) && Number.isFinite(h.watermark)) oldest = Math.min(oldest, h.watermark);
    this.lag = oldest === Infinity ? null : Math.max(0, (now - oldest) / 1000);
    this.metrics.lag.set(this.lag ?? 0);
  }

  /** PSI of each model feature over the recent window against the training deciles. */
  private maybeDrift(now: number, engine: StreamingDetector): void {
    const window = this.window;
    // A named model's features against its training deciles; the learner's against its latest fit's.
    const detector = this.opts.learn ? engine.model : (this.history.engineFor ?? null);
    if (!detector || !window || window.size === 0 || now - this.lastDrift < this.opts.drift.intervalMs) return;
    this.lastDrift = now;
    const lines: string[] = [];
    const quantiles = detector.artifact.training.feature_quantiles;
    const version = detector.version;
    detector.features.forEach(({ name }, f) => {
      const value = psi(quantiles[f], window.column(f));
      this.psiValues[name] = value;
      this.metrics.psi.set({ feature: name }, value);
      lines.push(
        formatPoint({
          measurement: DRIFT_MEASUREMENT,
          tags: { feature: name, model_version: version },
          fields: { psi: value, window_points: int(window.size) },
          time: now,
        }),
      );
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
        const engine = this.history.engine;
        const st = engine?.stats();
        const counts = engine?.keyCounts();
        const b = this.bootstrap;
        const refitFailing = (st?.refitFailures ?? 0) > 0 && st?.lastRefitError !== null;
        return {
          // Drift above DRIFT_PSI_WARN, or a refit that keeps failing, degrade (still 200).
          degraded: failing || drifted.length > 0 || refitFailing,
          body: {
            enabled: true,
            status:
              this.lastSuccess === null && this.lastError === null
                ? 'starting'
                : failing
                  ? 'unreachable'
                  : drifted.length > 0 || refitFailing
                    ? 'degraded'
                    : 'ok',
            last_success: this.lastSuccess === null ? null : new Date(this.lastSuccess).toISOString(),
            last_error: this.lastError ?? this.writer.lastError,
            lag_s: this.lag,
            hosts: this.hosts.size,
            write_buffer: this.writer.size,
            // Scoring paused: the write buffer has no room until InfluxDB accepts writes (nothing is dropped).
            scoring_paused: this.backlogged,
            learning: this.opts.learn
              ? {
                  enabled: true,
                  hosts: counts?.keys ?? 0,
                  learning_hosts: counts?.learning ?? 0,
                  fleet_model: engine?.fleetModel !== null && engine?.fleetModel !== undefined,
                  bytes_per_host: engine?.bytesPerKey ?? null,
                  bootstrap: b
                    ? {
                        from: new Date(b.from).toISOString(),
                        to: new Date(b.to).toISOString(),
                        done_share: b.to > b.from ? (b.done - b.from) / (b.to - b.from) : 1,
                        rows: b.rows,
                        finished: b.finished,
                      }
                    : null,
                }
              : { enabled: false },
            refit:
              this.opts.refit || this.opts.learn
                ? {
                    enabled: true,
                    base_version: this.opts.learn ? null : (this.history.engineFor?.version ?? null),
                    refits: st?.refits ?? 0,
                    failures: st?.refitFailures ?? 0,
                    last_refit: st?.lastRefitTime == null ? null : new Date(st.lastRefitTime).toISOString(),
                    last_error: st?.lastRefitError ?? null,
                    window_points: st?.windowRows ?? 0,
                  }
                : { enabled: false },
            drift: {
              psi: this.psiValues,
              warn_above: this.opts.drift.warnPsi,
              warning: drifted.length > 0 ? `input drift on ${drifted.map(([k]) => k).join(', ')}` : null,
            },
          },
        };
      },
    };
  }
}
