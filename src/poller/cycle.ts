import { BASIC_METRICS, columnsOf, METRIC_NAMES } from '../core/metrics';
import type { StreamingDetector, StreamResult, StreamRows } from '../core/streaming';
import { formatPoint, int, LineProtocolError, type FieldValue } from '../influx/line-protocol';
import { isUsableStep, metricRules, type MetricRules } from '../validation/point';
import { isComplete, stepOf, type HostSteps, type StepValues } from './telegraf';

/**
 * The pure part of a poller cycle, with no I/O, timers or metrics: which joined steps of
 * which hosts run through the streaming detector (and in what order), and the
 * `ai_predictions` lines of what it returned. The Poller is the shell around it: it reads
 * InfluxDB, calls these, runs the detector, queues the lines and counts.
 */

export const PREDICTIONS_MEASUREMENT = 'ai_predictions';

/** Per-host progress of the live loop (or of one backfill). */
export interface HostState {
  /** Start of the last collection step handled (scored or skipped), epoch ms. */
  watermark: number;
  /** Clock time at which new data of the host was last found. */
  seenAt: number;
  /** The first incomplete step, and when it was first seen incomplete (it waits settleMs from then). */
  pendingStep?: number;
  pendingSince?: number;
  /**
   * Steps the watermark passed while they were absent from the read: triples of first
   * and last step time and the clock time the gap opened, oldest first, at most MAX_GAPS.
   * A step that shows up in one later arrived after a later step of its host was handled:
   * it is counted (`late`), not scored. Everything else at or before the watermark was
   * handled (or outside what the reads saw), so re-reading it counts nothing.
   */
  gaps?: number[];
}

/** Gap ranges kept per host (the oldest are forgotten beyond it). */
export const MAX_GAPS = 16;

/** Records the gap [from, to] (steps), opened at `opened`; the oldest beyond MAX_GAPS are forgotten. */
function addGap(s: HostState, from: number, to: number, opened: number): void {
  const gaps = (s.gaps ?? []).concat(from, to, opened);
  s.gaps = gaps.length > 3 * MAX_GAPS ? gaps.slice(gaps.length - 3 * MAX_GAPS) : gaps;
}

/** True if step `t` is in one of the gap ranges. */
export function inGaps(gaps: readonly number[] | undefined, t: number): boolean {
  if (!gaps) return false;
  for (let i = 0; i < gaps.length; i += 3) if (t >= gaps[i] && t <= gaps[i + 1]) return true;
  return false;
}

/** The gaps without step `t` (a range holding it is split). */
/** When the gap holding step `t` opened (clock time; Infinity if none holds it). */
export function gapOpened(gaps: readonly number[], t: number): number {
  for (let i = 0; i < gaps.length; i += 3) if (t >= gaps[i] && t <= gaps[i + 1]) return gaps[i + 2];
  return Infinity;
}

export function withoutStep(gaps: readonly number[], t: number, intervalMs: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < gaps.length; i += 3) {
    const [a, b, since] = [gaps[i], gaps[i + 1], gaps[i + 2]];
    if (t < a || t > b) out.push(a, b, since);
    else {
      if (a <= t - intervalMs) out.push(a, t - intervalMs, since);
      if (t + intervalMs <= b) out.push(t + intervalMs, b, since);
    }
  }
  return out;
}

/** What a cycle step runs: mode, window, and the hosts' progress (updated in place). */
export interface CycleStep {
  /** 'live' and 'backfill' score new steps; 'learn' feeds every complete step of [from, to), writes nothing, moves no watermark. */
  mode: 'live' | 'backfill' | 'learn';
  /** Steps of [from, to) are new; earlier ones can only be history. */
  from: number;
  to: number;
  /** Clock time (Infinity for a backfill: nothing waits). */
  now: number;
  /** How long an incomplete step waits for its missing metrics. */
  settleMs: number;
  /** Telegraf's collection interval (a step ends this long after its start). */
  intervalMs: number;
  /** Also run, as history (not written), each host's steps already handled: before `from`, or not after its watermark. */
  prime: boolean;
  /** With `prime`: history only from `from` on (a learner's bootstrap covered the rest). */
  primeFromStart: boolean;
  hosts: Map<string, HostState>;
  /** The hosts of this replica's shard. */
  owns: (host: string) => boolean;
  /** The metrics of a row, in its column order, and their valid ranges (default: the three). */
  rules?: MetricRules;
  /** Gaps ending before this are forgotten (default `from`: those this read does not cover). */
  gapHorizon?: number;
  /**
   * Asked before a host not in `hosts` is followed, with the steps it would score (in
   * increasing order): false
   * leaves it out (the caller counts them; MAX_HOSTS). Default: every host is followed.
   */
  admit?: (host: string, times: readonly number[]) => boolean;
}

