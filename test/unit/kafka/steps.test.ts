import { DEFAULT_SIMULATION, simulate } from '../../../src/data/simulate';
import { TelegrafEncoder } from '../../../src/data/telegraf-sim';
import { parseLine, splitLines, type ParsedPoint } from '../../../src/influx/line-parser';
import { isComplete, mappingMetrics, telegrafPreset, type Mapping } from '../../../src/poller/telegraf';
import { pollerJoin } from '../../helpers/poller-join';
import { metricRules } from '../../../src/validation/point';
import { hostileMessages, ReferenceJoiner } from '../../helpers/reference-join';
import { METRIC_NAMES } from '../../../src/core/metrics';
import { noStepSkips, StepJoiner, type StepRow } from '../../../src/kafka/steps';

const STEP_S = 10;
const mapping = telegrafPreset();
const T0 = 1_700_000_000_000;
/** Line protocol's nanoseconds of T0 + `s` seconds. */
const at = (s: number) => String(BigInt(T0 + s * 1000) * 1_000_000n);
const NO_SKIPS = noStepSkips();

/** A joiner of the Telegraf preset over 10 s steps, fed line by line; its rows. */
function lineJoiner() {
  const j = new StepJoiner(mapping, 10_000);
  const out: StepRow[] = [];
  const add = (line: string) => {
    const p = parseLine(line);
    if (!p.ok) throw new Error(line);
    j.add(p.point, out);
  };
  return { j, out, add };
}

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

/** The poller's join of the same points (test/helpers/poller-join.ts): its complete steps, by `host@time`. */
function pollerSteps(points: ParsedPoint[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const [host, byStep] of pollerJoin(points, mapping, METRIC_NAMES, STEP_S * 1000))
    for (const [t, v] of byStep) if (isComplete(v)) out.set(`${host}@${t}`, [v.cpu_usage, v.memory_usage, v.network_load]);
  return out;
}

