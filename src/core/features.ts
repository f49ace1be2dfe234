import { LruMap } from './lru';
import { METRIC_NAMES, METRICS } from './metrics';

/**
 * Model inputs. A feature is an input channel (a raw metric such as `cpu_usage`, or a
 * NAB series' `value`) passed through a transform. The artifact declares its features,
 * and this module is the one place that computes them, for training, the poller,
 * `/detect` and the benchmarks alike.
 *
 * `raw` is the value itself. Every other transform is temporal: it compares the value
 * with the same channel's earlier points on the same key (host), never later ones, and
 * is expressed in robust units of that history, compressed with asinh so that a burst a
 * million times the usual spread does not flatten every other split of the forest:
 *
 * - baseline: median and scale of the previous `window` points, where
 *   scale = max(1.4826 * MAD, 0.001 * |median|, 1e-9);
 * - `robust_z`: asinh((x - median) / scale);
 * - `diff`: asinh((x - previous point) / scale);
 * - `level_shift`: asinh((mean of the last `span` points, x included, - median) / scale);
 * - `rolling_max_excess` / `rolling_min_excess`: how far x rises above the maximum (falls
 *   below the minimum) of about the previous `horizon` points, asinh(excess / scale),
 *   0 inside the range (the look-back is kept as 64 block extremes, so it spans
 *   `horizon` points plus up to two blocks of horizon/64);
 * - `seasonal_max_excess` / `seasonal_min_excess`: the same against the points one
 *   `period` earlier, +- `tolerance` (a daily job that ran yesterday at about this time
 *   is not new);
 * - `volatility`: ln((sd of the last `span` points + 0.001 * scale) / (sd of the
 *   baseline window + 0.001 * scale));
 * - `level_max_excess` / `level_min_excess`: how far the level (mean of the last `span`
 *   points, x included) rises above the maximum (falls below the minimum) of the earlier
 *   levels of about the previous `horizon` points, asinh(excess / scale), 0 inside their
 *   range. Only levels that share no point with the current one count (the level ending
 *   `span` points back and earlier), so a sustained shift reads as new for a while even
 *   when no single point of it is a new extreme (the look-back is kept as block extremes,
 *   like the rolling extremes).
 *
 * With too little history, a temporal feature is neutral (0): a key with no history
 * gets its raw features only, and robust_z, diff and the excesses read 0 ("nothing
 * unusual") until the key has points; the seasonal features need one period.
 */
export const TRANSFORMS = [
  'raw',
  'robust_z',
  'diff',
  'level_shift',
  'rolling_max_excess',
  'rolling_min_excess',
  'seasonal_max_excess',
  'seasonal_min_excess',
  'volatility',
  'level_max_excess',
  'level_min_excess',
] as const;

/**
 * Transforms appended after TRANSFORMS was fixed: the NAB defaults take every transform
 * of TRANSFORMS, so later ones are listed here, and every earlier transform keeps its
 * code (its index in ALL_TRANSFORMS) and its output.
 *
 * - `span_max` / `span_min`: the maximum (minimum) of the last `span` points, x included,
 *   in the channel's own units like `raw`: a spike stays visible for `span` points, so
 *   the points of an incident that dip back to normal values between its spikes still
 *   read as part of it.
 */
export const LATER_TRANSFORMS = ['span_max', 'span_min'] as const;

/** Every transform, in code order. */
export const ALL_TRANSFORMS = [...TRANSFORMS, ...LATER_TRANSFORMS] as const;
/** A transform of TRANSFORMS (the list the NAB defaults take). */
export type FeatureTransform = (typeof TRANSFORMS)[number];
/** Any transform a feature may use: TRANSFORMS and the later ones. */
export type AnyTransform = (typeof ALL_TRANSFORMS)[number];

/** Parameters of temporal transforms, in points of the channel's own series. */
export interface FeatureParams {
  /** Baseline length (median and scale), points before the current one. */
  window?: number;
  /** level_shift, volatility: points averaged, the current one included. */
  span?: number;
  /** Rolling extremes: points looked back. */
  horizon?: number;
  /** Seasonal extremes: points per season (288 = one day of 5-minute points). */
  period?: number;
  /** Seasonal extremes: points either side of the same phase. */
  tolerance?: number;
}

/** A model input: a channel through a transform, with its unit and valid range. */
export interface FeatureSpec {
  name: string;
  /** Input channel (one of the artifact's inputs). */
  source: string;
  transform: AnyTransform;
  unit: string;
  min: number;
  max: number | null;
  /** Temporal transforms only. */
  params?: FeatureParams;
}

/** Which params each transform takes (all required). */
export const TRANSFORM_PARAMS: Record<AnyTransform, readonly (keyof FeatureParams)[]> = {
  raw: [],
  robust_z: ['window'],
  diff: ['window'],
  level_shift: ['window', 'span'],
  rolling_max_excess: ['window', 'horizon'],
  rolling_min_excess: ['window', 'horizon'],
  seasonal_max_excess: ['window', 'period', 'tolerance'],
  seasonal_min_excess: ['window', 'period', 'tolerance'],
  volatility: ['window', 'span'],
  level_max_excess: ['window', 'span', 'horizon'],
  level_min_excess: ['window', 'span', 'horizon'],
  span_max: ['window', 'span'],
  span_min: ['window', 'span'],
};