const BASIC_RULES = metricRules(BASIC_METRICS);

/** The rows of a cycle, in (time, host) order, and what was left out. */
export interface PlannedRows extends StreamRows {
  /** The metric of each column of `raw`. */
  names: readonly string[];
  /** 1: a new step (written); 0: history. */
  write: Uint8Array;
  /** late: steps at or before their host's watermark that were never handled (they arrived after a later step was). */
  skipped: { incomplete: number; invalid: number; late: number };
}

/**
 * Chooses the rows of a cycle from the joined steps: per host, history (when priming) and
 * the steps after its watermark, in time order; a step missing a metric waits `settleMs`
 * from when it was first seen incomplete, then is skipped; invalid steps are skipped.
 * Watermarks and pending steps of `step.hosts` are updated. The rows come sorted by time,
 * then host: the order one pass over the same points takes, so that scores do not depend
 * on how the stream was cut into cycles.
 */
export function planRows(steps: HostSteps, step: CycleStep): PlannedRows {
  const { from, to, now, settleMs, hosts } = step;
  const learnOnly = step.mode === 'learn';
  const rowHosts: string[] = [];
  const rowTimes: number[] = [];
  const rowValues: number[] = [];
  const rowWrite: number[] = [];
  const rules = step.rules ?? BASIC_RULES;
  const names = rules.names;
  const m = names.length;
  const isUsable = (host: string, v: StepValues): boolean => isUsableStep(host, v, rules);
  const add = (host: string, t: number, v: StepValues, write: boolean): void => {
    rowHosts.push(host);
    rowTimes.push(t);
    for (let k = 0; k < m; k++) rowValues.push(v[names[k]] as number);
    rowWrite.push(write ? 1 : 0);
  };
  const skipped = { incomplete: 0, invalid: 0, late: 0 };
  for (const [host, byStep] of steps) {
    if (!step.owns(host)) continue;
    if (learnOnly) {
      for (const t of [...byStep.keys()].filter((t) => t >= from && t < to).sort((a, b) => a - b)) {
        const v = byStep.get(t) as StepValues;
        if (isComplete(v, names) && isUsable(host, v)) add(host, t, v, false);
      }
      continue;
    }
    const known = hosts.get(host);
    const watermark = known?.watermark ?? -Infinity;
    // Late steps: in a gap the watermark passed (absent then, present now). Counted once.
    const late = new Set<number>();
    if (known?.gaps) {
      for (const t of byStep.keys()) if (t <= watermark && inGaps(known.gaps, t)) late.add(t);
      for (const t of late) known.gaps = withoutStep(known.gaps, t, step.intervalMs);
      skipped.late += late.size;
    }
    if (step.prime) {
      // Points before the first one this cycle may score: history only, and only those
      // the live path would have scored.
      const earlier = [...byStep.keys()]
        .filter((t) => t < to && (t < from || t <= watermark) && (!step.primeFromStart || t >= from) && !late.has(t))
        .sort((a, b) => a - b);
      for (const t of earlier) {
        const v = byStep.get(t) as StepValues;
        if (isComplete(v, names) && isUsable(host, v)) add(host, t, v, false);
      }
    }
    const times = [...byStep.keys()].filter((t) => t > watermark && t >= from && t < to).sort((a, b) => a - b);
    // A host seen only in the priming read is not followed: its points are older than
    // what this cycle scores.
    if (!known && times.length === 0) continue;
    let state = known;
    if (!state) {
      if (step.admit && !step.admit(host, times)) continue;
      state = { watermark: -Infinity, seenAt: now };
      hosts.set(host, state);
    }
    if (times.length > 0 && Number.isFinite(now)) state.seenAt = now;
    // Gaps that no read will reach any more (before gapHorizon: MAX_LOOKBACK_S back) are forgotten.
    if (state.gaps) {
      const horizon = step.gapHorizon ?? from;
      const kept: number[] = [];
      for (let i = 0; i < state.gaps.length; i += 3)
        if (state.gaps[i + 1] >= horizon) kept.push(state.gaps[i], state.gaps[i + 1], state.gaps[i + 2]);
      state.gaps = kept.length > 0 ? kept : undefined;
    }
    const s = state;
    // A host that went quiet reports again: this read began after its watermark (only the
    // active hosts set where reads begin), so the stretch in between was never read. Its
    // steps there (a backlog Telegraf flushes on reconnecting) cannot be scored any more (the
    // stream goes on from this read); they become a gap already past its grace, which the
    // late sweep reads for this host alone and counts (`late`), instead of losing them silently.
    const horizon = step.gapHorizon;
    if (horizon !== undefined && times.length > 0 && Number.isFinite(s.watermark) && s.watermark + step.intervalMs < from) {
      const lo = Math.max(s.watermark + step.intervalMs, horizon);
      // The last step before the read (`from` need not be a step's start).
      const hi = stepOf(from - 1, step.intervalMs);
      if (lo <= hi) addGap(s, lo, hi, now - settleMs);
    }
    // Moves the watermark to `t`: the steps of this read it passes without data (none
    // before a host's first step) become a gap.
    const passTo = (t: number): void => {
      const gapFrom = Math.max(s.watermark + step.intervalMs, from);
      if (Number.isFinite(s.watermark) && gapFrom <= t - step.intervalMs) addGap(s, gapFrom, t - step.intervalMs, now);
      s.watermark = t;
    };
    for (const t of times) {
      const v = byStep.get(t) as StepValues;
      if (!isComplete(v, names)) {
        // Its other metrics may still arrive: wait settleMs from the moment the step was
        // first seen incomplete, so late data (a Telegraf buffer flushed after an
        // outage, a write half visible to a query) gets the same grace as fresh data.
        // Each step waits settleMs from the later of the moment the host's wait began and
        // its own end, so every step that has waited is settled in the same cycle: a host
        // missing a metric for good lags by settleMs, not by one step per settleMs.
        if (settleMs > 0) {
          if (state.pendingStep === undefined) {
            state.pendingStep = t;
            state.pendingSince = now;
          }
          if (now - Math.max(state.pendingSince as number, t + step.intervalMs) < settleMs) break;
        }
        skipped.incomplete++;
        passTo(t);
        continue;
      }
      if (!isUsable(host, v)) {
        skipped.invalid++;
        passTo(t);
        continue;
      }
      add(host, t, v, true);
      passTo(t);
      state.pendingStep = undefined;
      state.pendingSince = undefined;
    }
  }
  const total = rowHosts.length;
  const order = Array.from({ length: total }, (_, i) => i).sort(
    (a, b) => rowTimes[a] - rowTimes[b] || (rowHosts[a] < rowHosts[b] ? -1 : rowHosts[a] > rowHosts[b] ? 1 : a - b),
  );
  const raw = new Float64Array(total * m);
  order.forEach((i, k) => {
    for (let c = 0; c < m; c++) raw[k * m + c] = rowValues[i * m + c];
  });
  return {
    names,
    keys: order.map((i) => rowHosts[i]),
    times: order.map((i) => rowTimes[i]),
    raw,
    n: total,
    write: Uint8Array.from(order, (i) => rowWrite[i]),
    skipped,
  };
}

