/**
 * Forest scoring throughput on one thread: points/s of IsolationForest.score with and
 * without per-feature contributions, for each kernel (the JS fallback is the previous
 * implementation's traversal), and the latency of scoring one point.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/scoring.js [points] [trees] [psi] [features]
 */
import { flattenForest, getKernelMode, setKernelMode, WasmForestKernel, type KernelMode } from '../src/core/forest-kernel';
import { IsolationForest } from '../src/core/isolation-forest';
import { Rng } from '../src/core/random';

const [nPoints = 100_000, nTrees = 100, psi = 256, d = 3] = process.argv.slice(2).map(Number);
const REPEATS = 9;

function normals(n: number, seed: number, scale = 1): Float64Array {
  const r = new Rng(seed);
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = r.normal() * scale;
  return x;
}

const nTrain = Math.max(10_000, psi);
const forest = IsolationForest.fit(normals(nTrain * d, 1), nTrain, d, { nEstimators: nTrees, maxSamples: psi, seed: 42 });
// Mostly inliers, with a wider tail so that some points leave the trees early.
const x = normals(nPoints * d, 2, 1.3);

interface Result {
  median: number;
  best: number;
  /** From the process's CPU time: less disturbed by other processes on a shared machine. */
  cpu: number;
  scores: Float64Array;
  contrib?: Float64Array;
}

function run(mode: KernelMode, withContrib: boolean): Result {
  setKernelMode(mode);
  const f = IsolationForest.fromState(forest.toState());
  const scores = new Float64Array(nPoints);
  const contrib = withContrib ? new Float64Array(nPoints * d) : undefined;
  // Build the kernel and let the engine optimise (WebAssembly tiers up between calls).
  for (let w = 0; w < 3; w++) f.score(x, nPoints, scores, contrib);
  const times: number[] = [];
  const cpus: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    f.score(x, nPoints, scores, contrib);
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    const c = process.cpuUsage(c0);
    cpus.push((c.user + c.system) / 1e6);
  }
  times.sort((a, b) => a - b);
  cpus.sort((a, b) => a - b);
  const mid = Math.floor(REPEATS / 2);
  return { median: nPoints / times[mid], best: nPoints / times[0], cpu: nPoints / cpus[mid], scores, contrib };
}

const same = (a: Float64Array, b: Float64Array): boolean => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
const rate = (v: number): string => Math.round(v).toLocaleString('en-US').padStart(11);

const previous = getKernelMode();
const kernel = WasmForestKernel.create(flattenForest(forest.toState()));
console.log(`scoring ${nPoints} points, ${nTrees} trees, subsample ${psi}, ${d} features; one thread`);
console.log(`points/s over ${REPEATS} runs: median and best wall time, median CPU time`);
console.log(`WebAssembly kernel: ${kernel ? `${kernel.kind}, ${(kernel.memoryBytes / 2 ** 20).toFixed(1)} MiB` : 'unavailable'}`);
const reference: Partial<Record<'plain' | 'contrib', Result>> = {};
for (const mode of ['js', 'scalar', 'auto'] as const) {
  for (const withContrib of [false, true]) {
    const r = run(mode, withContrib);
    const key = withContrib ? 'contrib' : 'plain';
    const ref = reference[key];
    let check = '';
    if (!ref) reference[key] = r;
    else
      check =
        same(r.scores, ref.scores) && (!r.contrib || same(r.contrib, ref.contrib as Float64Array))
          ? '  identical to js'
          : '  DIFFERS FROM JS';
    const label = `${mode === 'auto' ? 'wasm simd' : mode === 'scalar' ? 'wasm scalar' : 'js'} ${withContrib ? 'score+contrib' : 'score'}`;
    console.log(`${label.padEnd(26)}${rate(r.median)} ${rate(r.best)} ${rate(r.cpu)}${check}`);
  }
}
setKernelMode(previous);

// Latency of one point (kernel already built), without and with contributions: hot (the
// same point over and over) and cold (a 32 MiB buffer read between calls, as the rest of a
// request's work does to the caches). Each call timed on its own; the median.
const evict = new Float64Array(4 * 2 ** 20);
let sink = 0;
const single = IsolationForest.fromState(forest.toState());
const one = new Float64Array(1);
const oneContrib = new Float64Array(d);
single.score(x, 1, one, oneContrib);
single.score(x, 1, one);
for (const cold of [false, true])
  for (const withContrib of [false, true]) {
    const reps = cold ? 400 : 20_000;
    const us: number[] = [];
    for (let i = 0; i < reps; i++) {
      if (cold) for (let k = 0; k < evict.length; k += 8) sink += evict[k];
      const p = x.subarray((i % 1000) * d, (i % 1000) * d + d);
      const t0 = process.hrtime.bigint();
      single.score(p, 1, one, withContrib ? oneContrib : undefined);
      us.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
    us.sort((a, b) => a - b);
    const label = `one point${withContrib ? ' +contrib' : ''}, ${cold ? 'cold' : 'hot'}`;
    console.log(`${label.padEnd(26)}${us[us.length >> 1].toFixed(2).padStart(11)} us`);
  }
if (sink === 1) console.log('');
