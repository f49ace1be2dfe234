import { NODE_METRICS, BASIC_METRICS, METRIC_NAMES } from '../../../src/core/metrics';
import { noStepSkips, StepJoiner, type StepRow } from '../../../src/kafka/steps';
import { parseLine, type ParsedPoint } from '../../../src/influx/line-parser';
import { planRows, predictionLines, type HostState } from '../../../src/poller/cycle';
import { sharedReads } from '../../../src/poller/poller';
import {
  isComplete,
  mappingMetrics,
  MappingSchema,
  mappingIssueMessage,
  presetMapping,
  telegrafPreset,
  type Mapping,
} from '../../../src/poller/telegraf';
import { metricRules } from '../../../src/validation/point';
import { formatPoint, int } from '../../../src/influx/line-protocol';
import { StreamingDetector, type StreamResult } from '../../../src/core/streaming';
import { DEFAULT_GATE } from '../../../src/core/gate';
import { DEFAULT_HOST_LEARNING, hostLearningOptions } from '../../../src/core/host-learning';
import { PartitionStream } from '../../../src/kafka/partition';
import { pollerJoin } from '../../helpers/poller-join';

const STEP_MS = 10_000;
const T0 = 1_700_000_000_000;
const node = presetMapping('node');
const NAMES = NODE_METRICS.map((d) => d.name);

/** Telegraf-shaped points of the node inputs for `hosts` hosts and `steps` steps (two disks, two interfaces, counters that grow). */
function nodePoints(hosts: number, steps: number): ParsedPoint[] {
  const lines: string[] = [];
  for (let k = 0; k < steps; k++) {
    const t = (T0 + k * STEP_MS) * 1_000_000;
    for (let h = 0; h < hosts; h++) {
      const host = `host-${h}`;
      const w = (k * 7 + h * 3) % 11;
      lines.push(
        `cpu,cpu=cpu-total,host=${host} usage_idle=${80 - w},usage_user=${w} ${t}`,
        `mem,host=${host} used_percent=${40 + w / 2} ${t}`,
        `net,host=${host},interface=eth0 bytes_recv=${1000 * k * (h + 1) + w * 50}i,bytes_sent=5i ${t}`,
        `net,host=${host},interface=lo bytes_recv=${999 * k}i ${t}`,
        `system,host=${host} load1=${w / 4},load5=${w / 5},load15=${w / 6},n_cpus=2i ${t}`,
        `diskio,host=${host},name=vda io_time=${200 * k + w}i,read_bytes=${4096 * k * (w + 1)}i,write_bytes=${8192 * k}i ${t}`,
        `diskio,host=${host},name=vdb io_time=${10 * k}i,read_bytes=${512 * k}i,write_bytes=${1024 * k + w}i ${t}`,
        `swap,host=${host} used_percent=${w / 10},total=1000i ${t}`,
        `netstat,host=${host} tcp_established=${20 + w}i,tcp_time_wait=${w}i ${t}`,
        `nstat,host=${host},name=snmp TcpRetransSegs=${3 * k + (w > 8 ? 5 : 0)}i,TcpInSegs=${100 * k}i ${t}`,
        `nstat,host=${host},name=netstat TcpExtTCPTimeouts=${k}i ${t}`,
      );
    }
  }
  return lines.map((l) => {
    const p = parseLine(l);
    if (!p.ok) throw new Error(`${p.reason}: ${l}`);
    return p.point;
  });
}