/**
 * The params of transform `t` (the keys TRANSFORM_PARAMS names), taken from one set of
 * values shared by a detector's features; `spans` gives a transform its own span (the
 * benchmarks' volatility uses twice the level span). undefined for `raw`; a RangeError
 * names a value the transform needs and `values` lacks.
 */
export function transformParams(
  t: AnyTransform,
  values: FeatureParams,
  spans: Partial<Record<AnyTransform, number>> = {},
): FeatureParams | undefined {
  const keys = TRANSFORM_PARAMS[t];
  if (keys.length === 0) return undefined;
  const out: FeatureParams = {};
  for (const k of keys) {
    const v = k === 'span' ? (spans[t] ?? values.span) : values[k];
    if (v === undefined) throw new RangeError(`transform ${t} needs ${k}`);
    out[k] = v;
  }
  return out;
}

/** Upper bounds that keep per-key state small (a few tens of kB per channel). */
export const PARAM_LIMITS = { window: 4096, span: 4096, horizon: 1_000_000, period: 4096, tolerance: 256 } as const;

/** Block count of the rolling-extremes summary: memory per channel is O(this), not O(horizon). */
const EXTREME_BLOCKS = 64;

/**
 * A copy of a feature spec with its keys (and its params' keys) in the artifact schema's
 * order. The artifact's checksum covers its JSON text, and the loader's schema rebuilds
 * objects in that order: a spec built with another key order would fail verification.
 */
export function canonicalFeature(s: FeatureSpec): FeatureSpec {
  const out: FeatureSpec = { name: s.name, source: s.source, transform: s.transform, unit: s.unit, min: s.min, max: s.max };
  if (s.params !== undefined) {
    const p: FeatureParams = {};
    for (const k of ['window', 'span', 'horizon', 'period', 'tolerance'] as const) if (s.params[k] !== undefined) p[k] = s.params[k];
    out.params = p;
  }
  return out;
}

/** True for transforms that need the key's history. */
export const isTemporal = (s: FeatureSpec): boolean => s.transform !== 'raw';

/** The default features: the three raw metrics. */
export function defaultFeatures(): FeatureSpec[] {
  return METRIC_NAMES.map((m) => ({
    name: m,
    source: m,
    transform: 'raw' as const,
    unit: METRICS[m].unit,
    min: METRICS[m].min,
    max: METRICS[m].max,
  }));
}

/**
 * Temporal features for the three host metrics: each metric raw, plus its deviation
 * from the median of its previous `window` points (robust_z), its step from the previous
 * point (diff) and the mean of its last `span` points against that median (level_shift).
 * `window` and `span` count the host's own points (collection steps).
 */
export function hostTemporalFeatures(window: number, span: number): FeatureSpec[] {
  const out: FeatureSpec[] = defaultFeatures();
  for (const m of METRIC_NAMES) {
    const base = { source: m, unit: 'robust units (asinh)', min: -Number.MAX_VALUE, max: null };
    out.push({ ...base, name: `${m}_robust_z`, transform: 'robust_z', params: { window } });
    out.push({ ...base, name: `${m}_diff`, transform: 'diff', params: { window } });
    out.push({ ...base, name: `${m}_level_shift`, transform: 'level_shift', params: { window, span } });
  }
  return out;
}

/**
 * Checks a feature list against its inputs; returns the first problem as
 * `[path, message]`, or null. The artifact loader reports it with the path.
 */
export function checkFeatures(specs: readonly FeatureSpec[], inputs: readonly string[]): [Array<string | number>, string] | null {
  for (let i = 0; i < specs.length; i++) {
    const s = specs[i];
    if (!inputs.includes(s.source)) return [[i, 'source'], `${JSON.stringify(s.source)} is not one of the inputs (${inputs.join(', ')})`];
    const needed = TRANSFORM_PARAMS[s.transform];
    const given = Object.keys(s.params ?? {}) as (keyof FeatureParams)[];
    if (needed.length === 0 && s.params !== undefined) return [[i, 'params'], `transform ${s.transform} takes no params`];
    for (const k of given) if (!needed.includes(k)) return [[i, 'params', k], `transform ${s.transform} does not take ${k}`];
    for (const k of needed) {
      const v = s.params?.[k];
      const lo = k === 'tolerance' ? 0 : k === 'window' || k === 'period' ? 2 : 1;
      if (v === undefined || !Number.isInteger(v) || v < lo || v > PARAM_LIMITS[k])
        return [[i, 'params', k], `transform ${s.transform} needs an integer ${k} in [${lo}, ${PARAM_LIMITS[k]}]`];
    }
    if (s.transform.startsWith('seasonal') && (s.params?.tolerance ?? 0) >= (s.params?.period ?? 0))
      return [[i, 'params', 'tolerance'], 'tolerance must be smaller than period'];
  }
  // One level span per channel for the level extremes.
  {
    const seen = new Map<string, number>();
    for (let i = 0; i < specs.length; i++) {
      if (specs[i].transform !== 'level_max_excess' && specs[i].transform !== 'level_min_excess') continue;
      const v = specs[i].params?.span as number;
      const prev = seen.get(specs[i].source);
      if (prev !== undefined && prev !== v)
        return [[i, 'params', 'span'], `the level extremes of ${specs[i].source} must share one span (${prev})`];
      seen.set(specs[i].source, v);
    }
  }
  // One baseline, one look-back and one season per channel: its features share them.
  for (const k of ['window', 'horizon', 'period', 'tolerance'] as const) {
    const seen = new Map<string, number>();
    for (let i = 0; i < specs.length; i++) {
      const v = specs[i].params?.[k];
      if (v === undefined) continue;
      const prev = seen.get(specs[i].source);
      if (prev !== undefined && prev !== v) return [[i, 'params', k], `all features of ${specs[i].source} must share one ${k} (${prev})`];
      seen.set(specs[i].source, v);
    }
  }
  return null;
}

