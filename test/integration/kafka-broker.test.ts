import { Kafka as KafkaClient, logLevel, type Consumer, type Producer } from 'kafkajs';
import { startKafka, KAFKA_START_TIMEOUT_MS, type Kafka } from '../helpers/kafka';

// A real Kafka broker (scripts/kafka-env.sh, one KRaft process: test/helpers/kafka.ts) and
// the project's client, kafkajs: keyed messages produced to a topic of several partitions
// come back through a consumer group with each key's messages in one partition, in the
// order they were sent.
const PARTITIONS = 4;
const HOSTS = ['web-1', 'web-2', 'db-1', 'db-2', 'cache-1', 'batch-7'];
const PER_HOST = 25;

interface Got {
  key: string;
  partition: number;
  offset: bigint;
  seq: number;
}

describe('Kafka broker (KRaft, one node) with kafkajs', () => {
  let kafka: Kafka;
  let client: KafkaClient;
  let producer: Producer | undefined;
  let consumer: Consumer | undefined;

  beforeAll(async () => {
    kafka = await startKafka();
    client = new KafkaClient({ clientId: 'kafka-broker-test', brokers: [kafka.brokers], logLevel: logLevel.NOTHING });
  }, KAFKA_START_TIMEOUT_MS);

  afterAll(async () => {
    await consumer?.disconnect().catch(() => undefined);
    await producer?.disconnect().catch(() => undefined);
    await kafka?.stop();
  }, 30_000);

  it('serves a topic that the helper created, on the loopback address it reports', async () => {
    expect(kafka.brokers).toMatch(/^127\.0\.0\.1:\d+$/);
    await kafka.createTopic('helper-topic', 3);
    const admin = client.admin();
    await admin.connect();
    try {
      const meta = await admin.fetchTopicMetadata({ topics: ['helper-topic'] });
      expect(meta.topics[0].partitions.map((p) => p.partitionId).sort()).toEqual([0, 1, 2]);
      await expect(kafka.createTopic('helper-topic', 3)).rejects.toThrow(/already exists/);
    } finally {
      await admin.disconnect();
    }
  });

  it('keeps each key in one partition, in order, through a consumer group (eachBatch)', async () => {
    const topic = 'metrics-keyed';
    await kafka.createTopic(topic, PARTITIONS);
    producer = client.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    // Interleaved hosts, sent in order (one send after another: sends in flight at once
    // may reach the broker in either order).
    const sent: Array<{ key: string; value: string }> = [];
    for (let seq = 0; seq < PER_HOST; seq++)
      for (const host of HOSTS)
        sent.push({ key: host, value: `cpu,host=${host} usage_idle=${90 + (seq % 10)},seq=${seq}i ${1_733_000_000 + seq}000000000` });
    for (let i = 0; i < sent.length; i += 40) await producer.send({ topic, messages: sent.slice(i, i + 40) });

    consumer = client.consumer({ groupId: 'kafka-broker-test-group', sessionTimeout: 10_000, heartbeatInterval: 1000 });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const got: Got[] = [];
    let done: () => void = () => undefined;
    const all = new Promise<void>((resolve) => (done = resolve));
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const seq = Number(/seq=(\d+)i/.exec(m.value?.toString() ?? '')?.[1]);
          got.push({ key: m.key?.toString() ?? '', partition: batch.partition, offset: BigInt(m.offset), seq });
        }
        if (got.length >= sent.length) done();
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      all,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`consumed ${got.length} of ${sent.length} messages in 20 s`)), 20_000);
      }),
    ]).finally(() => clearTimeout(timer));

    expect(got).toHaveLength(sent.length);
    const partitionsUsed = new Set<number>();
    for (const host of HOSTS) {
      const mine = got.filter((g) => g.key === host);
      // One partition per key, the messages in the order sent, at increasing offsets.
      expect(new Set(mine.map((g) => g.partition)).size).toBe(1);
      expect(mine.map((g) => g.seq)).toEqual([...Array(PER_HOST).keys()]);
      for (let i = 1; i < mine.length; i++) expect(mine[i].offset).toBeGreaterThan(mine[i - 1].offset);
      partitionsUsed.add(mine[0].partition);
    }
    // Six keys over four partitions: the default partitioner spreads them (murmur2 of the key).
    expect(partitionsUsed.size).toBeGreaterThan(1);
  }, 40_000);
});
