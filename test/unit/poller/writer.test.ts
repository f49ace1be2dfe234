import { Counter, Gauge, Registry } from 'prom-client';
import { backoffMs, LineWriter } from '../../../src/poller/writer';
import type { MetricsStore } from '../../../src/influx/types';

/** An in-memory sink standing in for InfluxDB in this unit test of the buffer logic. */
class Sink {
  written: string[] = [];
  failing = false;
  calls = 0;
  async writeLines(lines: readonly string[]): Promise<void> {
    this.calls++;
    if (this.failing) throw new Error('connection refused');
    this.written.push(...lines);
  }
}

function writer(sink: Sink, maxBuffer: number) {
  const r = new Registry();
  const metrics = {
    written: new Counter({ name: 'w', help: 'w', registers: [r] }),
    writeErrors: new Counter({ name: 'e', help: 'e', registers: [r] }),
    dropped: new Counter({ name: 'd', help: 'd', registers: [r] }),
    buffered: new Gauge({ name: 'b', help: 'b', registers: [r] }),
  };
  const logs: string[] = [];
  const log = { warn: (_o: object, m: string) => logs.push(m), error: (_o: object, m: string) => logs.push(m) };
  return {
    w: new LineWriter(sink as unknown as MetricsStore, { maxBuffer, batchSize: 3, baseBackoffMs: 5, maxBackoffMs: 20 }, metrics, log),
    metrics,
    logs,
  };
}

describe('LineWriter', () => {
  it('writes everything in batches, in order', async () => {
    const sink = new Sink();
    const { w } = writer(sink, 100);
    w.enqueue(['a', 'b', 'c', 'd']);
    w.enqueue(['e']);
    expect(await w.drain(1000)).toBe(0);
    expect(sink.written).toEqual(['a', 'b', 'c', 'd', 'e']);
    w.close();
  });

  it('retries while the store fails and loses nothing that fits the buffer', async () => {
    const sink = new Sink();
    sink.failing = true;
    const { w, logs } = writer(sink, 100);
    w.enqueue(['1', '2', '3', '4']);
    await new Promise((r) => setTimeout(r, 100));
    expect(sink.calls).toBeGreaterThan(2);
    expect(w.failing).toBe(true);
    expect(logs.filter((l) => l.startsWith('writing predictions failed'))).toHaveLength(1);
    sink.failing = false;
    expect(await w.drain(1000)).toBe(0);
    expect(sink.written).toEqual(['1', '2', '3', '4']);
    expect(w.failing).toBe(false);
    w.close();
  });

  it('drops the oldest lines on overflow, counts them and logs once per episode', async () => {
    const sink = new Sink();
    sink.failing = true;
    const { w, metrics, logs } = writer(sink, 5);
    for (let i = 0; i < 10; i++) w.enqueue([`l${i}`]);
    expect(w.size).toBe(5);
    expect((await metrics.dropped.get()).values[0].value).toBe(5);
    expect(logs.filter((l) => l.startsWith('write buffer full'))).toHaveLength(1);
    sink.failing = false;
    await w.drain(1000);
    expect(sink.written).toEqual(['l5', 'l6', 'l7', 'l8', 'l9']);
    w.close();
  });

  it('on overflow while a batch is being written, drops the oldest lines not in it: the counts say what was written', async () => {
    const sink = new Sink();
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const slow = {
      writeLines: async (lines: readonly string[]) => {
        if (sink.calls++ === 0) await held;
        sink.written.push(...lines);
      },
    };
    const { w, metrics } = writer(slow as unknown as Sink, 5);
    w.enqueue(['l0', 'l1', 'l2']);
    await new Promise((r) => setTimeout(r, 10));
    expect(sink.calls).toBe(1);
    // l0-l2 are in flight; six more make nine, four over.
    w.enqueue(['l3', 'l4', 'l5', 'l6', 'l7', 'l8']);
    release();
    expect(await w.drain(1000)).toBe(0);
    expect(sink.written).toEqual(['l0', 'l1', 'l2', 'l7', 'l8']);
    expect((await metrics.dropped.get()).values[0].value).toBe(4);
    expect((await metrics.written.get()).values[0].value).toBe(5);
    w.close();
  });

  it('backs off exponentially, capped, with jitter', () => {
    expect(backoffMs(1, 100, 1000, () => 0)).toBe(50);
    expect(backoffMs(1, 100, 1000, () => 1)).toBe(100);
    expect(backoffMs(4, 100, 1000, () => 1)).toBe(800);
    expect(backoffMs(10, 100, 1000, () => 1)).toBe(1000);
  });
});