describe('StepJoiner', () => {
  it("joins Telegraf's points into the same host steps as the poller's join, one point at a time", () => {
    const points = telegrafPoints(6, 60, 3);
    const j = new StepJoiner(mapping, STEP_S * 1000);
    const rows: StepRow[] = [];
    for (const p of points) j.add(p, rows);
    const want = pollerSteps(points);
    const got = new Map(rows.map((r) => [`${r.host}@${r.time}`, r.values as number[]]));
    // Every step but each host's last (closed only by a later point, or complete on its own) is emitted.
    expect(got.size).toBeGreaterThanOrEqual(want.size - 6);
    for (const [k, v] of got) expect(v).toEqual(want.get(k));
    expect(j.skipped).toEqual(NO_SKIPS);
    expect(j.unused).toBe(0);
  });

  it('emits a step as soon as its last series arrives once the host has a complete step', () => {
    const { j, out, add } = lineJoiner();
    // The first sample of a counter has no rate; the first complete step waits for a later point.
    add(`net,host=h,interface=eth0 bytes_recv=1000i ${at(0)}`);
    add(`cpu,cpu=cpu-total,host=h usage_idle=90 ${at(10)}`);
    add(`mem,host=h used_percent=40 ${at(10)}`);
    add(`net,host=h,interface=eth0 bytes_recv=2000i ${at(10)}`);
    expect(out).toEqual([]);
    add(`cpu,cpu=cpu-total,host=h usage_idle=80 ${at(20)}`);
    expect(out).toEqual([{ host: 'h', time: T0 + 10_000, values: [10, 40, 100] }]);
    add(`mem,host=h used_percent=41 ${at(20)}`);
    add(`net,host=h,interface=eth0 bytes_recv=4000i ${at(20)}`);
    expect(out[1]).toEqual({ host: 'h', time: T0 + 20_000, values: [20, 41, 200] });
    // A point of a step already closed is late: counted, not scored.
    add(`mem,host=h used_percent=99 ${at(20)}`);
    expect(j.skipped.late).toBe(1);
    expect(out).toHaveLength(2);
    // A step missing a metric is counted incomplete when the next step starts.
    add(`cpu,cpu=cpu-total,host=h usage_idle=80 ${at(30)}`);
    add(`cpu,cpu=cpu-total,host=h usage_idle=80 ${at(40)}`);
    expect(j.skipped.incomplete).toBe(1);
  });

  it('counts a delayed point of a step before the open one as late; it does not overwrite the open step', () => {
    const { j, out, add } = lineJoiner();
    const step = (s: number, idle: number, bytes: number) => {
      add(`cpu,cpu=cpu-total,host=h usage_idle=${idle} ${at(s)}`);
      add(`mem,host=h used_percent=40 ${at(s)}`);
      add(`net,host=h,interface=eth0 bytes_recv=${bytes}i ${at(s)}`);
    };
    step(0, 90, 0);
    step(10, 90, 1000);
    step(20, 80, 2000);
    // A gap at 30 s; at 40 s cpu is 90 % busy, then a delayed point of 30 s (20 % busy) arrives.
    add(`cpu,cpu=cpu-total,host=h usage_idle=10 ${at(40)}`);
    add(`cpu,cpu=cpu-total,host=h usage_idle=80 ${at(30)}`);
    add(`mem,host=h used_percent=40 ${at(40)}`);
    add(`net,host=h,interface=eth0 bytes_recv=4000i ${at(40)}`);
    expect(out.map((r) => [r.time - T0, r.values[0]])).toEqual([
      [10_000, 10],
      [20_000, 20],
      [40_000, 90],
    ]);
    expect(j.skipped.late).toBe(1);
  });

  it('takes a new interface into the sum from its first rate on, although its points come after the step closed', () => {
    const { j, out, add } = lineJoiner();
    const lines: string[] = [];
    for (let s = 0; s <= 60; s += 10) {
      lines.push(`cpu,cpu=cpu-total,host=h usage_idle=90 ${at(s)}`);
      lines.push(`mem,host=h used_percent=40 ${at(s)}`);
      lines.push(`net,host=h,interface=eth0 bytes_recv=${s * 100}i ${at(s)}`);
      // eth1 from 20 s on, after eth0 (Telegraf's order for an interface that appeared later).
      if (s >= 20) lines.push(`net,host=h,interface=eth1 bytes_recv=${s * 1000}i ${at(s)}`);
    }
    lines.forEach(add);
    // The poller's join of the same points gives the same rows.
    const poller = pollerSteps(lines.map((l) => (parseLine(l) as { point: ParsedPoint }).point));
    for (const r of out) expect(r.values).toEqual(poller.get(`${r.host}@${r.time}`));
    // eth1's first sample (20 s) has no rate and comes after the 20 s step closed: it makes
    // eth1 expected, so from 30 s on each step waits for it (its first rate) and holds it.
    expect(out.map((r) => [r.time - T0, r.values[2]])).toEqual([
      [10_000, 100],
      [20_000, 100],
      [30_000, 1100],
      [40_000, 1100],
      [50_000, 1100],
      [60_000, 1100],
    ]);
    // Nothing late; step 0 is incomplete (eth0's first sample has no rate).
    expect(j.skipped).toEqual({ ...NO_SKIPS, incomplete: 1 });
  });

  it('refuses points before 2000 (not nanoseconds) and beyond its bound, without opening a step', () => {
    const { j, out, add } = lineJoiner();
    j.latest = T0 + 60_000;
    // Seconds and milliseconds read as nanoseconds land in 1970.
    add(`cpu,cpu=cpu-total,host=h usage_idle=90 ${Math.floor(T0 / 1000)}`);
    add(`cpu,cpu=cpu-total,host=h usage_idle=90 ${T0}`);
    expect(j.skipped.not_nanoseconds).toBe(2);
    // A far-future point would open a step that every later point of the host is late for.
    add(`cpu,cpu=cpu-total,host=h usage_idle=90 ${String(BigInt(Date.UTC(2200, 0, 1)) * 1_000_000n)}`);
    expect(j.skipped.too_far_ahead).toBe(1);
    for (let s = 0; s <= 20; s += 10) {
      add(`cpu,cpu=cpu-total,host=h usage_idle=90 ${at(s)}`);
      add(`mem,host=h used_percent=40 ${at(s)}`);
      add(`net,host=h,interface=eth0 bytes_recv=${s * 100}i ${at(s)}`);
    }
    expect(out.map((r) => r.time - T0)).toEqual([10_000, 20_000]);
    expect(j.skipped.late).toBe(0);
  });

  it('counts points without a host and points of other measurements, and skips invalid steps', () => {
    const j = new StepJoiner(mapping, 10_000);
    const out: StepRow[] = [];
    for (const line of [
      `cpu,cpu=cpu-total usage_idle=90 ${at(0)}`,
      `disk,host=h used=1 ${at(0)}`,
      `net,host=h,interface=eth0 bytes_recv=0i ${at(0)}`,
      `cpu,cpu=cpu-total,host=h usage_idle=-50 ${at(10)}`,
      `mem,host=h used_percent=40 ${at(10)}`,
      `net,host=h,interface=eth0 bytes_recv=10i ${at(10)}`,
      `cpu,cpu=cpu-total,host=h usage_idle=50 ${at(20)}`,
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
