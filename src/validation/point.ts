import { z } from 'zod';
import { BASIC_METRICS, MAX_METRIC_VALUE, METRIC_NAME, METRIC_NAMES, METRICS, type MetricDef, type MetricPoint } from '../core/metrics';
import type { FieldIssue } from '../errors';

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
/** 400 Gregorian years, in ms: the calendar repeats after them. */
const MS_400_YEARS = 146_097 * 86_400_000;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Epoch ms of an RFC 3339 date-time, or NaN. Strict, unlike Date.parse: every field must
 * be in range for its calendar (no 2026-02-30, no T24:00:00, offsets within +-23:59), so an
 * impossible date is refused instead of rolled over. A leap second (second 60) is accepted
 * only at 23:59:60 UTC, as RFC 3339 allows, and read as 23:59:59.999Z: after the second
 * before it and before the next day's 00:00:00, so a host's points stay in order
 * (JavaScript time has no leap seconds). Fractions beyond milliseconds are truncated.
 */
export function parseRfc3339(s: string): number {
  const m = RFC3339.exec(s);
  if (!m) return NaN;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  if (month < 1 || month > 12 || day < 1) return NaN;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1])) return NaN;
  if (hour > 23 || minute > 59 || second > 60) return NaN;
  let offsetMin = 0;
  if (!m[8]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return NaN;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const ms = m[7] ? Number(m[7].slice(1, 4).padEnd(3, '0')) : 0;
  // Date.UTC reads years 0-99 as 1900-1999: shift by 400 years (same calendar) and back.
  const shifted = year < 100;
  const t =
    Date.UTC(shifted ? year + 400 : year, month - 1, day, hour, minute, Math.min(second, 59), second === 60 ? 999 : ms) -
    (shifted ? MS_400_YEARS : 0) -
    offsetMin * 60_000;
  if (second === 60) {
    // Only the last second of a UTC day can be a leap second.
    const utc = new Date(t);
    if (utc.getUTCHours() !== 23 || utc.getUTCMinutes() !== 59) return NaN;
  }
  return t;
}

/** Longest host name, in characters (Unicode code points), everywhere a host is checked. */
export const MAX_HOST_CHARS = 256;

/**
 * How far ahead of the service's clock a point's timestamp may be and still join its
 * host's history (/detect; the Kafka join). A later one (a skewed clock, a typo, a hostile
 * client) is left out of it: otherwise it would become the host's latest point and every
 * real point after it would count as late.
 */
export const MAX_FUTURE_SKEW_MS = 5 * 60_000;

/**
 * Whether `host` is 1 to {@link MAX_HOST_CHARS} characters. Characters are Unicode code
 * points, the same count in /detect, /validate and the poller (an emoji is one, not the
 * two UTF-16 units of `String.length`).
 */
export function hostLengthOk(host: string): boolean {
  if (host.length === 0) return false;
  if (host.length <= MAX_HOST_CHARS) return true;
  // Each code point is at most two UTF-16 units.
  if (host.length > 2 * MAX_HOST_CHARS) return false;
  let n = 0;
  for (const _ of host) if (++n > MAX_HOST_CHARS) return false;
  return true;
}
/** Latest accepted timestamp: year 9999, so a seconds-for-milliseconds mix-up stays visible. */
const MAX_EPOCH_MS = 253402300799999;

/**
 * Largest network_load accepted (bytes/s): 8 petabits per second, beyond any host. Without
 * a bound, values near 1e308 (finite, so valid JSON numbers) overflow the temporal
 * features to Infinity and the scores to NaN; every value up to this one scores finitely.
 */
export const MAX_NETWORK_LOAD = MAX_METRIC_VALUE;

/** The accepted range of each metric: METRICS' range, network_load capped at MAX_NETWORK_LOAD. */
const RANGES = Object.fromEntries(
  METRIC_NAMES.map((m) => [m, { ...METRICS[m], max: METRICS[m].max ?? (m === 'network_load' ? MAX_NETWORK_LOAD : null) }]),
) as Record<(typeof METRIC_NAMES)[number], { unit: string; min: number; max: number | null }>;

const metric = (name: (typeof METRIC_NAMES)[number]) => {
  const { min, max, unit } = RANGES[name];
  let s = z.number({ error: (i) => (i.input === undefined ? 'is required' : 'must be a finite number') }).min(min, `must be >= ${min}`);
  if (max !== null) s = s.max(max, `must be <= ${max}`);
  return s.describe(`${name} (${unit})`);
};

