import { Registry } from 'prom-client';
import type { MetricsStore } from '../../src/influx/types';
import { formatPoint, int } from '../../src/influx/line-protocol';
import { ModelStore, loadDetectorFile } from '../../src/model-store';
import { createMetrics, type ServiceMetrics } from '../../src/plugins/metrics';
import { MODEL_PATH } from '../helpers/fixtures';
import { startInfluxd, type Influxd } from '../helpers/influxd';
import { DB, predictions, storeFor } from '../helpers/influx-data';
import { testPoller } from '../helpers/poller';
import { LATE_SWEEP_MS } from '../../src/poller/poller';

/**
 * Steps the poller does not score, counted instead of lost silently (real influxd): a step
 * that arrives after a later step of its host was scored (reason "late", once, and never a
 * step already handled), and, after a restart, the steps of a host whose latest prediction
 * is older than MAX_LOOKBACK_S (resumed from it, not lost).
 */
const STEP = 10_000;
const T0 = Date.parse('2026-11-03T10:00:00Z');

/** Telegraf-schema lines of one host at step k (a net counter growing 1000 bytes/s). */
function stepLines(host: string, k: number): string[] {
  const t = T0 + k * STEP;
  return [
    formatPoint({ measurement: 'cpu', tags: { host, cpu: 'cpu-total' }, fields: { usage_idle: 70 + (k % 5) }, time: t }),
    formatPoint({ measurement: 'mem', tags: { host }, fields: { used_percent: 40 + (k % 3) }, time: t }),
    formatPoint({ measurement: 'net', tags: { host, interface: 'eth0' }, fields: { bytes_recv: int(1e9 + k * 10_000) }, time: t }),
  ];
}

const skipped = async (metrics: ServiceMetrics, reason: string): Promise<number> => {
  const text = await metrics.registry.getSingleMetricAsString('anomaly_detector_poll_points_skipped_total');
  const m = new RegExp(`reason="${reason}"} (\\d+)`).exec(text);
  return m ? Number(m[1]) : NaN;
};