/** The prediction lines of the written rows, and what they held. */
export interface PredictionLines {
  lines: string[];
  /** Rows written (lines plus unwritable). */
  n: number;
  anomalies: number;
  alerts: number;
  /** Rows whose host line protocol cannot carry. */
  unwritable: number;
  /** Indexes (into the plan) of the rows written, for callers that observe them. */
  written: number[];
}

/**
 * The ai_predictions fields of a metric set: `val_<metric>` and `contrib_<metric>` for
 * every metric (the dashboard's metric variable reads them); the prototype's three also
 * keep their own fields (`cpu_val`, `mem_val`, `net_val`, `shap_cpu`, `shap_memory`,
 * `shap_network`), which dashboards and queries of earlier versions read.
 */
interface FieldLayout {
  /** Columns of cpu_usage, memory_usage, network_load, when the set holds the three. */
  legacy: Int32Array | null;
  /** Per column: its value field key and its contribution field key. */
  val: string[];
  contrib: string[];
}

const layouts = new Map<string, FieldLayout>();

function layoutOf(names: readonly string[]): FieldLayout {
  const key = names.join(',');
  let l = layouts.get(key);
  if (!l) {
    const legacy = columnsOf(METRIC_NAMES, names);
    l = {
      legacy,
      val: names.map((n) => `val_${n}`),
      contrib: names.map((n) => `contrib_${n}`),
    };
    if (layouts.size > 64) layouts.clear();
    layouts.set(key, l);
  }
  return l;
}

