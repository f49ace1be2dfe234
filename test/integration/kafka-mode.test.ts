import { Kafka as KafkaClient, logLevel, type Producer } from 'kafkajs';
import { Registry } from 'prom-client';
import { DEFAULT_GATE } from '../../src/core/gate';
import { DEFAULT_HOST_LEARNING, hostLearningOptions } from '../../src/core/host-learning';
import { StreamingDetector } from '../../src/core/streaming';
import type { Detector } from '../../src/core/detector';
import { DEFAULT_SIMULATION, simulate, type SimulatedRow } from '../../src/data/simulate';
import { TelegrafEncoder } from '../../src/data/telegraf-sim';
import { parseLine } from '../../src/influx/line-parser';
import type { MetricsStore } from '../../src/influx/types';
import { KafkaSource } from '../../src/kafka/consumer';
import { PartitionStream } from '../../src/kafka/partition';
import { ModelStore, loadDetectorFile } from '../../src/model-store';
import { createMetrics } from '../../src/plugins/metrics';
import { telegrafPreset } from '../../src/poller/telegraf';
import { MODEL_PATH } from '../helpers/fixtures';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { predictions, storeFor, waitUntil } from '../helpers/influx-data';
import { startKafka, type Kafka } from '../helpers/kafka';
import { kafkaSourceOptions } from '../helpers/kafka-source';

/**
 * SOURCE=kafka against a real broker and a real influxd: Telegraf-schema line protocol,
 * one message per metric keyed by host, goes through replicas of the consumer group;
 * every step of every host is written to ai_predictions once, with the scores one
 * uninterrupted pass over each partition gives, also when a second replica joins midway
 * and takes partitions over (a rebalance: the new owner replays to the committed offset).
 */
const TOPIC = 'telegraf';
const PARTITIONS = 4;
const HOSTS = 8;
const STEPS = 160;
const STEP_S = 10;
const START = Date.parse('2026-11-20T08:00:00Z');

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** The writes' part of a replica's /health body. */
const writesOf = (s: KafkaSource) => s.health().check().body as { writes: string; writes_failing_s?: number };

const engine = (prior: Detector) =>
  StreamingDetector.learner(
    hostLearningOptions({
      prior,
      gate: DEFAULT_GATE,
      maxKeys: 100,
      params: { ...DEFAULT_HOST_LEARNING, nEstimators: 20, learnPoints: 20, minFitRows: 40, refitIntervalMs: 300_000, refitWindow: 400 },
    }),
  );

interface Msg {
  partition: number;
  key: string;
  value: string;
}

/** The Telegraf lines of each step, one message per line; hosts spread over partitions by index. */
function telegrafMessages(rows: SimulatedRow[]): Msg[][] {
  const enc = new TelegrafEncoder(3, 'ns');
  const bySteps = new Map<number, Msg[]>();
  for (const r of rows) {
    const partition = (Number(r.host.slice(5)) - 1) % PARTITIONS;
    const list = bySteps.get(r.timestamp) ?? [];
    for (const value of enc.lines(r, STEP_S, false)) list.push({ partition, key: r.host, value });
    bySteps.set(r.timestamp, list);
  }
  return [...bySteps.keys()].sort((a, b) => a - b).map((t) => bySteps.get(t) as Msg[]);
}

/** What one uninterrupted pass over each partition writes: host@time -> score. */
function onePass(msgs: Msg[], prior: Detector): Map<string, number> {
  const out = new Map<string, number>();
  for (let p = 0; p < PARTITIONS; p++) {
    const mine = msgs.filter((m) => m.partition === p);
    const s = new PartitionStream(p, engine(prior), telegrafPreset(), STEP_S * 1000, 0n);
    const res = s.process(mine.map((m, i) => ({ offset: BigInt(i), value: m.value })));
    for (const line of res.lines) {
      const r = parseLine(line);
      if (!r.ok) throw new Error(line);
      // Prediction lines carry millisecond timestamps (the parser reads nanoseconds).
      out.set(`${r.point.tags.host}@${line.slice(line.lastIndexOf(' ') + 1)}`, r.point.fields.score);
    }
  }
  return out;
}

