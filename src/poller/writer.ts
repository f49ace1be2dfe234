import { InfluxError, type MetricsStore } from '../influx/types';
import type { Counter, Gauge } from 'prom-client';
import type { HealthContributor } from '../routes/health';

export interface WriterOptions {
  /** Most lines held; beyond it the oldest are dropped. */
  maxBuffer: number;
  /** Lines per write request. */
  batchSize: number;
  /** First retry delay after a failed write (ms); doubles up to maxBackoffMs, with jitter. */
  baseBackoffMs: number;
  maxBackoffMs: number;
}

export interface WriterMetrics {
  written: Counter;
  writeErrors: Counter;
  dropped: Counter;
  buffered: Gauge;
  /** Lines InfluxDB refused for good (absent: not counted). */
  writeRefused?: Counter;
}

/** Lines InfluxDB refused, and why (its own message). */
export interface Refusal {
  at: number;
  lines: number;
  reason: string;
}

/**
 * A refusal of lines rather than a failure to write: HTTP 400 (bad lines, field type
 * conflicts; InfluxDB 1.x still writes the good lines of such a "partial write" and says
 * how many it dropped) or 422 (2.x: unprocessable). Retrying would be refused again, for
 * ever. undefined for anything else (network errors, timeouts, 5xx, 401/403/404 are
 * retried: an outage or configuration that can be fixed without losing the lines).
 */
export function refusalOf(e: unknown, batchLines: number): Omit<Refusal, 'at'> | undefined {
  if (!(e instanceof InfluxError) || e.operation !== 'write' || (e.status !== 400 && e.status !== 422)) return undefined;
  const reason = (e.influxMessage ?? e.message).slice(0, 500);
  const dropped = /dropped=(\d+)/.exec(reason);
  const lines = dropped ? Math.min(batchLines, Number(dropped[1])) : batchLines;
  return { lines, reason };
}

/** How long after the last refusal the writer's health stays degraded. */
const REFUSAL_DEGRADES_MS = 10 * 60_000;

interface Log {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Capped exponential backoff with full jitter in [d/2, d]. */
export function backoffMs(failures: number, baseMs: number, maxMs: number, random = Math.random): number {
  const d = Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
  return d / 2 + (random() * d) / 2;
}

/**
 * A bounded queue of line protocol lines written in batches in the background, retried
 * with backoff while InfluxDB fails. Enqueueing never waits for I/O, so neither the
 * poller nor the HTTP API is held up by a slow or absent InfluxDB. On overflow the
 * oldest lines are dropped, counted, and logged once per episode.
 */
export class LineWriter {
  private buf: string[] = [];
  private head = 0;
  private failures = 0;
  private running = false;
  private overflowing = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  lastError: string | null = null;
  lastSuccess: number | null = null;
  /** Lines InfluxDB refused since start, and the latest refusal. */
  refusedLines = 0;
  lastRefusal: Refusal | null = null;
  private lastRefusalLog = -Infinity;
  private refusedSinceLog = 0;

  constructor(
    private readonly store: MetricsStore,
    private readonly opts: WriterOptions,
    private readonly metrics: WriterMetrics,
    private readonly log: Log,
  ) {}

  /** Lines waiting to be written. */
  get size(): number {
    return this.buf.length - this.head;
  }

  /** True while writes are failing. */
  get failing(): boolean {
    return this.failures > 0;
  }

  enqueue(lines: readonly string[]): void {
    for (const l of lines) this.buf.push(l);
    const over = this.size - this.opts.maxBuffer;
    if (over > 0) {
      this.head += over;
      this.metrics.dropped.inc(over);
      if (!this.overflowing) {
        this.overflowing = true;
        this.log.error(
          { dropped: over, maxBuffer: this.opts.maxBuffer },
          'write buffer full: dropping the oldest predictions until InfluxDB accepts writes again',
        );
      }
    }
    this.compact();
    this.metrics.buffered.set(this.size);
    this.kick(0);
  }

