/**
 * `npm run bench:kafka-client`: the Node Kafka clients against a real broker on this
 * machine (test/helpers/kafka.ts: Kafka from scripts/kafka-env.sh, one KRaft process),
 * in one run: for each client, produce BENCH_MESSAGES small line-protocol messages
 * (~120 bytes, keyed by host) to a fresh topic of BENCH_PARTITIONS partitions, then
 * consume them all in a consumer group with eachBatch. Prints messages per second for
 * both sides and checks that each host's messages came from one partition, in order.
 *
 * Clients, through the same KafkaJS-style API (producer.send, consumer.run({ eachBatch })):
 * - kafkajs (pure JavaScript; the project's dependency);
 * - @confluentinc/kafka-javascript (librdkafka bindings; its KafkaJS-compatible API), only
 *   when it is installed: it is no dependency of the project, because its install needs a
 *   prebuilt binary from GitHub or a source build of librdkafka. Install it for this
 *   benchmark with Debian's libzstd-dev liblz4-dev libsasl2-dev libcurl4-openssl-dev
 *   libssl-dev zlib1g-dev and
 *   `CKJS_LINKING=dynamic npm_config_build_from_source=true npm install --no-save @confluentinc/kafka-javascript@1.10.1`.
 *
 * BENCH_MESSAGES (default 1,000,000), BENCH_PARTITIONS (8), BENCH_HOSTS (keys, 1000),
 * BENCH_CHUNK (messages per send, 1000), BENCH_IN_FLIGHT (sends in flight, 8; more than 1
 * lets kafkajs deliver two sends out of order, librdkafka keeps the order of its queue),
 * BENCH_CONFLUENT_BATCH (js.consumer.max.batch.size, 1000), BENCH_CLIENTS (comma list,
 * default `kafkajs,confluent`; the order they run in).
 */
import { readFileSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { startKafka } from '../test/helpers/kafka';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 1_000_000);
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? 8);
const HOSTS = Number(process.env.BENCH_HOSTS ?? 1000);
const CHUNK = Number(process.env.BENCH_CHUNK ?? 1000);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 8);
const CONFLUENT_BATCH = Number(process.env.BENCH_CONFLUENT_BATCH ?? 1000);
const CLIENTS = (process.env.BENCH_CLIENTS ?? 'kafkajs,confluent').split(',').filter(Boolean);
const CONFLUENT = '@confluentinc/kafka-javascript';

interface Msg {
  key: string;
  value: string;
}

/** The shape both clients' KafkaJS-style APIs share, as far as this benchmark uses them. */
interface BatchPayload {
  batch: { partition: number; messages: Array<{ key: Buffer | null; value: Buffer | null }> };
}
interface BenchProducer {
  connect(): Promise<void>;
  send(record: { topic: string; messages: Msg[] }): Promise<unknown>;
  disconnect(): Promise<void>;
}
interface BenchConsumer {
  connect(): Promise<void>;
  subscribe(s: { topics: string[] }): Promise<void>;
  run(r: { eachBatch: (p: BatchPayload) => Promise<void> }): Promise<void>;
  disconnect(): Promise<void>;
}
interface BenchClient {
  name: string;
  producer(): BenchProducer;
  consumer(groupId: string): BenchConsumer;
}

function kafkajsClient(brokers: string): BenchClient {
  const kafka = new Kafka({ clientId: 'bench', brokers: [brokers], logLevel: logLevel.ERROR });
  return {
    name: 'kafkajs 2.2.4',
    producer: () => kafka.producer({ allowAutoTopicCreation: false }) as unknown as BenchProducer,
    consumer: (groupId) => {
      const c = kafka.consumer({ groupId });
      return {
        connect: () => c.connect(),
        subscribe: (s) => c.subscribe({ topics: s.topics, fromBeginning: true }),
        run: (r) => c.run({ eachBatch: (p) => r.eachBatch(p) }),
        disconnect: () => c.disconnect(),
      };
    },
  };
}

/** The installed @confluentinc/kafka-javascript's KafkaJS API, or a line saying why not. */
async function confluentClient(brokers: string): Promise<BenchClient | string> {
  interface ConfluentModule {
    librdkafkaVersion: string;
    KafkaJS: {
      Kafka: new (c: object) => { producer(c: object): BenchProducer; consumer(c: object): BenchConsumer };
      logLevel: { ERROR: number };
    };
  }
  let mod: ConfluentModule;
  try {
    const ns = (await import(CONFLUENT)) as ConfluentModule & { default?: ConfluentModule };
    mod = ns.default ?? ns;
  } catch (err) {
    return `not installed (${(err instanceof Error ? err.message : String(err)).split('\n')[0]}): see this file's comment`;
  }
  const version = (JSON.parse(readFileSync(require.resolve(`${CONFLUENT}/package.json`), 'utf8')) as { version: string }).version;
  const kafka = new mod.KafkaJS.Kafka({ kafkaJS: { clientId: 'bench', brokers: [brokers], logLevel: mod.KafkaJS.logLevel.ERROR } });
  return {
    name: `${CONFLUENT} ${version} (librdkafka ${mod.librdkafkaVersion})`,
    producer: () => kafka.producer({ kafkaJS: { allowAutoTopicCreation: false } }),
    consumer: (groupId) => kafka.consumer({ kafkaJS: { groupId, fromBeginning: true }, 'js.consumer.max.batch.size': CONFLUENT_BATCH }),
  };
}

