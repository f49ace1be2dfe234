/**
 * `npm run bench`: scoring and training against ml-isolation-forest and scikit-learn,
 * and HTTP throughput of /detect against a bare Fastify route, all in one run on this
 * machine. Prints a table and one JSON line. Not part of `npm test`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import { IsolationForest } from '../src/core/isolation-forest';
import { Rng } from '../src/core/random';

const ROOT = resolve(__dirname, '..', '..');
const N = 100_000;
const D = 3;

function data(n: number, seed: number): Float64Array {
  const r = new Rng(seed);
  const x = new Float64Array(n * D);
  for (let i = 0; i < x.length; i++) x[i] = r.normal();
  // 1% outliers, as in operational data
  for (let i = 0; i < n; i += 100) x[i * D + (i % D)] += 6;
  return x;
}

function best(fn: () => void, runs: number): number {
  let b = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    b = Math.min(b, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return b;
}

function ours(x: Float64Array) {
  const fit1k = best(() => IsolationForest.fit(x.subarray(0, 1000 * D), 1000, D, { nEstimators: 100, maxSamples: 256, seed: 1 }), 5);
  const fit100k = best(() => IsolationForest.fit(x, N, D, { nEstimators: 100, maxSamples: 256, seed: 1 }), 5);
  const f = IsolationForest.fit(x, N, D, { nEstimators: 100, maxSamples: 256, seed: 1 });
  const out = new Float64Array(N);
  const contrib = new Float64Array(N * D);
  const score = best(() => f.score(x, N, out), 7);
  const scoreContrib = best(() => f.score(x, N, out, contrib), 7);
  const one = Float64Array.from([0.1, 0.2, 0.3]);
  const o1 = new Float64Array(1);
  const c1 = new Float64Array(D);
  const single =
    best(() => {
      for (let i = 0; i < 1000; i++) f.score(one, 1, o1, c1);
    }, 5) / 1000;
  return { fit1k, fit100k, score, scoreContrib, single };
}

function mlIsolationForest(x: Float64Array) {
  type MlModule = {
    IsolationForest: new (opts?: { nEstimators?: number }) => { train(x: number[][]): void; predict(x: number[][]): number[] };
  };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const MlIF = (require('ml-isolation-forest') as MlModule).IsolationForest;
  const rows = (n: number) => Array.from({ length: n }, (_, i) => [x[i * D], x[i * D + 1], x[i * D + 2]]);
  const r1k = rows(1000);
  const r100k = rows(N);
  const fit1k = best(() => new MlIF({ nEstimators: 100 }).train(r1k), 3);
  const t0 = process.hrtime.bigint();
  const m = new MlIF({ nEstimators: 100 });
  m.train(r100k);
  const fit100k = Number(process.hrtime.bigint() - t0) / 1e9;
  const sample = r100k.slice(0, 10000);
  const t1 = process.hrtime.bigint();
  m.predict(sample);
  const scoreRate = sample.length / (Number(process.hrtime.bigint() - t1) / 1e9);
  return { fit1k, fit100k, scoreRate };
}

function sklearn(x: Float64Array) {
  const dir = mkdtempSync(join(tmpdir(), 'iad-bench-'));
  const csv = join(dir, 'x.csv');
  const lines: string[] = [];
  for (let i = 0; i < N; i++) lines.push(`${x[i * D]},${x[i * D + 1]},${x[i * D + 2]}`);
  writeFileSync(csv, lines.join('\n'));
  const python = process.env.SKLEARN_PYTHON ?? execFileSync('bash', [join(ROOT, 'scripts', 'python-env.sh')], { encoding: 'utf8' }).trim();
  const out = execFileSync(python, [join(ROOT, 'scripts', 'sklearn_bench.py'), csv], { encoding: 'utf8' });
  return JSON.parse(out) as { fit_1000_s: number; fit_100000_s: number; score_100000_s: number; predict_1_s: number };
}

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

async function waitFor(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(url)).status < 500) return;
    } catch {
      // starting
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not come up`);
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function cannon(url: string, body: string, seconds: number) {
  const r = await autocannon({
    url,
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
    connections: 10,
    pipelining: 1,
    duration: seconds,
  });
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${url}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
}

async function http(seconds: number) {
  const servicePort = await freePort();
  const service: ChildProcess = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'serve'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(servicePort),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      MAX_EVENT_LOOP_DELAY_MS: '0',
      MAX_CONCURRENT_REQUESTS: '1000',
    },
    stdio: 'ignore',
  });
  const base = `http://127.0.0.1:${servicePort}`;
  await waitFor(`${base}/health`);
  await new Promise((r) => setTimeout(r, 1000));
  const rssAtStart = rssMb(service.pid as number);
  const point = (i: number) => ({
    host: `host-${i % 50}`,
    timestamp: 1767607200000 + i * 1000,
    cpu_usage: 20 + (i % 30),
    memory_usage: 40 + (i % 20),
    network_load: 300000 + (i % 100) * 1000,
  });
  const body1 = JSON.stringify({ points: [point(0)] });
  const body1000 = JSON.stringify({ points: Array.from({ length: 1000 }, (_, i) => point(i)) });
  const post = async (b: string) =>
    (await fetch(`${base}/detect`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: b })).json();
  const replies = { 1: await post(body1), 1000: await post(body1000) };
  const barePort = await freePort();
  const repliesFile = join(mkdtempSync(join(tmpdir(), 'iad-bare-')), 'replies.json');
  writeFileSync(repliesFile, JSON.stringify(replies));
  const bare = spawn(process.execPath, [join(ROOT, 'dist', 'bench', 'bare-server.js'), String(barePort), repliesFile], { stdio: 'ignore' });
  const bareUrl = `http://127.0.0.1:${barePort}/detect`;
  for (let i = 0; i < 50; i++) {
    try {
      await fetch(bareUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body1 });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    // Warm both up, then measure alternately so drift in machine load hits both.
    await cannon(`${base}/detect`, body1, 2);
    await cannon(bareUrl, body1, 2);
    const single = await cannon(`${base}/detect`, body1, seconds);
    const singleBare = await cannon(bareUrl, body1, seconds);
    const batch = await cannon(`${base}/detect`, body1000, seconds);
    const batchBare = await cannon(bareUrl, body1000, seconds);
    return { rssAtStart, single, singleBare, batch, batchBare, rssAfter: rssMb(service.pid as number) };
  } finally {
    service.kill('SIGTERM');
    bare.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 10);
  if (process.env.BENCH_PARTS === 'http') {
    // Only the HTTP part (for quick iterations): `BENCH_PARTS=http npm run bench`.
    process.stdout.write(`${JSON.stringify(await http(seconds))}\n`);
    return;
  }
  const x = data(N, 42);
  process.stderr.write('scoring and training: this package...\n');
  const o = ours(x);
  process.stderr.write('scikit-learn...\n');
  const sk = sklearn(x);
  process.stderr.write('ml-isolation-forest (slow: trains on every row)...\n');
  const ml = mlIsolationForest(x);
  process.stderr.write(`HTTP (autocannon, ${seconds} s per run)...\n`);
  const h = await http(seconds);
  const rate = (s: number, n = N) => Math.round(n / s);
  const rows: Array<[string, string, string, string, string]> = [
    [
      'scoring 100k points (points/s)',
      `${rate(o.score)}`,
      `${rate(sk.score_100000_s)}`,
      `${Math.round(ml.scoreRate)}`,
      `${(sk.score_100000_s / o.score).toFixed(1)}x sklearn`,
    ],
    ['  with contributions (points/s)', `${rate(o.scoreContrib)}`, '-', '-', `${(sk.score_100000_s / o.scoreContrib).toFixed(1)}x sklearn`],
    [
      'one point (µs)',
      (o.single * 1e6).toFixed(1),
      (sk.predict_1_s * 1e6).toFixed(0),
      '-',
      `${(sk.predict_1_s / o.single).toFixed(0)}x sklearn predict`,
    ],
    ['train 1,000 rows (ms)', (o.fit1k * 1e3).toFixed(1), (sk.fit_1000_s * 1e3).toFixed(1), (ml.fit1k * 1e3).toFixed(0), ''],
    ['train 100,000 rows (ms)', (o.fit100k * 1e3).toFixed(1), (sk.fit_100000_s * 1e3).toFixed(1), (ml.fit100k * 1e3).toFixed(0), ''],
    [
      'POST /detect 1 point (req/s)',
      h.single.rps.toFixed(0),
      `bare ${h.singleBare.rps.toFixed(0)}`,
      '',
      `${((100 * h.single.rps) / h.singleBare.rps).toFixed(0)}% of bare`,
    ],
    ['  p50 / p99 latency (ms)', `${h.single.p50} / ${h.single.p99}`, `bare ${h.singleBare.p50} / ${h.singleBare.p99}`, '', ''],
    [
      'POST /detect 1,000 points (points/s)',
      (h.batch.rps * 1000).toFixed(0),
      `bare ${(h.batchBare.rps * 1000).toFixed(0)}`,
      '',
      `${((100 * h.batch.rps) / h.batchBare.rps).toFixed(0)}% of bare`,
    ],
    ['  p50 / p99 latency (ms)', `${h.batch.p50} / ${h.batch.p99}`, `bare ${h.batchBare.p50} / ${h.batchBare.p99}`, '', ''],
    ['resident memory after start (MB)', h.rssAtStart.toFixed(1), '', '', `after load ${h.rssAfter.toFixed(1)}`],
  ];
  const head: [string, string, string, string, string] = ['measure', 'this package', 'scikit-learn', 'ml-isolation-forest', 'ratio'];
  const widths = head.map((_, i) => Math.max(...[head, ...rows].map((r) => r[i].length)));
  for (const r of [head, ...rows]) process.stdout.write(`| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |\n`);
  process.stdout.write(`${JSON.stringify({ ours: o, sklearn: sk, mlIsolationForest: ml, http: h })}\n`);
}

void main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
  process.exit(1);
});
