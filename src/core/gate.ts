/**
 * Sustained-anomaly gating, as the prototype did it: an alert needs N consecutive raw
 * anomalies on the same host and a surge (some metric at or above its surge level), so
 * a single noisy point or an unusually idle host does not page anyone. An optional
 * cooldown suppresses repeated alerts after one fires, and the optional repeat rule (the
 * streaming detector's, below) lets a further alert through within its window only if
 * the anomaly got worse: operators and NAB both reward fewer repeats.
 */
export interface GateOptions {
  /** Consecutive raw anomalies needed (>= 1). */
  consecutive: number;
  /** Surge levels; null disables the surge condition. */
  surge: { cpu_usage: number; memory_usage: number; network_load: number } | null;
  /** After an alert, suppress further alerts for this long (ms). 0: off. */
  cooldownMs: number;
  /** Repeat suppression applied to the alerts that pass the rules above (absent: off). */
  repeat?: RepeatGateOptions;
}

export const DEFAULT_GATE: GateOptions = {
  consecutive: 3,
  surge: { cpu_usage: 10, memory_usage: 30, network_load: 15000 },
  cooldownMs: 0,
};

/** Per-host gate state: small, so millions of hosts fit. */
export interface GateState {
  run: number;
  lastAlert: number;
  /** State of the repeat rule, created at the first point when it is on. */
  repeat?: RepeatGateState;
  /** The repeat rule's state of the other groups (see `gate`'s `group`), by group - 1. */
  repeatGroups?: RepeatGateState[];
  /** With the repeat rule's `calibrate`: the reported score of the last alert (see {@link RepeatGateOptions.calibrate}). */
  reported?: number;
}

export const newGateState = (): GateState => ({ run: 0, lastAlert: -Infinity });

/**
 * Advances `state` by one point (in time order) and returns whether it raises an alert.
 * `score` (the model score) and `excess` (see {@link RepeatGateOptions.excess}) are read
 * by the repeat rule only. `group` (default 0) names
 * what the point is about (the streaming detector passes the metric of its largest
 * contribution): the repeat rule is kept per group, so an alert on one metric does not
 * suppress a later alert on another; the consecutive run is shared.
 */
export function gate(
  opts: GateOptions,
  state: GateState,
  rawAnomaly: boolean,
  time: number,
  cpu: number,
  memory: number,
  network: number,
  score = 0,
  group = 0,
  excess = NaN,
): boolean {
  state.run = rawAnomaly ? state.run + 1 : 0;
  const s = opts.surge;
  let alert =
    state.run >= opts.consecutive &&
    (s === null || cpu >= s.cpu_usage || memory >= s.memory_usage || network >= s.network_load) &&
    !(opts.cooldownMs > 0 && time - state.lastAlert < opts.cooldownMs);
  // The repeat rule sees every score (its peak test compares with all of them).
  if (opts.repeat) {
    let rs: RepeatGateState;
    if (group === 0) rs = state.repeat ??= newRepeatGateState();
    else {
      const groups = (state.repeatGroups ??= []);
      rs = groups[group - 1] ??= newRepeatGateState();
    }
    alert = repeatGate(opts.repeat, rs, score, time, alert, excess);
    if (alert && opts.repeat.calibrate) state.reported = rs.lastReported;
  }
  if (alert) state.lastAlert = time;
  return alert;
}

/**
 * Repeat suppression for any score stream (the streaming detector and the NAB
 * benchmark use it; `gate` above stays the poller's metric-aware rule). An alert needs
 * a score at or above `level`; within `windowMs` after an alert, a further alert needs
 * a score above the last alert's (the anomaly got worse). With `peak`, a score must
 * also exceed every score of the key in the previous `windowMs`, alert or not: only
 * the peak of a rise alerts, not each step of a plateau.
 */
export interface RepeatGateOptions {
  level: number;
  /** Suppression window (ms). 0: every score at or above level alerts. */
  windowMs: number;
  peak: boolean;
  /** Within the window, a new alert needs a score above the last alert's by more than this (default 0). */
  margin?: number;
  /**
   * Earlier scores count for less as they age: a score s from dt ago is compared as
   * s - decayPerMs * dt (default 0: no decay), so a second incident of the same size
   * a day later can alert before the window has passed.
   */
  decayPerMs?: number;
  /** With `peak`: how far back the peak comparison looks (ms; default windowMs). */
  peakWindowMs?: number;
  /**
   * Re-arming after an incident (absent: off): once every score for `forMs` after an
   * alert has stayed below `below` times that alert's score, the incident is over; the
   * next rise needs neither to beat the last alert (the `windowMs` rule) nor any score from
   * before the quiet stretch (the `peak` rule), so a second incident within a day alerts.
   */
  rearm?: { below: number; forMs: number };
  /**
   * Score calibration per key (absent: off): an alert's reported score is its score less
   * `weight` times the mean score of the key's earlier alerts within `forMs` (none: no
   * change; never below 0). A key that keeps alerting at high scores (a noisy series)
   * reports less for its next alert than a quiet key does for the same score, so one
   * threshold over many keys lets fewer of the noisy key's alerts through. Whether a point
   * alerts is not changed; the reported score is `RepeatGateState.lastReported` (and
   * `GateState.reported`).
   */
  calibrate?: { weight: number; forMs: number };
  /**
   * Worse by value (absent: off): within `windowMs` of an alert, a point that passes the
   * `level` and `peak` tests but scores at or below the last alert (a second incident whose
   * extremes are measured from the first's, so it scores lower although it goes further)
   * alerts if its excess is above `factor` times the largest excess since that alert. The
   * excess is the caller's measure of how far the point's value is from normal (the
   * streaming detector's `gateExcess`; NaN: none, never alerts this way). Such an alert
   * leaves the last alert's time and score as they were: the same incident rising just
   * above the last alert's score still needs the `margin`.
   */
  excess?: { factor: number };
}

