import { createServer, type Server } from 'node:http';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/**
 * Liveness on its own thread (LIVENESS_PORT): a probe that a busy event loop cannot delay.
 *
 * The main thread stamps the time into shared memory every `beatMs`; a worker thread,
 * with an event loop of its own, serves `GET /health/live` on a separate port and answers
 * 200 while the last stamp is younger than `stallMs`, 503 once the main loop has not
 * turned for that long (wedged: then a restart is what helps). Under a flood of large
 * /detect requests the main loop is busy but turning: the probe answers in milliseconds
 * instead of waiting its turn behind them, so Kubernetes does not restart a pod for
 * being busy. The main port's /health/live stays (the in-loop check).
 */

interface LivenessData {
  beat: SharedArrayBuffer;
  port: number;
  host: string;
  stallMs: number;
}

/** The worker's side: the HTTP server. */
function serve(data: LivenessData): void {
  const beat = new BigInt64Array(data.beat);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/health/live') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
      return;
    }
    const age = Date.now() - Number(Atomics.load(beat, 0));
    const alive = age < data.stallMs;
    res
      .writeHead(alive ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      .end(JSON.stringify({ status: alive ? 'alive' : 'stalled', event_loop_beat_age_ms: age }));
  });
  // Probes only: short timeouts, few sockets.
  server.requestTimeout = 5000;
  server.headersTimeout = 5000;
  server.keepAliveTimeout = 5000;
  server.maxConnections = 64;
  server.on('error', (e) => parentPort?.postMessage({ error: (e as Error).message }));
  server.listen(data.port, data.host, () => {
    const a = server.address();
    parentPort?.postMessage({ port: typeof a === 'object' && a ? a.port : data.port });
  });
}

if (!isMainThread && (workerData as { liveness?: LivenessData } | null)?.liveness)
  serve((workerData as { liveness: LivenessData }).liveness);

/** A running liveness thread: its port, and how to stop it. */
export interface Liveness {
  port: number;
  close(): Promise<void>;
}

/** Starts the liveness thread on `port` (0: any free one); resolves once it listens, rejects with one line if it cannot. */
export async function startLiveness(opts: { port: number; host: string; stallMs: number; beatMs?: number }): Promise<Liveness> {
  const buf = new SharedArrayBuffer(8);
  const beat = new BigInt64Array(buf);
  const stamp = (): void => {
    Atomics.store(beat, 0, BigInt(Date.now()));
  };
  stamp();
  const timer = setInterval(stamp, opts.beatMs ?? 250);
  timer.unref();
  const worker = new Worker(__filename, {
    workerData: { liveness: { beat: buf, port: opts.port, host: opts.host, stallMs: opts.stallMs } satisfies LivenessData },
    // The worker needs little: a small heap of its own.
    resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 8 },
  });
  worker.unref();
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (m: { port?: number; error?: string }) =>
      m.port !== undefined ? resolve(m.port) : reject(new Error(`LIVENESS_PORT ${opts.port}: ${m.error}`)),
    );
    worker.once('error', (e) => reject(new Error(`LIVENESS_PORT ${opts.port}: ${e.message}`)));
  });
  return {
    port,
    close: async () => {
      clearInterval(timer);
      await worker.terminate();
    },
  };
}
