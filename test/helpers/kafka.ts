/**
 * Starts a real Apache Kafka broker for integration tests and benchmarks: the jars that
 * scripts/kafka-env.sh assembles from Maven Central, run as one KRaft process that is
 * both broker and controller (`process.roles=broker,controller`), on two free loopback
 * ports (PLAINTEXT and CONTROLLER; extra SASL/SSL listeners on more, with `listeners`),
 * with its storage formatted in a temporary directory (SCRAM users with `addScram`). Settings for one node and a
 * fast start: replication factor 1 for the internal topics, few internal partitions, no
 * initial rebalance delay, no automatic topic creation (tests create their topics with
 * createTopic, with the partition count they mean).
 *
 * The jars: $KAFKA_LIB, else the script's cache directory. When they are missing, start
 * fails with one line that says to run scripts/kafka-env.sh. Java >= 17: $JAVA, else
 * $JAVA_HOME/bin/java, else `java` on PATH.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Kafka as KafkaClient, logLevel, type Admin } from 'kafkajs';
import { freePort } from './ports';
import { exitOnSignals } from './process';

/** scripts/kafka-env.sh of this checkout, from test/helpers/ or from dist/test/helpers/ (benchmarks). */
function scriptPath(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const p = path.join(dir, 'scripts', 'kafka-env.sh');
    if (fs.existsSync(p)) return p;
    if (path.dirname(dir) === dir) throw new Error(`scripts/kafka-env.sh not found above ${__dirname}`);
  }
}

/** Time for a beforeAll that starts the broker (about 5-10 s here; more on a loaded machine). */
export const KAFKA_START_TIMEOUT_MS = 90_000;

/** The version scripts/kafka-env.sh pins (KAFKA_VERSION="x.y.z"). */
export function kafkaVersion(): string {
  const script = scriptPath();
  const v = /^KAFKA_VERSION="([^"]+)"/m.exec(fs.readFileSync(script, 'utf8'))?.[1];
  if (!v) throw new Error(`${script} has no KAFKA_VERSION="..." line`);
  return v;
}

/** Where scripts/kafka-env.sh puts the jars (same defaults as the script). */
export function cachedKafkaLib(): string {
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(process.env.KAFKA_DIR || path.join(cache, 'infra-anomaly-detector', `kafka-${kafkaVersion()}`), 'lib');
}