/**
 * One `ai_predictions` point per written row: the gated alert, the raw verdict, score,
 * severity and threshold of the model that judged it, the metric values, their
 * contributions, the refits before it and whether its host was still learning. Tagged
 * with `version` (the loaded model's, or `learned`).
 */
export function predictionLines(
  plan: PlannedRows,
  res: StreamResult,
  version: string,
  prefixes: Map<string, string | null> = new Map(),
): PredictionLines {
  const out: PredictionLines = { lines: [], n: 0, anomalies: 0, alerts: 0, unwritable: 0, written: [] };
  const c = res.contributions;
  const { raw } = plan;
  const m = plan.names.length;
  const layout = layoutOf(plan.names);
  const lg = layout.legacy;
  if (prefixes.size > MAX_PREFIXES) prefixes.clear();
  for (let k = 0; k < plan.n; k++) {
    if (plan.write[k] !== 1) continue;
    out.n++;
    out.written.push(k);
    const score = res.scores[k];
    const threshold = res.thresholds[k];
    const alert = res.alerts[k] === 1;
    if (res.anomalies[k] === 1) out.anomalies++;
    if (alert) out.alerts++;
    const host = plan.keys[k];
    let prefix = prefixes.get(host);
    if (prefix === undefined) {
      try {
        prefix = formatPoint({ measurement: PREDICTIONS_MEASUREMENT, tags: { host, model_version: version }, fields: { x: 0 } }).slice(
          0,
          -3,
        );
      } catch (e) {
        if (!(e instanceof LineProtocolError)) throw e;
        prefix = null;
      }
      prefixes.set(host, prefix);
    }
    if (prefix === null) {
      // A host name line protocol cannot carry (InfluxDB would not have sent one, but
      // another writer might): counted, never crashes the loop.
      out.unwritable++;
      continue;
    }
    const severity = threshold > 0 ? score / threshold : 0;
    const o = k * m;
    let finite = Number.isFinite(score) && Number.isFinite(severity) && Number.isFinite(threshold) && Number.isSafeInteger(plan.times[k]);
    for (let x = 0; x < m && finite; x++) finite = Number.isFinite(raw[o + x]) && Number.isFinite(c[o + x]);
    if (finite) {
      // The fast path: the same text formatPoint writes (the fields in this order), without its per-field checks.
      let line = `${prefix}is_anomaly=${alert ? 1 : 0}i,raw_anomaly=${res.anomalies[k]}i,score=${score},severity=${severity},threshold=${threshold}`;
      if (lg) {
        line +=
          `,cpu_val=${raw[o + lg[0]]},mem_val=${raw[o + lg[1]]},net_val=${raw[o + lg[2]]}` +
          `,shap_cpu=${c[o + lg[0]]},shap_memory=${c[o + lg[1]]},shap_network=${c[o + lg[2]]}`;
      }
      for (let x = 0; x < m; x++) line += `,${layout.val[x]}=${raw[o + x]},${layout.contrib[x]}=${c[o + x]}`;
      out.lines.push(`${line},model_refit=${res.refits[k]}i,learning=${res.learning[k]}i ${plan.times[k]}`);
      continue;
    }
    const fields: Record<string, FieldValue> = {
      is_anomaly: int(alert ? 1 : 0),
      raw_anomaly: int(res.anomalies[k]),
      score,
      severity,
      threshold,
    };
    if (lg) {
      fields.cpu_val = raw[o + lg[0]];
      fields.mem_val = raw[o + lg[1]];
      fields.net_val = raw[o + lg[2]];
      fields.shap_cpu = c[o + lg[0]];
      fields.shap_memory = c[o + lg[1]];
      fields.shap_network = c[o + lg[2]];
    }
    for (let x = 0; x < m; x++) {
      fields[layout.val[x]] = raw[o + x];
      fields[layout.contrib[x]] = c[o + x];
    }
    fields.model_refit = int(res.refits[k]);
    fields.learning = int(res.learning[k]);
    try {
      out.lines.push(
        formatPoint({
          measurement: PREDICTIONS_MEASUREMENT,
          tags: { host: plan.keys[k], model_version: version },
          fields,
          time: plan.times[k],
        }),
      );
    } catch (e) {
      // A host name line protocol cannot carry (InfluxDB would not have sent one, but
      // another writer might): counted, never crashes the loop.
      if (!(e instanceof LineProtocolError)) throw e;
      out.unwritable++;
    }
  }
  return out;
}