/**
 * One metric point as /detect, /validate and the poller accept it. The rules: finite
 * numbers, CPU and memory 0 to 100, network 0 to 1e15, timestamp RFC 3339 or epoch ms,
 * host 1 to 256 characters (code points), no other fields.
 */
export const PointSchema = z.strictObject({
  host: z
    .string({ error: 'must be a string' })
    .min(1, 'must not be empty')
    // zod and JSON Schema's maxLength count code points, as hostLengthOk does.
    .max(MAX_HOST_CHARS, `must be at most ${MAX_HOST_CHARS} characters`)
    .optional(),
  timestamp: z
    .union(
      [
        z
          .string()
          .regex(RFC3339, 'must be RFC 3339, e.g. 2026-01-05T10:00:00Z')
          .refine(
            (s) => Number.isFinite(parseRfc3339(s)),
            'is not a valid date (a field out of range for its calendar, e.g. 2026-02-30 or T24:00:00)',
          ),
        z.number().int('must be whole epoch milliseconds').min(0, 'must be >= 0').max(MAX_EPOCH_MS, 'is too far in the future'),
      ],
      { error: 'must be an RFC 3339 string or epoch milliseconds' },
    )
    .optional(),
  cpu_usage: metric('cpu_usage'),
  memory_usage: metric('memory_usage'),
  network_load: metric('network_load'),
});

export type Point = z.infer<typeof PointSchema> & MetricPoint;

function preview(v: unknown): unknown {
  if (typeof v === 'string' && v.length > 100) return `${v.slice(0, 100)}...`;
  if (v !== null && typeof v === 'object') return Array.isArray(v) ? '[array]' : '[object]';
  return v;
}

const FIELDS = new Set(['host', 'timestamp', ...METRIC_NAMES]);
const LIMITS = METRIC_NAMES.map((m) => [m, RANGES[m].min, RANGES[m].max ?? Infinity] as const);

/**
 * The same rules as PointSchema, written out for speed: /detect checks up to 10,000
 * points per request, and almost all are valid. It only ever says yes when PointSchema
 * would (a test checks this on random points); every "no" goes to PointSchema for the
 * messages.
 */
export function isValidPoint(p: unknown): boolean {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return false;
  const o = p as Record<string, unknown>;
  for (const k in o) if (!FIELDS.has(k)) return false;
  for (const [name, min, max] of LIMITS) {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) return false;
  }
  const host = o.host;
  if (host !== undefined && (typeof host !== 'string' || !hostLengthOk(host))) return false;
  const ts = o.timestamp;
  if (ts === undefined) return true;
  if (typeof ts === 'number') return Number.isInteger(ts) && ts >= 0 && ts <= MAX_EPOCH_MS;
  return typeof ts === 'string' && Number.isFinite(parseRfc3339(ts));
}

/**
 * The valid range of each metric of a set, in its order: [min, max] of its declaration,
 * bounded by +-MAX_METRIC_VALUE (so that no accepted value overflows a feature). The
 * poller, the Kafka source and /detect's named metrics check values with these.
 */
export interface MetricRules {
  readonly defs: readonly MetricDef[];
  readonly names: readonly string[];
  readonly lo: Float64Array;
  readonly hi: Float64Array;
}

export function metricRules(defs: readonly MetricDef[]): MetricRules {
  return {
    defs,
    names: defs.map((d) => d.name),
    lo: Float64Array.from(defs, (d) => Math.max(d.min, -MAX_METRIC_VALUE)),
    hi: Float64Array.from(defs, (d) => Math.min(d.max ?? MAX_METRIC_VALUE, MAX_METRIC_VALUE)),
  };
}

/** Why value `v` of metric `k` is refused, or null when it is valid (the same words as PointSchema's). */
export function valueIssue(rules: MetricRules, k: number, v: unknown): string | null {
  if (v === undefined) return 'is required';
  if (typeof v !== 'number' || !Number.isFinite(v)) return 'must be a finite number';
  if (v < rules.lo[k]) return `must be >= ${rules.lo[k]}`;
  if (v > rules.hi[k]) return `must be <= ${rules.hi[k]}`;
  return null;
}

/** True if a step of `host` with these values (by metric name) passes the point rules. */
export function isUsableStep(host: string, values: Partial<Record<string, number>>, rules: MetricRules): boolean {
  if (!hostLengthOk(host)) return false;
  const { names, lo, hi } = rules;
  for (let k = 0; k < names.length; k++) {
    const v = values[names[k]];
    if (typeof v !== 'number' || !(v >= lo[k] && v <= hi[k])) return false;
  }
  return true;
}