/**
 * Builds the feature matrix (row-major, n x features) from a raw matrix (row-major,
 * n x inputs.length, in `inputs` order) treating every row on its own: temporal
 * features read 0, as for a key with no history. Use {@link SeriesFeatures} for series.
 */
export function buildFeatures(
  specs: readonly FeatureSpec[],
  raw: Float64Array,
  n: number,
  out: Float64Array,
  inputs: readonly string[] = METRIC_NAMES,
  src: Int32Array = sourceIndex(specs, inputs),
): void {
  const m = inputs.length;
  const d = specs.length;
  const rawF = specs.map((s) => s.transform === 'raw');
  for (let i = 0; i < n; i++) for (let f = 0; f < d; f++) out[i * d + f] = rawF[f] ? raw[i * m + src[f]] : 0;
}

/** Index into `inputs` of each feature's source (to fold contributions). */
export function sourceIndex(specs: readonly FeatureSpec[], inputs: readonly string[] = METRIC_NAMES): Int32Array {
  return Int32Array.from(specs.map((s) => inputs.indexOf(s.source)));
}

/** What one channel's state must hold, derived from the features on that channel. */
interface ChannelPlan {
  /** Baseline length (0: the channel has no temporal features). */
  window: number;
  /** Ring capacity: enough for the baseline, spans and one season back. */
  ring: number;
  /** Rolling-extremes look-back (0: none) and its block size. */
  horizon: number;
  block: number;
  /** Seasonal period (0: none) and tolerance. */
  period: number;
  tolerance: number;
  /** A volatility feature needs the baseline's standard deviation. */
  needsSd: boolean;
  /** Level extremes: points per level (0: none). */
  levelSpan: number;
  /** The rolling extremes of the points, and of the levels, that a feature reads: MAX, MIN or both (0: none). */
  pointSides: number;
  levelSides: number;
}

const MAX = 1;
const MIN = 2;

function channelPlans(specs: readonly FeatureSpec[], inputs: readonly string[]): ChannelPlan[] {
  return inputs.map((name) => {
    const own = specs.filter((s) => s.source === name && isTemporal(s));
    let window = 0;
    let ring = 0;
    let horizon = 0;
    let period = 0;
    let tolerance = 0;
    for (const s of own) {
      const p = s.params ?? {};
      window = Math.max(window, p.window ?? 0);
      ring = Math.max(ring, p.window ?? 0, p.span ?? 0, (p.period ?? 0) + (p.tolerance ?? 0));
      horizon = Math.max(horizon, p.horizon ?? 0);
      period = Math.max(period, p.period ?? 0);
      tolerance = Math.max(tolerance, p.tolerance ?? 0);
    }
    const block = horizon > 0 ? Math.max(1, Math.ceil(horizon / EXTREME_BLOCKS)) : 0;
    const has = (t: FeatureTransform): boolean => own.some((s) => s.transform === t);
    const levelSpan = Math.max(
      0,
      ...own.filter((s) => s.transform === 'level_max_excess' || s.transform === 'level_min_excess').map((s) => s.params?.span ?? 0),
    );
    return {
      window,
      ring: Math.max(ring, 1),
      horizon,
      block,
      period,
      tolerance,
      needsSd: own.some((s) => s.transform === 'volatility'),
      levelSpan,
      pointSides: (has('rolling_max_excess') ? MAX : 0) | (has('rolling_min_excess') ? MIN : 0),
      levelSides: (has('level_max_excess') ? MAX : 0) | (has('level_min_excess') ? MIN : 0),
    };
  });
}

// A key's state is one Float64Array: its latest time at [0], then each channel's part.
// A channel's part starts with these slots (its persistent scalars), then its ring of
// recent points, its sorted baseline, its last levels and its block extremes. No object
// per key or channel: at 10,000 hosts the objects, their headers and the boxed numbers of
// their fields weighed as much as a quarter of the values themselves.
const KEY_TIME = 0;
const KEY_HEADER = 1;
const HEAD = 0;
const COUNT = 1;
const SORTED_LEN = 2;
/** Running sums of (value - offset) over the baseline (volatility only), and points since they were last redone. */
const OFFSET = 3;
const SUM1 = 4;
const SUM2 = 5;
const SINCE_RESUM = 6;
/** The two block-extremes summaries' slots (6 each, see BLOCKS_DONE below): of the points, then of the levels. */
const POINT_EXTREMES = 7;
const LEVEL_EXTREMES = 13;
const CHANNEL_HEADER = 19;
// A block-extremes summary's slots: completed blocks, max and min of the completed blocks
// held (-Infinity / Infinity: none), max and min of the block being filled, its length.
const BLOCKS_DONE = 0;
const DONE_MAX = 1;
const DONE_MIN = 2;
const CUR_MAX = 3;
const CUR_MIN = 4;
const CUR_LEN = 5;

