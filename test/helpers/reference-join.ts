import { DEFAULT_MAX_KEYS } from '../../src/core/detector';
import { LruMap } from '../../src/core/lru';
import type { StreamingDetector } from '../../src/core/streaming';
import { parseLine, splitLines, type ParsedPoint } from '../../src/influx/line-parser';
import type { KafkaMessageIn, MessageSkip } from '../../src/kafka/partition';
import { noStepSkips, timeRefusal, type StepRow, type StepSkip } from '../../src/kafka/steps';
import { predictionLines, runPlan, type PlannedRows } from '../../src/poller/cycle';
import {
  counterRate,
  exactSum,
  isComplete,
  mappingMetrics,
  stepOf,
  sumFields,
  type Mapping,
  type MetricMapping,
  type Sample,
  type StepValues,
} from '../../src/poller/telegraf';
import { isUsableStep, metricRules, type MetricRules } from '../../src/validation/point';

/**
 * The Kafka join as it was first written (records, a map of parts per step, a set of the
 * expected series): the reference the optimized StepJoiner and PartitionStream are tested
 * against, point for point. Slow and plain on purpose; not used by the service.
 */

interface OpenStep {
  time: number;
  parts: Map<string, { metric: string; value: number }>;
}

interface HostJoin {
  open: OpenStep | null;
  closed: number;
  expected: Set<string>;
  counters: Map<string, Sample>;
}

export class ReferenceJoiner {
  private readonly hosts: LruMap<HostJoin>;
  unused = 0;
  readonly skipped: Record<StepSkip, number> = noStepSkips();
  latest = Infinity;
  private readonly byMeasurement = new Map<string, string[]>();
  readonly rules: MetricRules;

  constructor(
    private readonly mapping: Mapping,
    private readonly intervalMs: number,
    rules?: MetricRules,
    maxHosts = DEFAULT_MAX_KEYS,
  ) {
    this.hosts = new LruMap<HostJoin>(maxHosts, (_, h) => {
      if (h.open) this.skipped.evicted++;
    });
    this.rules = rules ?? metricRules(mappingMetrics(mapping));
    for (const metric of this.rules.names) {
      const m = mapping[metric].measurement;
      this.byMeasurement.set(m, [...(this.byMeasurement.get(m) ?? []), metric]);
    }
  }

  get size(): number {
    return this.hosts.size;
  }

  add(p: ParsedPoint, out: StepRow[]): void {
    const metrics = this.byMeasurement.get(p.measurement);
    if (!metrics) {
      this.unused++;
      return;
    }
    const host = p.tags.host ?? '';
    if (host === '') {
      this.skipped.no_host++;
      return;
    }
    const refused = timeRefusal(p.time, this.latest);
    if (refused) {
      this.skipped[refused]++;
      return;
    }
    const h = this.hosts.get(host, () => ({ open: null, closed: -Infinity, expected: new Set(), counters: new Map() }));
    const step = stepOf(p.time, this.intervalMs);
    if (h.open && step > h.open.time) this.close(host, h, out);
    const late = step <= h.closed || (h.open !== null && step < h.open.time);
    // A series of the step just closed that it did not hold: expected in the next one.
    const expectNew = (series: string) => {
      if (step === h.closed && h.expected.size > 0) h.expected.add(series);
    };
    for (const metric of metrics) {
      const m = this.mapping[metric];
      if (!matches(m.where, p.tags)) continue;
      const part = m.sumOver ? (p.tags[m.sumOver] ?? '') : '';
      if (m.sumOver && m.exclude.includes(part)) continue;
      const raw = sumFields(p.fields, m.fields);
      if (raw === null) continue;
      let v: number | undefined;
      const series = `${metric}\u0000${part}`;
      if (m.transform === 'rate') {
        const exact = exactSum({ time: p.time, values: p.fields, exact: p.exact }, m.fields);
        const sample: Sample = exact === undefined ? { time: p.time, value: raw } : { time: p.time, value: raw, exact };
        const prev = h.counters.get(series);
        if (prev && sample.time <= prev.time) {
          if (late) this.skipped.late++;
          continue;
        }
        h.counters.set(series, sample);
        v = prev ? counterRate(prev, sample) : undefined;
      } else v = m.transform === 'complement100' ? 100 - raw : raw;
      if (v === undefined) {
        expectNew(series);
        continue;
      }
      if (late) {
        this.skipped.late++;
        expectNew(series);
        continue;
      }
      if (!h.open) h.open = { time: step, parts: new Map() };
      h.open.parts.set(series, { metric, value: v });
    }
    if (h.open && h.expected.size > 0 && h.open.parts.size >= h.expected.size && holdsAll(h.open, h.expected, this.rules.names.length))
      this.close(host, h, out);
  }

