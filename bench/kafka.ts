/**
 * `npm run bench:kafka`: the Kafka mode's throughput on this machine, one replica, a real
 * broker (test/helpers/kafka.ts) and a real influxd, in one run:
 *
 * 1. BENCH_HOSTS hosts x BENCH_STEPS steps of Telegraf's line protocol (cpu, mem, net eth0
 *    and lo: 4 messages per host-step, keyed by host) are produced to a topic of
 *    BENCH_PARTITIONS partitions (not timed);
 * 2. `consume`: the same client (kafkajs) only consumes the topic in a consumer group
 *    (eachBatch, nothing done per message): the ceiling;
 * 3. `score`: KafkaSource (src/kafka/consumer.ts) with no sink: parse, join, the streaming
 *    detector of each partition (the learning defaults), prediction lines, commits;
 * 4. `score+influx`: the same, writing every prediction to influxd before committing;
 * 5. `score+topic`: the same, writing every prediction to a results topic instead
 *    (KAFKA_RESULTS_TOPIC without INFLUX_URL), on the same broker.
 *
 * Prints host-steps per second of each, and the ratios to `consume`.
 * The target (issue 15): score+influx >= 100,000 host-steps/s and >= half of consume.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { Registry } from 'prom-client';
import { DEFAULT_GATE } from '../src/core/gate';
import { hostLearningOptions } from '../src/core/host-learning';
import { StreamingDetector } from '../src/core/streaming';
import type { Detector } from '../src/core/detector';
import { DEFAULT_SIMULATION, simulate } from '../src/data/simulate';
import { TelegrafEncoder } from '../src/data/telegraf-sim';
import { createMetricsStore } from '../src/influx';
import { KafkaSource } from '../src/kafka/consumer';
import { ModelStore, loadDetectorFile } from '../src/model-store';
import { createMetrics } from '../src/plugins/metrics';
import { startInfluxd } from '../test/helpers/influxd';
import { startKafka } from '../test/helpers/kafka';
import { kafkaSourceOptions } from '../test/helpers/kafka-source';

const HOSTS = Number(process.env.BENCH_HOSTS ?? 500);
const STEPS = Number(process.env.BENCH_STEPS ?? 720);
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? 8);
const STEP_S = 10;
const TOPIC = 'telegraf';
const RESULTS_TOPIC = 'predictions';
const silent = {
  info: () => undefined,
  warn: (o: object, m: string) => process.env.BENCH_VERBOSE && process.stderr.write(`${m} ${JSON.stringify(o)}\n`),
  error: (o: object, m: string) => process.stderr.write(`${m} ${JSON.stringify(o)}\n`),
};

/** CPU seconds (user + system) of the process whose command line holds `needle` (influxd, by its config path), or NaN. */
function cpuOf(needle: string): number {
  for (const pid of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)) continue;
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      // utime and stime (fields 14 and 15 of stat), in clock ticks of 1/100 s.
      return (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      // gone meanwhile
    }
  }
  return NaN;
}

const selfCpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function main(): Promise<void> {
  const [kafka, influxd] = await Promise.all([startKafka({ heapMb: 1024 }), startInfluxd()]);
  try {
    await kafka.createTopic(TOPIC, PARTITIONS);
    const client = new Kafka({ clientId: 'bench', brokers: [kafka.brokers], logLevel: logLevel.NOTHING });
    const producer = client.producer();
    await producer.connect();
    const t0 = performance.now();
    let rows = simulate({
      ...DEFAULT_SIMULATION,
      hosts: HOSTS,
      steps: STEPS,
      stepS: STEP_S,
      start: Date.parse('2026-11-20T00:00:00Z'),
      seed: 4,
    });
    rows.sort((a, b) => a.timestamp - b.timestamp || (a.host < b.host ? -1 : 1));
    const enc = new TelegrafEncoder(4, 'ns');
    let batch: Array<{ key: string; value: string }> = [];
    let messages = 0;
    // One send at a time: kafkajs may deliver sends in flight together out of order, and a
    // host's points must arrive in time order (as Telegraf's do).
    for (const r of rows) {
      for (const value of enc.lines(r, STEP_S, false)) batch.push({ key: r.host, value });
      if (batch.length >= 20_000) {
        await producer.send({ topic: TOPIC, acks: 1, messages: batch });
        messages += batch.length;
        batch = [];
      }
    }
    if (batch.length > 0) await producer.send({ topic: TOPIC, acks: 1, messages: batch });
    messages += batch.length;
    await producer.disconnect();
    const hostSteps = rows.length;
    // Not held through the timed phases: a live consumer has no such heap to collect around.
    rows = [];
    process.stdout.write(
      `produced ${messages} messages (${hostSteps} host-steps, ${HOSTS} hosts) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    );

    // Every group starts at offset 0: committed up front, so KafkaSource writes everything.
    const admin = client.admin();
    await admin.connect();
    const fromStart = async (groupId: string) =>
      admin.setOffsets({
        groupId,
        topic: TOPIC,
        partitions: Array.from({ length: PARTITIONS }, (_, partition) => ({ partition, offset: '0' })),
      });

    // 2. consume only
    await fromStart('bench-consume');
    const consumer = client.consumer({ groupId: 'bench-consume' });
    await consumer.connect();
    await consumer.subscribe({ topics: [TOPIC] });
    let seen = 0;
    let done: () => void = () => undefined;
    const all = new Promise<void>((r) => (done = r));
    const c0 = performance.now();
    const cc0 = selfCpu();
    await consumer.run({
      eachBatch: async ({ batch: b }) => {
        seen += b.messages.length;
        if (seen >= messages) done();
      },
    });
    await all;
    const consumeS = (performance.now() - c0) / 1000;
    await consumer.disconnect();
    const rate = (s: number) => Math.round(hostSteps / s);
    process.stdout.write(
      `consume       ${consumeS.toFixed(2)} s  ${rate(consumeS)} host-steps/s (CPU: this process ${(selfCpu() - cc0).toFixed(1)} s)\n`,
    );

    const root = resolve(__dirname, '..', '..');
    const prior = loadDetectorFile(resolve(root, 'models', 'model.json'));
    const store = createMetricsStore({ version: 'v1', url: influxd.url, database: 'system_metrics', batchSize: 5000 });
    await store.createDatabase?.();
    await kafka.createTopic(RESULTS_TOPIC, PARTITIONS);
    const run = async (name: string, withSink: boolean, toTopic = false): Promise<number> => {
      const groupId = `bench-${name.replace(/\W/g, '-')}`;
      await fromStart(groupId);
      const metrics = createMetrics(new Registry(), false);
      const source = new KafkaSource(
        kafkaSourceOptions({
          brokers: [kafka.brokers],
          topic: TOPIC,
          groupId,
          clientId: 'bench',
          resultsTopic: toTopic ? RESULTS_TOPIC : null,
          sessionTimeoutMs: 30_000,
          concurrency: Number(process.env.BENCH_CONCURRENCY ?? 4),
          collectionIntervalMs: STEP_S * 1000,
          learnWindowMs: 0,
          engine: (p: Detector) => StreamingDetector.learner(hostLearningOptions({ prior: p, gate: DEFAULT_GATE, maxKeys: 1_000_000 })),
        }),
        ModelStore.fromDetector(prior, 'models/model.json'),
        withSink ? store : null,
        metrics,
        silent,
      );
      const s0 = performance.now();
      const cpu0 = selfCpu();
      const influxCpu0 = cpuOf(`${influxd.dir}/influxdb.conf`);
      await source.start();
      // The second half of the stream is the steady state: every host learned, refits hourly (stream time).
      let half: { t: number; n: number } | null = null;
      for (;;) {
        const scored = (await metrics.pointsScored.get()).values.find((v) => v.labels.source === 'kafka')?.value ?? 0;
        if (!half && scored >= hostSteps / 2) half = { t: performance.now(), n: scored };
        if (scored >= hostSteps) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const end = performance.now();
      const secs = (end - s0) / 1000;
      const cpu = selfCpu() - cpu0;
      const influxCpu = cpuOf(`${influxd.dir}/influxdb.conf`) - influxCpu0;
      const h = half as { t: number; n: number };
      const steady = Math.round((hostSteps - h.n) / ((end - h.t) / 1000));
      await source.stop();
      const mem = process.memoryUsage().rss / 1e6;
      process.stdout.write(
        `${name.padEnd(13)} ${secs.toFixed(2)} s  ${rate(secs)} host-steps/s; second half ${steady} host-steps/s ` +
          `(${(steady / rate(consumeS)).toFixed(2)} of consume; RSS ${mem.toFixed(0)} MB; ` +
          `CPU: this process ${cpu.toFixed(1)} s, influxd ${influxCpu.toFixed(1)} s)\n`,
      );
      return secs;
    };
    // BENCH_PHASES (score,score+influx,score+topic by default) picks the phases, for profiles of one.
    const phases = (process.env.BENCH_PHASES ?? 'score,score+influx,score+topic').split(',');
    if (phases.includes('score')) await run('score', false);
    if (phases.includes('score+influx')) await run('score+influx', true);
    if (phases.includes('score+topic')) await run('score+topic', false, true);
    await admin.disconnect();
    await store.close?.();
  } finally {
    await Promise.all([kafka.stop(), influxd.cleanup()]);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:kafka failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