/** Per-key state of {@link repeatGate}: the last alert and, with `peak`, the window's descending maxima. */
export interface RepeatGateState {
  lastAlertTime: number;
  lastAlertScore: number;
  /** With `excess`: the largest excess since the last alert, that alert's included (absent: no alert yet). */
  lastAlertExcess?: number;
  /** With `peak`: times and (decay-adjusted) scores of a monotone decreasing queue of recent scores (created at the first score: the hosts' rule has no peak, and a host holds up to four of these states). */
  qt?: number[];
  qs?: number[];
  /** Time of the key's first score (decay reference). */
  origin: number;
  /** With `rearm`: first and last time of the current run of quiet scores since the last alert (NaN: none). */
  quietStart?: number;
  quietLast?: number;
  /** With `calibrate`: times and scores of the alerts within `forMs`, their sum, and the last alert's reported score. */
  alertTimes?: number[];
  alertScores?: number[];
  alertSum?: number;
  lastReported?: number;
}

export const newRepeatGateState = (): RepeatGateState => ({
  lastAlertTime: -Infinity,
  lastAlertScore: -Infinity,
  origin: NaN,
});

/**
 * Advances `state` by one score (in time order) and returns whether it alerts. With
 * `eligible` false (another rule already said no) the score still enters the window's
 * maxima but cannot alert.
 */
export function repeatGate(
  opts: RepeatGateOptions,
  state: RepeatGateState,
  score: number,
  time: number,
  eligible = true,
  excess = NaN,
): boolean {
  const decay = opts.decayPerMs ?? 0;
  const rearm = opts.rearm;
  if (rearm && state.lastAlertTime > -Infinity) {
    if (score < rearm.below * state.lastAlertScore) {
      if (!Number.isFinite(state.quietStart)) state.quietStart = time;
      state.quietLast = time;
    } else {
      const start = state.quietStart as number;
      if (Number.isFinite(start) && (state.quietLast as number) - start >= rearm.forMs) {
        // The incident is over: forget it and every score from before the quiet stretch.
        state.lastAlertTime = -Infinity;
        state.lastAlertScore = -Infinity;
        const { qt, qs } = state;
        let head = 0;
        if (qt && qs) {
          while (head < qt.length && qt[head] < start) head++;
          if (head > 0) {
            qt.splice(0, head);
            qs.splice(0, head);
          }
        }
      }
      state.quietStart = NaN;
    }
  }
  let higherThanWindow = true;
  if (opts.peak) {
    // With linear decay, s_j - decay * (t - t_j) = (s_j + decay * t_j) - decay * t: a
    // monotone queue of s_j + decay * t_j gives the decayed window maximum. Times are
    // taken relative to the first score so that the sums stay exact.
    const qt = (state.qt ??= []);
    const qs = (state.qs ??= []);
    let head = 0;
    const peakWindow = opts.peakWindowMs ?? opts.windowMs;
    while (head < qt.length && time - qt[head] > peakWindow) head++;
    if (head > 0) {
      qt.splice(0, head);
      qs.splice(0, head);
    }
    if (!Number.isFinite(state.origin)) state.origin = time;
    const u = score + decay * (time - state.origin);
    higherThanWindow = qs.length === 0 || u > qs[0];
    while (qs.length > 0 && qs[qs.length - 1] <= u) {
      qs.pop();
      qt.pop();
    }
    qs.push(u);
    qt.push(time);
  }
  // With `excess`: the largest excess since the last alert, before this point.
  const bar = state.lastAlertExcess ?? NaN;
  if (opts.excess && excess > bar) state.lastAlertExcess = excess;
  if (!eligible || score < opts.level || !higherThanWindow) return false;
  const since = time - state.lastAlertTime;
  const last = state.lastAlertScore - decay * since;
  if (since < opts.windowMs && score <= last + (opts.margin ?? 0)) {
    // Worse by value: a score at or below the last alert's (not one just above it, the
    // same incident rising) whose excess goes beyond the bar. The score bar (the last
    // alert's time and score) stays where it was.
    if (!(opts.excess && score <= last && excess > opts.excess.factor * bar)) return false;
    state.quietStart = NaN;
    if (opts.calibrate) calibrate(opts.calibrate, state, score, time);
    return true;
  }
  state.lastAlertTime = time;
  state.lastAlertScore = score;
  if (opts.excess) state.lastAlertExcess = excess;
  state.quietStart = NaN;
  if (opts.calibrate) calibrate(opts.calibrate, state, score, time);
  return true;
}

/** Sets `state.lastReported` for an alert at `time` and records the alert (see {@link RepeatGateOptions.calibrate}). */
function calibrate(c: { weight: number; forMs: number }, state: RepeatGateState, score: number, time: number): void {
  const ts = (state.alertTimes ??= []);
  const ss = (state.alertScores ??= []);
  let sum = state.alertSum ?? 0;
  let head = 0;
  while (head < ts.length && time - ts[head] > c.forMs) sum -= ss[head++];
  if (head > 0) {
    ts.splice(0, head);
    ss.splice(0, head);
  }
  // Recomputed when the window empties, so rounding does not build up over a long stream.
  if (ts.length === 0) sum = 0;
  // Scores are in [0, 1]: a reported score stays at or above 0.
  state.lastReported = ts.length > 0 ? Math.max(0, score - (c.weight * sum) / ts.length) : score;
  ts.push(time);
  ss.push(score);
  state.alertSum = sum + score;
}
