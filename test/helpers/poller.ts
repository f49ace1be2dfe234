import pino from 'pino';
import { Registry } from 'prom-client';
import { DEFAULT_GATE } from '../../src/core/gate';
import type { MetricsStore } from '../../src/influx/types';
import type { ModelStore } from '../../src/model-store';
import { createMetrics, type ServiceMetrics } from '../../src/plugins/metrics';
import { Poller, type PollerOptions } from '../../src/poller/poller';
import { telegrafPreset } from '../../src/poller/telegraf';

/**
 * An in-process poller for tests: the Telegraf preset, the default gate, one shard, no
 * settling wait, small retry delays and a silent log, on the given clock. `overrides`
 * replace any option.
 */
export function testPoller(
  store: MetricsStore,
  models: ModelStore,
  opts: { stepMs: number; clock: () => number; overrides?: Partial<PollerOptions>; metrics?: ServiceMetrics },
): Poller {
  return new Poller(
    store,
    models,
    {
      intervalMs: opts.stepMs,
      maxLookbackMs: 3600_000,
      collectionIntervalMs: opts.stepMs,
      settleMs: 0,
      mapping: telegrafPreset(),
      gate: DEFAULT_GATE,
      shard: { count: 1, index: 0 },
      maxHosts: 1000,
      writer: { maxBuffer: 1_000_000, batchSize: 5000, baseBackoffMs: 100, maxBackoffMs: 1000 },
      baseBackoffMs: 100,
      maxBackoffMs: 1000,
      drift: { windowPoints: 1000, intervalMs: 1, warnPsi: 0.25 },
      ...opts.overrides,
    },
    opts.metrics ?? createMetrics(new Registry(), false),
    pino({ level: 'silent' }),
    opts.clock,
  );
}
