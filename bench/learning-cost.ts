/**
 * `npm run bench:learning-cost -- --hosts N --steps S [--metrics basic|node]`: the learning default's own cost,
 * without InfluxDB: N synthetic hosts, one point each per 10 s step, through the streaming
 * detector with the service's defaults (refits every `--refit-s`, default 300 s so that a
 * short run has some). Prints the learned state per host (heap and buffers after a
 * collection, over N: run with `node --expose-gc`, as the npm script does), resident
 * memory, and the median and worst cycle with and without a refit.
 */
import { DEFAULT_GATE } from '../src/core/gate';
import { DEFAULT_HOST_LEARNING, hostLearningOptions } from '../src/core/host-learning';
import { METRIC_PRESETS, type MetricPreset } from '../src/core/metrics';
import { StreamingDetector } from '../src/core/streaming';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const hosts = Number(args.get('hosts') ?? 10_000);
const steps = Number(args.get('steps') ?? 80);
const refitMs = Number(args.get('refit-s') ?? 300) * 1000;
const preset = (args.get('metrics') ?? 'basic') as MetricPreset;
if (!Object.hasOwn(METRIC_PRESETS, preset)) throw new Error(`--metrics: one of ${Object.keys(METRIC_PRESETS).join(', ')}`);
const names = METRIC_PRESETS[preset].map((d) => d.name);
const m = names.length;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc (npm run bench:learning-cost does)');

const live = (): number => {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const before = live();
const engine = StreamingDetector.learner(
  hostLearningOptions({
    gate: DEFAULT_GATE,
    maxKeys: hosts,
    metrics: names,
    params: { ...DEFAULT_HOST_LEARNING, refitIntervalMs: refitMs },
  }),
);
const keys = Array.from({ length: hosts }, (_, h) => `host-${h}`);
let seed = 7;
const rnd = (): number => {
  seed = (seed * 16807) % 2147483647;
  return seed / 2147483647;
};
const plain: number[] = [];
const refitting: number[] = [];
for (let s = 0; s < steps; s++) {
  const raw = new Float64Array(hosts * m);
  for (let h = 0; h < hosts; h++) {
    raw.set([20 + (h % 50) + 3 * rnd(), 40 + rnd(), 1e5 * (1 + rnd())], h * m);
    // The node metrics: levels per host with noise (load, bytes/s, ms/s, percent, connections).
    for (let c = 3; c < m; c++) raw[h * m + c] = (1 + (h % 7)) * (c + 1) * (1 + 0.2 * rnd());
  }
  const refits = engine.refits;
  const t0 = process.hrtime.bigint();
  engine.process({ keys, times: new Array<number>(hosts).fill(s * 10_000), raw, n: hosts });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  (engine.refits !== refits ? refitting : plain).push(ms);
}
const perHost = (live() - before) / hosts;
plain.sort((a, b) => a - b);
const out = {
  metrics: preset,
  hosts,
  steps,
  declared_bytes_per_host: engine.bytesPerKey,
  measured_bytes_per_host: Math.round(perHost),
  rss_mb: Math.round(process.memoryUsage().rss / 1048576),
  cycle_ms_median: Math.round(plain[plain.length >> 1]),
  cycle_ms_max: Math.round(plain[plain.length - 1]),
  refit_cycles_ms: refitting.map(Math.round),
  refits: engine.refits,
};
process.stdout.write(`${JSON.stringify(out)}\n`);