describe('metric sets: mappings', () => {
  it('the node preset maps every node metric, in the set order, with the declared units and ranges', () => {
    expect(Object.keys(node)).toEqual(NAMES);
    expect(mappingMetrics(node)).toEqual(NODE_METRICS);
    expect(mappingMetrics(presetMapping('basic'))).toEqual(BASIC_METRICS);
    expect(presetMapping('basic')).toEqual(telegrafPreset());
  });

  it("reads the prototype's three-key mapping files unchanged, and a custom set with its own units and ranges", () => {
    expect(MappingSchema.parse(JSON.parse(JSON.stringify(telegrafPreset())))).toEqual(telegrafPreset());
    const custom = MappingSchema.parse({
      gpu_util: { measurement: 'nvidia_smi', fields: ['utilization_gpu'], transform: 'value', unit: 'percent', min: 0, max: 100 },
      load1: { measurement: 'system', fields: ['load1'], transform: 'value' },
    });
    expect(mappingMetrics(custom)).toEqual([
      { name: 'gpu_util', unit: 'percent', min: 0, max: 100 },
      { name: 'load1', unit: 'load', min: 0, max: null },
    ]);
  });

  it.each([
    [
      'a name with capitals or dashes',
      { 'Disk-IO': { measurement: 'x', fields: ['y'], transform: 'value' } },
      /metric names are lower case/,
    ],
    ['a name that would need escaping', { 'a b': { measurement: 'x', fields: ['y'], transform: 'value' } }, /metric names are lower case/],
    ['no metric', {}, /at least one metric/],
    ['max not above min', { m: { measurement: 'x', fields: ['y'], transform: 'value', min: 5, max: 5 } }, /must be above min/],
    ['an unknown transform', { m: { measurement: 'x', fields: ['y'], transform: 'log' } }, /Invalid option/],
  ])('refuses %s', (_what, raw, message) => {
    const r = MappingSchema.safeParse(raw);
    expect(r.success).toBe(false);
    expect(mappingIssueMessage(r.error?.issues[0] as Parameters<typeof mappingIssueMessage>[0])).toMatch(message);
  });

  it('refuses more than 64 metrics', () => {
    const many = Object.fromEntries(
      Array.from({ length: 65 }, (_, i) => [`m${i}`, { measurement: 'x', fields: ['y'], transform: 'value' }]),
    );
    expect(MappingSchema.safeParse(many).success).toBe(false);
  });

  it('reads metrics of one measurement, tag filter and sum in one query (8 reads for the 13 node metrics)', () => {
    const reads = sharedReads(node, NAMES);
    expect(reads.map((r) => r.source.measurement)).toEqual(['cpu', 'mem', 'net', 'system', 'diskio', 'swap', 'netstat', 'nstat']);
    expect(reads[3]).toMatchObject({ metrics: ['load1', 'load5', 'load15'], source: { fields: ['load1', 'load5', 'load15'] } });
    expect(reads[4].metrics).toEqual(['disk_read_bytes', 'disk_write_bytes', 'disk_io_time']);
    // Only the metrics asked for.
    expect(sharedReads(node, METRIC_NAMES).map((r) => r.metrics)).toEqual([['cpu_usage'], ['memory_usage'], ['network_load']]);
    expect(() => sharedReads(telegrafPreset(), ['load1'])).toThrow('the mapping does not provide metric load1');
  });
});