describe('SOURCE=kafka: consumer group, real broker and influxd', () => {
  let kafka: Kafka;
  let influxd: Influxd;
  let store: MetricsStore;
  let producer: Producer;
  let prior: Detector;
  const sources: KafkaSource[] = [];

  beforeAll(async () => {
    [kafka, influxd] = await Promise.all([startKafka({ extraConfig: { 'message.max.bytes': 4_000_000 } }), startInfluxd()]);
    store = storeFor(influxd);
    await store.createDatabase?.();
    await kafka.createTopic(TOPIC, PARTITIONS);
    producer = new KafkaClient({ clientId: 'test-telegraf', brokers: [kafka.brokers], logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    prior = loadDetectorFile(MODEL_PATH);
  }, 120_000);

  afterAll(async () => {
    for (const s of sources) await s.stop();
    await producer?.disconnect();
    await store?.close?.();
    await Promise.all([kafka?.stop(), influxd?.cleanup()]);
  });

  function source(metrics = createMetrics(new Registry(), false)): { source: KafkaSource; metrics: ReturnType<typeof createMetrics> } {
    const models = ModelStore.fromDetector(prior, MODEL_PATH);
    const opts = kafkaSourceOptions({
      brokers: [kafka.brokers],
      topic: TOPIC,
      groupId: 'detectors',
      concurrency: 4,
      collectionIntervalMs: STEP_S * 1000,
      learnWindowMs: 30 * 86_400_000,
      engine,
    });
    const s = new KafkaSource(opts, models, store, metrics, silent);
    sources.push(s);
    return { source: s, metrics };
  }

  it('scores every step once, equal to one pass per partition, across a rebalance; counts hostile messages', async () => {
    const rows = simulate({ ...DEFAULT_SIMULATION, hosts: HOSTS, steps: STEPS, stepS: STEP_S, start: START, seed: 9, incidentsPerDay: 30 });
    const steps = telegrafMessages(rows);
    const send = async (list: Msg[]) =>
      producer.send({ topic: TOPIC, messages: list.map((m) => ({ partition: m.partition, key: m.key, value: m.value })) });

    const a = source();
    await a.source.start();
    for (const list of steps.slice(0, 80)) await send(list);
    // Hostile messages: not line protocol, a point without host, an oversized value, an empty value.
    await producer.send({
      topic: TOPIC,
      messages: [
        { partition: 0, key: 'x', value: 'garbage' },
        { partition: 1, key: 'x', value: 'cpu,cpu=cpu-total usage_idle=5 1' },
        { partition: 2, key: 'x', value: 'x'.repeat((1 << 20) + 10) },
        { partition: 3, key: 'x', value: null },
      ],
    });
    await waitUntil(async () => (await predictions(influxd)).length >= 60 * HOSTS, 60_000, 'the first replica to score');
    // A second replica joins: partitions move; their new owner replays them up to the committed offsets.
    const b = source();
    await b.source.start();
    for (const list of steps.slice(80)) await send(list);

    const want = onePass(steps.flat(), prior);
    expect(want.size).toBe(HOSTS * STEPS);
    await waitUntil(async () => (await predictions(influxd)).length >= want.size, 90_000, 'every step to be written').catch(
      async (e: Error) => {
        const n = (await predictions(influxd)).length;
        throw new Error(`${e.message}: ${n} of ${want.size}; ${JSON.stringify([a, b].map((x) => x.source.health().check().body))}`);
      },
    );
    const got = await predictions(influxd);
    expect(got).toHaveLength(want.size);
    for (const r of got) expect(r.score).toBe(want.get(`${r.host}@${r.time}`));
    expect(got.filter((r) => r.learning === 0).length).toBeGreaterThan(0);
    const parts = [a.source, b.source].map((s) => (s.health().check().body as { partitions: number[] }).partitions);
    expect(parts.every((p) => p.length > 0)).toBe(true);
    expect([...parts[0], ...parts[1]].sort()).toEqual([0, 1, 2, 3]);
    const skipped = async (reason: string) =>
      (await a.metrics.skipped.get()).values
        .concat((await b.metrics.skipped.get()).values)
        .filter((v) => v.labels.reason === reason)
        .reduce((s, v) => s + v.value, 0);
    expect(await skipped('syntax')).toBe(1);
    expect(await skipped('no_host')).toBe(1);
    expect(await skipped('too_large')).toBe(1);
  }, 240_000);

  it('writes a large batch of predictions to a results topic in sends the broker accepts', async () => {
    // A results topic whose record batches may hold at most 100,000 bytes: one send of a
    // chunk's predictions (480 lines of ~470 bytes here) is refused as too large, and was
    // refused again on every retry, so that nothing was committed any more.
    const input = 'telegraf-results';
    const output = 'predictions-small';
    const admin = new KafkaClient({ clientId: 'test-admin', brokers: [kafka.brokers], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        { topic: input, numPartitions: 1, replicationFactor: 1 },
        { topic: output, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: '100000' }] },
      ],
      waitForLeaders: true,
    });
    await admin.disconnect();
    const metrics = createMetrics(new Registry(), false);
    const s = new KafkaSource(
      kafkaSourceOptions({
        brokers: [kafka.brokers],
        topic: input,
        groupId: 'results-writer',
        resultsTopic: output,
        collectionIntervalMs: STEP_S * 1000,
        learnWindowMs: 30 * 86_400_000,
        engine,
      }),
      ModelStore.fromDetector(prior, MODEL_PATH),
      null,
      metrics,
      silent,
    );
    sources.push(s);
    await s.start();
    const steps = 60;
    const rows = simulate({ ...DEFAULT_SIMULATION, hosts: HOSTS, steps, stepS: STEP_S, start: START, seed: 5 });
    const messages = telegrafMessages(rows)
      .flat()
      .map((m) => ({ partition: 0, key: m.key, value: m.value }));
    await producer.send({ topic: input, messages });
    const scored = async () => (await metrics.pointsScored.get()).values.reduce((n, v) => n + v.value, 0);
    await waitUntil(async () => (await scored()) >= HOSTS * steps, 60_000, 'every step to be written to the results topic').catch(
      async (e: Error) => {
        throw new Error(`${e.message}: ${await scored()} of ${HOSTS * steps}; ${JSON.stringify(s.health().check().body)}`);
      },
    );
    // Every prediction is in the topic once, keyed by its host.
    const reader = new KafkaClient({ clientId: 'test-reader', brokers: [kafka.brokers], logLevel: logLevel.NOTHING }).consumer({
      groupId: 'results-reader',
    });
    await reader.connect();
    await reader.subscribe({ topics: [output], fromBeginning: true });
    const seen = new Map<string, number>();
    let keyed = 0;
    await reader.run({
      eachMessage: async ({ message }) => {
        const line = String(message.value);
        const host = /,host=([^,\s]+)/.exec(line)?.[1];
        if (host !== undefined && String(message.key) === host) keyed++;
        const k = `${host}@${line.slice(line.lastIndexOf(' ') + 1)}`;
        seen.set(k, (seen.get(k) ?? 0) + 1);
      },
    });
    await waitUntil(async () => seen.size >= HOSTS * steps, 30_000, 'the results topic to be read').finally(() => reader.disconnect());
    expect(seen.size).toBe(HOSTS * steps);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(keyed).toBe(HOSTS * steps);
    expect((await metrics.writeRefused.get()).values.reduce((n, v) => n + v.value, 0)).toBe(0);
  }, 120_000);

  it('reports the broker unreachable in /health while it does not answer, and resumes from the committed offsets', async () => {
    // The replicas of the first test are still in the group: scores go on from their commits.
    const before = (await predictions(influxd)).length;
    const rows = simulate({
      ...DEFAULT_SIMULATION,
      hosts: HOSTS,
      steps: 30,
      stepS: STEP_S,
      start: START + STEPS * STEP_S * 1000,
      seed: 10,
    });
    const steps = telegrafMessages(rows);
    kafka.signal('SIGSTOP');
    try {
      await waitUntil(async () => sources.every((s) => s.health().check().degraded), 60_000, '/health to report the broker unreachable');
      expect((sources[0].health().check().body as { status: string }).status).toBe('unreachable');
    } finally {
      kafka.signal('SIGCONT');
    }
    for (const list of steps)
      await producer.send({ topic: TOPIC, messages: list.map((m) => ({ partition: m.partition, key: m.key, value: m.value })) });
    // The first 30 steps of each host are written; the last step of each host closes when complete.
    await waitUntil(async () => (await predictions(influxd)).length >= before + HOSTS * 30, 90_000, 'scoring to resume after the outage');
    await waitUntil(async () => sources.every((s) => !s.health().check().degraded), 30_000, '/health to recover');
    expect((await predictions(influxd)).length).toBe(before + HOSTS * 30);
  }, 240_000);

  it('reports failing writes in /health while InfluxDB is down, and writes everything once it is back', async () => {
    const before = (await predictions(influxd)).length;
    const rows = simulate({
      ...DEFAULT_SIMULATION,
      hosts: HOSTS,
      steps: 20,
      stepS: STEP_S,
      start: START + (STEPS + 100) * STEP_S * 1000, // after the outage test's 30 steps
      seed: 11,
    });
    const writers = sources.slice(0, 2);
    await influxd.stop();
    try {
      for (const list of telegrafMessages(rows))
        await producer.send({ topic: TOPIC, messages: list.map((m) => ({ partition: m.partition, key: m.key, value: m.value })) });
      await waitUntil(async () => writers.some((s) => writesOf(s).writes === 'failing'), 60_000, '/health to report failing writes');
      const failing = writers.find((s) => writesOf(s).writes === 'failing') as KafkaSource;
      expect(failing.health().check().degraded).toBe(true);
      expect(writesOf(failing).writes_failing_s).toBeGreaterThanOrEqual(10);
    } finally {
      await influxd.restart();
    }
    await waitUntil(async () => (await predictions(influxd)).length >= before + HOSTS * 20, 90_000, 'the writes to resume');
    await waitUntil(async () => writers.every((s) => writesOf(s).writes === 'ok'), 30_000, '/health to report the writes ok');
    expect((await predictions(influxd)).length).toBe(before + HOSTS * 20);
  }, 240_000);
});