/** Most issues listed for one point; the rest are counted (see {@link inspectPoint}). */
export const MAX_ISSUES_PER_POINT = 20;
/** Most issues listed in one /detect or /validate reply; the rest are counted. */
export const MAX_ISSUES_PER_REQUEST = 100;

/** The issues of one point: at most the bound asked for, and how many more there are. */
export interface PointIssues {
  issues: FieldIssue[];
  /** Issues of this point not in `issues`. */
  omitted: number;
}

/**
 * Checks one point and lists at most `maxIssues` of its issues, counting the rest. The
 * work is bounded by the known fields, not by what a client sends: unknown keys are only
 * counted (and the first `maxIssues` named), and the schema runs on the known fields
 * alone, so a point with 370,000 unknown keys costs one pass over its keys.
 */
export function inspectPoint(input: unknown, index?: number, maxIssues = MAX_ISSUES_PER_POINT, knownInvalid = false): PointIssues {
  if (!knownInvalid && isValidPoint(input)) return { issues: [], omitted: 0 };
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    const issues = maxIssues > 0 ? [{ index, field: '(point)', message: 'must be an object', value: preview(input) }] : [];
    return { issues, omitted: 1 - issues.length };
  }
  const obj = input as Record<string, unknown>;
  // One enumeration of the keys (V8 lists them all however few are looked at); only the
  // first maxIssues unknown ones are named, the rest counted from the length.
  const keys = Object.keys(obj);
  const known: Record<string, unknown> = {};
  let knownCount = 0;
  for (const f of FIELDS) {
    if (Object.prototype.hasOwnProperty.call(obj, f)) {
      known[f] = obj[f];
      knownCount++;
    }
  }
  const unknown = keys.length - knownCount;
  const unknownKeys: string[] = [];
  for (let i = 0; i < keys.length && unknownKeys.length < Math.min(maxIssues, unknown); i++)
    if (!FIELDS.has(keys[i])) unknownKeys.push(keys[i]);
  const issues: FieldIssue[] = [];
  let fieldIssues = 0;
  const r = PointSchema.safeParse(known);
  if (!r.success) {
    const seen = new Set<string>();
    for (const i of r.error.issues) {
      const field = i.path.length > 0 ? String(i.path[0]) : '(point)';
      // One issue per field: the first rule it breaks.
      if (seen.has(field)) continue;
      seen.add(field);
      fieldIssues++;
      if (issues.length < maxIssues) issues.push({ index, field, message: i.message, value: preview(obj[field]) });
    }
  }
  for (const k of unknownKeys) {
    if (issues.length >= maxIssues) break;
    issues.push({ index, field: k.slice(0, 100), message: 'is not a known field', value: preview(obj[k]) });
  }
  return { issues, omitted: fieldIssues + unknown - issues.length };
}

/** Checks one point; returns its issues (empty when valid), at most `maxIssues` of them. */
export function checkPoint(input: unknown, index?: number, maxIssues = MAX_ISSUES_PER_POINT): FieldIssue[] {
  return inspectPoint(input, index, maxIssues).issues;
}

/** Epoch ms of a valid point's timestamp, or undefined. */
export function timestampMs(ts: string | number | undefined): number | undefined {
  if (ts === undefined) return undefined;
  return typeof ts === 'number' ? ts : parseRfc3339(ts);
}

const DAY_MS = 86_400_000;
/** Largest epoch ms with a four-digit year (9999-12-31T23:59:59.999Z). */
const MAX_FAST_MS = 253_402_300_799_999;
let cachedDay = NaN;
let cachedPrefix = '';
const pad2 = (v: number): string => (v < 10 ? `0${v}` : `${v}`);
const pad3 = (v: number): string => (v < 10 ? `00${v}` : v < 100 ? `0${v}` : `${v}`);

/**
 * `new Date(ms).toISOString()`, several times faster for the common case (a batch of
 * points on the same few days): the date part is formatted once per day. Same result
 * for every input (tested against toISOString), including fractional and pre-1970 ms.
 */
export function isoTimestamp(ms: number): string {
  const t = Math.trunc(ms);
  if (!(t >= 0 && t <= MAX_FAST_MS)) return new Date(ms).toISOString();
  const day = Math.floor(t / DAY_MS);
  if (day !== cachedDay) {
    cachedDay = day;
    cachedPrefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
  }
  let r = t - day * DAY_MS;
  const h = Math.floor(r / 3_600_000);
  r -= h * 3_600_000;
  const mi = Math.floor(r / 60_000);
  r -= mi * 60_000;
  const sec = Math.floor(r / 1000);
  return `${cachedPrefix}${pad2(h)}:${pad2(mi)}:${pad2(sec)}.${pad3(r - sec * 1000)}Z`;
}