describe('metric sets: the join, the rows and the predictions', () => {
  const points = nodePoints(3, 12);
  const rules = metricRules(NODE_METRICS);

  it('the Kafka joiner and the poller join give the same node rows, in the set order; rates are summed over disks', () => {
    const j = new StepJoiner(node, STEP_MS, rules);
    const rows: StepRow[] = [];
    for (const p of points) j.add(p, rows);
    const want = pollerJoin(points, node, NAMES, STEP_MS);
    // The poller in consecutive reads of 4 steps, each counter's rate at a read's first step
    // taken from the history of the reads before (a disk's series holds three counters): the same steps.
    expect(pollerJoin(points, node, NAMES, STEP_MS, 4)).toEqual(want);
    expect(rows.length).toBeGreaterThanOrEqual(3 * 10);
    for (const r of rows) {
      const v = want.get(r.host)?.get(r.time);
      expect(v && isComplete(v, NAMES)).toBe(true);
      expect(r.values).toEqual(NAMES.map((n) => v?.[n]));
    }
    // Each host's first step has no rates yet (no earlier counter sample): incomplete, in both joins.
    expect(j.skipped).toEqual({ ...noStepSkips(), incomplete: 3 });
    // disk_read_bytes of host-0 at step 2: both disks' read_bytes rates, added.
    const r = rows.find((x) => x.host === 'host-0' && x.time === T0 + 2 * STEP_MS) as StepRow;
    const w = (k: number) => (k * 7) % 11;
    const vda = (4096 * 2 * (w(2) + 1) - 4096 * 1 * (w(1) + 1)) / 10;
    expect(r.values[NAMES.indexOf('disk_read_bytes')]).toBeCloseTo(vda + 512 / 10, 9);
    expect(r.values[NAMES.indexOf('load5')]).toBe(w(2) / 5);
  });

  it('planRows: rows in the set order; a step without one node metric waits and is counted incomplete, one out of range invalid', () => {
    const steps = pollerJoin(points, node, NAMES, STEP_MS);
    const h0 = steps.get('host-0') as Map<number, Record<string, number | undefined>>;
    (h0.get(T0 + 3 * STEP_MS) as Record<string, number | undefined>).disk_io_time = undefined;
    (h0.get(T0 + 4 * STEP_MS) as Record<string, number>).swap_used_percent = 120;
    const hosts = new Map<string, HostState>();
    const plan = planRows(steps, {
      mode: 'live',
      from: T0,
      to: T0 + 12 * STEP_MS,
      now: T0 + 100 * STEP_MS,
      settleMs: 0,
      intervalMs: STEP_MS,
      prime: false,
      primeFromStart: false,
      hosts,
      owns: () => true,
      rules,
    });
    expect(plan.names).toEqual(NAMES);
    // Each host's first step (no rates yet) and host-0's step 3 are incomplete.
    expect(plan.skipped).toEqual({ incomplete: 4, invalid: 1, late: 0 });
    // Host 0 has no rate at its first step (no earlier sample): 11 steps, 2 left out; hosts 1 and 2: 11 each.
    expect(plan.n).toBe(9 + 11 + 11);
    const k = plan.keys.findIndex((h, i) => h === 'host-1' && plan.times[i] === T0 + 5 * STEP_MS);
    const v = steps.get('host-1')?.get(T0 + 5 * STEP_MS) as Record<string, number>;
    expect(Array.from(plan.raw.subarray(k * 13, k * 13 + 13))).toEqual(NAMES.map((n) => v[n]));
    // The basic rules read only the three, whatever else the steps hold.
    const basic = planRows(pollerJoin(points, node, NAMES, STEP_MS), {
      mode: 'live',
      from: T0,
      to: T0 + 12 * STEP_MS,
      now: T0 + 100 * STEP_MS,
      settleMs: 0,
      intervalMs: STEP_MS,
      prime: false,
      primeFromStart: false,
      hosts: new Map(),
      owns: () => true,
    });
    expect(basic.names).toEqual(METRIC_NAMES);
    expect(basic.raw.length).toBe(basic.n * 3);
  });

  it('ai_predictions: val_<metric> and contrib_<metric> for every metric, the prototype fields kept; formatPoint text', () => {
    const plan = planRows(pollerJoin(points, node, NAMES, STEP_MS), {
      mode: 'live',
      from: T0,
      to: T0 + 12 * STEP_MS,
      now: Infinity,
      settleMs: 0,
      intervalMs: STEP_MS,
      prime: false,
      primeFromStart: false,
      hosts: new Map(),
      owns: () => true,
      rules,
    });
    const n = plan.n;
    const resultOf = (n: number, m: number) =>
      ({
        n,
        scores: Float64Array.from({ length: n }, (_, i) => 0.4 + i / 1000),
        thresholds: new Float64Array(n).fill(0.6),
        anomalies: new Uint8Array(n),
        alerts: new Uint8Array(n),
        learning: new Uint8Array(n),
        refits: new Uint32Array(n),
        contributions: Float64Array.from({ length: n * m }, (_, i) => (i % m) / 10 - 0.3),
        features: new Float64Array(0),
      }) as StreamResult;
    const res = resultOf(n, 13);
    const out = predictionLines(plan, res, 'learned');
    expect(out.lines).toHaveLength(n);
    for (let k = 0; k < n; k++) {
      const fields: Record<string, unknown> = {
        is_anomaly: int(0),
        raw_anomaly: int(0),
        score: res.scores[k],
        severity: res.scores[k] / 0.6,
        threshold: 0.6,
        cpu_val: plan.raw[k * 13],
        mem_val: plan.raw[k * 13 + 1],
        net_val: plan.raw[k * 13 + 2],
        shap_cpu: res.contributions[k * 13],
        shap_memory: res.contributions[k * 13 + 1],
        shap_network: res.contributions[k * 13 + 2],
      };
      NAMES.forEach((name, c) => {
        fields[`val_${name}`] = plan.raw[k * 13 + c];
        fields[`contrib_${name}`] = res.contributions[k * 13 + c];
      });
      fields.model_refit = int(0);
      fields.learning = int(0);
      const want = formatPoint({
        measurement: 'ai_predictions',
        tags: { host: plan.keys[k], model_version: 'learned' },
        fields: fields as Parameters<typeof formatPoint>[0]['fields'],
        time: plan.times[k],
      });
      expect(out.lines[k]).toBe(want);
    }
    // A set without the three: no prototype fields.
    const custom: Mapping = { load1: node.load1, swap_used_percent: node.swap_used_percent };
    const rulesC = metricRules(mappingMetrics(custom));
    const planC = planRows(pollerJoin(points, custom, ['load1', 'swap_used_percent'], STEP_MS), {
      mode: 'live',
      from: T0,
      to: T0 + 12 * STEP_MS,
      now: Infinity,
      settleMs: 0,
      intervalMs: STEP_MS,
      prime: false,
      primeFromStart: false,
      hosts: new Map(),
      owns: () => true,
      rules: rulesC,
    });
    const line = predictionLines(planC, resultOf(planC.n, 2), 'learned').lines[0];
    expect(line).toContain(',val_load1=');
    expect(line).toContain(',contrib_swap_used_percent=-0.19999999999999998,');
    expect(line).not.toContain('cpu_val');
    expect(line).not.toContain('shap_');
  });
});