/**
 * Where a block-extremes summary lives in a key's buffer: max and min of about the last
 * `n x block` values added, held as the extremes of `n` completed blocks (a ring) plus
 * the block being filled: memory O(n), not O(values). Only the sides a feature reads are
 * stored (maxAt / minAt -1: not stored). The completed blocks' extremes are recomputed
 * only when a block completes. Used for the points and for the levels of a channel.
 */
interface Extremes {
  /** Absolute offsets in the key's buffer: its 6 slots, and its per-block maxima and minima. */
  slots: number;
  maxAt: number;
  minAt: number;
  n: number;
  block: number;
}

function extremesAdd(buf: Float64Array, e: Extremes, v: number): void {
  const h = e.slots;
  if (v > buf[h + CUR_MAX]) buf[h + CUR_MAX] = v;
  if (v < buf[h + CUR_MIN]) buf[h + CUR_MIN] = v;
  const len = buf[h + CUR_LEN] + 1;
  if (len < e.block) {
    buf[h + CUR_LEN] = len;
    return;
  }
  const n = e.n;
  const done = buf[h + BLOCKS_DONE] | 0;
  const b = done % n;
  if (e.maxAt >= 0) buf[e.maxAt + b] = buf[h + CUR_MAX];
  if (e.minAt >= 0) buf[e.minAt + b] = buf[h + CUR_MIN];
  buf[h + BLOCKS_DONE] = done + 1;
  buf[h + CUR_MAX] = -Infinity;
  buf[h + CUR_MIN] = Infinity;
  buf[h + CUR_LEN] = 0;
  // Scanned in slot order: the first of equal values wins.
  const nb = Math.min(done + 1, n);
  let hi = -Infinity;
  let lo = Infinity;
  if (e.maxAt >= 0) for (let k = e.maxAt; k < e.maxAt + nb; k++) if (buf[k] > hi) hi = buf[k];
  if (e.minAt >= 0) for (let k = e.minAt; k < e.minAt + nb; k++) if (buf[k] < lo) lo = buf[k];
  buf[h + DONE_MAX] = hi;
  buf[h + DONE_MIN] = lo;
}

/** The maximum held (the current block's unless a completed block's is larger); NaN if none. */
function extremesMax(buf: Float64Array, e: Extremes): number {
  const done = buf[e.slots + DONE_MAX];
  const cur = buf[e.slots + CUR_MAX];
  const hi = done > cur ? done : cur;
  return hi === -Infinity ? NaN : hi;
}

function extremesMin(buf: Float64Array, e: Extremes): number {
  const done = buf[e.slots + DONE_MIN];
  const cur = buf[e.slots + CUR_MIN];
  const lo = done < cur ? done : cur;
  return lo === Infinity ? NaN : lo;
}

/** The layout of a key's buffer for some channel plans, and a fresh key's buffer. */
class KeyLayout {
  readonly channels: ChannelLayout[];
  /** A key with no history (copied for every new key). */
  readonly empty: Float64Array;

  constructor(plans: readonly ChannelPlan[]) {
    let at = KEY_HEADER;
    this.channels = plans.map((p) => {
      const c = new ChannelLayout(p, at);
      at += c.size;
      return c;
    });
    this.empty = new Float64Array(at);
    this.empty[KEY_TIME] = -Infinity;
    for (const c of this.channels)
      for (const e of [c.points, c.levels]) {
        this.empty[e.slots + DONE_MAX] = -Infinity;
        this.empty[e.slots + DONE_MIN] = Infinity;
        this.empty[e.slots + CUR_MAX] = -Infinity;
        this.empty[e.slots + CUR_MIN] = Infinity;
      }
  }
}

/** Where one channel's state lives in a key's buffer (absolute offsets). */
class ChannelLayout {
  readonly base: number;
  readonly ringAt: number;
  readonly sortedAt: number;
  readonly levelsAt: number;
  readonly points: Extremes;
  readonly levels: Extremes;
  readonly size: number;

  constructor(plan: ChannelPlan, base: number) {
    const nb = plan.block > 0 ? Math.ceil(plan.horizon / plan.block) : 0;
    const lb = plan.levelSpan > 0 ? nb : 0;
    this.base = base;
    this.ringAt = base + CHANNEL_HEADER;
    this.sortedAt = this.ringAt + plan.ring;
    this.levelsAt = this.sortedAt + plan.window;
    let at = this.levelsAt + plan.levelSpan;
    const sides = (slots: number, n: number, which: number): Extremes => {
      const maxAt = n > 0 && (which & MAX) !== 0 ? at : -1;
      if (maxAt >= 0) at += n;
      const minAt = n > 0 && (which & MIN) !== 0 ? at : -1;
      if (minAt >= 0) at += n;
      return { slots, maxAt, minAt, n, block: plan.block };
    };
    this.points = sides(base + POINT_EXTREMES, nb, plan.pointSides);
    this.levels = sides(base + LEVEL_EXTREMES, lb, plan.levelSides);
    this.size = at - base;
  }
}

/**
 * The history of one channel of whichever key it is attached to: a ring of recent values,
 * the baseline window kept sorted (insertion O(window), median O(1), MAD O(log window)),
 * and block maxima and minima for long look-backs, all in the key's buffer (fixed size,
 * allocated once per key). One view per channel serves every key: `attach` points it at a
 * key's buffer; `prepare` sets the statistics of the history before the current point,
 * which that point's features read, and `push` adds the point.
 */
