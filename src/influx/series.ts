/** Helpers shared by both adapters for turning query results into SeriesGroups. */
import { randomUUID } from 'node:crypto';
import type { MetricValue, ReadSeriesSpec, SeriesGroup, SeriesRow } from './types';

/** Default grouping of the poller. */
export const DEFAULT_GROUP_BY: readonly string[] = ['host'];

/** A finite number, or null for anything else (strings, booleans, null, NaN); a bigint as the nearest number. */
export function toMetricValue(v: unknown): MetricValue {
  if (typeof v === 'bigint') return Number(v);
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Epoch ms of an input bound. */
export function toMs(t: number | Date): number {
  const ms = t instanceof Date ? t.getTime() : t;
  if (!Number.isFinite(ms)) throw new RangeError(`invalid time: ${String(t)}`);
  return Math.floor(ms);
}

/** Accumulates rows into groups keyed by their tag values, then finishes them. */
export class GroupCollector {
  private readonly groups = new Map<string, SeriesGroup>();

  constructor(private readonly groupBy: readonly string[]) {}

  /** The group of these tags (missing tags read as ""). */
  group(tags: Readonly<Record<string, unknown>> | undefined): SeriesGroup {
    return this.groupOf(this.groupBy.map((k) => tags?.[k]));
  }

  /**
   * The group of these tag values, in groupBy order (a value that is not a string reads
   * as ""). Its tags object is made once, with the group: rows look their group up by a
   * key of the values alone.
   */
  groupOf(values: readonly unknown[]): SeriesGroup {
    const n = this.groupBy.length;
    const text = (i: number): string => (typeof values[i] === 'string' ? (values[i] as string) : '');
    // One tag: its value is the key; several: their JSON (no separator can be confused with a value).
    let key: string;
    if (n === 1) key = text(0);
    else {
      const list: string[] = [];
      for (let i = 0; i < n; i++) list.push(text(i));
      key = JSON.stringify(list);
    }
    let g = this.groups.get(key);
    if (!g) {
      const t: Record<string, string> = {};
      for (let i = 0; i < n; i++) t[this.groupBy[i]] = text(i);
      g = { tags: t, rows: [] };
      this.groups.set(key, g);
    }
    return g;
  }

  /** Groups with rows after their watermark, rows sorted by time. */
  finish(after: ReadSeriesSpec['after']): SeriesGroup[] {
    const out: SeriesGroup[] = [];
    const first = this.groupBy[0];
    for (const g of this.groups.values()) {
      const mark = after && first !== undefined ? after.get(g.tags[first]) : undefined;
      const rows: SeriesRow[] = mark === undefined ? g.rows : g.rows.filter((r) => r.time > mark);
      if (rows.length === 0) continue;
      rows.sort((a, b) => a.time - b.time);
      out.push({ tags: g.tags, rows });
    }
    return out;
  }
}

/** True when a tag filter can match nothing (an empty value list). */
export function matchesNothing(where: ReadSeriesSpec['where']): boolean {
  return where !== undefined && Object.values(where).some((v) => Array.isArray(v) && v.length === 0);
}

/** Field list without duplicates, rejecting an empty one. */
export function uniqueFields(fields: readonly string[]): string[] {
  if (fields.length === 0) throw new RangeError('readSeries needs at least one field');
  return [...new Set(fields)];
}

/** Marks an integer literal kept as text by parseInfluxJson: a control character and a random id no data can guess. */
const BIG_INT = `\u0001${randomUUID()}:`;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const NUMBER_CHAR = /[0-9.eE+-]/;

/**
 * JSON.parse for InfluxDB's /query responses, except that an integer literal beyond
 * 2^53 (an int64 counter such as `bytes_recv`) becomes a bigint instead of the nearest
 * double: 1000000000000001001 would read as 1000000000000001024. A response without a
 * run of 16 digits takes the plain JSON.parse path; otherwise each such literal outside
 * strings is quoted with a marker and turned into a bigint by the reviver.
 */
export function parseInfluxJson(text: string): unknown {
  if (!/\d{16}/.test(text)) return JSON.parse(text);
  let out = '';
  let last = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92)
        i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 34) {
      inString = true;
      continue;
    }
    if (c !== 45 && (c < 48 || c > 57)) continue;
    // A whole number token; only a plain integer of 16 or more digits may be beyond 2^53.
    let j = i + 1;
    while (j < text.length && NUMBER_CHAR.test(text[j])) j++;
    const literal = text.slice(i, j);
    if (/^-?\d{16,}$/.test(literal)) {
      const v = BigInt(literal);
      if (v > MAX_SAFE || v < -MAX_SAFE) {
        out += `${text.slice(last, i)}${JSON.stringify(BIG_INT + literal)}`;
        last = j;
      }
    }
    i = j - 1;
  }
  if (last === 0) return JSON.parse(text);
  out += text.slice(last);
  return JSON.parse(out, (_key, value: unknown) =>
    typeof value === 'string' && value.startsWith(BIG_INT) ? BigInt(value.slice(BIG_INT.length)) : value,
  );
}