/** The top-level metric fields of /detect's first form (the three of the `basic` set). */
const TOP_LEVEL_METRICS: ReadonlySet<string> = new Set(METRIC_NAMES);
/** Most metric names quoted in a message about an unknown one. */
const NAMES_QUOTED = 10;
const HostTimeSchema = PointSchema.pick({ host: true, timestamp: true });

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const sameDefs = (a: readonly MetricDef[], b: readonly MetricDef[]) =>
  a.length === b.length && a.every((d, i) => d.name === b[i].name && d.min === b[i].min && d.max === b[i].max);

/**
 * Reads the points of /detect and /validate for one metric set (the declarations of the
 * model that scores them). A point gives each metric of the set once: the three of the
 * first form as top-level fields (`cpu_usage`, `memory_usage`, `network_load`, when they
 * are in the set), any metric by name in `metrics` (`{"metrics": {"disk_read_bytes": 3e6}}`),
 * or both where the two agree. Values follow the set's declarations (metricRules).
 */
export interface PointReader {
  readonly rules: MetricRules;
  /** The set's metric names, in column order. */
  readonly names: readonly string[];
  /**
   * Checks point `p` and, when it is valid, writes its metrics into row `i` of `raw`
   * (names.length wide, set order) and its time into `times[i]` (epoch ms; NaN: none given).
   * False for any point that breaks a rule (row `i` then holds anything). Stops at the
   * first broken rule: an unknown key ends the pass over a point's keys.
   */
  read(p: unknown, raw: Float64Array, i: number, times: Float64Array): boolean;
  /**
   * The issues of an invalid point, at most `maxIssues` listed and the rest counted. The
   * work is bounded by the set and the keys the point has: one pass over each object's
   * keys, however many unknown ones it holds.
   */
  inspect(p: unknown, index: number | undefined, maxIssues: number): PointIssues;
}

/** Why `name`, a key under `metrics`, is not a metric of the set. */
function unknownMetricMessage(name: string, names: readonly string[]): string {
  if (!METRIC_NAME.test(name)) return 'is not a valid metric name (lower case letters, digits and _, starting with a letter; at most 63)';
  const quoted = names.slice(0, NAMES_QUOTED).join(', ') + (names.length > NAMES_QUOTED ? `, ... (${names.length} in all)` : '');
  return `is not a metric of the model (its metrics: ${quoted})`;
}

