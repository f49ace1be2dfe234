/**
 * `npm run bench:flood`: liveness under a flood of large requests. The service runs as a
 * process on its bundled model with LIVENESS_PORT set; BENCH_CLIENTS (32) clients post
 * 10,000-point /detect requests back to back for BENCH_SECONDS (15) while a probe, in a
 * process of its own (so that the flood clients' work does not delay it), asks
 * /health/live every 200 ms on the main port (answered on the main event loop) and on
 * LIVENESS_PORT (answered by the liveness thread, src/liveness.ts). Prints each probe's
 * latency (median, 90th percentile, max) and statuses, and how many /detect requests were
 * answered. Kubernetes restarts a pod whose liveness probe times out (3 s in k8s/): the
 * tail is what matters.
 */
import { spawn } from 'node:child_process';
import { freePort } from '../test/helpers/ports';
import { startService } from '../test/helpers/process';

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);

/** The probe process: GET each URL every 200 ms until stdin closes, then one JSON line of latencies and statuses per URL. */
const PROBE = `
const urls = JSON.parse(process.argv[1]);
const out = urls.map(() => ({ lat: [], statuses: {} }));
let stop = false;
process.stdin.on('end', () => (stop = true)).resume();
const loop = async (u, k) => {
  while (!stop) {
    const t = performance.now();
    let s = 'error';
    try { const r = await fetch(u, { signal: AbortSignal.timeout(10000) }); await r.text(); s = r.status; } catch {}
    out[k].lat.push(performance.now() - t);
    out[k].statuses[s] = (out[k].statuses[s] || 0) + 1;
    await new Promise((r) => setTimeout(r, 200));
  }
};
Promise.all(urls.map(loop)).then(() => process.stdout.write(JSON.stringify(out) + '\\n'));
`;

async function main(): Promise<void> {
  const livePort = await freePort();
  const svc = await startService({ LOG_LEVEL: 'silent', LIVENESS_PORT: String(livePort) });
  try {
    const points = Array.from({ length: 10_000 }, (_, i) => ({ cpu_usage: 20 + (i % 7), memory_usage: 40, network_load: 1000 + i }));
    const body = JSON.stringify({ points });
    let stop = false;
    let answered = 0;
    const client = async () => {
      while (!stop) {
        try {
          const r = await fetch(`${svc.url}/detect`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
          await r.arrayBuffer();
          if (r.status === 200) answered++;
        } catch {
          // a refused connection counts as not answered
        }
      }
    };
    const urls = [`${svc.url}/health/live`, `http://127.0.0.1:${livePort}/health/live`];
    const probe = spawn(process.execPath, ['-e', PROBE, JSON.stringify(urls)], { stdio: ['pipe', 'pipe', 'inherit'] });
    let text = '';
    probe.stdout.on('data', (d: Buffer) => (text += d.toString()));
    const probed = new Promise<void>((r) => probe.on('close', () => r()));
    const running = Array.from({ length: CLIENTS }, client);
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    stop = true;
    probe.stdin.end();
    await Promise.all(running);
    await probed;
    const res = JSON.parse(text) as Array<{ lat: number[]; statuses: Record<string, number> }>;
    process.stdout.write(`under ${CLIENTS} clients of 10,000-point /detect for ${SECONDS} s (${answered} answered):\n`);
    ['main port /health/live', 'LIVENESS_PORT /health/live'].forEach((name, k) => {
      const lat = res[k].lat.sort((a, b) => a - b);
      const q = (f: number) => Math.round(lat[Math.min(lat.length - 1, Math.floor(lat.length * f))]);
      process.stdout.write(
        `  ${name}: ${lat.length} probes, median ${q(0.5)} ms, p90 ${q(0.9)} ms, max ${Math.round(lat[lat.length - 1])} ms, ` +
          `statuses ${JSON.stringify(res[k].statuses)}\n`,
      );
    });
  } finally {
    await svc.stop();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:flood failed: ${(e as Error).message}\n`);
  process.exit(1);
});
