/**
 * `npm run bench:flood`: liveness under a flood of large requests. The service runs as a
 * process on its bundled model; BENCH_CLIENTS (32) clients post 10,000-point /detect
 * requests back to back for BENCH_SECONDS (15) while a probe asks /health/live every
 * 200 ms. Prints the probe's latency (median, 90th percentile, max) and statuses, and how
 * many /detect requests were answered. Kubernetes restarts a pod whose liveness probe
 * times out (1 s by default in k8s/): the tail is what matters.
 */
import { startService } from '../test/helpers/process';

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);

async function main(): Promise<void> {
  const svc = await startService({ LOG_LEVEL: 'silent' });
  try {
    const points = Array.from({ length: 10_000 }, (_, i) => ({ cpu_usage: 20 + (i % 7), memory_usage: 40, network_load: 1000 + i }));
    const body = JSON.stringify({ points });
    let stop = false;
    let answered = 0;
    const lat: number[] = [];
    const statuses = new Set<number | string>();
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
    const probe = async () => {
      while (!stop) {
        const t = performance.now();
        try {
          const r = await fetch(`${svc.url}/health/live`);
          await r.text();
          statuses.add(r.status);
        } catch {
          statuses.add('error');
        }
        lat.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const running = [...Array.from({ length: CLIENTS }, client), probe()];
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    stop = true;
    await Promise.all(running);
    lat.sort((a, b) => a - b);
    const q = (f: number) => Math.round(lat[Math.min(lat.length - 1, Math.floor(lat.length * f))]);
    process.stdout.write(
      `/health/live under ${CLIENTS} clients of 10,000-point /detect for ${SECONDS} s: ${lat.length} probes, ` +
        `median ${q(0.5)} ms, p90 ${q(0.9)} ms, max ${Math.round(lat[lat.length - 1])} ms, statuses ${[...statuses].join(',')}; ` +
        `${answered} /detect answered\n`,
    );
  } finally {
    await svc.stop();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:flood failed: ${(e as Error).message}\n`);
  process.exit(1);
});