export class ChannelView {
  private readonly plan: ChannelPlan;
  // The layout's offsets, read on every point (own fields: one load each).
  private readonly base: number;
  private readonly ringAt: number;
  private readonly sortedAt: number;
  private readonly levelsAt: number;
  private readonly cap: number;
  private readonly points: Extremes;
  private readonly levels: Extremes;
  private buf: Float64Array;
  /** Points seen (not capped), the ring's next slot and the baseline's length: the key's, loaded by attach() and written back with each change. */
  count = 0;
  private head = 0;
  private sortedLen = 0;
  // The current point's level (see level()), kept for the other features of the same
  // point: its point count (0: not computed since the last prepare) and value.
  private levelK = 0;
  private levelValue = 0;
  // Statistics of the history before the current point (set by prepare()).
  median = 0;
  scale = 1;
  sd = 0;
  /** Max and min of about the last `horizon` points, and of the points one period back +- tolerance (NaN: none). */
  rollMax = NaN;
  rollMin = NaN;
  seasonMax = NaN;
  seasonMin = NaN;
  /** Max and min of the levels ending `levelSpan` or more points back, within about `horizon` (NaN: none). */
  levelMax = NaN;
  levelMin = NaN;

  constructor(plan: ChannelPlan, layout: ChannelLayout) {
    this.plan = plan;
    this.base = layout.base;
    this.ringAt = layout.ringAt;
    this.sortedAt = layout.sortedAt;
    this.levelsAt = layout.levelsAt;
    this.cap = plan.ring;
    this.points = layout.points;
    this.levels = layout.levels;
    this.buf = new Float64Array(0);
  }

  /** Makes this the view of the channel in `buf` (a key's buffer). */
  attach(buf: Float64Array): void {
    this.buf = buf;
    this.levelK = 0;
    // As int32 (`| 0`): they index the buffer, and an index that is a double costs a
    // conversion at every access (about a quarter of the features' time over 38 channels).
    // So a key's count is good to 2^31 - 1 points (680 years of 10 s steps).
    this.count = buf[this.base + COUNT] | 0;
    this.head = buf[this.base + HEAD] | 0;
    this.sortedLen = buf[this.base + SORTED_LEN] | 0;
  }

  /** The value `lag` points back (1 = the previous point); NaN if not held. */
  back(lag: number): number {
    const cap = this.cap;
    if (lag < 1 || lag > Math.min(this.count, cap)) return NaN;
    let i = this.head - lag;
    if (i < 0) i += cap;
    return this.buf[this.ringAt + i];
  }

  /** Sum of the last k points (k <= count, k <= ring size), newest first. */
  recent(k: number): number {
    const ring = this.buf;
    const at = this.ringAt;
    const cap = this.cap;
    let i = this.head - 1;
    let sum = 0;
    for (let j = 0; j < k; j++, i--) {
      if (i < 0) i += cap;
      sum += ring[at + i];
    }
    return sum;
  }

  /** Sum of the squared deviations from `mean` of the last k points (k <= count, k <= ring size), newest first. */
  recentSquares(k: number, mean: number): number {
    const ring = this.buf;
    const at = this.ringAt;
    const cap = this.cap;
    let i = this.head - 1;
    let sum = 0;
    for (let j = 0; j < k; j++, i--) {
      if (i < 0) i += cap;
      const v = ring[at + i];
      sum += (v - mean) * (v - mean);
    }
    return sum;
  }

  /**
   * The level of the current point x (after prepare(x), before push): the mean of the
   * last min(span, count + 1) points, x included, as (x + sum of the others) / k. Several
   * features of one point read it (level_shift and the level extremes): it is computed
   * once per point and span.
   */
  level(x: number, span: number): number {
    const k = Math.min(span, this.count + 1);
    if (k !== this.levelK) {
      this.levelValue = (x + this.recent(k - 1)) / k;
      this.levelK = k;
    }
    return this.levelValue;
  }

  /** Computes the statistics of the history (the points before x) that x's features read. */
  prepare(x: number): void {
    const plan = this.plan;
    this.levelK = 0;
    if (plan.horizon > 0) this.extremes();
    if (plan.period > 0) this.season();
    const n = this.sortedLen;
    if (n === 0) {
      this.median = x;
      this.scale = Math.max(1e-3 * Math.abs(x), 1e-9);
      this.sd = 0;
      return;
    }
    const s = this.buf;
    const so = this.sortedAt;
    const med = n % 2 === 1 ? s[so + ((n - 1) >> 1)] : 0.5 * (s[so + n / 2 - 1] + s[so + n / 2]);
    const mad = medianDistance(s, so, n, lowerBound(s, so, n, med), med);
    this.median = med;
    this.scale = Math.max(1.4826 * mad, 1e-3 * Math.abs(med), 1e-9);
    if (plan.needsSd) {
      const mean = s[this.base + SUM1] / n;
      this.sd = Math.sqrt(Math.max(0, s[this.base + SUM2] / n - mean * mean));
    }
  }

  /** Max and min of the points one period back +- tolerance (those held; NaN if none). */
  private season(): void {
    const plan = this.plan;
    const ring = this.buf;
    const at = this.ringAt;
    const cap = this.cap;
    // Lags from..to, oldest first; the ring holds period + tolerance points, so every
    // lag up to count is held.
    const from = Math.min(plan.period + plan.tolerance, this.count);
    const to = Math.max(1, plan.period - plan.tolerance);
    let hi = -Infinity;
    let lo = Infinity;
    let i = this.head - from;
    if (i < 0) i += cap;
    for (let lag = from; lag >= to; lag--) {
      const v = ring[at + i];
      if (v > hi) hi = v;
      if (v < lo) lo = v;
      if (++i === cap) i = 0;
    }
    this.seasonMax = hi === -Infinity ? NaN : hi;
    this.seasonMin = lo === Infinity ? NaN : lo;
  }

