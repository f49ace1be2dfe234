import { DEFAULT_SIMULATION, simulate } from '../../../src/data/simulate';
import { TelegrafEncoder } from '../../../src/data/telegraf-sim';
import type { SeriesGroup } from '../../../src/influx/types';
import { parseLine, splitLines, type ParsedPoint } from '../../../src/influx/line-parser';
import {
  addMetric,
  isComplete,
  mappingMetrics,
  presetMapping,
  telegrafPreset,
  type CounterHistory,
  type HostSteps,
  type Mapping,
} from '../../../src/poller/telegraf';
import { metricRules } from '../../../src/validation/point';
import { hostileMessages, ReferenceJoiner } from '../../helpers/reference-join';
import { StepJoiner, type StepRow } from '../../../src/kafka/steps';

const STEP_S = 10;
const mapping = telegrafPreset();

function telegrafPoints(hosts: number, steps: number, seed: number): ParsedPoint[] {
  const rows = simulate({ ...DEFAULT_SIMULATION, hosts, steps, stepS: STEP_S, start: 1_700_000_000_000, seed, incidentsPerDay: 20 });
  rows.sort((a, b) => a.timestamp - b.timestamp || (a.host < b.host ? -1 : 1));
  const enc = new TelegrafEncoder(seed, 'ns');
  return rows
    .flatMap((r) => enc.lines(r, STEP_S, false))
    .map((l) => {
      const p = parseLine(l);
      if (!p.ok) throw new Error(l);
      return p.point;
    });
}

/**
 * The poller's join of the same points (src/poller/telegraf.ts), as InfluxDB would group
 * them: in one read, or in consecutive reads of `readSteps` steps each that carry the
 * counters' history from one read to the next (the live loop's warm reads).
 */
function pollerJoin(points: ParsedPoint[], map: Mapping = mapping, readSteps = Infinity): Map<string, number[]> {
  const names = mappingMetrics(map).map((d) => d.name);
  const steps: HostSteps = new Map();
  const history: CounterHistory = new Map();
  const span = readSteps * STEP_S * 1000;
  const reads = new Map<number, ParsedPoint[]>();
  for (const p of points) {
    const k = Number.isFinite(span) ? Math.floor(p.time / span) : 0;
    reads.set(k, [...(reads.get(k) ?? []), p]);
  }
  for (const k of [...reads.keys()].sort((a, b) => a - b)) {
    for (const metric of names) {
      const m = map[metric];
      const groups = new Map<string, SeriesGroup>();
      for (const p of reads.get(k) as ParsedPoint[]) {
        if (p.measurement !== m.measurement) continue;
        if (Object.entries(m.where).some(([t, v]) => p.tags[t] !== v)) continue;
        const part = m.sumOver ? (p.tags[m.sumOver] ?? '') : '';
        if (m.exclude.includes(part)) continue;
        const key = `${p.tags.host}\u0000${part}`;
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { tags: { host: p.tags.host, ...(m.sumOver ? { [m.sumOver]: part } : {}) }, rows: [] }));
        g.rows.push({ time: p.time, values: p.fields, ...(p.exact ? { exact: p.exact } : {}) });
      }
      addMetric(steps, metric, m, [...groups.values()], STEP_S * 1000, Number.isFinite(span) ? history : undefined);
    }
  }
  const out = new Map<string, number[]>();
  for (const [host, byStep] of steps)
    for (const [t, v] of byStep)
      if (isComplete(v, names))
        out.set(
          `${host}@${t}`,
          names.map((n) => v[n] as number),
        );
  return out;
}

/** The node set's inputs beside the basic three, for the same hosts and steps: two disks of three counters each. */
function nodePoints(basic: ParsedPoint[]): ParsedPoint[] {
  const counters = new Map<string, number[]>();
  const out: ParsedPoint[] = [];
  for (const p of basic) {
    out.push(p);
    if (p.measurement !== 'mem') continue;
    const c = counters.get(p.tags.host) ?? [0, 0, 0, 0];
    counters.set(p.tags.host, c);
    const w = Math.floor(p.time / 10_000) % 7;
    c[0] += 4096 * (w + 1);
    c[1] += 8192 + 100 * w;
    c[2] += 30 + w;
    c[3] += w > 5 ? 4 : 0;
    const ns = `${p.time}000000`;
    for (const line of [
      `system,host=${p.tags.host} load1=${w / 3},load5=${w / 4},load15=${w / 5} ${ns}`,
      `diskio,host=${p.tags.host},name=vda io_time=${c[2]}i,read_bytes=${c[0]}i,write_bytes=${c[1]}i ${ns}`,
      `diskio,host=${p.tags.host},name=vdb io_time=${c[2] >> 1}i,read_bytes=${c[0] >> 3}i,write_bytes=${c[1] * 3}i ${ns}`,
      `swap,host=${p.tags.host} used_percent=${w} ${ns}`,
      `netstat,host=${p.tags.host} tcp_established=${20 + w}i,tcp_time_wait=${w}i ${ns}`,
      `nstat,host=${p.tags.host},name=snmp TcpRetransSegs=${c[3]}i ${ns}`,
    ]) {
      const q = parseLine(line);
      if (!q.ok) throw new Error(line);
      out.push(q.point);
    }
  }
  return out;
}