/** The lib/ directory holding kafka_2.13-<version>.jar and its dependencies. Throws one line. */
export function findKafkaLib(): string {
  const version = kafkaVersion();
  const fromEnv = process.env.KAFKA_LIB;
  const lib = fromEnv || cachedKafkaLib();
  const jar = path.join(lib, `kafka_2.13-${version}.jar`);
  if (!fs.existsSync(jar)) {
    const where = fromEnv ? `KAFKA_LIB=${fromEnv}` : lib;
    throw new Error(
      `Kafka ${version} not found (${where} has no kafka_2.13-${version}.jar): run \`bash scripts/kafka-env.sh\` (fetches it from Maven Central; needs Java 17+ and Maven) and set KAFKA_LIB to the path it prints`,
    );
  }
  return lib;
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The java binary (see the file comment). Throws one line. */
export function findJava(): string {
  const candidates = [
    process.env.JAVA,
    process.env.JAVA_HOME && path.join(process.env.JAVA_HOME, 'bin', 'java'),
    ...(process.env.PATH ?? '').split(path.delimiter).map((d) => d && path.join(d, 'java')),
    '/usr/bin/java',
  ];
  for (const c of candidates) if (c && isExecutable(c)) return c;
  throw new Error('java not found: Kafka needs Java 17+ (apt-get install openjdk-17-jre-headless, or set JAVA=/path/to/java)');
}

/** Options of {@link startKafka}. */
export interface KafkaOptions {
  /** The broker's JVM heap (-Xmx) in MiB; default 512. */
  heapMb?: number;
  /** How long to wait for the broker to accept connections and create a topic; default 60 s. */
  startTimeoutMs?: number;
  /** Extra server.properties lines (`key=value`), appended after the defaults. */
  extraConfig?: Record<string, string | number | boolean>;
  /**
   * Listeners besides PLAINTEXT (which stays the inter-broker listener and the one the
   * readiness probe uses): listener name (e.g. `SASL`, `TLS`) -> security protocol, each on
   * a free loopback port (Kafka.listeners). Their settings (`sasl.enabled.mechanisms`,
   * `listener.name.<name>.<mechanism>.sasl.jaas.config`, `ssl.keystore.*`) go in extraConfig.
   */
  listeners?: Record<string, 'SSL' | 'SASL_PLAINTEXT' | 'SASL_SSL'>;
  /** SCRAM credentials stored when the storage is formatted (`--add-scram`), e.g. `SCRAM-SHA-512=[name=alice,password=secret]`. */
  addScram?: string[];
}

/** A running broker owned by one test file. */
export interface Kafka {
  /** `127.0.0.1:<port>`, the PLAINTEXT listener (bootstrap servers for any client). */
  readonly brokers: string;
  /** `127.0.0.1:<port>` of each listener of KafkaOptions.listeners, by name. */
  readonly listeners: Readonly<Record<string, string>>;
  /** The Kafka version that runs. */
  readonly version: string;
  /** The temporary directory (server.properties, log4j2.properties, data/). */
  readonly dir: string;
  /** Creates a topic (replication factor 1) and resolves once each partition has a leader. */
  createTopic(name: string, partitions: number): Promise<void>;
  /** The last output of the broker, for failure messages. */
  logs(): string;
  /** Sends a signal to the broker's JVM (SIGSTOP, then SIGCONT: a broker that stops answering for a while). */
  signal(sig: NodeJS.Signals): void;
  /** Stops the broker (SIGTERM, SIGKILL after 10 s) and deletes the directory. */
  stop(): Promise<void>;
}

function serverProperties(
  dir: string,
  port: number,
  controllerPort: number,
  listeners: Array<{ name: string; protocol: string; port: number }>,
  extra: KafkaOptions['extraConfig'],
): string {
  const more = (f: (l: { name: string; protocol: string; port: number }) => string) => listeners.map((l) => `,${f(l)}`).join('');
  const lines: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}${more((l) => `${l.name}://127.0.0.1:${l.port}`)}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${port}${more((l) => `${l.name}://127.0.0.1:${l.port}`)}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': `PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT${more((l) => `${l.name}:${l.protocol}`)}`,
    'log.dirs': path.join(dir, 'data'),
    'num.partitions': 1,
    'default.replication.factor': 1,
    'auto.create.topics.enable': false,
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 4,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 2,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'group.initial.rebalance.delay.ms': 0,
    // Two cores here: fewer threads than the defaults (3 network, 8 I/O).
    'num.network.threads': 2,
    'num.io.threads': 4,
    // The log cleaner's 128 MiB default buffer is a quarter of the heap.
    'log.cleaner.dedupe.buffer.size': 8 * 1024 * 1024,
    ...extra,
  };
  return Object.entries(lines)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join('\n')
    .concat('\n');
}

// Warnings and errors, and the one INFO line that says the server started.
const LOG4J2 = `status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
`;

