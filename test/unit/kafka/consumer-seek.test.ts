import { Registry } from 'prom-client';
import { DEFAULT_GATE } from '../../../src/core/gate';
import { DEFAULT_HOST_LEARNING, hostLearningOptions } from '../../../src/core/host-learning';
import { StreamingDetector } from '../../../src/core/streaming';
import type { Detector } from '../../../src/core/detector';
import { DEFAULT_SIMULATION, simulate } from '../../../src/data/simulate';
import { TelegrafEncoder } from '../../../src/data/telegraf-sim';
import type { MetricsStore } from '../../../src/influx/types';
import { KafkaSource } from '../../../src/kafka/consumer';
import { PartitionStream, type KafkaMessageIn } from '../../../src/kafka/partition';
import { ModelStore, loadDetectorFile } from '../../../src/model-store';
import { createMetrics } from '../../../src/plugins/metrics';
import { telegrafPreset } from '../../../src/poller/telegraf';
import { MODEL_PATH } from '../../helpers/fixtures';
import { kafkaSourceOptions } from '../../helpers/kafka-source';

/**
 * KafkaSource's replay of a newly assigned partition, around a fake consumer and admin: the
 * first batch comes from the committed offset, so the source seeks back to the start of the
 * history and makes the partition's stream on the batch that starts there. A rebalance that
 * keeps the partition before that batch arrives restarts the fetch at the committed offset:
 * the source must seek again, not take that batch as the replay's start (the history before
 * the committed offset would be lost and the scores unlike one pass's).
 */
const STEP_S = 10;
const TOPIC = 'telegraf';
const COMMITTED = 120;

const engine = (prior: Detector) =>
  StreamingDetector.learner(
    hostLearningOptions({
      prior,
      gate: DEFAULT_GATE,
      maxKeys: 100,
      params: { ...DEFAULT_HOST_LEARNING, nEstimators: 10, learnPoints: 10, minFitRows: 10, refitIntervalMs: 600_000 },
    }),
  );

function messages(): KafkaMessageIn[] {
  const rows = simulate({
    ...DEFAULT_SIMULATION,
    hosts: 2,
    steps: 40,
    stepS: STEP_S,
    start: 1_700_000_000_000,
    seed: 3,
    incidentsPerDay: 24,
  });
  rows.sort((a, b) => a.timestamp - b.timestamp || (a.host < b.host ? -1 : 1));
  const enc = new TelegrafEncoder(3, 'ns');
  return rows.flatMap((r) => enc.lines(r, STEP_S, false)).map((value, i) => ({ offset: BigInt(i), value }));
}

interface Internals {
  consumer: { seek: jest.Mock; commitOffsets: jest.Mock };
  admin: Record<string, jest.Mock>;
  onAssignment(partitions: number[]): void;
  onBatch(payload: unknown): Promise<void>;
}

function setup(all: KafkaMessageIn[]) {
  const prior = loadDetectorFile(MODEL_PATH);
  const written: string[] = [];
  const sink = { writeLines: async (lines: readonly string[]) => void written.push(...lines) } as unknown as MetricsStore;
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const source = new KafkaSource(
    kafkaSourceOptions({
      brokers: ['127.0.0.1:1'],
      topic: TOPIC,
      groupId: 'g',
      collectionIntervalMs: STEP_S * 1000,
      learnWindowMs: 86_400_000,
      engine,
      maxBackoffMs: 1000,
    }),
    ModelStore.fromDetector(prior, MODEL_PATH),
    sink,
    createMetrics(new Registry(), false),
    log,
  );
  const s = source as unknown as Internals;
  s.consumer = { seek: jest.fn(), commitOffsets: jest.fn(async () => undefined) };
  s.admin = {
    fetchOffsets: jest.fn(async () => [{ topic: TOPIC, partitions: [{ partition: 0, offset: String(COMMITTED) }] }]),
    fetchTopicOffsets: jest.fn(async () => [{ partition: 0, low: '0', high: String(all.length), offset: String(all.length) }]),
    fetchTopicOffsetsByTimestamp: jest.fn(async () => [{ partition: 0, offset: '0' }]),
  };
  const batch = (from: number) => ({
    batch: {
      topic: TOPIC,
      partition: 0,
      highWatermark: String(all.length),
      firstOffset: () => String(from),
      messages: all.slice(from).map((m) => ({ offset: String(m.offset), value: Buffer.from(String(m.value)) })),
    },
    heartbeat: async () => undefined,
    isRunning: () => true,
    isStale: () => false,
    resolveOffset: () => undefined,
  });
  return { s, written, batch, prior };
}

