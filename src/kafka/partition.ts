import { DEFAULT_MAX_KEYS } from '../core/detector';
import { metricDefs } from '../core/metrics';
import type { StreamingDetector } from '../core/streaming';
import { isPointLine, type LineError, type LineReader } from '../influx/line-parser';
import { predictionLines, runPlan, type PlannedRows, type PredictionLines } from '../poller/cycle';
import { mappingMetrics, type Mapping } from '../poller/telegraf';
import { MAX_FUTURE_SKEW_MS, metricRules, type MetricRules } from '../validation/point';
import { StepJoiner, StepRows, type StepSkip } from './steps';

/**
 * The pure step of the Kafka consumer for one partition: messages (Telegraf's line
 * protocol) in offset order -> joined host steps -> the streaming detector -> the
 * `ai_predictions` lines of the steps to write. No I/O, no clock: the consumer (the
 * shell, consumer.ts) fetches, writes and commits around it.
 *
 * Each partition has its own detector (and its own joiner): a partition's results depend
 * only on its own messages, in order, never on which replica holds it or which other
 * partitions that replica holds. So when a rebalance moves a partition, the new owner
 * replays the partition's retained history up to the committed offset without writing
 * (`replayUntil`), and from there scores exactly as the previous owner would have.
 */

/** Why a message or a point was not scored (counted; the stream goes on). */
export type MessageSkip = LineError | 'too_large' | 'unused_measurement' | StepSkip;

export interface KafkaMessageIn {
  /** Offset in the partition (as a bigint-safe string or number; compared as bigint). */
  offset: bigint;
  value: Buffer | string | null;
}

export interface PartitionOutput extends PredictionLines {
  /** Steps run through the detector (written or replayed). */
  rows: number;
  /** Of those, replayed (history before the committed offset: not written). */
  replayed: number;
  /** Points parsed. */
  points: number;
  /** Counts by reason of what was skipped in this call. */
  skipped: Partial<Record<MessageSkip, number>>;
}

/** Largest message read (Telegraf's messages are one metric, or a batch of a few). */
export const MAX_MESSAGE_BYTES = 1 << 20;

export class PartitionStream {
  readonly joiner: StepJoiner;
  private readonly lastSkips: Record<StepSkip, number>;
  private lastUnused = 0;
  /** Offsets below this were processed (and written) by an earlier owner: replayed, not written. */
  replayUntil: bigint;
  /** The next offset to process (messages below it were seen). */
  next: bigint | null = null;
  /** Each host's line prefix (measurement and tags), made once. */
  private readonly prefixes = new Map<string, string | null>();
  /** Reads the measurements, fields and tags the mapping reads (nothing else is parsed). */
  private readonly reader: LineReader;
  /** The rows of a call (reused). */
  private readonly rows: StepRows;

  constructor(
    readonly partition: number,
    readonly engine: StreamingDetector,
    mapping: Mapping,
    intervalMs: number,
    replayUntil: bigint,
    private readonly version = 'learned',
    rules?: MetricRules,
  ) {
    // Rows in the engine's column order; ranges from `rules` (a named model's declarations) or the mapping's.
    this.joiner = new StepJoiner(
      mapping,
      intervalMs,
      rules ?? metricRules(metricDefs(engine.opts.inputs, mappingMetrics(mapping))),
      engine.opts.maxKeys ?? DEFAULT_MAX_KEYS,
    );
    this.reader = this.joiner.reader();
    this.rows = new StepRows(this.joiner.rules.names.length);
    this.lastSkips = { ...this.joiner.skipped };
    this.replayUntil = replayUntil;
  }

  /**
   * Processes messages of this partition in offset order (ones below `next` were seen and
   * are ignored). What is skipped is counted only for messages from `replayUntil` on: the
   * replayed ones were counted by the owner that wrote them. `now` (the consumer's clock;
   * none: no bound) refuses points more than MAX_FUTURE_SKEW_MS ahead of it (a replay
   * later may take a point that was that far ahead when it first came).
   */
  process(messages: readonly KafkaMessageIn[], now?: number): PartitionOutput {
    this.joiner.latest = now === undefined ? Infinity : now + MAX_FUTURE_SKEW_MS;
    const cut = messages.findIndex((m) => m.offset >= this.replayUntil);
    if (cut <= 0) return this.run(messages, cut === 0);
    const replay = this.run(messages.slice(0, cut), false);
    const live = this.run(messages.slice(cut), true);
    return { ...live, rows: replay.rows + live.rows, replayed: replay.replayed + live.replayed, points: replay.points + live.points };
  }

  private run(messages: readonly KafkaMessageIn[], counted: boolean): PartitionOutput {
    const skipped: Partial<Record<MessageSkip, number>> = {};
    const count = (r: MessageSkip, n = 1): void => {
      if (counted) skipped[r] = (skipped[r] ?? 0) + n;
    };
    const rows = this.rows;
    rows.clear();
    const reader = this.reader;
    const joiner = this.joiner;
    let write = new Uint8Array(Math.max(16, messages.length));
    let points = 0;
    let replayed = 0;
    for (const msg of messages) {
      if (this.next !== null && msg.offset < this.next) continue;
      this.next = msg.offset + 1n;
      const live = msg.offset >= this.replayUntil;
      const before = rows.n;
      if (msg.value !== null) {
        if (msg.value.length > MAX_MESSAGE_BYTES) count('too_large');
        else {
          const text = typeof msg.value === 'string' ? msg.value : msg.value.toString('utf8');
          // The message's lines (Telegraf may batch several metrics into one), read in place.
          for (let s = 0; s < text.length;) {
            let e = text.indexOf('\n', s);
            if (e < 0) e = text.length;
            const end = e > s && text.charCodeAt(e - 1) === 13 ? e - 1 : e;
            if (isPointLine(text, s, end)) {
              const r = reader.read(text, s, end);
              if (r !== null) count(r === 'unused' ? 'unused_measurement' : r);
              else {
                points++;
                joiner.addRead(reader.point, rows);
              }
            }
            s = e + 1;
          }
        }
      }
      if (rows.n > write.length) {
        const grown = new Uint8Array(Math.max(rows.n, 2 * write.length));
        grown.set(write);
        write = grown;
      }
      if (live) write.fill(1, before, rows.n);
      else replayed += rows.n - before;
    }
    const s = joiner.skipped;
    for (const r of Object.keys(s) as StepSkip[]) {
      if (s[r] > this.lastSkips[r]) count(r, s[r] - this.lastSkips[r]);
      this.lastSkips[r] = s[r];
    }
    if (joiner.unused > this.lastUnused) count('unused_measurement', joiner.unused - this.lastUnused);
    this.lastUnused = joiner.unused;
    const n = rows.n;
    const m = joiner.rules.names.length;
    const plan: PlannedRows = {
      names: joiner.rules.names,
      keys: rows.keys,
      times: rows.times,
      raw: rows.raw.subarray(0, n * m),
      n,
      write: write.subarray(0, n),
      skipped: { incomplete: 0, invalid: 0, late: 0 },
    };
    const res = runPlan(this.engine, plan, { keepFeatures: false, discard: replayed === n });
    const out: PredictionLines = res
      ? predictionLines(plan, res, this.version, this.prefixes)
      : { lines: [], n: 0, anomalies: 0, alerts: 0, unwritable: 0, written: [] };
    return { ...out, rows: n, replayed, points, skipped };
  }
}
