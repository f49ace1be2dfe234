import fp from 'fastify-plugin';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { FastifyReply } from 'fastify';
import { ErrorCode } from '../errors';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false: this route is never shed under load (liveness probe, metrics scrape). */
    shed?: boolean;
  }
}

export interface LoadSheddingOptions {
  /** Mean event loop delay (ms) over a sample above which requests are shed with 503; 0: no check. */
  maxEventLoopDelayMs: number;
  /** How often the delay is sampled; default 1000 ms. */
  sampleIntervalMs?: number;
  /**
   * Requests of shed routes processed at once; more get 503 at once, before their body
   * is read. The event loop runs one at a time anyway: admitting more only queues them,
   * and a liveness probe waits behind the whole queue. undefined: no bound.
   */
  maxConcurrent?: number;
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
    let sampledAt = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      // No tick of the histogram in a whole interval: the loop was blocked all along.
      delayMs = histogram.count > 0 ? Math.max(0, histogram.mean / 1e6 - RESOLUTION_MS) : now - sampledAt;
      sampledAt = now;
      histogram.reset();
    }, opts.sampleIntervalMs ?? 1000);
    timer.unref();
    let inFlight = 0;
    const shed = (reply: FastifyReply, why: string) =>
      reply
        .code(503)
        .header('retry-after', '5')
        .send({ error: ErrorCode.Overloaded, message: `overloaded (${why}), retry later`, details: [] });
    const release = () => inFlight--;
    // A callback hook, not an async one: no promise per request.
    app.addHook('onRequest', (request, reply, done) => {
      if (request.routeOptions.config.shed === false || (opts.maxEventLoopDelayMs <= 0 && opts.maxConcurrent === undefined)) return done();
      if (opts.maxEventLoopDelayMs > 0 && delayMs > opts.maxEventLoopDelayMs) {
        shed(reply, `event loop delay ${Math.round(delayMs)} ms`);
        return;
      }
      if (opts.maxConcurrent === undefined) return done();
      if (inFlight >= opts.maxConcurrent) {
        if (!request.raw.complete) reply.header('connection', 'close');
        shed(reply, `${inFlight} requests in progress`);
        return;
      }
      inFlight++;
      reply.raw.once('close', release);
      done();
    });
    app.addHook('onClose', async () => {
      clearInterval(timer);
      histogram.disable();
    });
  },
  { name: 'load-shedding' },
);