describe('StepJoiner', () => {
  it("joins Telegraf's points into the same host steps as the poller's join, one point at a time", () => {
    const points = telegrafPoints(6, 60, 3);
    const j = new StepJoiner(mapping, STEP_S * 1000);
    const rows: StepRow[] = [];
    for (const p of points) j.add(p, rows);
    const want = pollerJoin(points);
    const got = new Map(rows.map((r) => [`${r.host}@${r.time}`, r.values as number[]]));
    // Every step but each host's last (closed only by a later point, or complete on its own) is emitted.
    expect(got.size).toBeGreaterThanOrEqual(want.size - 6);
    for (const [k, v] of got) expect(v).toEqual(want.get(k));
    expect(j.skipped).toEqual({ no_host: 0, late: 0, incomplete: 0, invalid: 0, evicted: 0 });
    expect(j.unused).toBe(0);
  });

  it('over the node set, the poller in reads of 4 steps that carry counter history joins the same steps (three counters of one disk)', () => {
    const node = presetMapping('node');
    const points = nodePoints(telegrafPoints(4, 40, 5));
    const j = new StepJoiner(node, STEP_S * 1000);
    const rows: StepRow[] = [];
    for (const p of points) j.add(p, rows);
    const want = pollerJoin(points, node, 4);
    expect(pollerJoin(points, node)).toEqual(want);
    const got = new Map(rows.map((r) => [`${r.host}@${r.time}`, r.values as number[]]));
    expect(got.size).toBeGreaterThanOrEqual(want.size - 4);
    for (const [k, v] of got) expect([k, v]).toEqual([k, want.get(k)]);
    // Each host's first step: its disk and retransmit counters have no rate yet.
    expect(j.skipped).toEqual({ no_host: 0, late: 0, incomplete: 4, invalid: 0, evicted: 0 });
  });

  it('emits a step as soon as its last series arrives once the host has a complete step', () => {
    const j = new StepJoiner(mapping, 10_000);
    const out: StepRow[] = [];
    const add = (line: string) => {
      const p = parseLine(line);
      if (!p.ok) throw new Error(line);
      j.add(p.point, out);
    };
    // The first sample of a counter has no rate; the first complete step waits for a later point.
    add('net,host=h,interface=eth0 bytes_recv=1000i 0');
    add('cpu,cpu=cpu-total,host=h usage_idle=90 10000000000');
    add('mem,host=h used_percent=40 10000000000');
    add('net,host=h,interface=eth0 bytes_recv=2000i 10000000000');
    expect(out).toEqual([]);
    add('cpu,cpu=cpu-total,host=h usage_idle=80 20000000000');
    expect(out).toEqual([{ host: 'h', time: 10_000, values: [10, 40, 100] }]);
    add('mem,host=h used_percent=41 20000000000');
    add('net,host=h,interface=eth0 bytes_recv=4000i 20000000000');
    expect(out[1]).toEqual({ host: 'h', time: 20_000, values: [20, 41, 200] });
    // A point of a step already closed is late: counted, not scored.
    add('mem,host=h used_percent=99 20000000000');
    expect(j.skipped.late).toBe(1);
    expect(out).toHaveLength(2);
    // A step missing a metric is counted incomplete when the next step starts.
    add('cpu,cpu=cpu-total,host=h usage_idle=80 30000000000');
    add('cpu,cpu=cpu-total,host=h usage_idle=80 40000000000');
    expect(j.skipped.incomplete).toBe(1);
  });

  it('counts points without a host and points of other measurements, and skips invalid steps', () => {
    const j = new StepJoiner(mapping, 10_000);
    const out: StepRow[] = [];
    for (const line of [
      'cpu,cpu=cpu-total usage_idle=90 0',
      'disk,host=h used=1 0',
      'net,host=h,interface=eth0 bytes_recv=0i 0',
      'cpu,cpu=cpu-total,host=h usage_idle=-50 10000000000',
      'mem,host=h used_percent=40 10000000000',
      'net,host=h,interface=eth0 bytes_recv=10i 10000000000',
      'cpu,cpu=cpu-total,host=h usage_idle=50 20000000000',
    ]) {
      const p = parseLine(line);
      if (p.ok) j.add(p.point, out);
    }
    expect(j.skipped.no_host).toBe(1);
    expect(j.unused).toBe(1);
    expect(j.skipped.invalid).toBe(1);
    expect(out).toEqual([]);
  });
});

