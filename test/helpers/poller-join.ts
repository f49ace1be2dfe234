import type { ParsedPoint } from '../../src/influx/line-parser';
import { GroupCollector } from '../../src/influx/series';
import { readSpec, sharedReads } from '../../src/poller/poller';
import { addMetric, type CounterHistory, type HostSteps, type Mapping } from '../../src/poller/telegraf';

/**
 * The poller's join (src/poller/telegraf.ts) of line-protocol points, grouped as InfluxDB
 * answers each shared read (`readSpec`'s tag filters and group-by tags). With `readSteps`,
 * the points are read in consecutive reads of that many steps, which carry the counters'
 * history from one read to the next as the live loop's warm reads do; without, in one read.
 */
export function pollerJoin(
  points: readonly ParsedPoint[],
  mapping: Mapping,
  names: readonly string[],
  intervalMs: number,
  readSteps?: number,
): HostSteps {
  const steps: HostSteps = new Map();
  const history: CounterHistory | undefined = readSteps === undefined ? undefined : new Map();
  const reads = new Map<number, ParsedPoint[]>();
  for (const p of points) {
    const k = readSteps === undefined ? 0 : Math.floor(p.time / (readSteps * intervalMs));
    let read = reads.get(k);
    if (!read) reads.set(k, (read = []));
    read.push(p);
  }
  const matches = (want: string | readonly string[], got: string | undefined) =>
    typeof want === 'string' ? got === want : got !== undefined && want.includes(got);
  for (const k of [...reads.keys()].sort((a, b) => a - b)) {
    for (const r of sharedReads(mapping, names)) {
      const spec = readSpec(r.source, 0, Infinity, intervalMs);
      const collector = new GroupCollector(spec.groupBy ?? ['host']);
      for (const p of reads.get(k) as ParsedPoint[]) {
        if (p.measurement !== spec.measurement) continue;
        if (Object.entries(spec.where ?? {}).some(([t, v]) => !matches(v, p.tags[t]))) continue;
        if (Object.entries(spec.exclude ?? {}).some(([t, v]) => matches(v, p.tags[t]))) continue;
        collector.group(p.tags).rows.push({ time: p.time, values: p.fields, ...(p.exact ? { exact: p.exact } : {}) });
      }
      const groups = collector.finish(undefined);
      for (const metric of r.metrics) addMetric(steps, metric, mapping[metric], groups, intervalMs, history);
    }
  }
  return steps;
}
