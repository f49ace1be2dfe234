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
import { BASIC_METRICS, NODE_METRICS, type MetricDef } from '../src/core/metrics';
import { Rng } from '../src/core/random';
import { detectReplyWriter } from '../src/routes/detect-json';
import { pointReader } from '../src/validation/point';
import { typicalValue } from '../test/helpers/node-model';

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

/** CPU seconds (user + system) process `pid` has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of stat (11 and 12 after the command), in clock ticks (100 per second).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Run {
  rps: number;
  p50: number;
  p99: number;
  /** CPU time of the server per request, in ms. */
  cpuMsPerRequest: number;
}

async function cannon(url: string, body: string, seconds: number, pid?: number): Promise<Run> {
  const cpu0 = pid === undefined ? 0 : cpuSeconds(pid);
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
  const cpu = pid === undefined ? NaN : cpuSeconds(pid) - cpu0;
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, cpuMsPerRequest: (1000 * cpu) / Math.max(1, r.requests.total) };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** A point of the bench: the three fields, or every metric of `defs` by name under `metrics`. */
function benchPoint(i: number, defs?: readonly MetricDef[]): Record<string, unknown> {
  const base = { host: `host-${i % 50}`, timestamp: 1767607200000 + i * 1000 };
  const three = { cpu_usage: 20 + (i % 30), memory_usage: 40 + (i % 20), network_load: 300000 + (i % 100) * 1000 };
  if (!defs) return { ...base, ...three };
  const r = new Rng(i);
  return {
    ...base,
    metrics: Object.fromEntries(defs.map((d) => [d.name, d.name in three ? three[d.name as keyof typeof three] : typicalValue(d, r)])),
  };
}

async function startProcess(args: string[], env: NodeJS.ProcessEnv, probe: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: 'ignore' });
  await waitFor(probe);
  return child;
}

/**
 * The handler's own work per point, in process: reading (checking) the points and writing
 * the reply, for the three fields of the basic set and for the 13 named metrics of the node
 * set; best of several rounds, in ns per point and per point-metric.
 */
function handlerCost(): Record<string, { nsPerPoint: number; nsPerMetric: number }> {
  const n = 1000;
  const out: Record<string, { nsPerPoint: number; nsPerMetric: number }> = {};
  const forms = { threeFields: [BASIC_METRICS, false], namedBasic: [BASIC_METRICS, true], namedNode: [NODE_METRICS, true] } as const;
  const best: Record<string, number> = {};
  for (let round = 0; round < 7; round++) {
    for (const [name, [defs, named]] of Object.entries(forms)) {
      const points = JSON.parse(JSON.stringify(Array.from({ length: n }, (_, i) => benchPoint(i, named ? defs : undefined)))) as unknown[];
      const reader = pointReader(defs);
      const write = detectReplyWriter(defs.map((d) => d.name));
      const m = defs.length;
      const raw = new Float64Array(n * m);
      const times = new Float64Array(n);
      const rows = {
        n,
        hosts: points.map((p) => (p as { host: string }).host),
        times,
        scores: new Float64Array(n).fill(0.41),
        thresholds: 0.57,
        contributions: raw,
      };
      const t0 = process.hrtime.bigint();
      for (let rep = 0; rep < 20; rep++) {
        for (let i = 0; i < n; i++) if (!reader.read(points[i], raw, i, times)) throw new Error(`bench point ${i} is invalid`);
        if (write('v', rows).length === 0) throw new Error('empty reply');
      }
      const ns = Number(process.hrtime.bigint() - t0) / (20 * n);
      best[name] = Math.min(best[name] ?? Infinity, ns);
      out[name] = { nsPerPoint: best[name], nsPerMetric: best[name] / m };
    }
  }
  return out;
}

