import {
  Kafka,
  logLevel as kafkaLogLevel,
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type Producer,
  type SASLOptions,
} from 'kafkajs';
import { readFileSync } from 'node:fs';
import type { Counter, Gauge } from 'prom-client';
import type { Detector } from '../core/detector';
import type { StreamingDetector } from '../core/streaming';
import type { MetricsStore } from '../influx/types';
import type { ModelStore } from '../model-store';
import type { HealthContributor } from '../routes/health';
import type { Mapping } from '../poller/telegraf';
import { backoffMs, refusalOf } from '../poller/writer';
import { checkBrokerTls } from './tls-check';
import { PartitionStream, type KafkaMessageIn, type MessageSkip } from './partition';

/**
 * The Kafka source: joins a consumer group on the topic Telegraf's `outputs.kafka` writes
 * (line protocol, keyed by host, so a host's points stay in one partition), runs each
 * partition through its own PartitionStream (the pure step: join, streaming detector,
 * prediction lines), writes the predictions (InfluxDB and/or a results topic) and only
 * then commits the partition's offset. A rebalance moves partitions: a newly assigned
 * partition is replayed from `learnWindowMs` before now up to its committed offset without
 * writing, so its detector holds what the previous owner's did, and scoring resumes where
 * the previous owner's commits end. Nothing is committed before it is written; a crash
 * rescores from the last commit, and the rewrite carries the same values.
 */

export interface KafkaSourceOptions {
  brokers: string[];
  topic: string;
  groupId: string;
  clientId: string;
  /** Predictions also go to this topic (one message per step, keyed by host), or null. */
  resultsTopic: string | null;
  ssl: { ca?: string } | null;
  sasl: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string } | null;
  sessionTimeoutMs: number;
  /** Partitions whose batches are processed at once (their writes overlap). */
  concurrency: number;
  mapping: Mapping;
  collectionIntervalMs: number;
  /** History replayed into a newly assigned partition's detector. */
  learnWindowMs: number;
  /** A new streaming detector for a partition, around the loaded model (the prior, or the named model). */
  engine: (loaded: Detector) => StreamingDetector;
  writeBatchLines: number;
  maxBackoffMs: number;
}

export interface KafkaMetrics {
  pointsScored: Counter<'source'>;
  anomalies: Counter<'source'>;
  alerts: Counter;
  skipped: Counter<'reason'>;
  written: Counter;
  writeErrors: Counter;
  writeRefused: Counter;
  learningHosts: Gauge;
  kafkaLag: Gauge<'partition'>;
  kafkaMessages: Counter;
  kafkaPartitions: Gauge;
  kafkaReplayed: Counter;
}

interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * Messages per call of the partition stream (a heartbeat between calls keeps the group
 * membership during long replays; a chunk's write overlaps the scoring of the next).
 */
const CHUNK_MESSAGES = 10_000;

/** How long the writes of predictions must have failed (with no success since) before /health says degraded. */
const WRITES_FAILING_DEGRADE_MS = 10_000;

/** Bytes of prediction lines per send to the results topic (well below the broker's 1 MiB default record batch limit). */
const RESULTS_SEND_BYTES = 256 * 1024;
/** What a record adds to its value in a batch (key, headers, varints), counted generously. */
const RESULTS_RECORD_OVERHEAD = 64;

export class KafkaSource {
  private readonly kafka: Kafka;
  private readonly consumer: Consumer;
  private readonly admin: Admin;
  private producer: Producer | null = null;
  private readonly streams = new Map<number, PartitionStream>();
  /** Partitions sought once to their replay start (a second seek would loop if retention moved the start). */
  private readonly sought = new Set<number>();
  private assigned: number[] = [];
  private lastError: string | null = null;
  private lastErrorAt = 0;
  private lastOk: number | null = null;
  private started = false;
  private memberId: string | null = null;
  private startedAt = 0;
  private stopping = false;
  private scored = 0;
  private probe: NodeJS.Timeout | null = null;
  private readonly lags = new Map<number, bigint>();
  /** When the writes of predictions began to fail without a success since (null: they do not fail). */
  private writeFailingSince: number | null = null;

  constructor(
    private readonly opts: KafkaSourceOptions,
    private readonly models: ModelStore,
    private readonly sink: MetricsStore | null,
    private readonly metrics: KafkaMetrics,
    private readonly log: Log,
  ) {
    const sasl: SASLOptions | undefined = opts.sasl ? ({ ...opts.sasl } as SASLOptions) : undefined;
    this.kafka = new Kafka({
      clientId: opts.clientId,
      brokers: opts.brokers,
      ssl: opts.ssl ? (opts.ssl.ca ? { ca: [opts.ssl.ca] } : true) : false,
      sasl,
      logLevel: kafkaLogLevel.ERROR,
      logCreator: () => (entry) => {
        const { message, ...rest } = entry.log;
        this.log.warn({ kafka: entry.namespace, ...rest }, message);
      },
      retry: { initialRetryTime: 300, retries: 8, maxRetryTime: Math.max(1000, opts.maxBackoffMs) },
    });
    this.consumer = this.kafka.consumer({
      groupId: opts.groupId,
      sessionTimeout: opts.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(opts.sessionTimeoutMs / 5)),
      rebalanceTimeout: Math.max(opts.sessionTimeoutMs, 30_000),
      // Larger fetches: fewer round trips and commits per message (Telegraf's messages are ~100-300 bytes).
      maxBytesPerPartition: 4 << 20,
      maxBytes: 32 << 20,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: Math.max(1000, opts.maxBackoffMs) },
    });
    this.admin = this.kafka.admin();
    const c = this.consumer.events;
    this.consumer.on(c.GROUP_JOIN, (e) => this.onAssignment(e.payload.memberAssignment[opts.topic] ?? [], e.payload.memberId));
    this.consumer.on(c.CRASH, (e) => this.fail(e.payload.error));
    this.consumer.on(c.FETCH, () => this.ok());
  }

  /** Connects and joins the group; the consumer runs in the background. */
  async start(): Promise<void> {
    this.started = true;
    this.startedAt = Date.now();
    // A certificate the client does not trust is a configuration error: say so at once
    // (kafkajs would retry it like an unreachable broker for about 90 s).
    if (this.opts.ssl) await checkBrokerTls(this.opts.brokers, this.opts.ssl.ca);
    await this.admin.connect();
    if (this.opts.resultsTopic) {
      this.producer = this.kafka.producer({ allowAutoTopicCreation: false, idempotent: false });
      await this.producer.connect();
    }
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.opts.topic], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.concurrency,
      eachBatch: (p) => this.onBatch(p),
    });
    // Lag and broker reachability also while no batch flows.
    this.probe = setInterval(() => void this.probeBroker(), 5000);
    this.probe.unref();
    this.log.info({ brokers: this.opts.brokers, topic: this.opts.topic, group: this.opts.groupId }, 'kafka consumer started');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.probe) clearInterval(this.probe);
    await this.consumer.disconnect().catch(() => undefined);
    await this.producer?.disconnect().catch(() => undefined);
    await this.admin.disconnect().catch(() => undefined);
    this.log.info({ scored_total: this.scored }, 'kafka consumer stopped');
  }

  private ok(): void {
    this.lastOk = Date.now();
  }

  private fail(e: unknown): void {
    this.lastError = (e as Error).message;
    this.lastErrorAt = Date.now();
    this.log.warn({ err: this.lastError }, 'kafka: broker error (the consumer retries)');
  }

  /** A new assignment: partitions no longer held drop their state (the next owner replays them). */
  private onAssignment(partitions: number[], memberId: string): void {
    const now = new Set(partitions);
    // A new member id: this replica was expelled (its session expired) and joined again;
    // others may have committed meanwhile, so no stream of before can go on.
    const rejoined = this.memberId !== null && memberId !== this.memberId;
    this.memberId = memberId;
    for (const [p, stream] of this.streams) {
      // A kept partition goes on only where its stream stopped exactly at the committed
      // offset: its fetch restarts there. A stream mid-replay, or one that processed
      // messages it did not commit (a batch cut short by the rebalance), is made afresh.
      if (now.has(p) && !rejoined && stream.next === stream.replayUntil) continue;
      this.dropStream(p);
      if (!now.has(p)) {
        this.lags.delete(p);
        this.metrics.kafkaLag.remove({ partition: String(p) });
      }
    }
    // A partition sought to its replay start whose stream is not made yet (no batch since
    // the seek): after a rebalance its fetch restarts at the committed offset, so it must be
    // sought again (kept, its first batch would be taken as the replay's start: history lost).
    for (const p of this.sought) if (!this.streams.has(p)) this.sought.delete(p);
    this.assigned = [...partitions].sort((a, b) => a - b);
    this.metrics.kafkaPartitions.set(partitions.length);
    this.log.info({ partitions: this.assigned }, 'kafka: partitions assigned');
  }

  /**
   * Makes a partition's stream: its committed offset C is where writing starts (none, in a
   * new group: the first message produced after this replica started, as the poller starts
   * at its start); the replay starts at the first offset of `learnWindowMs` ago (or C, if
   * later).
   */
  private async prepare(partition: number): Promise<{ stream: PartitionStream; start: bigint }> {
    const topic = this.opts.topic;
    const [committed] = await this.admin.fetchOffsets({ groupId: this.opts.groupId, topics: [topic] });
    const c = committed.partitions.find((x) => x.partition === partition)?.offset ?? '-1';
    const ends = await this.admin.fetchTopicOffsets(topic);
    const end = ends.find((x) => x.partition === partition);
    const low = BigInt(end?.low ?? '0');
    const high = BigInt(end?.high ?? '0');
    // No commit yet (a new group): write what arrived since this replica started.
    let replayUntil = BigInt(c);
    if (replayUntil < 0n) {
      const sinceStart = await this.admin.fetchTopicOffsetsByTimestamp(topic, this.startedAt);
      const o = BigInt(sinceStart.find((x) => x.partition === partition)?.offset ?? '-1');
      replayUntil = o >= 0n ? o : high;
    }
    const since = await this.admin.fetchTopicOffsetsByTimestamp(topic, Date.now() - this.opts.learnWindowMs);
    let start = BigInt(since.find((x) => x.partition === partition)?.offset ?? '-1');
    if (start < 0n || start > replayUntil) start = replayUntil;
    if (start < low) start = low;
    const loaded = (this.models.current as NonNullable<ModelStore['current']>).detector;
    const engine = this.opts.engine(loaded);
    const stream = new PartitionStream(partition, engine, this.opts.mapping, this.opts.collectionIntervalMs, replayUntil);
    this.log.info(
      { partition, replay_from: String(start), write_from: String(replayUntil), committed: c },
      'kafka: partition assigned: replaying its history into its detector',
    );
    return { stream, start };
  }

  /** Forgets a partition's stream: its next batch makes a new one, replayed to the committed offset. */
  private dropStream(partition: number): void {
    this.streams.delete(partition);
    this.sought.delete(partition);
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale } = payload;
    const partition = batch.partition;
    if (!this.models.current) throw new Error('no model loaded');
    let stream = this.streams.get(partition);
    if (!stream) {
      const { stream: s, start } = await this.prepare(partition);
      const first = BigInt(batch.firstOffset() ?? String(start));
      if (first > start && !this.sought.has(partition)) {
        // Fetched from the committed offset: go back to the start of the history first.
        this.sought.add(partition);
        this.consumer.seek({ topic: batch.topic, partition, offset: String(start) });
        return;
      }
      this.sought.add(partition);
      // History older than the window (before `start`) is not replayed.
      s.next = start;
      this.streams.set(partition, (stream = s));
    }
    const messages = batch.messages;
    this.metrics.kafkaMessages.inc(messages.length);
    const stillOurs = () => isRunning() && !isStale() && !this.stopping;
    // A chunk's write goes on while the next chunk is scored: one write in flight per
    // partition, in order; a chunk's offset is resolved once its write is done.
    // A write that throws (not a refused or failed write: those it handles) throws here, where
    // it is awaited, as it did before writes overlapped (never as an unhandled rejection).
    let inFlight: { done: Promise<boolean | { error: unknown }>; last: bigint } | null = null;
    const settle = async (): Promise<boolean> => {
      if (!inFlight) return true;
      const { done, last } = inFlight;
      inFlight = null;
      const r = await done;
      if (typeof r === 'object') throw r.error;
      if (!r) return false;
      payload.resolveOffset(String(last));
      return true;
    };
    for (let a = 0; a < messages.length; a += CHUNK_MESSAGES) {
      if (!isRunning() || isStale() || this.streams.get(partition) !== stream) {
        await settle();
        // Cut short: what was processed past the last commit is fetched again from the
        // commit, so this stream (which has seen it) cannot take it again.
        if (this.streams.get(partition) === stream && stream.next !== stream.replayUntil) this.dropStream(partition);
        return;
      }
      // Mapped a chunk at a time: objects of a chunk die young (a whole batch's would
      // survive every scavenge until its last chunk is done).
      const chunk: KafkaMessageIn[] = [];
      for (let k = a, end = Math.min(messages.length, a + CHUNK_MESSAGES); k < end; k++)
        chunk.push({ offset: BigInt(messages[k].offset), value: messages[k].value });
      const out = stream.process(chunk, Date.now());
      this.count(out.skipped);
      if (out.replayed > 0) this.metrics.kafkaReplayed.inc(out.replayed);
      const last = ((stream.next ?? 0n) as bigint) - 1n;
      // Not written (the partition moved, or the service stops): not committed; its next owner rescores it.
      if (!(await settle())) {
        if (this.streams.get(partition) === stream) this.dropStream(partition);
        return;
      }
      if (out.lines.length > 0 || out.unwritable > 0) {
        const done = this.write(out.lines, partition, stillOurs, heartbeat).then(
          (ok) => {
            if (!ok) return false;
            this.metrics.pointsScored.inc({ source: 'kafka' }, out.n);
            this.scored += out.n;
            if (out.anomalies > 0) this.metrics.anomalies.inc({ source: 'kafka' }, out.anomalies);
            if (out.alerts > 0) this.metrics.alerts.inc(out.alerts);
            if (out.unwritable > 0) this.metrics.skipped.inc({ reason: 'unwritable' }, out.unwritable);
            return true;
          },
          (error: unknown) => ({ error }),
        );
        inFlight = { done, last };
        // Let the request reach the socket before the next chunk is scored.
        await new Promise((r) => setImmediate(r));
      } else payload.resolveOffset(String(last)); // consumed: the next fetch goes on from here (committed below, once written)
      await heartbeat();
    }
    if (!(await settle())) {
      if (this.streams.get(partition) === stream) this.dropStream(partition);
      return;
    }
    // One commit per batch, of what was written (never back into the replayed range).
    const next = (stream.next ?? 0n) as bigint;
    if (next > stream.replayUntil && this.streams.get(partition) === stream) {
      await this.consumer.commitOffsets([{ topic: batch.topic, partition, offset: String(next) }]);
      stream.replayUntil = next;
    }
    const high = BigInt(batch.highWatermark);
    const lag = high - (stream.next ?? high);
    this.lags.set(partition, lag > 0n ? lag : 0n);
    this.metrics.kafkaLag.set({ partition: String(partition) }, Number(lag > 0n ? lag : 0n));
    this.ok();
  }

  private count(skipped: Partial<Record<MessageSkip, number>>): void {
    for (const [reason, n] of Object.entries(skipped)) if (n) this.metrics.skipped.inc({ reason }, n);
  }

  /**
   * Writes the lines to every sink, retrying transient failures with backoff until they
   * succeed (true) or the partition is no longer ours (false: the next owner rescores them
   * from the last commit). Lines InfluxDB refuses for good are counted and not retried.
   */
  private async write(lines: string[], partition: number, stillOurs: () => boolean, heartbeat: () => Promise<void>): Promise<boolean> {
    for (let a = 0; a < lines.length; a += this.opts.writeBatchLines) {
      const batch = lines.slice(a, a + this.opts.writeBatchLines);
      for (let failures = 0; ; failures++) {
        try {
          if (this.sink) await this.sink.writeLines(batch);
          const tooLarge = this.producer && this.opts.resultsTopic ? await this.sendResults(this.opts.resultsTopic, batch) : 0;
          if (tooLarge > 0) this.metrics.writeRefused.inc(tooLarge);
          this.metrics.written.inc(batch.length - tooLarge);
          this.writeFailingSince = null;
          break;
        } catch (e) {
          const refusal = refusalOf(e, batch.length);
          if (refusal) {
            this.metrics.writeRefused.inc(refusal.lines);
            this.metrics.written.inc(batch.length - refusal.lines);
            this.log.error({ partition, refused: refusal.lines, reason: refusal.reason }, 'InfluxDB refused lines for good; not retried');
            break;
          }
          this.metrics.writeErrors.inc();
          this.writeFailingSince ??= Date.now();
          this.fail(e);
          if (!stillOurs()) return false;
          await new Promise((r) => setTimeout(r, backoffMs(failures + 1, 200, this.opts.maxBackoffMs)));
          await heartbeat().catch(() => undefined);
        }
      }
    }
    return true;
  }

  /**
   * Sends prediction lines to the results topic, keyed by host, in sends of at most
   * RESULTS_SEND_BYTES: the broker refuses a record batch above its `message.max.bytes`
   * (1 MiB by default), and one send of a write batch (5,000 lines of some 500 bytes)
   * would be refused on every retry, wedging the partition. A send the broker still finds
   * too large is split in halves; a single line it refuses is counted (the count returned)
   * and not retried. Other errors throw (the write retries them).
   */
  private async sendResults(topic: string, lines: readonly string[]): Promise<number> {
    const producer = this.producer as Producer;
    const send = async (part: readonly string[]): Promise<number> => {
      try {
        await producer.send({ topic, messages: part.map((value) => ({ key: hostOf(value), value })) });
        return 0;
      } catch (e) {
        if ((e as { type?: string }).type !== 'MESSAGE_TOO_LARGE') throw e;
        if (part.length === 1) {
          this.log.error({ topic, bytes: part[0].length }, 'the results topic refused a prediction line as too large; not retried');
          return 1;
        }
        const half = part.length >> 1;
        return (await send(part.slice(0, half))) + (await send(part.slice(half)));
      }
    };
    let refused = 0;
    let from = 0;
    let bytes = 0;
    for (let i = 0; i < lines.length; i++) {
      bytes += lines[i].length + RESULTS_RECORD_OVERHEAD;
      if (bytes >= RESULTS_SEND_BYTES || i === lines.length - 1) {
        refused += await send(lines.slice(from, i + 1));
        from = i + 1;
        bytes = 0;
      }
    }
    return refused;
  }

  /** Hosts still learning over this replica's partitions (a scan of every host: on the probe's timer, not per batch). */
  private learningHosts(): number {
    return [...this.streams.values()].reduce((s, x) => s + x.engine.keyCounts().learning, 0);
  }

  private async probeBroker(): Promise<void> {
    this.metrics.learningHosts.set(this.learningHosts());
    try {
      const ends = await this.admin.fetchTopicOffsets(this.opts.topic);
      for (const e of ends) {
        const s = this.streams.get(e.partition);
        if (!s || s.next === null) continue;
        const lag = BigInt(e.high) - s.next;
        this.lags.set(e.partition, lag > 0n ? lag : 0n);
        this.metrics.kafkaLag.set({ partition: String(e.partition) }, Number(lag > 0n ? lag : 0n));
      }
      this.ok();
    } catch (e) {
      this.fail(e);
    }
  }

  /** The consumer's part of /health: degraded while the broker has not answered for 3 probe intervals. */
  health(): HealthContributor {
    return {
      name: 'kafka',
      check: () => {
        const now = Date.now();
        const unreachable = this.lastErrorAt > (this.lastOk ?? 0) || (this.lastOk !== null && now - this.lastOk > 15_000);
        const status =
          !this.started || this.lastOk === null ? (this.lastError ? 'unreachable' : 'starting') : unreachable ? 'unreachable' : 'ok';
        let lag = 0n;
        for (const v of this.lags.values()) lag += v;
        // Writes failing for a while (InfluxDB or the results topic down): nothing is committed meanwhile.
        const failingS = this.writeFailingSince === null ? 0 : (now - this.writeFailingSince) / 1000;
        const writesFailing = failingS * 1000 >= WRITES_FAILING_DEGRADE_MS;
        return {
          degraded: status === 'unreachable' || writesFailing,
          body: {
            enabled: true,
            status,
            writes: writesFailing ? 'failing' : 'ok',
            writes_failing_s: Math.round(failingS),
            topic: this.opts.topic,
            group: this.opts.groupId,
            partitions: this.assigned,
            lag_messages: Number(lag),
            hosts: [...this.streams.values()].reduce((s, x) => s + x.joiner.size, 0),
            learning_hosts: this.learningHosts(),
            scored: this.scored,
            last_error: this.lastError,
          },
        };
      },
    };
  }
}

/** The host tag of a prediction line (the results topic's message key). */
function hostOf(line: string): string | null {
  const m = /,host=((?:\\.|[^,\s\\])*)/.exec(line);
  return m ? m[1].replace(/\\(.)/g, '$1') : null;
}

/** Reads the CA file of KAFKA_TLS_CA_FILE (at start: a missing file stops the start with one line). */
export function readCa(file: string | undefined): string | undefined {
  return file ? readFileSync(file, 'utf8') : undefined;
}