/** A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as kafka-storage random-uuid). */
function clusterId(): string {
  for (;;) {
    const id = crypto.randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function run(file: string, args: string[], cwd: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      if (!err) return resolve();
      const why = `${stderr}\n${stdout}`.trim().split('\n').filter(Boolean).pop() ?? err.message.split('\n')[0];
      reject(new Error(`kafka-storage format failed: ${why}`));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the broker; resolves once it accepts connections and a topic can be created. */
export async function startKafka(opts: KafkaOptions = {}): Promise<Kafka> {
  const version = kafkaVersion();
  const lib = findKafkaLib();
  const java = findJava();
  const heapMb = opts.heapMb ?? 512;
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
  const classPath = path.join(lib, '*');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kafka-test-'));
  const propsPath = path.join(dir, 'server.properties');
  const log4jPath = path.join(dir, 'log4j2.properties');
  fs.writeFileSync(log4jPath, LOG4J2);
  const jvmCommon = [`-Dlog4j2.configurationFile=${log4jPath}`, `-Dkafka.logs.dir=${path.join(dir, 'logs')}`, '-Djava.awt.headless=true'];

  let output = '';
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-16_384);
  };
  // The last lines, after the last ERROR line and the exception under it (the reason, above its stack trace).
  const tail = () => {
    const lines = output.trim().split('\n');
    const last = lines.slice(-5);
    let at = lines.length - 1;
    while (at >= 0 && !/ ERROR /.test(lines[at])) at--;
    const why = at >= 0 && at < lines.length - 5 ? lines.slice(at, Math.min(at + 2, lines.length - 5)) : [];
    return (why.length ? [...why, '...', ...last] : last).join(' | ');
  };
  let child: ChildProcess | undefined;
  let exitInfo: string | undefined;
  let exited: Promise<void> = Promise.resolve();
  let admin: Admin | undefined;
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);
  exitOnSignals();

  const kill = async (): Promise<void> => {
    await admin?.disconnect().catch(() => undefined);
    admin = undefined;
    const proc = child;
    if (!proc || exitInfo !== undefined) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  const launch = async (port: number, controllerPort: number, listeners: Array<{ name: string; protocol: string; port: number }>) => {
    fs.rmSync(path.join(dir, 'data'), { recursive: true, force: true });
    fs.writeFileSync(propsPath, serverProperties(dir, port, controllerPort, listeners, opts.extraConfig));
    // A short-lived JVM: the client compiler only, a small heap.
    await run(
      java,
      [
        '-Xmx128m',
        '-XX:TieredStopAtLevel=1',
        ...jvmCommon,
        '-cp',
        classPath,
        'kafka.tools.StorageTool',
        'format',
        '-t',
        clusterId(),
        '-c',
        propsPath,
        ...(opts.addScram ?? []).flatMap((s) => ['--add-scram', s]),
      ],
      dir,
      startTimeoutMs,
    );
    output = '';
    exitInfo = undefined;
    const proc = spawn(
      java,
      [`-Xmx${heapMb}m`, `-Xms${Math.min(heapMb, 128)}m`, ...jvmCommon, '-cp', classPath, 'kafka.Kafka', propsPath],
      {
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child = proc;
    proc.stdout?.on('data', append);
    proc.stderr?.on('data', append);
    exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        exitInfo = signal ? `signal ${signal}` : `code ${code}`;
        resolve();
      });
      proc.once('error', (err) => {
        exitInfo = err.message;
        resolve();
      });
    });

    const deadline = Date.now() + startTimeoutMs;
    const alive = () => {
      if (exitInfo !== undefined) throw new Error(`kafka exited during start (${exitInfo}): ${tail()}`);
      if (Date.now() > deadline)
        throw new Error(`kafka did not accept connections and create a topic within ${startTimeoutMs} ms: ${tail()}`);
    };
    while (!(await canConnect(port))) {
      alive();
      await sleep(100);
    }
    admin = new KafkaClient({
      clientId: 'kafka-test-helper',
      brokers: [`127.0.0.1:${port}`],
      logLevel: logLevel.NOTHING,
      retry: { retries: 2, initialRetryTime: 100 },
    }).admin();
    const probe = `_kafka_helper_ready_${process.pid}`;
    for (;;) {
      alive();
      try {
        await admin.connect();
        await admin.createTopics({ topics: [{ topic: probe, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
        await admin.deleteTopics({ topics: [probe] });
        return;
      } catch {
        await sleep(200);
      }
    }
  };

  // A free port can be taken between probing and binding: try fresh ports a few times.
  let port = 0;
  let listeners: Array<{ name: string; protocol: string; port: number }> = [];
  for (let attempt = 1; ; attempt++) {
    const taken = new Set<number>();
    const fresh = async () => {
      let p = await freePort();
      while (taken.has(p)) p = await freePort();
      taken.add(p);
      return p;
    };
    port = await fresh();
    const controllerPort = await fresh();
    listeners = [];
    for (const [name, protocol] of Object.entries(opts.listeners ?? {})) listeners.push({ name, protocol, port: await fresh() });
    try {
      await launch(port, controllerPort, listeners);
      break;
    } catch (err) {
      await kill();
      const message = err instanceof Error ? err.message : String(err);
      if (attempt >= 3 || !/address already in use|BindException/i.test(message)) {
        process.removeListener('exit', killOnExit);
        fs.rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  return {
    brokers: `127.0.0.1:${port}`,
    listeners: Object.fromEntries(listeners.map((l) => [l.name, `127.0.0.1:${l.port}`])),
    version,
    dir,
    signal: (sig) => {
      child?.kill(sig);
    },
    createTopic: async (name, partitions) => {
      if (!admin) throw new Error('kafka is stopped');
      const created = await admin.createTopics({ topics: [{ topic: name, numPartitions: partitions, replicationFactor: 1 }] });
      if (!created) throw new Error(`topic ${name} already exists`);
      // Wait for a leader of every partition ourselves: kafkajs's waitForLeaders gives up after
      // the admin's two retries, which a loaded machine's broker can take longer than.
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          const { topics } = await admin.fetchTopicMetadata({ topics: [name] });
          const parts = topics[0]?.partitions ?? [];
          if (parts.length === partitions && parts.every((x) => x.leader >= 0)) return;
        } catch (e) {
          // UNKNOWN_TOPIC_OR_PARTITION / LEADER_NOT_AVAILABLE while the topic is being created.
          if (Date.now() > deadline) throw e;
        }
        if (Date.now() > deadline) throw new Error(`topic ${name}: no leader for every partition within 60 s`);
        await sleep(200);
      }
    },
    logs: () => output,
    stop: async () => {
      await kill();
      process.removeListener('exit', killOnExit);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