async function http(seconds: number, rounds: number) {
  const env = { LOG_LEVEL: 'warn', MAX_EVENT_LOOP_DELAY_MS: '0', MAX_CONCURRENT_REQUESTS: '1000', HOST: '127.0.0.1' };
  const servicePort = await freePort();
  const service = await startProcess(
    [join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'serve'],
    { ...env, PORT: String(servicePort) },
    `http://127.0.0.1:${servicePort}/health`,
  );
  const nodePort = await freePort();
  const nodeServer = await startProcess(
    [join(ROOT, 'dist', 'bench', 'detect-server.js'), String(nodePort), 'node'],
    env,
    `http://127.0.0.1:${nodePort}/health`,
  );
  const base = `http://127.0.0.1:${servicePort}`;
  const nodeUrl = `http://127.0.0.1:${nodePort}/detect`;
  await new Promise((r) => setTimeout(r, 1000));
  const rssAtStart = rssMb(service.pid as number);
  const body = (n: number, defs?: readonly MetricDef[]) =>
    JSON.stringify({ points: Array.from({ length: n }, (_, i) => benchPoint(i, defs)) });
  const body1 = body(1);
  const body1000 = body(1000);
  const body1000Named = body(1000, BASIC_METRICS);
  const body1000Node = body(1000, NODE_METRICS);
  const post = async (url: string, b: string) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: b });
    if (res.status !== 200) throw new Error(`${url}: ${res.status} ${(await res.text()).slice(0, 300)}`);
    return res.json();
  };
  const replies = { 1: await post(`${base}/detect`, body1), 1000: await post(`${base}/detect`, body1000) };
  // The named form of the three gives the same results as the three fields.
  if (JSON.stringify(await post(`${base}/detect`, body1000Named)) !== JSON.stringify(replies[1000])) throw new Error('named form differs');
  await post(nodeUrl, body1000Node);
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
  const s = service.pid as number;
  const b = bare.pid as number;
  const nd = nodeServer.pid as number;
  try {
    // Warm every server up, then measure in rounds, each case once per round in turn, so
    // that drift in the machine's load hits /detect and the bare route alike; the ratios
    // are taken within a round.
    await cannon(`${base}/detect`, body1, 2);
    await cannon(bareUrl, body1, 2);
    await cannon(`${base}/detect`, body1000, 2);
    await cannon(nodeUrl, body1000Node, 2);
    const runs: Array<Record<string, Run>> = [];
    for (let round = 0; round < rounds; round++) {
      process.stderr.write(`HTTP round ${round + 1} of ${rounds}...\n`);
      runs.push({
        single: await cannon(`${base}/detect`, body1, seconds, s),
        singleBare: await cannon(bareUrl, body1, seconds, b),
        batch: await cannon(`${base}/detect`, body1000, seconds, s),
        batchBare: await cannon(bareUrl, body1000, seconds, b),
        batchNamed: await cannon(`${base}/detect`, body1000Named, seconds, s),
        batchNode: await cannon(nodeUrl, body1000Node, seconds, nd),
      });
    }
    const singleRatios = runs.map((r) => r.single.rps / r.singleBare.rps);
    const batchRatios = runs.map((r) => r.batch.rps / r.batchBare.rps);
    const pick = (k: string) => {
      // The run of the median round of this case (by requests/s).
      const sorted = [...runs].sort((x, y) => x[k].rps - y[k].rps);
      return sorted[(sorted.length - 1) >> 1][k];
    };
    // ms per 1,000-point request is µs per point.
    const cpuPerPoint = (k: string) => median(runs.map((r) => r[k].cpuMsPerRequest));
    return {
      rounds,
      seconds,
      rssAtStart,
      single: pick('single'),
      singleBare: pick('singleBare'),
      batch: pick('batch'),
      batchBare: pick('batchBare'),
      batchNamed: pick('batchNamed'),
      batchNode: pick('batchNode'),
      ratios: {
        single: { min: Math.min(...singleRatios), median: median(singleRatios), all: singleRatios },
        batch: { min: Math.min(...batchRatios), median: median(batchRatios), all: batchRatios },
      },
      // Server CPU µs per point of a 1,000-point batch (median over the rounds).
      cpuUsPerPoint: { threeFields: cpuPerPoint('batch'), namedBasic: cpuPerPoint('batchNamed'), namedNode: cpuPerPoint('batchNode') },
      handler: handlerCost(),
      runs,
      rssAfter: rssMb(s),
    };
  } finally {
    service.kill('SIGTERM');
    bare.kill('SIGTERM');
    nodeServer.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  if (process.env.BENCH_PARTS === 'http') {
    // Only the HTTP part (for quick iterations): `BENCH_PARTS=http npm run bench`.
    process.stdout.write(`${JSON.stringify(await http(seconds, rounds))}\n`);
    return;
  }
  const x = data(N, 42);
  process.stderr.write('scoring and training: this package...\n');
  const o = ours(x);
  process.stderr.write('scikit-learn...\n');
  const sk = sklearn(x);
  process.stderr.write('ml-isolation-forest (slow: trains on every row)...\n');
  const ml = mlIsolationForest(x);
  process.stderr.write(`HTTP (autocannon, ${seconds} s per run, ${rounds} rounds)...\n`);
  const h = await http(seconds, rounds);
  const rate = (s: number, n = N) => Math.round(n / s);
  const pct = (r: number) => `${(100 * r).toFixed(0)}%`;
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
      `${pct(h.ratios.single.median)} of bare (median of ${h.rounds} rounds; min ${pct(h.ratios.single.min)})`,
    ],
    ['  p50 / p99 latency (ms)', `${h.single.p50} / ${h.single.p99}`, `bare ${h.singleBare.p50} / ${h.singleBare.p99}`, '', ''],
    [
      'POST /detect 1,000 points (points/s)',
      (h.batch.rps * 1000).toFixed(0),
      `bare ${(h.batchBare.rps * 1000).toFixed(0)}`,
      '',
      `${pct(h.ratios.batch.median)} of bare (median of ${h.rounds} rounds; min ${pct(h.ratios.batch.min)})`,
    ],
    ['  p50 / p99 latency (ms)', `${h.batch.p50} / ${h.batch.p99}`, `bare ${h.batchBare.p50} / ${h.batchBare.p99}`, '', ''],
    [
      '  the three by name in metrics (points/s)',
      (h.batchNamed.rps * 1000).toFixed(0),
      '',
      '',
      `server CPU ${h.cpuUsPerPoint.namedBasic.toFixed(2)} µs/point (three fields ${h.cpuUsPerPoint.threeFields.toFixed(2)})`,
    ],
    [
      '  node set, 13 metrics by name (points/s)',
      (h.batchNode.rps * 1000).toFixed(0),
      '',
      '',
      `server CPU ${h.cpuUsPerPoint.namedNode.toFixed(2)} µs/point, ${(h.cpuUsPerPoint.namedNode / 13).toFixed(2)} per metric ` +
        `(three fields ${(h.cpuUsPerPoint.threeFields / 3).toFixed(2)} per metric)`,
    ],
    [
      '  handler read + reply (ns per metric)',
      `three fields ${h.handler.threeFields.nsPerMetric.toFixed(0)}`,
      `named three ${h.handler.namedBasic.nsPerMetric.toFixed(0)}`,
      `named 13 ${h.handler.namedNode.nsPerMetric.toFixed(0)}`,
      `per point: ${[h.handler.threeFields, h.handler.namedBasic, h.handler.namedNode].map((x) => x.nsPerPoint.toFixed(0)).join(' / ')} ns`,
    ],
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
