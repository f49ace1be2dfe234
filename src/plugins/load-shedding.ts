import fp from 'fastify-plugin';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ErrorCode } from '../errors';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false: this route is never shed under load (liveness probe, metrics scrape). */
    shed?: boolean;
  }
}

export interface LoadSheddingOptions {
  /** Mean event loop delay (ms) over a sample above which requests are shed with 503. */
  maxEventLoopDelayMs: number;
  /** How often the delay is sampled; default 1000 ms. */
  sampleIntervalMs?: number;
}

const RESOLUTION_MS = 10;

/**
 * Sheds requests with 503 while the event loop lags, except on routes with
 * `config: { shed: false }`. It replaces @fastify/under-pressure, which could not exempt
 * routes from its check and sampled `process.memoryUsage()` in a timer: with the file
 * descriptors exhausted that call throws EMFILE and the process died. This sampler reads
 * only the in-process delay histogram, which needs no file descriptor.
 */
export const loadShedding = fp<LoadSheddingOptions>(
  async (app, opts) => {
    const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    histogram.enable();
    let delayMs = 0;
    const timer = setInterval(() => {
      // No sample yet in this interval: keep the last value.
      if (histogram.count > 0) delayMs = Math.max(0, histogram.mean / 1e6 - RESOLUTION_MS);
      histogram.reset();
    }, opts.sampleIntervalMs ?? 1000);
    timer.unref();
    app.addHook('onRequest', async (request, reply) => {
      if (delayMs <= opts.maxEventLoopDelayMs || request.routeOptions.config.shed === false) return;
      return reply
        .code(503)
        .header('retry-after', '5')
        .send({ error: ErrorCode.Overloaded, message: `overloaded (event loop delay ${Math.round(delayMs)} ms), retry later`, details: [] });
    });
    app.addHook('onClose', async () => {
      clearInterval(timer);
      histogram.disable();
    });
  },
  { name: 'load-shedding' },
);