describe('KafkaSource: replay of a newly assigned partition', () => {
  it('seeks again when a rebalance keeps the partition before the sought batch arrives; writes what one pass writes', async () => {
    const all = messages();
    const { s, written, batch, prior } = setup(all);
    s.onAssignment([0]);
    await s.onBatch(batch(COMMITTED));
    expect(s.consumer.seek).toHaveBeenCalledTimes(1);
    expect(s.consumer.seek).toHaveBeenLastCalledWith({ topic: TOPIC, partition: 0, offset: '0' });
    expect(written).toHaveLength(0);

    // A rebalance keeps partition 0; its fetch restarts at the committed offset.
    s.onAssignment([0]);
    await s.onBatch(batch(COMMITTED));
    expect(s.consumer.seek).toHaveBeenCalledTimes(2);
    expect(written).toHaveLength(0);

    // The sought batch: replayed up to the committed offset, written from there.
    await s.onBatch(batch(0));
    const want = new PartitionStream(0, engine(prior), telegrafPreset(), STEP_S * 1000, BigInt(COMMITTED)).process(all).lines;
    expect(want.length).toBeGreaterThan(10);
    expect(written).toEqual(want);
    expect(s.consumer.commitOffsets).toHaveBeenLastCalledWith([{ topic: TOPIC, partition: 0, offset: String(all.length) }]);
  });

  it('seeks once per assignment (no seek loop when the batch after the seek starts later than asked)', async () => {
    const all = messages();
    const { s, written, batch } = setup(all);
    s.onAssignment([0]);
    await s.onBatch(batch(COMMITTED));
    // Retention moved the start: the batch after the seek starts past it; the replay starts there.
    await s.onBatch(batch(10));
    expect(s.consumer.seek).toHaveBeenCalledTimes(1);
    expect(written.length).toBeGreaterThan(0);
  });
});

describe('KafkaSource: writes that overlap the scoring of the next chunk', () => {
  /** 24,000+ messages: three chunks of one batch. */
  function many(): KafkaMessageIn[] {
    const rows = simulate({ ...DEFAULT_SIMULATION, hosts: 40, steps: 150, stepS: STEP_S, start: 1_700_000_000_000, seed: 5 });
    rows.sort((a, b) => a.timestamp - b.timestamp || (a.host < b.host ? -1 : 1));
    const enc = new TelegrafEncoder(5, 'ns');
    return rows.flatMap((r) => enc.lines(r, STEP_S, false)).map((value, i) => ({ offset: BigInt(i), value }));
  }

  function source(all: KafkaMessageIn[], writeLines: (lines: readonly string[]) => Promise<void>) {
    const prior = loadDetectorFile(MODEL_PATH);
    const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const src = new KafkaSource(
      kafkaSourceOptions({
        brokers: ['127.0.0.1:1'],
        topic: TOPIC,
        groupId: 'g',
        collectionIntervalMs: STEP_S * 1000,
        learnWindowMs: 0,
        engine,
        writeBatchLines: 100_000,
        maxBackoffMs: 50,
      }),
      ModelStore.fromDetector(prior, MODEL_PATH),
      { writeLines } as unknown as MetricsStore,
      createMetrics(new Registry(), false),
      log,
    );
    const s = src as unknown as Internals;
    s.consumer = { seek: jest.fn(), commitOffsets: jest.fn(async () => undefined) };
    s.admin = {
      fetchOffsets: jest.fn(async () => [{ topic: TOPIC, partitions: [{ partition: 0, offset: '0' }] }]),
      fetchTopicOffsets: jest.fn(async () => [{ partition: 0, low: '0', high: String(all.length), offset: String(all.length) }]),
      fetchTopicOffsetsByTimestamp: jest.fn(async () => [{ partition: 0, offset: '0' }]),
    };
    const resolved: string[] = [];
    let running = true;
    const payload = {
      batch: {
        topic: TOPIC,
        partition: 0,
        highWatermark: String(all.length),
        firstOffset: () => '0',
        messages: all.map((m) => ({ offset: String(m.offset), value: Buffer.from(String(m.value)) })),
      },
      heartbeat: async () => undefined,
      isRunning: () => running,
      isStale: () => false,
      resolveOffset: (o: string) => void resolved.push(o),
    };
    return { s, payload, resolved, prior, stop: () => (running = false) };
  }

  it('writes the chunks in order, one at a time, resolves each offset once written and commits after the last write', async () => {
    const all = many();
    expect(all.length).toBeGreaterThan(20_000);
    const written: string[][] = [];
    let inFlight = 0;
    let most = 0;
    const { s, payload, resolved, prior } = source(all, async (lines) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 20));
      written.push([...lines]);
      inFlight--;
    });
    s.consumer.commitOffsets.mockImplementation(async () => {
      expect(inFlight).toBe(0);
      expect(written.length).toBe(3);
    });
    s.onAssignment([0]);
    await s.onBatch(payload);
    expect(most).toBe(1);
    expect(written.flat()).toEqual(new PartitionStream(0, engine(prior), telegrafPreset(), STEP_S * 1000, 0n).process(all).lines);
    expect(resolved.map(Number)).toEqual([9_999, 19_999, all.length - 1]);
    expect(s.consumer.commitOffsets).toHaveBeenCalledWith([{ topic: TOPIC, partition: 0, offset: String(all.length) }]);
  });

  it('a write given up (the partition no longer ours) is not resolved or committed, and its stream is dropped', async () => {
    const all = many();
    let calls = 0;
    const ctl = { stop: () => undefined as unknown };
    // Every write fails (InfluxDB unreachable) until the service stops, after the third try.
    const { s, payload, resolved, stop } = source(all, async () => {
      calls++;
      if (calls >= 3) ctl.stop();
      throw new Error('connect ECONNREFUSED 127.0.0.1:8086');
    });
    ctl.stop = stop;
    s.onAssignment([0]);
    await s.onBatch(payload);
    expect(calls).toBe(3);
    expect(resolved).toEqual([]);
    expect(s.consumer.commitOffsets).not.toHaveBeenCalled();
    expect((s as unknown as { streams: Map<number, unknown> }).streams.size).toBe(0);
  });
});