/** Hosts whose line prefix is kept between calls (beyond it the cache starts afresh). */
const MAX_PREFIXES = 200_000;

/** Rows per call of the streaming detector: bounds the transient memory of a large read (a bootstrap chunk, a backfill hour). */
export const SLICE_ROWS = 20_000;

/**
 * Runs the plan through the detector in slices of at most `sliceRows` rows (the detector
 * gives the same results however its input is cut) and returns the results of the whole
 * plan; `features` is filled only with `keepFeatures` (the drift window reads it), else empty.
 * With `discard`, nothing is kept (a bootstrap: the detector only learns).
 */
export function runPlan(
  engine: StreamingDetector,
  plan: PlannedRows,
  opts: { keepFeatures: boolean; discard?: boolean; sliceRows?: number },
): StreamResult | null {
  const n = plan.n;
  if (n === 0) return null;
  const step = opts.sliceRows ?? SLICE_ROWS;
  const m = plan.raw.length / Math.max(1, n);
  const d = engine.opts.features.length;
  if (n <= step && !opts.discard) {
    const r = engine.process(plan);
    return opts.keepFeatures ? r : { ...r, features: new Float64Array(0) };
  }
  const withC = engine.opts.contributions ?? true;
  const out: StreamResult | null = opts.discard
    ? null
    : {
        n,
        scores: new Float64Array(n),
        thresholds: new Float64Array(n),
        anomalies: new Uint8Array(n),
        alerts: new Uint8Array(n),
        learning: new Uint8Array(n),
        contributions: new Float64Array(withC ? n * m : 0),
        features: new Float64Array(opts.keepFeatures ? n * d : 0),
        refits: new Uint32Array(n),
      };
  for (let a = 0; a < n; a += step) {
    const b = Math.min(n, a + step);
    const r = engine.process({
      keys: plan.keys.slice(a, b),
      times: Array.prototype.slice.call(plan.times, a, b) as number[],
      raw: plan.raw.subarray(a * m, b * m),
      n: b - a,
    });
    if (!out) continue;
    out.scores.set(r.scores, a);
    out.thresholds.set(r.thresholds, a);
    out.anomalies.set(r.anomalies, a);
    out.alerts.set(r.alerts, a);
    out.learning.set(r.learning, a);
    out.refits.set(r.refits, a);
    if (withC) out.contributions.set(r.contributions, a * m);
    if (opts.keepFeatures) out.features.set(r.features, a * d);
  }
  return out;
}
