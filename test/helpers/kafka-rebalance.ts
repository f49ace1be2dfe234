/**
 * The "scale out" scenario of SOURCE=kafka, shared by `npm run bench:kafka-rebalance`
 * (bench/kafka-rebalance.ts) and its short version in jest
 * (test/integration/kafka-rebalance.test.ts):
 *
 * a real broker and a real influxd; the service as real processes (`serve`, SOURCE=kafka,
 * LEARN=auto with no MODEL_PATH: learning each host, the bundled model as the prior), two
 * replicas of one consumer group at first; a producer sends Telegraf-schema line protocol
 * (one message per line, keyed by host, nanosecond timestamps) step by step at a pace
 * (compressed time: a collection step every `paceMs`, timestamps spaced by the step); a
 * third replica is started at step `joinAtStep`, one replica is SIGKILLed at step
 * `killAtStep`; then the producer stops and the run waits until the group has committed
 * every partition to its end.
 *
 * Then it checks what was written against what one uninterrupted pass over each partition
 * gives (PartitionStream over the partition's messages read back from the topic from offset
 * 0, with the detector options the service derives from the same environment):
 * - ai_predictions: one row per (host, step), no row missing, none extra, every field equal;
 * - the results topic (KAFKA_RESULTS_TOPIC, every write of every replica also goes there):
 *   how many steps were written more than once, and whether any rewrite differed;
 * and measures each rebalance (from the event: the third replica's spawn, the SIGKILL):
 * `assignedMs` until the live replicas' /health `kafka.partitions` are a disjoint cover of
 * all partitions (the joiner holding some), `caughtUpMs` until the group's committed offset
 * of every partition has reached the end the partition had at the event (the backlog the
 * rebalance made is written, so its lag is shrinking again), and the peak lag in between.
 */
import { Kafka as KafkaClient, Partitioners, logLevel, type Admin } from 'kafkajs';
import { resolve } from 'node:path';
import { loadConfig, type Config } from '../../src/config';
import type { Detector } from '../../src/core/detector';
import { hostLearningOptions } from '../../src/core/host-learning';
import { StreamingDetector } from '../../src/core/streaming';
import { DEFAULT_SIMULATION, simulate } from '../../src/data/simulate';
import { TelegrafEncoder } from '../../src/data/telegraf-sim';
import { parseLine } from '../../src/influx/line-parser';
import { PartitionStream, type KafkaMessageIn } from '../../src/kafka/partition';
import { loadDetectorFile } from '../../src/model-store';
import { loadMapping } from '../../src/poller/mapping-file';
import { ROOT } from './fixtures';
import { DB, predictions, storeFor } from './influx-data';
import { startInfluxd, type Influxd } from './influxd';
import { startKafka, type Kafka } from './kafka';
import { startService, type ServiceProcess } from './process';

export interface RebalanceOptions {
  hosts: number;
  steps: number;
  partitions: number;
  /** Collection step (COLLECTION_INTERVAL_S) and the spacing of the timestamps. */
  stepS: number;
  /** Wall time between two steps sent. */
  paceMs: number;
  /** The third replica is started just before this step is sent. */
  joinAtStep: number;
  /** A replica is SIGKILLed `killDelayMs` after this step is sent (while it scores and writes the step, to catch it with work not yet committed). */
  killAtStep: number;
  killDelayMs: number;
  /**
   * 0, or influxd is stopped (SIGSTOP) from just before that step is sent until this long
   * after: the victim is killed with that step scored and its write in flight, neither
   * written nor committed.
   */
  stallInfluxMs: number;
  /** Which replica: 0 and 1 are the first two, 2 the one that joined. */
  kill: 0 | 1 | 2;
  sessionTimeoutS: number;
  seed: number;
  /** How long to wait, after the last step is sent, for every partition to be committed to its end. */
  drainTimeoutMs: number;
  /** Progress lines (the bench prints them; the test keeps them for a failure message). */
  log: (line: string) => void;
}

export interface RebalanceTiming {
  event: 'join' | 'kill';
  atStep: number;
  /** Event -> every partition assigned to a live replica (each once; the joiner holds some). */
  assignedMs: number | null;
  /** Event -> every partition committed up to its end at the event. */
  caughtUpMs: number | null;
  /** Largest sum over partitions of (end - committed) seen between the event and caughtUp. */
  peakLag: number;
  /** The assignment once done, by replica name. */
  assignment: Record<string, number[]>;
}