/** ~120-byte Telegraf-like line-protocol points, keyed by host; a sequence number per host. */
function makeMessages(n: number): Msg[] {
  const out: Msg[] = new Array(n);
  const seq = new Array<number>(HOSTS).fill(0);
  const t0 = 1_733_000_000_000_000_000n;
  for (let i = 0; i < n; i++) {
    const h = i % HOSTS;
    const host = `host-${String(h).padStart(5, '0')}`;
    const s = seq[h]++;
    const idle = (90 + ((i * 7919) % 1000) / 100).toFixed(3);
    const user = (((i * 104729) % 800) / 100).toFixed(3);
    const system = (((i * 15485863) % 300) / 100).toFixed(3);
    const value = `cpu,cpu=cpu-total,host=${host} usage_idle=${idle},usage_user=${user},usage_system=${system},seq=${s}i ${t0 + BigInt(s) * 10_000_000_000n}`;
    out[i] = { key: host, value };
  }
  return out;
}

interface Result {
  client: string;
  produceS: number;
  consumeS: number;
  firstToLastS: number;
  checks: string[];
}

async function benchClient(
  client: BenchClient,
  createTopic: (t: string, p: number) => Promise<void>,
  messages: Msg[],
  tag: string,
): Promise<Result> {
  const topic = `bench-${tag}`;
  await createTopic(topic, PARTITIONS);
  const producer = client.producer();
  await producer.connect();
  // Produce: chunks of CHUNK messages, at most IN_FLIGHT sends awaiting their acks.
  let phase = 'produce';
  let acked = 0;
  let received = 0;
  const progress = setInterval(() => process.stderr.write(`  ${client.name}: ${phase}: ${acked} acked, ${received} received\n`), 10_000);
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < messages.length) {
      const start = next;
      next += CHUNK;
      // Fresh objects for each send: the confluent client's send() rewrites the messages it
      // is given (value to a Buffer, partition -1, ...), and kafkajs then drops a message
      // whose partition is -1 without a word.
      const chunk = messages.slice(start, start + CHUNK).map((m) => ({ key: m.key, value: m.value }));
      await producer.send({ topic, messages: chunk });
      acked += chunk.length;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const produceS = (performance.now() - t0) / 1000;
  await producer.disconnect();

  // Consume: one consumer in a fresh group from the beginning, until every message came.
  phase = 'consume';
  const consumer = client.consumer(`bench-${tag}-group`);
  await consumer.connect();
  await consumer.subscribe({ topics: [topic] });
  const partitionOf = new Map<string, number>();
  const lastSeq = new Map<string, number>();
  const splitKeys = new Set<string>();
  let outOfOrder = 0;
  let first = 0;
  let last = 0;
  const c0 = performance.now();
  let done: () => void = () => undefined;
  const all = new Promise<void>((r) => (done = r));
  await consumer.run({
    eachBatch: async ({ batch }) => {
      if (!first) first = performance.now();
      for (const m of batch.messages) {
        const key = m.key?.toString() ?? '';
        const p = partitionOf.get(key);
        if (p === undefined) partitionOf.set(key, batch.partition);
        else if (p !== batch.partition) splitKeys.add(key);
        const value = m.value?.toString() ?? '';
        const s = Number(/seq=(\d+)i/.exec(value)?.[1] ?? -1);
        if (s !== (lastSeq.get(key) ?? -1) + 1) outOfOrder++;
        lastSeq.set(key, s);
      }
      received += batch.messages.length;
      if (received >= messages.length) {
        last = performance.now();
        done();
      }
    },
  });
  await all;
  const consumeS = (last - c0) / 1000;
  phase = 'disconnect';
  await consumer.disconnect();
  clearInterval(progress);
  const checks = [
    received === messages.length ? `all ${received} received` : `RECEIVED ${received} of ${messages.length}`,
    splitKeys.size ? `${splitKeys.size} HOSTS IN MORE THAN ONE PARTITION` : 'each host in one partition',
    // Sends in flight at once may reach the broker in any order (see IN_FLIGHT).
    outOfOrder ? `${outOfOrder} messages after a later one of their host` : "each host's messages in order",
  ];
  return { client: client.name, produceS, consumeS, firstToLastS: (last - first) / 1000, checks };
}

const rate = (n: number, s: number) => `${Math.round(n / s).toLocaleString('en-US')} msg/s`;

async function main(): Promise<void> {
  const t = performance.now();
  const messages = makeMessages(MESSAGES);
  const bytes = messages.reduce((a, m) => a + m.value.length, 0);
  console.log(
    `${MESSAGES.toLocaleString('en-US')} messages (values ${(bytes / MESSAGES).toFixed(0)} bytes on average, ${HOSTS} host keys), ${PARTITIONS} partitions, sends of ${CHUNK} with ${IN_FLIGHT} in flight; made in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  console.log(`e.g. ${messages[0].value}`);
  const kafka = await startKafka({ heapMb: 1024 });
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      void kafka.stop().finally(() => process.exit(130));
    });
  console.log(`Kafka ${kafka.version} at ${kafka.brokers}`);
  try {
    let round = 0;
    for (const name of CLIENTS) {
      round++;
      const client =
        name === 'kafkajs'
          ? kafkajsClient(kafka.brokers)
          : name === 'confluent'
            ? await confluentClient(kafka.brokers)
            : `unknown client ${name}`;
      if (typeof client === 'string') {
        console.log(`${name}: skipped: ${client}`);
        continue;
      }
      const r = await benchClient(client, kafka.createTopic, messages, `${name}-${round}`);
      console.log(
        `${r.client}: produce ${rate(MESSAGES, r.produceS)} (${r.produceS.toFixed(1)} s); consume (eachBatch, group) ${rate(MESSAGES, r.consumeS)} (${r.consumeS.toFixed(1)} s from run(), ${r.firstToLastS.toFixed(1)} s first to last message); ${r.checks.join(', ')}`,
      );
    }
  } finally {
    await kafka.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