  /** Exact sums of (value - offset) over the baseline, redone every `window` points so that rounding cannot drift. */
  private resum(): void {
    const s = this.buf;
    const base = this.base;
    const so = this.sortedAt;
    const offset = s[base + OFFSET];
    const n = this.sortedLen;
    let a = 0;
    let b = 0;
    for (let i = 0; i < n; i++) {
      const v = s[so + i] - offset;
      a += v;
      b += v * v;
    }
    s[base + SUM1] = a;
    s[base + SUM2] = b;
    s[base + SINCE_RESUM] = 0;
  }

  /**
   * Maximum and minimum of about the previous `horizon` points (NaN if none): those of
   * the current block against those of the completed blocks. The first of equal values
   * wins, as in one scan of the current block then the blocks in slot order.
   */
  private extremes(): void {
    const buf = this.buf;
    this.rollMax = extremesMax(buf, this.points);
    this.rollMin = extremesMin(buf, this.points);
    if (this.plan.levelSpan > 0) {
      this.levelMax = extremesMax(buf, this.levels);
      this.levelMin = extremesMin(buf, this.levels);
    }
  }

  /** Adds x as the newest point. */
  push(x: number): void {
    const plan = this.plan;
    const s = this.buf;
    const base = this.base;
    const w = plan.window;
    if (w > 0) {
      const so = this.sortedAt;
      const n = this.sortedLen;
      if (n === w) {
        // The value leaving the baseline is the one `window` points back. Removing it and
        // inserting x is one shift of the values between the two positions.
        const old = this.back(w);
        let i = lowerBound(s, so, n, old);
        if (s[so + i] !== old) i = s.subarray(so, so + n).indexOf(old); // NaN-free input: defensive only
        // x's place once `old` is out: after the values <= x other than `old`.
        let j = upperBound(s, so, n, x);
        if (j > i) j--;
        if (j > i) s.copyWithin(so + i, so + i + 1, so + j + 1);
        else if (j < i) s.copyWithin(so + j + 1, so + j, so + i);
        s[so + j] = x;
        const v = old - s[base + OFFSET];
        s[base + SUM1] -= v;
        s[base + SUM2] -= v * v;
      } else {
        const j = upperBound(s, so, n, x);
        s.copyWithin(so + j + 1, so + j, so + n);
        s[so + j] = x;
        s[base + SORTED_LEN] = this.sortedLen = n + 1;
      }
      if (plan.needsSd) {
        if (this.count === 0) s[base + OFFSET] = x;
        const v = x - s[base + OFFSET];
        s[base + SUM1] += v;
        s[base + SUM2] += v * v;
        if (++s[base + SINCE_RESUM] >= w) this.resum();
      }
    }
    const head = this.head;
    s[this.ringAt + head] = x;
    s[base + HEAD] = this.head = head + 1 === this.cap ? 0 : head + 1;
    s[base + COUNT] = ++this.count;
    this.levelK = 0;
    if (plan.levelSpan > 0) this.pushLevel();
    if (plan.block > 0) extremesAdd(s, this.points, x);
  }

  /**
   * After a push: records the level (mean of the last levelSpan points) ending at the new
   * point, and moves the level ending levelSpan - 1 points back, which the next point's
   * level no longer overlaps, into the block extremes.
   */
  private pushLevel(): void {
    const k = this.plan.levelSpan;
    const count = this.count;
    const c = Math.min(k, count);
    const slot = (count - 1) % k;
    const at = this.levelsAt;
    this.buf[at + slot] = this.recent(c) / c;
    if (count < k) return;
    extremesAdd(this.buf, this.levels, this.buf[at + (count % k)]);
  }
}

/**
 * The MAD of a sorted s[o..o+n) (n >= 1) around its median med, where s[o+r..) >= med >
 * s[..o+r): the median of the distances |s[i] - med|. They form two sorted runs, A[i] =
 * med - s[o+r-1-i] (leftwards) and B[j] = s[o+r+j] - med (rightwards); the k-th smallest
 * of their merge (k = n/2 + 1, 1-based) is found by bisection in O(log n), and for an
 * even n, the (k-1)-th, the second largest of those k, comes from the same split.
 */
function medianDistance(s: Float64Array, o: number, n: number, r: number, med: number): number {
  const k = (n >> 1) + 1;
  const a = r;
  const b = n - r;
  const p = o + r;
  // i = how many of the k come from A: the largest i with A[i-1] <= B[k-i] (all valid i form a range).
  let lo = Math.max(0, k - b);
  let hi = Math.min(k, a);
  while (lo < hi) {
    const i = (lo + hi + 1) >>> 1;
    // Taking i from A is too many if A[i-1] > B[k-i].
    if (k - i < b && med - s[p - i] > s[p + k - i] - med) hi = i - 1;
    else lo = i;
  }
  const i = lo;
  // The last taken from each run: A[i-1] and B[k-i-1] (-Infinity: none taken).
  const fromA = i > 0 ? med - s[p - i] : -Infinity;
  const fromB = k - i > 0 ? s[p + k - i - 1] - med : -Infinity;
  const kth = fromA > fromB ? fromA : fromB;
  if (n % 2 === 1) return kth;
  // The (k-1)-th: the larger of the other run's last taken and the one before the k-th in its own run.
  let prev: number;
  if (fromA > fromB) {
    const beforeA = i > 1 ? med - s[p - i + 1] : -Infinity;
    prev = beforeA > fromB ? beforeA : fromB;
  } else {
    const beforeB = k - i > 1 ? s[p + k - i - 2] - med : -Infinity;
    prev = fromA > beforeB ? fromA : beforeB;
  }
  return 0.5 * (prev + kth);
}