describe('StepJoiner bounds', () => {
  it('holds at most maxHosts hosts: a new host evicts the least recently seen, and a step it had open is counted', () => {
    const j = new StepJoiner(mapping, STEP_S * 1000, undefined, 2);
    const rows: StepRow[] = [];
    const t = (k: number) => (1_700_000_000_000 + k * STEP_S * 1000) * 1_000_000;
    const add = (line: string) => {
      const p = parseLine(line);
      if (!p.ok) throw new Error(line);
      j.add(p.point, rows);
    };
    // Hosts a and b each open a step; c evicts a (its open step lost), d evicts b.
    add(`mem,host=a used_percent=40 ${t(0)}`);
    add(`mem,host=b used_percent=41 ${t(0)}`);
    add(`mem,host=c used_percent=42 ${t(0)}`);
    expect(j.size).toBe(2);
    expect(j.skipped.evicted).toBe(1);
    add(`mem,host=d used_percent=43 ${t(0)}`);
    expect(j.skipped.evicted).toBe(2);
    // 100,000 hostile host names: memory stays at two hosts.
    for (let i = 0; i < 100_000; i++) add(`mem,host=h${i} used_percent=1 ${t(0)}`);
    expect(j.size).toBe(2);
    expect(j.skipped.evicted).toBe(100_002);
  });
});

describe('StepJoiner against the reference join', () => {
  /** The hostile stream's points (parseLine, every field), and the lines parseLine refuses left out. */
  function hostilePoints(seed: number): ParsedPoint[] {
    const rows = simulate({
      ...DEFAULT_SIMULATION,
      hosts: 12,
      steps: 150,
      stepS: STEP_S,
      start: 1_700_000_000_000,
      seed,
      incidentsPerDay: 30,
    });
    rows.sort((a, b) => a.timestamp - b.timestamp || (a.host < b.host ? -1 : 1));
    const enc = new TelegrafEncoder(seed, 'ns');
    const points: ParsedPoint[] = [];
    for (const m of hostileMessages(
      rows.flatMap((r) => enc.lines(r, STEP_S, false)),
      seed,
    )) {
      if (m.value === null) continue;
      for (const line of splitLines(m.value.toString())) {
        const r = parseLine(line);
        if (r.ok) points.push(r.point);
      }
    }
    return points;
  }

  // Mappings that exercise the tag filters (a list of values), two summed fields, excluded series and a metric set of two.
  const sent = telegrafPreset(true);
  const filtered: Mapping = {
    ...telegrafPreset(),
    cpu_usage: { ...telegrafPreset().cpu_usage, where: { cpu: ['cpu-total', 'cpu0'] } },
    network_load: { ...telegrafPreset().network_load, exclude: ['lo', 'eth1'] },
  };

  it.each([
    ['the preset', mapping, undefined, 100, 1],
    ['the preset, 14 hosts at most', mapping, undefined, 14, 2],
    ['bytes sent and received', sent, undefined, 100, 3],
    ['tag filters', filtered, undefined, 100, 4],
    ['two metrics of the set', mapping, metricRules(mappingMetrics(mapping).slice(1)), 100, 5],
  ])('emits the same rows and counts as the reference on a hostile stream (%s)', (_, map, rules, maxHosts, seed) => {
    const points = hostilePoints(seed);
    const fast = new StepJoiner(map, STEP_S * 1000, rules, maxHosts);
    const ref = new ReferenceJoiner(map, STEP_S * 1000, rules, maxHosts);
    const a: StepRow[] = [];
    const b: StepRow[] = [];
    for (const p of points) {
      fast.add(p, a);
      ref.add(p, b);
      expect(a.length).toBe(b.length);
    }
    expect(a).toEqual(b);
    expect(a.length).toBeGreaterThan(200);
    expect(fast.skipped).toEqual(ref.skipped);
    expect(fast.skipped.late + fast.skipped.incomplete).toBeGreaterThan(0);
    expect(fast.unused).toBe(ref.unused);
    expect(fast.size).toBe(ref.size);
    if (maxHosts < 100) expect(fast.skipped.evicted).toBeGreaterThan(0);
  });
});