  /** Resolves when the buffer is empty or `timeoutMs` passed; returns the lines left. */
  async drain(timeoutMs: number): Promise<number> {
    if (this.size === 0) return 0;
    this.kick(0);
    // A caller waiting here keeps the process alive (the retry timers are unref'd).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((r) => this.idleWaiters.push(r)), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    return this.size;
  }

  /** Stops writing (pending lines stay unwritten; the next start rescoring covers them). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private compact(): void {
    if (this.head > 4096 && this.head > this.buf.length / 2) {
      this.buf = this.buf.slice(this.head);
      this.head = 0;
    }
  }

  private kick(delayMs: number): void {
    if (this.closed || this.running || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run();
    }, delayMs);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    if (this.running || this.closed) return;
    this.running = true;
    try {
      while (this.size > 0 && !this.closed) {
        const batch = this.buf.slice(this.head, this.head + this.opts.batchSize);
        let refused = 0;
        try {
          await this.store.writeLines(batch);
        } catch (e) {
          const refusal = refusalOf(e, batch.length);
          if (!refusal) {
            this.failures++;
            this.lastError = (e as Error).message;
            this.metrics.writeErrors.inc();
            if (this.failures === 1)
              this.log.warn({ err: this.lastError, buffered: this.size }, 'writing predictions failed; retrying with backoff');
            this.running = false;
            this.kick(backoffMs(this.failures, this.opts.baseBackoffMs, this.opts.maxBackoffMs));
            return;
          }
          // Refused for good: the batch is done (its good lines were written).
          refused = refusal.lines;
          this.refuse(refusal, batch.length);
        }
        // Lines dropped on overflow while the write was in flight were the oldest ones,
        // which may be part of this batch: skip only what is still at the head.
        const stillHead = Math.min(batch.length, this.size);
        this.head += stillHead;
        this.compact();
        this.metrics.written.inc(batch.length - refused);
        this.metrics.buffered.set(this.size);
        this.lastSuccess = Date.now();
        if (this.failures > 0) this.log.warn({ failures: this.failures }, 'writing predictions recovered');
        this.failures = 0;
        this.overflowing = false;
      }
    } finally {
      this.running = false;
    }
    if (this.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Counts and logs lines InfluxDB refused (the log at most once a minute, with the count since). */
  private refuse(refusal: Omit<Refusal, 'at'>, batchLines: number): void {
    const now = Date.now();
    this.refusedLines += refusal.lines;
    this.refusedSinceLog += refusal.lines;
    this.lastRefusal = { at: now, ...refusal };
    this.metrics.writeRefused?.inc(refusal.lines);
    if (now - this.lastRefusalLog >= 60_000) {
      this.log.error(
        { refused: refusal.lines, batch: batchLines, refusedSinceLastLog: this.refusedSinceLog, reason: refusal.reason },
        `InfluxDB refused ${refusal.lines} of ${batchLines} lines; they are dropped, not retried (the rest were written)`,
      );
      this.lastRefusalLog = now;
      this.refusedSinceLog = 0;
    }
  }

  /**
   * The writer's part of /health (key `influx_writes`): degraded while writes fail, and for
   * ten minutes after InfluxDB last refused lines, with its reason.
   */
  health(now: () => number = Date.now): HealthContributor {
    return {
      name: 'influx_writes',
      check: () => {
        const refusing = this.lastRefusal !== null && now() - this.lastRefusal.at < REFUSAL_DEGRADES_MS;
        const status = this.failing ? 'failing' : refusing ? 'refusing_lines' : 'ok';
        return {
          degraded: status !== 'ok',
          body: {
            status,
            buffered: this.size,
            refused_lines: this.refusedLines,
            last_refusal: this.lastRefusal
              ? { at: new Date(this.lastRefusal.at).toISOString(), lines: this.lastRefusal.lines, reason: this.lastRefusal.reason }
              : null,
            last_error: this.lastError,
          },
        };
      },
    };
  }
}