export interface RebalanceReport {
  options: RebalanceOptions;
  /** Host-steps produced (hosts x steps). */
  expected: number;
  messages: number;
  /** Messages per partition (the producer's hash). */
  perPartition: number[];
  /** Lines one uninterrupted pass per partition writes. */
  onePass: number;
  /** ai_predictions rows. */
  rows: number;
  /** (host, step) of the one pass with no row, with more than one row, rows of no (host, step) of the one pass. */
  missing: string[];
  duplicated: string[];
  extra: string[];
  /** Rows with some field unlike the one pass's (first few, with the field). */
  mismatched: Array<{ key: string; field: string; got: unknown; want: unknown }>;
  mismatchedCount: number;
  /** Rows still learning (prior scores) and learned. */
  learningRows: number;
  learnedRows: number;
  /** Messages of the killed replica's partitions not committed when it was killed (its work in flight). */
  victimUncommitted: number;
  /** Results topic: writes in all, steps written more than once, of those whose rewrites differed. */
  writes: number;
  rewritten: number;
  rewrittenDiffering: string[];
  timings: RebalanceTiming[];
  /** The largest learning_hosts a replica reported (LEARN=auto must learn). */
  learningHostsSeen: number;
  /** Exit codes of the replicas stopped with SIGTERM at the end (the killed one: null). */
  exitCodes: Record<string, number | null>;
  produceS: number;
  drainS: number;
  /** The replicas' log lines about assignments and replays, for a failure message. */
  logs: Record<string, string>;
}

const TOPIC = 'telegraf';
const RESULTS = 'predictions';
const GROUP = 'detectors';
const NAMES = ['a', 'b', 'c'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Time for a beforeAll-free test: broker and influxd start, the run, the read back. */
export function scenarioBudgetMs(o: RebalanceOptions): number {
  return 60_000 + o.steps * o.paceMs + o.drainTimeoutMs + 30_000;
}

/** The detector the service runs per partition, from the same environment (src/server.ts kafkaSource). */
export function serviceEngine(config: Config): (prior: Detector) => StreamingDetector {
  const p = config.poller;
  const learn = p.learn;
  if (!learn) throw new Error('the replicas would not learn: LEARN=auto with no MODEL_PATH must learn');
  return (prior) => StreamingDetector.learner(hostLearningOptions({ prior, gate: p.gate, maxKeys: p.maxHosts }));
}

interface Replica {
  name: string;
  proc: ServiceProcess | null;
  starting: Promise<ServiceProcess> | null;
  killed: boolean;
}

interface Sample {
  t: number;
  parts: Record<string, number[] | null>;
  committed: number[];
  high: number[];
}

async function health(url: string): Promise<{ partitions: number[]; learning_hosts: number } | null> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { kafka?: { partitions: number[]; learning_hosts: number } };
    return body.kafka ?? null;
  } catch {
    return null;
  }
}

/** The group's committed offsets and the topic's ends (retried: a just-started broker answers NOT_COORDINATOR for a while). */
async function offsets(admin: Admin, partitions: number): Promise<{ committed: number[]; high: number[] }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await offsetsOnce(admin, partitions);
    } catch (e) {
      if (attempt >= 40) throw e;
      await sleep(250);
    }
  }
}

async function offsetsOnce(admin: Admin, partitions: number): Promise<{ committed: number[]; high: number[] }> {
  const [c] = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
  const ends = await admin.fetchTopicOffsets(TOPIC);
  const committed = new Array<number>(partitions).fill(0);
  const high = new Array<number>(partitions).fill(0);
  for (const p of c.partitions) committed[p.partition] = Math.max(0, Number(p.offset));
  for (const e of ends) high[e.partition] = Number(e.high);
  return { committed, high };
}