  private close(host: string, h: HostJoin, out: StepRow[]): void {
    const open = h.open as OpenStep;
    h.open = null;
    h.closed = open.time;
    const v: StepValues = {};
    for (const { metric, value } of open.parts.values()) v[metric] = (v[metric] ?? 0) + value;
    const names = this.rules.names;
    if (!isComplete(v, names)) {
      this.skipped.incomplete++;
      return;
    }
    if (!isUsableStep(host, v, this.rules)) {
      this.skipped.invalid++;
      return;
    }
    h.expected = new Set(open.parts.keys());
    out.push({ host, time: open.time, values: names.map((n) => v[n] as number) });
  }
}

function matches(where: MetricMapping['where'], tags: Record<string, string>): boolean {
  for (const [k, want] of Object.entries(where)) {
    const got = tags[k];
    if (got === undefined) return false;
    if (typeof want === 'string' ? got !== want : !want.includes(got)) return false;
  }
  return true;
}

function holdsAll(open: OpenStep, expected: Set<string>, metrics: number): boolean {
  for (const s of expected) if (!open.parts.has(s)) return false;
  const seen = new Set<string>();
  for (const { metric } of open.parts.values()) seen.add(metric);
  return seen.size === metrics;
}

/** What PartitionStream.process returns that a test compares. */
export interface ReferenceOutput {
  lines: string[];
  rows: number;
  replayed: number;
  points: number;
  skipped: Partial<Record<MessageSkip, number>>;
}

/**
 * PartitionStream as first written: splitLines and parseLine per message, the reference
 * join, then the same detector call and prediction lines.
 */
export class ReferencePartition {
  readonly joiner: ReferenceJoiner;
  private readonly wanted = new Map<string, Set<string>>();
  private readonly lastSkips: Record<StepSkip, number>;
  private lastUnused = 0;
  next: bigint | null = null;
  private readonly prefixes = new Map<string, string | null>();

  constructor(
    readonly engine: StreamingDetector,
    mapping: Mapping,
    intervalMs: number,
    public replayUntil: bigint,
    rules?: MetricRules,
    maxHosts?: number,
  ) {
    this.joiner = new ReferenceJoiner(mapping, intervalMs, rules, maxHosts);
    for (const m of Object.values(mapping))
      this.wanted.set(m.measurement, new Set([...(this.wanted.get(m.measurement) ?? []), ...m.fields]));
    this.lastSkips = { ...this.joiner.skipped };
  }

  process(messages: readonly KafkaMessageIn[]): ReferenceOutput {
    const cut = messages.findIndex((m) => m.offset >= this.replayUntil);
    if (cut <= 0) return this.run(messages, cut === 0);
    const replay = this.run(messages.slice(0, cut), false);
    const live = this.run(messages.slice(cut), true);
    return { ...live, rows: replay.rows + live.rows, replayed: replay.replayed + live.replayed, points: replay.points + live.points };
  }

