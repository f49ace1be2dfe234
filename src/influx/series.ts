/** Helpers shared by both adapters for turning query results into SeriesGroups. */
import type { MetricValue, ReadSeriesSpec, SeriesGroup, SeriesRow } from './types';

/** Default grouping of the poller. */
export const DEFAULT_GROUP_BY: readonly string[] = ['host'];

/** A finite number, or null for anything else (strings, booleans, null, NaN). */
export function toMetricValue(v: unknown): MetricValue {
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
    const t: Record<string, string> = {};
    for (const k of this.groupBy) {
      const v = tags?.[k];
      t[k] = typeof v === 'string' ? v : '';
    }
    const key = JSON.stringify(this.groupBy.map((k) => t[k]));
    let g = this.groups.get(key);
    if (!g) {
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