/** Every message of a topic from offset 0 to its end now, by partition, in offset order (a plain consumer). */
async function readTopic(client: KafkaClient, topic: string): Promise<Map<number, KafkaMessageIn[]>> {
  const admin = client.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const out = new Map<number, KafkaMessageIn[]>();
  const want = new Map<number, bigint>();
  for (const e of ends) {
    out.set(e.partition, []);
    if (BigInt(e.high) > 0n) want.set(e.partition, BigInt(e.high));
  }
  if (want.size === 0) return out;
  const consumer = client.consumer({ groupId: `readback-${topic}-${process.pid}-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let done: () => void = () => undefined;
  const all = new Promise<void>((r) => (done = r));
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const list = out.get(batch.partition) as KafkaMessageIn[];
      for (const m of batch.messages) list.push({ offset: BigInt(m.offset), value: m.value ? m.value.toString('utf8') : null });
      const end = want.get(batch.partition);
      if (end !== undefined && list.length > 0 && list[list.length - 1].offset + 1n >= end) want.delete(batch.partition);
      if (want.size === 0) done();
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`reading ${topic} back took over 60 s`)), 60_000);
  });
  try {
    await Promise.race([all, late]);
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  for (const list of out.values()) list.sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
  return out;
}

/** host@ms of a prediction line, and its fields. */
function predictionOf(line: string): { key: string; fields: Record<string, number> } {
  const r = parseLine(line);
  if (!r.ok) throw new Error(`not a prediction line: ${line}`);
  // Prediction lines carry millisecond timestamps (the parser reads nanoseconds).
  const ms = line.slice(line.lastIndexOf(' ') + 1);
  const fields: Record<string, number> = {};
  for (const [k, v] of Object.entries(r.point.fields)) fields[k] = Number(v);
  return { key: `${r.point.tags.host}@${ms}`, fields };
}

function disjointCover(lists: Array<number[] | null>, partitions: number): boolean {
  const seen = new Set<number>();
  for (const l of lists) {
    if (!l) return false;
    for (const p of l) {
      if (seen.has(p)) return false;
      seen.add(p);
    }
  }
  return seen.size === partitions;
}

export async function runRebalanceScenario(o: RebalanceOptions): Promise<RebalanceReport> {
  let kafka: Kafka | undefined;
  let influxd: Influxd | undefined;
  const replicas: Replica[] = NAMES.map((name) => ({ name, proc: null, starting: null, killed: false }));
  let admin: Admin | undefined;
  let sampling = true;
  let sampler: Promise<void> = Promise.resolve();
  try {
    [kafka, influxd] = await Promise.all([startKafka(), startInfluxd()]);
    const client = new KafkaClient({ clientId: 'rebalance-bench', brokers: [kafka.brokers], logLevel: logLevel.NOTHING });
    admin = client.admin();
    await admin.connect();
    // The helper waits for a leader of every partition (a just-started broker can take a while).
    for (const topic of [TOPIC, RESULTS]) await kafka.createTopic(topic, o.partitions);
    const store = storeFor(influxd);
    await store.createDatabase?.();
    await store.close?.();

    const env = {
      SOURCE: 'kafka',
      KAFKA_BROKERS: kafka.brokers,
      KAFKA_TOPIC: TOPIC,
      KAFKA_GROUP_ID: GROUP,
      KAFKA_RESULTS_TOPIC: RESULTS,
      KAFKA_SESSION_TIMEOUT_S: String(o.sessionTimeoutS),
      COLLECTION_INTERVAL_S: String(o.stepS),
      INFLUX_URL: influxd.url,
      INFLUX_DATABASE: DB,
      LOG_LEVEL: 'info',
    };
    // The detector options the replicas derive from this environment (no MODEL_PATH: LEARN=auto learns).
    const config = loadConfig(env);
    const engine = serviceEngine(config);
    const prior = loadDetectorFile(resolve(ROOT, config.modelPath));
    const mapping = loadMapping(config.poller.mappingFile, config.poller.netIncludeSent, config.poller.metricSet);

    const spawn = (r: Replica): Promise<ServiceProcess> => {
      r.starting = startService({ ...env, KAFKA_CLIENT_ID: `detector-${r.name}` }, 60_000).then((p) => (r.proc = p));
      return r.starting;
    };
    const live = () => replicas.filter((r) => r.starting && !r.killed);

    // The group coordinator answers (a just-started broker loads its offsets topic first).
    await offsets(admin, o.partitions);
    // Two replicas; the producer starts once both hold partitions (a new group writes from then on).
    await Promise.all([spawn(replicas[0]), spawn(replicas[1])]);
    const samples: Sample[] = [];
    let learningHostsSeen = 0;
    const sampleOnce = async (): Promise<Sample> => {
      const parts: Record<string, number[] | null> = {};
      for (const r of live()) {
        const h = r.proc ? await health(r.proc.url) : null;
        parts[r.name] = h ? h.partitions : null;
        if (h) learningHostsSeen = Math.max(learningHostsSeen, h.learning_hosts);
      }
      const { committed, high } = await offsets(admin as Admin, o.partitions);
      const s = { t: Date.now(), parts, committed, high };
      samples.push(s);
      return s;
    };
    const t0 = Date.now();
    for (;;) {
      const s = await sampleOnce();
      const lists = Object.values(s.parts);
      if (lists.every((l) => l && l.length > 0) && disjointCover(lists, o.partitions)) break;
      if (Date.now() - t0 > 60_000) {
        const out = replicas.map((r) => `--- ${r.name} (exit ${r.proc?.child.exitCode})\n${r.proc?.output().slice(-3000) ?? ''}`);
        throw new Error(`the first two replicas did not share the partitions: ${JSON.stringify(s.parts)}\n${out.join('\n')}`);
      }
      await sleep(200);
    }
    o.log(`replicas a, b hold ${JSON.stringify(samples[samples.length - 1].parts)} after ${Date.now() - t0} ms`);
    sampler = (async () => {
      while (sampling) {
        await sampleOnce().catch(() => undefined);
        await sleep(200);
      }
    })();

    // The producer: one send per step (kafkajs may reorder sends in flight), keyed by host.
    const producer = client.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const stepMs = o.stepS * 1000;
    const start = Math.floor(Date.now() / stepMs) * stepMs - o.steps * stepMs;
    const rows = simulate({
      ...DEFAULT_SIMULATION,
      hosts: o.hosts,
      steps: o.steps,
      stepS: o.stepS,
      start,
      seed: o.seed,
      incidentsPerDay: 30,
    });
    const bySteps = new Map<number, typeof rows>();
    for (const r of rows) bySteps.set(r.timestamp, [...(bySteps.get(r.timestamp) ?? []), r]);
    const times = [...bySteps.keys()].sort((a, b) => a - b);
    const enc = new TelegrafEncoder(o.seed, 'ns');
    const events: Array<{ event: 'join' | 'kill'; atStep: number; t: number; high: number[]; live: string[]; joiner?: string }> = [];
    let messages = 0;
    let victimUncommitted = 0;
    const p0 = Date.now();
    for (let k = 0; k < times.length; k++) {
      if (k === o.joinAtStep) {
        const { high } = await offsets(admin, o.partitions);
        const t = Date.now();
        void spawn(replicas[2]).catch((e: Error) => o.log(`replica c did not start: ${e.message}`));
        events.push({ event: 'join', atStep: k, t, high, live: live().map((r) => r.name), joiner: 'c' });
        o.log(`step ${k}: replica c started`);
      }
      const list = (bySteps.get(times[k]) as typeof rows).flatMap((r) =>
        enc.lines(r, o.stepS, false).map((value) => ({ key: r.host, value })),
      );
      const stall = k === o.killAtStep && o.stallInfluxMs > 0;
      if (stall) influxd.signal('SIGSTOP');
      const sent = Date.now();
      await producer.send({ topic: TOPIC, messages: list });
      messages += list.length;
      if (k === o.killAtStep) {
        const victim = replicas[o.kill];
        if (!victim.proc) throw new Error(`replica ${victim.name} is not running at step ${k}`);
        await sleep(o.killDelayMs);
        victim.proc.child.kill('SIGKILL');
        victim.killed = true;
        const t = Date.now();
        const { high, committed } = await offsets(admin, o.partitions);
        const held = samples[samples.length - 1].parts[victim.name] ?? [];
        victimUncommitted = held.reduce((sum, p) => sum + high[p] - committed[p], 0);
        events.push({ event: 'kill', atStep: k, t, high, live: live().map((r) => r.name) });
        o.log(
          `step ${k}: replica ${victim.name} SIGKILLed ${o.killDelayMs} ms after the step was sent; ${victimUncommitted} messages of its partitions ${JSON.stringify(held)} uncommitted`,
        );
        if (stall) {
          await sleep(Math.max(0, sent + o.stallInfluxMs - Date.now()));
          influxd.signal('SIGCONT');
        }
      }
      const wait = p0 + (k + 1) * o.paceMs - Date.now();
      if (wait > 0) await sleep(wait);
    }
    await producer.disconnect();
    const produceS = (Date.now() - p0) / 1000;
    o.log(`produced ${messages} messages (${rows.length} host-steps) in ${produceS.toFixed(1)} s`);

    // Drain: every partition committed to its end.
    const d0 = Date.now();
    for (;;) {
      const { committed, high } = await offsets(admin, o.partitions);
      if (committed.every((c, p) => c >= high[p])) break;
      if (Date.now() - d0 > o.drainTimeoutMs) {
        o.log(`not drained: committed ${JSON.stringify(committed)} of ${JSON.stringify(high)}`);
        break;
      }
      await sleep(250);
    }
    const drainS = (Date.now() - d0) / 1000;
    sampling = false;
    await sampler;
    // The drained state, sampled (the sampler may have stopped just before it).
    await sampleOnce();

    // One uninterrupted pass per partition, over the messages read back from the topic.
    const byPartition = await readTopic(client, TOPIC);
    const want = new Map<string, Record<string, number>>();
    const perPartition: number[] = [];
    for (let p = 0; p < o.partitions; p++) {
      const msgs = byPartition.get(p) ?? [];
      perPartition.push(msgs.length);
      const s = new PartitionStream(p, engine(prior), mapping, stepMs, 0n);
      for (const line of s.process(msgs).lines) {
        const { key, fields } = predictionOf(line);
        if (want.has(key)) throw new Error(`the one pass wrote ${key} twice`);
        want.set(key, fields);
      }
    }

    // ai_predictions against the one pass.
    const got = await predictions(influxd);
    const byKey = new Map<string, Array<Record<string, unknown>>>();
    for (const r of got) {
      const key = `${r.host}@${r.time}`;
      byKey.set(key, [...(byKey.get(key) ?? []), r]);
    }
    const missing = [...want.keys()].filter((k) => !byKey.has(k));
    const duplicated = [...byKey].filter(([, l]) => l.length > 1).map(([k]) => k);
    const extra = [...byKey.keys()].filter((k) => !want.has(k));
    const mismatched: RebalanceReport['mismatched'] = [];
    let mismatchedCount = 0;
    let learningRows = 0;
    for (const [key, list] of byKey) {
      const w = want.get(key);
      if (!w) continue;
      const r = list[0];
      if (Number(r.learning) === 1) learningRows++;
      const field = Object.keys(w).find((f) => Number(r[f]) !== w[f]);
      if (field !== undefined) {
        mismatchedCount++;
        if (mismatched.length < 10) mismatched.push({ key, field, got: r[field], want: w[field] });
      }
    }

    // Every write of every replica, from the results topic.
    const results = await readTopic(client, RESULTS);
    const written = new Map<string, string[]>();
    let writes = 0;
    for (const list of results.values())
      for (const m of list) {
        const { key, fields } = predictionOf(String(m.value));
        written.set(key, [...(written.get(key) ?? []), JSON.stringify(fields)]);
        writes++;
      }
    const rewritten = [...written.values()].filter((l) => l.length > 1).length;
    const rewrittenDiffering = [...written].filter(([, l]) => new Set(l).size > 1).map(([k]) => k);

    const timings = events.map((e) => timing(e, samples, o.partitions));

    const exitCodes: Record<string, number | null> = {};
    const logs: Record<string, string> = {};
    for (const r of replicas) {
      if (!r.proc) continue;
      exitCodes[r.name] = r.killed ? null : await r.proc.stop('SIGTERM');
      logs[r.name] = r.proc
        .output()
        .split('\n')
        .filter((l) => /partition|rebalanc|error|kafka consumer/i.test(l))
        .join('\n');
    }
    await admin.disconnect();
    admin = undefined;
    return {
      options: o,
      expected: rows.length,
      messages,
      perPartition,
      victimUncommitted,
      onePass: want.size,
      rows: got.length,
      missing,
      duplicated,
      extra,
      mismatched,
      mismatchedCount,
      learningRows,
      learnedRows: byKey.size - learningRows,
      writes,
      rewritten,
      rewrittenDiffering,
      timings,
      learningHostsSeen,
      exitCodes,
      produceS,
      drainS,
      logs,
    };
  } finally {
    sampling = false;
    await sampler.catch(() => undefined);
    await admin?.disconnect().catch(() => undefined);
    for (const r of replicas) {
      const p = r.proc ?? (await r.starting?.catch(() => null));
      if (p && p.child.exitCode === null && p.child.signalCode === null) await p.stop('SIGKILL');
    }
    await Promise.all([kafka?.stop(), influxd?.cleanup()]);
  }
}

function timing(
  e: { event: 'join' | 'kill'; atStep: number; t: number; high: number[]; live: string[]; joiner?: string },
  samples: Sample[],
  partitions: number,
): RebalanceTiming {
  const after = samples.filter((s) => s.t >= e.t);
  let assigned: Sample | undefined;
  for (const s of after) {
    const lists = e.live.map((n) => s.parts[n] ?? null);
    if (e.joiner && !(s.parts[e.joiner]?.length ?? 0)) continue;
    if (disjointCover(lists, partitions)) {
      assigned = s;
      break;
    }
  }
  let caughtUp: Sample | undefined;
  let peakLag = 0;
  for (const s of after) {
    peakLag = Math.max(
      peakLag,
      s.high.reduce((sum, h, p) => sum + Math.max(0, h - s.committed[p]), 0),
    );
    if (assigned && s.t >= assigned.t && s.committed.every((c, p) => c >= e.high[p])) {
      caughtUp = s;
      break;
    }
  }
  const assignment: Record<string, number[]> = {};
  if (assigned) for (const n of e.live) assignment[n] = assigned.parts[n] ?? [];
  return {
    event: e.event,
    atStep: e.atStep,
    assignedMs: assigned ? assigned.t - e.t : null,
    caughtUpMs: caughtUp ? caughtUp.t - e.t : null,
    peakLag,
    assignment,
  };
}

/** The report in a few lines. */
export function formatReport(r: RebalanceReport): string {
  const o = r.options;
  const lines = [
    `kafka rebalance: ${o.hosts} hosts x ${o.steps} steps of ${o.stepS} s, one step every ${o.paceMs} ms, ${o.partitions} partitions, session timeout ${o.sessionTimeoutS} s`,
    `  replicas a, b; c joined at step ${o.joinAtStep}; ${NAMES[o.kill]} SIGKILLed ${o.killDelayMs} ms after step ${o.killAtStep} was sent${o.stallInfluxMs > 0 ? ` (influxd stopped for ${o.stallInfluxMs} ms from then)` : ''}, with ${r.victimUncommitted} messages of its partitions uncommitted`,
    `  produced ${r.messages} messages (${r.expected} host-steps; per partition ${r.perPartition.join('/')}) in ${r.produceS.toFixed(1)} s; drained ${r.drainS.toFixed(1)} s after`,
    `  ai_predictions: ${r.rows} rows for ${r.onePass} steps of the one pass: missing ${r.missing.length}, duplicated ${r.duplicated.length}, extra ${r.extra.length}, fields unlike the one pass ${r.mismatchedCount}`,
    `  learning: ${r.learningRows} rows still learning, ${r.learnedRows} learned; up to ${r.learningHostsSeen} hosts learning on a replica`,
    `  writes (results topic): ${r.writes}; steps written more than once ${r.rewritten}, with differing values ${r.rewrittenDiffering.length}`,
  ];
  for (const t of r.timings)
    lines.push(
      `  ${t.event} at step ${t.atStep}: all partitions assigned after ${fmt(t.assignedMs)}, caught up after ${fmt(t.caughtUpMs)} (peak lag ${t.peakLag} messages); ${JSON.stringify(t.assignment)}`,
    );
  lines.push(`  exit codes at SIGTERM: ${JSON.stringify(r.exitCodes)}`);
  return lines.join('\n');
}

const fmt = (ms: number | null) => (ms === null ? 'never' : `${(ms / 1000).toFixed(1)} s`);