describe('late and restored steps (real influxd)', () => {
  let influxd: Influxd;
  let store: MetricsStore;
  const models = () => ModelStore.fromDetector(loadDetectorFile(MODEL_PATH), MODEL_PATH);
  beforeAll(async () => {
    influxd = await startInfluxd();
    store = storeFor(influxd);
    await store.createDatabase?.();
  }, 60_000);
  afterAll(async () => {
    await store.close?.();
    await influxd.cleanup();
  });
  beforeEach(async () => {
    await influxd.rawQuery(`DROP DATABASE "${DB}"`);
    await store.createDatabase?.();
  });

  it('counts a step that arrives after a later step of its host was scored as late, once; steps re-read are not counted', async () => {
    // Host a misses step 4 when steps up to 6 are read; b is complete.
    // A counter sample before step 0, so step 0 has a rate.
    const lines = [...stepLines('a', -1).slice(2), ...stepLines('b', -1).slice(2)];
    for (let k = 0; k <= 6; k++) for (const h of ['a', 'b']) if (!(h === 'a' && k === 4)) lines.push(...stepLines(h, k));
    await store.writeLines(lines);
    const metrics = createMetrics(new Registry(), false);
    let now = T0 + 7 * STEP + 1;
    const poller = testPoller(store, models(), { stepMs: STEP, clock: () => now, metrics, overrides: { settleMs: 30_000 } });
    expect((await poller.runCycle()).scored).toBe(14 - 1);
    expect(await skipped(metrics, 'late')).toBe(0);
    // Step 4 of a arrives (a Telegraf buffer flushed out of order), with step 7 of both.
    await store.writeLines([...stepLines('a', 4), ...stepLines('a', 7), ...stepLines('b', 7)]);
    now += STEP;
    const r = await poller.runCycle();
    // The read went back to the gap: steps 4 to 7 of both hosts were read again, and only a's step 4 is late.
    expect(r.from).toBeLessThanOrEqual(T0 + 4 * STEP);
    expect(r.scored).toBe(2);
    expect(await skipped(metrics, 'late')).toBe(1);
    for (let c = 0; c < 3; c++) {
      now += STEP;
      await poller.runCycle();
    }
    expect(await skipped(metrics, 'late')).toBe(1);
    expect(await poller.writer.drain(30_000)).toBe(0);
    await poller.stop(1000);
    // Never scored: the stream had moved past it (scores go in time order).
    expect((await predictions(influxd, 'a')).map((p) => (p.time - T0) / STEP)).toEqual([0, 1, 2, 3, 5, 6, 7]);
  }, 60_000);

  it('counts a step that arrives later than SETTLE_S after a later step of its host was handled, at the next sweep, once', async () => {
    const lines = [...stepLines('a', -1).slice(2), ...stepLines('b', -1).slice(2)];
    for (let k = 0; k <= 6; k++) for (const h of ['a', 'b']) if (!(h === 'a' && k === 4)) lines.push(...stepLines(h, k));
    await store.writeLines(lines);
    const metrics = createMetrics(new Registry(), false);
    let now = T0 + 7 * STEP + 1;
    const poller = testPoller(store, models(), { stepMs: STEP, clock: () => now, metrics, overrides: { settleMs: 30_000 } });
    await poller.runCycle();
    // Two minutes of steps without a's step 4: beyond SETTLE_S, the cycles no longer read back to it.
    let k = 7;
    const step = async () => {
      await store.writeLines([...stepLines('a', k), ...stepLines('b', k)]);
      k++;
      now = T0 + k * STEP + 1;
      return poller.runCycle();
    };
    const froms: number[] = [];
    for (let i = 0; i < 12; i++) froms.push((await step()).from);
    // The first cycles (within SETTLE_S of the gap) read back to it; the later ones do not.
    expect(froms[0]).toBeLessThanOrEqual(T0 + 4 * STEP);
    for (const f of froms.slice(4)) expect(f).toBeGreaterThan(T0 + 4 * STEP);
    expect(await skipped(metrics, 'late')).toBe(0);
    // Step 4 of a arrives now (a Telegraf buffer flushed minutes later).
    await store.writeLines(stepLines('a', 4));
    while (now < T0 + 7 * STEP + LATE_SWEEP_MS + STEP) await step();
    expect(await skipped(metrics, 'late')).toBe(1);
    // Once: the next sweep does not count it again.
    while (now < T0 + 7 * STEP + 2 * LATE_SWEEP_MS + 2 * STEP) await step();
    expect(await skipped(metrics, 'late')).toBe(1);
    expect(await poller.writer.drain(30_000)).toBe(0);
    await poller.stop(1000);
    expect((await predictions(influxd, 'a')).some((p) => p.time === T0 + 4 * STEP)).toBe(false);
  }, 120_000);

  /** A poller's first run: one cycle at `now`, drained and stopped (its predictions are the watermarks of the next). */
  const firstRun = async (now: number, lookback: number) => {
    const first = testPoller(store, models(), { stepMs: STEP, clock: () => now, overrides: { maxLookbackMs: lookback } });
    await first.runCycle();
    expect(await first.writer.drain(30_000)).toBe(0);
    await first.stop(1000);
  };

  it('after a restart, resumes a host whose latest prediction is older than MAX_LOOKBACK_S from it; a host gone for good is not resumed', async () => {
    const lookback = 60_000;
    // alive reports throughout (steps 0-40); gone stops after step 10.
    const lines: string[] = [];
    for (let k = 0; k <= 40; k++) {
      lines.push(...stepLines('alive', k));
      if (k <= 10) lines.push(...stepLines('gone', k));
    }
    await store.writeLines(lines);
    await firstRun(T0 + 11 * STEP + 1, lookback);
    // Every replica down for 30 steps (300 s, five times the lookback); then a new process.
    const now = T0 + 41 * STEP + 1;
    const metrics = createMetrics(new Registry(), false);
    const second = testPoller(store, models(), { stepMs: STEP, clock: () => now, metrics, overrides: { maxLookbackMs: lookback } });
    const reports = [];
    for (let c = 0; c < 8; c++) reports.push(await second.runCycle());
    expect(await second.writer.drain(30_000)).toBe(0);
    await second.stop(1000);
    const steps = (await predictions(influxd, 'alive')).map((p) => (p.time - T0) / STEP);
    // Steps 6-10 in the first run (its lookback), 11-40 after the restart: none lost.
    expect(steps).toEqual(Array.from({ length: 35 }, (_, i) => i + 6));
    // In bounded reads, and the host gone for good did not hold them back.
    for (const r of reports) expect(r.to - r.from).toBeLessThanOrEqual(lookback + 1);
    expect(reports[0].from).toBe(T0 + 12 * STEP);
    expect(reports[reports.length - 1].hosts).toBe(1);
    expect((await predictions(influxd, 'gone')).length).toBe(5);
  }, 60_000);

  it('after a restart, starts when every host with predictions older than MAX_LOOKBACK_S is gone for good', async () => {
    const lookback = 60_000;
    const lines: string[] = [];
    for (let k = 0; k <= 10; k++) lines.push(...stepLines('retired', k));
    await store.writeLines(lines);
    await firstRun(T0 + 11 * STEP + 1, lookback);
    // Much later, only a new host reports: nothing to resume, and the restore must not fail on that.
    await store.writeLines([...stepLines('fresh', 39).slice(2), ...stepLines('fresh', 40)]);
    const now = T0 + 41 * STEP + 1;
    const second = testPoller(store, models(), { stepMs: STEP, clock: () => now, overrides: { maxLookbackMs: lookback } });
    expect((await second.runCycle()).scored).toBe(1);
    await second.stop(1000);
  }, 60_000);

  it('beyond MAX_HOSTS forgets the least recently seen host with its counter samples: back, its first step has no rate', async () => {
    // a reports steps 0-3, is away for 4-6 while c reports, and is back from 7; b throughout.
    const present = (h: string, k: number) => h === 'b' || (h === 'a' && (k <= 3 || k >= 7)) || (h === 'c' && k >= 4 && k <= 6);
    const run = async (maxHosts: number) => {
      await influxd.rawQuery(`DROP DATABASE "${DB}"`);
      await store.createDatabase?.();
      // Counter samples before step 0, so step 0 has a rate.
      await store.writeLines([...stepLines('a', -1).slice(2), ...stepLines('b', -1).slice(2)]);
      let now = 0;
      const metrics = createMetrics(new Registry(), false);
      const poller = testPoller(store, models(), { stepMs: STEP, clock: () => now, metrics, overrides: { maxHosts } });
      for (let k = 0; k <= 9; k++) {
        await store.writeLines(['a', 'b', 'c'].filter((h) => present(h, k)).flatMap((h) => stepLines(h, k)));
        now = T0 + (k + 1) * STEP + 1;
        await poller.runCycle();
      }
      const health = poller.health().check().body as { hosts: number };
      expect(await poller.writer.drain(30_000)).toBe(0);
      await poller.stop(1000);
      return {
        a: (await predictions(influxd, 'a')).map((p) => (p.time - T0) / STEP),
        tracked: health.hosts,
        incomplete: await skipped(metrics, 'incomplete'),
      };
    };
    const bounded = await run(2);
    // c's arrival (step 4) made three: a, seen last at step 3, was forgotten, its counters with it.
    // Back at step 7, its first sample has no earlier one to take a rate against: step 7 is not scored.
    expect(bounded.a).toEqual([0, 1, 2, 3, 8, 9]);
    expect(bounded.tracked).toBe(2);
    // Counted, not lost silently: a's step 7 besides c's first (no counter sample before it) in both runs.
    expect(bounded.incomplete).toBe(2);
    // Unbounded, the same points: a's counter samples were kept, and step 7's rate is taken over the gap.
    const unbounded = await run(1000);
    expect(unbounded.a).toEqual([0, 1, 2, 3, 7, 8, 9]);
    expect(unbounded.tracked).toBe(3);
    expect(unbounded.incomplete).toBe(1);
  }, 60_000);

  it("drops the counter samples of an interface not seen for MAX_LOOKBACK_S (interfaces that come and go), keeps the host's live ones", async () => {
    const lookback = 30_000;
    let now = 0;
    const poller = testPoller(store, models(), { stepMs: STEP, clock: () => now, overrides: { maxLookbackMs: lookback } });
    await store.writeLines(stepLines('a', -1).slice(2));
    for (let k = 0; k <= 24; k++) {
      // eth0 throughout; a container's veth<k> for steps k and k + 1 only.
      const veth = (j: number) =>
        formatPoint({
          measurement: 'net',
          tags: { host: 'a', interface: `veth${j}` },
          fields: { bytes_recv: int(k * 500) },
          time: T0 + k * STEP,
        });
      await store.writeLines([...stepLines('a', k), veth(k), ...(k > 0 ? [veth(k - 1)] : [])]);
      now = T0 + (k + 1) * STEP + 1;
      await poller.runCycle();
    }
    expect(await poller.writer.drain(30_000)).toBe(0);
    await poller.stop(1000);
    const kept = [...((poller as unknown as { counters: Map<string, Map<string, unknown>> }).counters.get('a')?.keys() ?? [])];
    // At most eth0 and the veths of the last MAX_LOOKBACK_S plus a minute between prunes, not all 25.
    expect(kept).toContain('network_load\u0000eth0');
    expect(kept.length).toBeLessThanOrEqual(1 + (lookback + 60_000) / STEP + 2);
    expect(kept.length).toBeGreaterThan(1);
  }, 60_000);

  it('counts the backlog a host flushes after going quiet (steps before the read, never read) as late, at the next sweep', async () => {
    // a and b report throughout; c is cut off after step 9, and at step 19 its Telegraf
    // flushes steps 10-19. By then c was no longer active, so the reads began after its
    // watermark: steps 10 to 18 were never read, neither scored nor counted.
    await store.writeLines(['a', 'b', 'c'].flatMap((h) => stepLines(h, -1).slice(2)));
    const metrics = createMetrics(new Registry(), false);
    let now = 0;
    const poller = testPoller(store, models(), { stepMs: STEP, clock: () => now, metrics });
    const last = 19 + LATE_SWEEP_MS / STEP + 2;
    for (let k = 0; k <= last; k++) {
      const hosts = k <= 9 || k > 19 ? ['a', 'b', 'c'] : ['a', 'b'];
      const lines = hosts.flatMap((h) => stepLines(h, k));
      if (k === 19) for (let j = 10; j <= 19; j++) lines.push(...stepLines('c', j));
      await store.writeLines(lines);
      now = T0 + (k + 1) * STEP + 1;
      await poller.runCycle();
    }
    expect(await poller.writer.drain(30_000)).toBe(0);
    await poller.stop(1000);
    const c = (await predictions(influxd, 'c')).map((p) => (p.time - T0) / STEP);
    const unscored = Array.from({ length: last + 1 }, (_, k) => k).filter((k) => !c.includes(k));
    // Some of the backlog is scored (the steps the read after the flush covered), the rest counted.
    expect(unscored.length).toBeGreaterThan(0);
    expect(unscored.every((k) => k >= 10 && k <= 18)).toBe(true);
    expect(await skipped(metrics, 'late')).toBe(unscored.length);
  }, 60_000);

  it('counts points without a host tag (no_host) once each, although the reads see them again', async () => {
    await store.writeLines(stepLines('a', -1).slice(2));
    const metrics = createMetrics(new Registry(), false);
    let now = 0;
    const poller = testPoller(store, models(), { stepMs: STEP, clock: () => now, metrics, overrides: { settleMs: 30_000 } });
    const lines = (k: number) => [
      ...stepLines('a', k).slice(0, 2),
      formatPoint({ measurement: 'cpu', tags: { cpu: 'cpu-total' }, fields: { usage_idle: 50 }, time: T0 + k * STEP }),
      formatPoint({ measurement: 'mem', tags: {}, fields: { used_percent: 50 }, time: T0 + k * STEP }),
    ];
    // Each cycle runs before a's net point of the step arrives: the step is pending, so the
    // next read covers it (and its points without a host) again.
    for (let k = 0; k <= 5; k++) {
      await store.writeLines(lines(k));
      now = T0 + k * STEP + STEP / 2;
      await poller.runCycle();
      await store.writeLines(stepLines('a', k).slice(2));
    }
    expect(await poller.writer.drain(30_000)).toBe(0);
    await poller.stop(1000);
    // Two points a step (cpu and mem without host) over 6 steps; a's steps are scored.
    expect(await skipped(metrics, 'no_host')).toBe(12);
    expect((await predictions(influxd, 'a')).length).toBeGreaterThan(0);
  }, 60_000);

  it('with more hosts reporting than MAX_HOSTS, forgets none that reports: no step scored twice; the one left out is counted', async () => {
    // Three hosts, MAX_HOSTS 2; each cycle runs mid-step, before the step's net point is
    // written, so every host has a step pending. A host forgotten there came back with no
    // watermark and its next read went back MAX_LOOKBACK_S, scoring its steps again.
    await store.writeLines(['a', 'b', 'c'].flatMap((h) => stepLines(h, -1).slice(2)));
    let now = 0;
    const metrics = createMetrics(new Registry(), false);
    const poller = testPoller(store, models(), { stepMs: STEP, clock: () => now, metrics, overrides: { maxHosts: 2, settleMs: 30_000 } });
    let scored = 0;
    for (let k = 0; k <= 12; k++) {
      const lines = ['a', 'b', 'c'].map((h) => stepLines(h, k));
      await store.writeLines(lines.flatMap((l) => l.slice(0, 2)));
      now = T0 + k * STEP + STEP / 2;
      scored += (await poller.runCycle()).scored;
      await store.writeLines(lines.map((l) => l[2]));
    }
    expect(await poller.writer.drain(30_000)).toBe(0);
    await poller.stop(1000);
    const written = (await Promise.all(['a', 'b', 'c'].map((h) => predictions(influxd, h)))).map((p) => p.map((x) => (x.time - T0) / STEP));
    // a and b (followed first): steps 0-11 (12 is still pending), each scored once; c is left
    // out, and each of its steps 0-12 counted once although the reads saw them again.
    expect(written).toEqual([Array.from({ length: 12 }, (_, i) => i), Array.from({ length: 12 }, (_, i) => i), []]);
    expect(scored).toBe(2 * 12);
    expect(await skipped(metrics, 'max_hosts')).toBe(13);
  }, 60_000);
});