describe('metric sets: the Kafka partition step', () => {
  it('scores node-set steps from Telegraf lines, the same however the partition is cut, with a field per metric', () => {
    const lines = nodePoints(4, 90).map((p) =>
      formatPoint({ measurement: p.measurement, tags: p.tags, fields: p.fields, time: p.time }, 'ns'),
    );
    const msgs = lines.map((l, i) => ({ offset: BigInt(i), value: Buffer.from(l) }));
    const make = () =>
      new PartitionStream(
        0,
        StreamingDetector.learner(
          hostLearningOptions({
            gate: DEFAULT_GATE,
            maxKeys: 10,
            metrics: NAMES,
            params: { ...DEFAULT_HOST_LEARNING, nEstimators: 10, learnPoints: 20, minFitRows: 20 },
          }),
        ),
        node,
        STEP_MS,
        0n,
      );
    const run = (batch: number) => {
      const s = make();
      const out: string[] = [];
      for (let a = 0; a < msgs.length; a += batch) out.push(...s.process(msgs.slice(a, a + batch)).lines);
      return out;
    };
    const whole = run(msgs.length);
    // Every host's steps but its first (no rates yet); the last closes once all its series are in.
    expect(whole).toHaveLength(4 * 89);
    for (const batch of [1, 37]) expect(run(batch)).toEqual(whole);
    for (const name of NAMES) expect(whole.every((l) => l.includes(`,val_${name}=`) && l.includes(`,contrib_${name}=`))).toBe(true);
    expect(whole.some((l) => l.includes('learning=0i'))).toBe(true);
  });
});