/** The reader of points for a metric set (see PointReader). */
export function pointReader(defs: readonly MetricDef[]): PointReader {
  const rules = metricRules(defs);
  const { names, lo, hi } = rules;
  const m = names.length;
  // The first form of the basic set keeps its own checks and messages (PointSchema's).
  const basic = sameDefs(defs, BASIC_METRICS);
  const index = new Map<string, number>(names.map((n, k) => [n, k]));
  // Top-level fields that are metrics of this set (a Map: a point's keys never reach Object.prototype).
  const top = new Map<string, number>([...index].filter(([n]) => TOP_LEVEL_METRICS.has(n)));
  // Which columns the point in hand has filled: seen[k] === stamp (no clearing per point).
  const seen = new Uint32Array(m);
  let stamp = 0;

  function read(p: unknown, raw: Float64Array, i: number, times: Float64Array): boolean {
    if (p === null || typeof p !== 'object' || Array.isArray(p)) return false;
    if (++stamp === 0xffffffff) {
      seen.fill(0);
      stamp = 1;
    }
    const o = p as Record<string, unknown>;
    const off = i * m;
    let filled = 0;
    let named: unknown;
    let host: unknown;
    let ts: unknown;
    for (const key in o) {
      const v = o[key];
      if (key === 'host') host = v;
      else if (key === 'timestamp') ts = v;
      else if (key === 'metrics') named = v;
      else {
        const k = top.get(key);
        if (k === undefined || typeof v !== 'number' || !(v >= lo[k] && v <= hi[k])) return false;
        raw[off + k] = v;
        seen[k] = stamp;
        filled++;
      }
    }
    if (named !== undefined) {
      if (named === null || typeof named !== 'object' || Array.isArray(named)) return false;
      const mo = named as Record<string, unknown>;
      for (const key in mo) {
        const k = index.get(key);
        const v = mo[key];
        if (k === undefined || typeof v !== 'number' || !(v >= lo[k] && v <= hi[k])) return false;
        if (seen[k] === stamp) {
          // Given twice: only the same value twice is one value.
          if (raw[off + k] !== v) return false;
        } else {
          raw[off + k] = v;
          seen[k] = stamp;
          filled++;
        }
      }
    }
    if (filled !== m) return false;
    if (host !== undefined && (typeof host !== 'string' || !hostLengthOk(host))) return false;
    if (ts === undefined) times[i] = NaN;
    else if (typeof ts === 'number') {
      if (!(Number.isInteger(ts) && ts >= 0 && ts <= MAX_EPOCH_MS)) return false;
      times[i] = ts;
    } else {
      if (typeof ts !== 'string') return false;
      const t = parseRfc3339(ts);
      if (!Number.isFinite(t)) return false;
      times[i] = t;
    }
    return true;
  }

  function inspect(p: unknown, index_: number | undefined, maxIssues: number): PointIssues {
    if (!isRecord(p) || (basic && !Object.prototype.hasOwnProperty.call(p, 'metrics'))) return inspectPoint(p, index_, maxIssues, true);
    const issues: FieldIssue[] = [];
    let total = 0;
    const add = (field: string, message: string, value?: unknown, withValue = true) => {
      total++;
      if (issues.length < maxIssues)
        issues.push(withValue ? { index: index_, field, message, value: preview(value) } : { index: index_, field, message });
    };
    // One pass over the point's keys: known ones kept, the others counted (the first few named).
    const topValues = new Array<unknown>(m);
    const unknownTop: string[] = [];
    const foreignTop: string[] = [];
    let unknownTopCount = 0;
    let foreignTopCount = 0;
    const hostTime: Record<string, unknown> = {};
    let named: unknown;
    let hasNamed = false;
    for (const key of Object.keys(p)) {
      if (key === 'host' || key === 'timestamp') hostTime[key] = p[key];
      else if (key === 'metrics') {
        named = p[key];
        hasNamed = true;
      } else {
        const k = top.get(key);
        if (k !== undefined) topValues[k] = p[key];
        else if (TOP_LEVEL_METRICS.has(key)) {
          if (foreignTopCount++ < maxIssues) foreignTop.push(key);
        } else if (unknownTopCount++ < maxIssues) unknownTop.push(key);
      }
    }
    const r = HostTimeSchema.safeParse(hostTime);
    if (!r.success) {
      const done = new Set<string>();
      for (const issue of r.error.issues) {
        const field = issue.path.length > 0 ? String(issue.path[0]) : '(point)';
        if (done.has(field)) continue;
        done.add(field);
        add(field, issue.message, hostTime[field]);
      }
    }
    // The named metrics: one pass over their keys, unknown ones counted.
    const namedValues = new Array<unknown>(m);
    const unknownNamed: string[] = [];
    let unknownNamedCount = 0;
    const namedObject = isRecord(named) ? named : null;
    if (namedObject) {
      for (const key of Object.keys(namedObject)) {
        const k = index.get(key);
        if (k !== undefined) namedValues[k] = namedObject[key];
        else if (unknownNamedCount++ < maxIssues) unknownNamed.push(key);
      }
    }
    for (let k = 0; k < m; k++) {
      const name = names[k];
      const t = topValues[k];
      const v = namedValues[k];
      if (t !== undefined && v !== undefined && t !== v) {
        add(`metrics.${name}`, `is given twice, as ${name} and in metrics, with different values`, v);
        continue;
      }
      const value = v !== undefined ? v : t;
      const why = valueIssue(rules, k, value);
      if (why === null) continue;
      // Named where it was given; a missing one where the point gives its metrics.
      const field = v !== undefined || (t === undefined && (hasNamed || !top.has(name))) ? `metrics.${name}` : name;
      add(field, why, value, value !== undefined);
    }
    if (hasNamed && !namedObject) add('metrics', 'must be an object of metric values by name', named);
    for (const key of unknownNamed) add(`metrics.${key.slice(0, 100)}`, unknownMetricMessage(key, names), namedObject?.[key]);
    total += unknownNamedCount - unknownNamed.length;
    for (const key of foreignTop) add(key, unknownMetricMessage(key, names), p[key]);
    total += foreignTopCount - foreignTop.length;
    for (const key of unknownTop) add(key.slice(0, 100), 'is not a known field', p[key]);
    total += unknownTopCount - unknownTop.length;
    return { issues, omitted: total - issues.length };
  }

  return { rules, names, read, inspect };
}
