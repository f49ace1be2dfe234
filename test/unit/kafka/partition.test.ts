import { DEFAULT_GATE } from '../../../src/core/gate';
import { DEFAULT_HOST_LEARNING, hostLearningOptions } from '../../../src/core/host-learning';
import { StreamingDetector } from '../../../src/core/streaming';
import { DEFAULT_SIMULATION, simulate } from '../../../src/data/simulate';
import { TelegrafEncoder } from '../../../src/data/telegraf-sim';
import { PartitionStream, type KafkaMessageIn } from '../../../src/kafka/partition';
import { telegrafPreset } from '../../../src/poller/telegraf';
import { hostileMessages, ReferencePartition } from '../../helpers/reference-join';

const STEP_S = 10;

/** One message per metric, as Telegraf's Kafka output sends them; a few hostile ones mixed in. */
function messages(hosts: number, steps: number, seed: number): KafkaMessageIn[] {
  const rows = simulate({ ...DEFAULT_SIMULATION, hosts, steps, stepS: STEP_S, start: 1_700_000_000_000, seed, incidentsPerDay: 24 });
  rows.sort((a, b) => a.timestamp - b.timestamp || (a.host < b.host ? -1 : 1));
  const enc = new TelegrafEncoder(seed, 'ns');
  const lines = rows.flatMap((r) => enc.lines(r, STEP_S, false));
  const out: KafkaMessageIn[] = [];
  lines.forEach((l, i) => {
    out.push({ offset: BigInt(out.length), value: Buffer.from(l) });
    if (i % 97 === 0) out.push({ offset: BigInt(out.length), value: Buffer.from('garbage') });
    if (i % 211 === 0) out.push({ offset: BigInt(out.length), value: null });
  });
  return out;
}

const options = () =>
  hostLearningOptions({
    gate: DEFAULT_GATE,
    maxKeys: 100,
    params: { ...DEFAULT_HOST_LEARNING, nEstimators: 10, learnPoints: 30, minFitRows: 30, refitIntervalMs: 600_000 },
  });

function stream(replayUntil = 0n): PartitionStream {
  return new PartitionStream(0, StreamingDetector.learner(options()), telegrafPreset(), STEP_S * 1000, replayUntil);
}

function run(s: PartitionStream, msgs: KafkaMessageIn[], batch: number): { lines: string[]; skipped: Record<string, number> } {
  const lines: string[] = [];
  const skipped: Record<string, number> = {};
  for (let a = 0; a < msgs.length; a += batch) {
    const out = s.process(msgs.slice(a, a + batch));
    lines.push(...out.lines);
    for (const [k, v] of Object.entries(out.skipped)) skipped[k] = (skipped[k] ?? 0) + (v as number);
  }
  return { lines, skipped };
}

describe('PartitionStream', () => {
  const msgs = messages(5, 400, 11);

  it('writes the same predictions however the partition is cut into batches, and counts hostile messages', () => {
    const whole = run(stream(), msgs, msgs.length);
    expect(whole.lines.length).toBeGreaterThan(5 * 390);
    expect(whole.lines.some((l) => l.includes('is_anomaly=1i'))).toBe(true);
    expect(whole.lines.some((l) => l.includes('learning=0i'))).toBe(true);
    for (const batch of [1, 7, 500]) expect(run(stream(), msgs, batch)).toEqual(whole);
    expect(whole.skipped.syntax).toBe(msgs.filter((m) => m.value?.toString() === 'garbage').length);
  });

  it('after a rebalance, a new owner replaying up to the committed offset writes what the old owner would have', () => {
    const whole = run(stream(), msgs, 64).lines;
    for (const cut of [1000n, 4321n]) {
      const before = run(stream(), msgs.slice(0, Number(cut)), 64).lines;
      // The new owner starts at the beginning of the retained history and replays to `cut` without writing.
      const after = run(stream(cut), msgs, 64).lines;
      expect(before.length).toBeGreaterThan(0);
      expect([...before, ...after]).toEqual(whole);
    }
  });

  it('ignores messages it already processed (a fetch that overlaps the last one)', () => {
    const s = stream();
    const first = s.process(msgs.slice(0, 3000)).lines;
    const again = s.process(msgs.slice(2000, 6000)).lines;
    const once = run(stream(), msgs.slice(0, 6000), 6000).lines;
    expect([...first, ...again]).toEqual(once);
  });
});

describe('PartitionStream against the reference partition', () => {
  it.each([
    [1, 1, 0n],
    [2, 64, 0n],
    [3, 500, 3000n],
    [4, 5000, 7777n],
  ])(
    'writes the same lines and counts as splitLines + parseLine + the reference join (seed %i, batches of %i, replay to %i)',
    (seed, batch, until) => {
      const rows = simulate({
        ...DEFAULT_SIMULATION,
        hosts: 8,
        steps: 300,
        stepS: STEP_S,
        start: 1_700_000_000_000,
        seed,
        incidentsPerDay: 24,
      });
      rows.sort((a, b) => a.timestamp - b.timestamp || (a.host < b.host ? -1 : 1));
      const enc = new TelegrafEncoder(seed, 'ns');
      const msgs = hostileMessages(
        rows.flatMap((r) => enc.lines(r, STEP_S, false)),
        seed,
      );
      const fast = stream(until);
      const ref = new ReferencePartition(StreamingDetector.learner(options()), telegrafPreset(), STEP_S * 1000, until, undefined, 100);
      let lines = 0;
      const skipped: Record<string, number> = {};
      for (let a = 0; a < msgs.length; a += batch) {
        const x = fast.process(msgs.slice(a, a + batch));
        const y = ref.process(msgs.slice(a, a + batch));
        expect({ lines: x.lines, rows: x.rows, replayed: x.replayed, points: x.points, skipped: x.skipped }).toEqual(y);
        lines += x.lines.length;
        for (const [k, v] of Object.entries(x.skipped)) skipped[k] = (skipped[k] ?? 0) + (v as number);
      }
      expect(lines).toBeGreaterThan(300);
      for (const reason of ['syntax', 'bad_value', 'unused_measurement', 'late', 'incomplete']) expect(skipped[reason]).toBeGreaterThan(0);
    },
  );
});