/** The first index i in [0, n) with s[o + i] >= v (n if none). */
function lowerBound(s: Float64Array, o: number, n: number, v: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (s[o + mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index i in [0, n) with s[o + i] > v (n if none). */
function upperBound(s: Float64Array, o: number, n: number, v: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (s[o + mid] <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The per-key history: one buffer (see KeyLayout): the key's latest time at [0], then every channel's state. */
export type KeyState = Float64Array;

/**
 * Bounded per-key state: at most `maxKeys` keys, least recently used evicted first. An
 * evicted key that comes back starts again with no history. Memory is at most
 * `maxKeys * bytesPerKey`.
 */
export class SeriesStateStore {
  readonly maxKeys: number;
  /** The layout of the state (per channel); only features of the same layout may share the store. */
  readonly layout: string;
  private readonly keyLayout: KeyLayout;
  private readonly map: LruMap<KeyState>;
  private evictionsTaken = 0;

  constructor(plans: ChannelPlan[], maxKeys: number) {
    this.map = new LruMap<KeyState>(maxKeys);
    this.keyLayout = new KeyLayout(plans);
    this.layout = JSON.stringify(plans);
    this.maxKeys = maxKeys;
  }

  get size(): number {
    return this.map.size;
  }

  /** Keys dropped to stay within maxKeys. */
  get evictions(): number {
    return this.map.evictions;
  }

  /** Evictions since the last call (what an evictions counter metric adds). */
  takeEvictions(): number {
    const k = this.evictions - this.evictionsTaken;
    this.evictionsTaken = this.evictions;
    return k;
  }

  /** Bytes of history one key holds. */
  get bytesPerKey(): number {
    return 8 * this.keyLayout.empty.length;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  /** The key's state, created empty if new; marks it most recently used. */
  get(key: string): KeyState {
    return this.map.get(key, () => this.keyLayout.empty.slice());
  }

  clear(): void {
    this.map.clear();
  }
}

/**
 * Computes features over series in time order: the one implementation of temporal
 * features, used to train (over the training rows, per key) and to score (the
 * Detector's per-key state).
 */
export class SeriesFeatures {
  readonly specs: readonly FeatureSpec[];
  readonly inputs: readonly string[];
  private readonly src: Int32Array;
  private readonly plans: ChannelPlan[];
  private readonly layout: string;
  // Per feature, read once here rather than per row: its transform's index in TRANSFORMS
  // and its span (1 if none).
  private readonly codes: Uint8Array;
  private readonly spans: Int32Array;
  /** Per channel: 1 if it keeps history (has temporal features). */
  private readonly kept: Uint8Array;
  /** One view per channel, attached to each row's key in turn. */
  private readonly channels: ChannelView[];

  constructor(specs: readonly FeatureSpec[], inputs: readonly string[]) {
    const bad = checkFeatures(specs, inputs);
    if (bad) throw new Error(`features.${bad[0].join('.')}: ${bad[1]}`);
    this.specs = specs;
    this.inputs = inputs;
    this.src = sourceIndex(specs, inputs);
    this.plans = channelPlans(specs, inputs);
    this.layout = JSON.stringify(this.plans);
    this.codes = Uint8Array.from(specs.map((s) => ALL_TRANSFORMS.indexOf(s.transform)));
    this.spans = Int32Array.from(specs.map((s) => s.params?.span ?? 1));
    this.kept = Uint8Array.from(this.plans.map((p) => (p.window > 0 ? 1 : 0)));
    const layout = new KeyLayout(this.plans);
    this.channels = this.plans.map((p, c) => new ChannelView(p, layout.channels[c]));
  }

  /** True if any feature needs history. */
  get temporal(): boolean {
    return this.specs.some(isTemporal);
  }

  /** A state store for these features. */
  newStore(maxKeys: number): SeriesStateStore {
    return new SeriesStateStore(this.plans, maxKeys);
  }

  /** True if `store` was made for features with the same per-channel state. */
  fits(store: SeriesStateStore): boolean {
    return store.layout === this.layout;
  }

  /**
   * Points of a key's history that its features can read (the longest baseline, span,
   * season plus tolerance or look-back); 0 without temporal features. A reader that
   * restores a key's history needs no more than this many earlier points.
   */
  get historyPoints(): number {
    let most = 0;
    // The level extremes look back `horizon` points before the last levelSpan levels.
    for (const p of this.plans) if (p.window > 0) most = Math.max(most, p.ring, p.horizon + p.levelSpan);
    return most;
  }

  /**
   * Features of `n` rows (raw row-major, n x inputs) into `out` (n x specs). Rows are
   * taken in order: a key's rows must come in increasing time. A row whose time is not
   * after its key's latest point (duplicate or late) is computed as for a key with no
   * history and leaves the state unchanged, so no row ever sees a later point. A row
   * whose time is NaN (a point without host or time) is computed the same way without
   * touching the store.
   */
  compute(
    store: SeriesStateStore,
    keys: readonly string[],
    times: ArrayLike<number>,
    raw: Float64Array,
    n: number,
    out: Float64Array,
  ): void {
    if (!this.fits(store)) throw new Error('this state store was made for other features');
    const m = this.inputs.length;
    const d = this.specs.length;
    const { src, codes, spans, kept, channels } = this;
    let lastKey: string | undefined;
    let st: KeyState | undefined;
    for (let i = 0; i < n; i++) {
      const key = keys[i];
      const t = times[i];
      const r = i * m;
      const o = i * d;
      if (Number.isNaN(t)) {
        for (let c = 0; c < m; c++)
          if (!Number.isFinite(raw[r + c])) throw new RangeError(`row ${i}: ${this.inputs[c]} is not a finite number`);
        for (let f = 0; f < d; f++) out[o + f] = codes[f] === RAW ? raw[r + src[f]] : 0;
        continue;
      }
      if (key !== lastKey || st === undefined) {
        st = store.get(key);
        lastKey = key;
      }
      const inOrder = t > st[KEY_TIME];
      for (let c = 0; c < m; c++) {
        const x = raw[r + c];
        if (!Number.isFinite(x)) throw new RangeError(`row ${i}: ${this.inputs[c]} is not a finite number`);
        if (!inOrder) continue;
        channels[c].attach(st);
        if (kept[c] === 1) channels[c].prepare(x);
      }
      if (inOrder) {
        for (let f = 0; f < d; f++) out[o + f] = featureValue(codes[f], spans[f], channels[src[f]], raw[r + src[f]]);
        for (let c = 0; c < m; c++) if (kept[c] === 1) channels[c].push(raw[r + c]);
        st[KEY_TIME] = t;
      } else {
        for (let f = 0; f < d; f++) out[o + f] = codes[f] === RAW ? raw[r + src[f]] : 0;
      }
    }
  }
}

// Transform codes: indices into TRANSFORMS (SeriesFeatures reads each feature's once).
const RAW = TRANSFORMS.indexOf('raw');
const ROBUST_Z = TRANSFORMS.indexOf('robust_z');
const DIFF = TRANSFORMS.indexOf('diff');
const LEVEL_SHIFT = TRANSFORMS.indexOf('level_shift');
const ROLLING_MAX = TRANSFORMS.indexOf('rolling_max_excess');
const ROLLING_MIN = TRANSFORMS.indexOf('rolling_min_excess');
const SEASONAL_MAX = TRANSFORMS.indexOf('seasonal_max_excess');
const SEASONAL_MIN = TRANSFORMS.indexOf('seasonal_min_excess');
const VOLATILITY = TRANSFORMS.indexOf('volatility');
const LEVEL_MAX = TRANSFORMS.indexOf('level_max_excess');
const LEVEL_MIN = TRANSFORMS.indexOf('level_min_excess');
const SPAN_MAX = ALL_TRANSFORMS.indexOf('span_max');
const SPAN_MIN = ALL_TRANSFORMS.indexOf('span_min');

/**
 * One feature of the current point x, given its channel's prepared baseline: the
 * transform's code (index in TRANSFORMS) and span (1 if none).
 */
function featureValue(code: number, span: number, ch: ChannelView, x: number): number {
  if (code === RAW) return x;
  if (ch.count === 0) return 0;
  const scale = ch.scale;
  switch (code) {
    case ROBUST_Z:
      return Math.asinh((x - ch.median) / scale);
    case DIFF:
      return Math.asinh((x - ch.back(1)) / scale);
    case LEVEL_SHIFT:
      return Math.asinh((ch.level(x, span) - ch.median) / scale);
    case ROLLING_MAX:
      return x > ch.rollMax ? Math.asinh((x - ch.rollMax) / scale) : 0;
    case ROLLING_MIN:
      return x < ch.rollMin ? Math.asinh((ch.rollMin - x) / scale) : 0;
    case SEASONAL_MAX:
      return x > ch.seasonMax ? Math.asinh((x - ch.seasonMax) / scale) : 0;
    case SEASONAL_MIN:
      return x < ch.seasonMin ? Math.asinh((ch.seasonMin - x) / scale) : 0;
    case LEVEL_MAX: {
      const level = ch.level(x, span);
      return level > ch.levelMax ? Math.asinh((level - ch.levelMax) / scale) : 0;
    }
    case LEVEL_MIN: {
      const level = ch.level(x, span);
      return level < ch.levelMin ? Math.asinh((ch.levelMin - level) / scale) : 0;
    }
    case VOLATILITY: {
      const k = Math.min(span, ch.count + 1);
      const mean = (x + ch.recent(k - 1)) / k;
      const ss = (x - mean) * (x - mean) + ch.recentSquares(k - 1, mean);
      const eps = 1e-3 * scale;
      return Math.log((Math.sqrt(ss / k) + eps) / (ch.sd + eps));
    }
    case SPAN_MAX:
    case SPAN_MIN: {
      const k = Math.min(span, ch.count + 1);
      let v = x;
      if (code === SPAN_MAX) for (let lag = 1; lag < k; lag++) v = Math.max(v, ch.back(lag));
      else for (let lag = 1; lag < k; lag++) v = Math.min(v, ch.back(lag));
      return v;
    }
    default:
      throw new Error(`unknown transform code ${code}`);
  }
}
