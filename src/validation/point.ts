import { z } from 'zod';
import { METRIC_NAMES, METRICS, type MetricPoint } from '../core/metrics';
import type { FieldIssue } from '../errors';

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
/** Latest accepted timestamp: year 9999, so a seconds-for-milliseconds mix-up stays visible. */
const MAX_EPOCH_MS = 253402300799999;

const metric = (name: (typeof METRIC_NAMES)[number]) => {
  const { min, max, unit } = METRICS[name];
  let s = z.number({ error: (i) => (i.input === undefined ? 'is required' : 'must be a finite number') }).min(min, `must be >= ${min}`);
  if (max !== null) s = s.max(max, `must be <= ${max}`);
  return s.describe(`${name} (${unit})`);
};

/**
 * One metric point as /detect, /validate and the poller accept it. The rules: finite
 * numbers, CPU and memory 0 to 100, network >= 0, timestamp RFC 3339 or epoch ms,
 * host 1 to 256 characters, no other fields.
 */
export const PointSchema = z.strictObject({
  host: z.string({ error: 'must be a string' }).min(1, 'must not be empty').max(256, 'must be at most 256 characters').optional(),
  timestamp: z
    .union([
      z.string().regex(RFC3339, 'must be RFC 3339, e.g. 2026-01-05T10:00:00Z').refine((s) => Number.isFinite(Date.parse(s)), 'is not a valid date'),
      z.number().int('must be whole epoch milliseconds').min(0, 'must be >= 0').max(MAX_EPOCH_MS, 'is too far in the future'),
    ], { error: 'must be an RFC 3339 string or epoch milliseconds' })
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
const LIMITS = METRIC_NAMES.map((m) => [m, METRICS[m].min, METRICS[m].max ?? Infinity] as const);

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
  if (host !== undefined && (typeof host !== 'string' || host.length < 1 || host.length > 256)) return false;
  const ts = o.timestamp;
  if (ts === undefined) return true;
  if (typeof ts === 'number') return Number.isInteger(ts) && ts >= 0 && ts <= MAX_EPOCH_MS;
  return typeof ts === 'string' && RFC3339.test(ts) && Number.isFinite(Date.parse(ts));
}

/** Checks one point; returns its issues (empty when valid). */
export function checkPoint(input: unknown, index?: number): FieldIssue[] {
  if (isValidPoint(input)) return [];
  const r = PointSchema.safeParse(input);
  if (r.success) return [];
  const obj = input !== null && typeof input === 'object' ? (input as Record<string, unknown>) : {};
  const issues: FieldIssue[] = [];
  const seen = new Set<string>();
  for (const i of r.error.issues) {
    if (i.code === 'unrecognized_keys') {
      for (const k of i.keys) issues.push({ index, field: k.slice(0, 100), message: 'is not a known field', value: preview(obj[k]) });
    } else {
      const field = i.path.length > 0 ? String(i.path[0]) : '(point)';
      // One issue per field: the first rule it breaks.
      if (seen.has(field)) continue;
      seen.add(field);
      issues.push({ index, field, message: i.path.length > 0 ? i.message : 'must be an object', value: i.path.length > 0 ? preview(obj[field]) : preview(input) });
    }
  }
  return issues;
}

/** Epoch ms of a valid point's timestamp, or undefined. */
export function timestampMs(ts: string | number | undefined): number | undefined {
  if (ts === undefined) return undefined;
  return typeof ts === 'number' ? ts : Date.parse(ts);
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