  private run(messages: readonly KafkaMessageIn[], counted: boolean): ReferenceOutput {
    const skipped: Partial<Record<MessageSkip, number>> = {};
    const count = (r: MessageSkip, n = 1): void => {
      if (counted) skipped[r] = (skipped[r] ?? 0) + n;
    };
    const rows: StepRow[] = [];
    const write: number[] = [];
    let points = 0;
    for (const msg of messages) {
      if (this.next !== null && msg.offset < this.next) continue;
      this.next = msg.offset + 1n;
      const live = msg.offset >= this.replayUntil;
      const before = rows.length;
      if (msg.value !== null) {
        if (msg.value.length > 1 << 20) count('too_large');
        else {
          const text = typeof msg.value === 'string' ? msg.value : msg.value.toString('utf8');
          for (const line of splitLines(text)) {
            const r = parseLine(line, this.wanted);
            if (!r.ok) {
              count(r.reason === 'unused' ? 'unused_measurement' : r.reason);
              continue;
            }
            points++;
            this.joiner.add(r.point, rows);
          }
        }
      }
      for (let k = before; k < rows.length; k++) write.push(live ? 1 : 0);
    }
    const s = this.joiner.skipped;
    for (const r of Object.keys(s) as StepSkip[]) {
      if (s[r] > this.lastSkips[r]) count(r, s[r] - this.lastSkips[r]);
      this.lastSkips[r] = s[r];
    }
    if (this.joiner.unused > this.lastUnused) count('unused_measurement', this.joiner.unused - this.lastUnused);
    this.lastUnused = this.joiner.unused;
    const n = rows.length;
    const m = this.joiner.rules.names.length;
    const raw = new Float64Array(n * m);
    rows.forEach((r, k) => raw.set(r.values, k * m));
    const plan: PlannedRows = {
      names: this.joiner.rules.names,
      keys: rows.map((r) => r.host),
      times: rows.map((r) => r.time),
      raw,
      n,
      write: Uint8Array.from(write),
      skipped: { incomplete: 0, invalid: 0, late: 0 },
    };
    const replayed = write.reduce((a, w) => a + (w === 0 ? 1 : 0), 0);
    const res = runPlan(this.engine, plan, { keepFeatures: false, discard: replayed === n });
    const lines = res ? predictionLines(plan, res, 'learned', this.prefixes).lines : [];
    return { lines, rows: n, replayed, points, skipped };
  }
}

/**
 * Telegraf's lines for `hosts` x `steps` (cpu, mem, net eth0 and lo) with about 7 % of
 * them broken in one of many ways: dropped, repeated, late, a new interface, escapes, a
 * string field, counters beyond 2^53, bad values, trailing blanks, comments and several
 * lines in one message, negative or cut timestamps, hosts beyond any bound, other
 * measurements, doubled separators, blank lines. Each line is one message (a string or a
 * Buffer), with a few null values.
 */
export function hostileMessages(lines: readonly string[], seed: number): KafkaMessageIn[] {
  let s = seed * 7919 + 1;
  const rnd = () => (s = (s * 16807) % 2147483647) / 2147483647;
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    let l = lines[i];
    const u = rnd();
    if (u < 0.01) continue;
    else if (u < 0.02) out.push(l);
    else if (u < 0.03 && i > 50) out.push(lines[i - Math.floor(rnd() * 50)]);
    else if (u < 0.035) l = l.replace('interface=eth0', 'interface=eth1');
    else if (u < 0.04) l = l.replace('host=', 'host=x\\ y');
    else if (u < 0.045) l = l.replace(' used_percent=', ' note="a b",used_percent=');
    else if (u < 0.05) l = l.replace(/=(\d+)i/, (_, d: string) => `=${d}000000000i`);
    else if (u < 0.055) l = l.replace('used_percent=', 'used_percent=abc,x=');
    else if (u < 0.06) l = `${l}   `;
    else if (u < 0.062) l = `# comment\n${l}\r\n${lines[Math.floor(rnd() * lines.length)]}\n\n`;
    else if (u < 0.064) l = l.replace(/ (\d+)$/, ' -$1');
    else if (u < 0.066) l = l.replace('host=host-0', `host=h${Math.floor(rnd() * 1000)}`);
    else if (u < 0.068) l = l.replace('usage_idle=', 'usage_idle=-1e3,y=');
    else if (u < 0.07) l = `disk,host=a used=1i ${l.split(' ').pop()}`;
    else if (u < 0.071) l = l.replace(',', ',,');
    else if (u < 0.072) l = l.replace('=', '==');
    else if (u < 0.073) l = '';
    else if (u < 0.074) l = l.replace('bytes_recv=', 'bytes_recv=1.5e3,z=');
    else if (u < 0.075) l = l.replace(/\d{6}$/, '');
    out.push(l);
  }
  return out.map((l, i) => ({ offset: BigInt(i), value: i % 997 === 0 ? null : i % 13 === 0 ? l : Buffer.from(l) }));
}
