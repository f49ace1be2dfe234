import type { MetricsStore } from '../influx/types';
import type { Counter, Gauge } from 'prom-client';

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
}

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
        this.log.error({ dropped: over, maxBuffer: this.opts.maxBuffer }, 'write buffer full: dropping the oldest predictions until InfluxDB accepts writes again');
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
        try {
          await this.store.writeLines(batch);
        } catch (e) {
          this.failures++;
          this.lastError = (e as Error).message;
          this.metrics.writeErrors.inc();
          if (this.failures === 1) this.log.warn({ err: this.lastError, buffered: this.size }, 'writing predictions failed; retrying with backoff');
          this.running = false;
          this.kick(backoffMs(this.failures, this.opts.baseBackoffMs, this.opts.maxBackoffMs));
          return;
        }
        // Lines dropped on overflow while the write was in flight were the oldest ones,
        // which may be part of this batch: skip only what is still at the head.
        const stillHead = Math.min(batch.length, this.size);
        this.head += stillHead;
        this.compact();
        this.metrics.written.inc(batch.length);
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
}
