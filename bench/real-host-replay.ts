/**
 * `npm run bench:real-host-replay -- FILE.json [FILE.json ...] [--set key=value,...] [--debug]`:
 * replays the steps a `bench:real-host` run recorded (its JSON: every step's cpu_val,
 * mem_val and net_val as the service read them from Telegraf's data) through the
 * service's streaming detector (core/host-learning.ts defaults, the bundled model as the
 * prior, the service's default gate), one host from its first point, as the poller feeds
 * it. So the detector can be changed and judged on a real host's data in a second
 * instead of a 33-minute run. Prints, per file, the learning and quiet phases' gated
 * alerts and raw anomalies, and per incident: alerted, delay in steps (1 = the first
 * step of the load), the top contribution of its first alert, its highest severity and
 * the raw anomalies (a run of 3 alerts).
 */
import fs from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_GATE } from '../src/core/gate';
import { DEFAULT_HOST_LEARNING, hostLearningOptions, type HostLearningParams } from '../src/core/host-learning';
import { StreamingDetector } from '../src/core/streaming';
import { loadDetectorFile } from '../src/model-store';

interface RecordedStep {
  time: string;
  cpu: number;
  mem: number;
  net: number;
}
interface Recorded {
  args: { learnMin: number; quietMin: number };
  incidents: Array<{ name: string; expected_top: string; skipped: string | null; start: string | null; end: string | null }>;
  steps: RecordedStep[];
}

const files: string[] = [];
const opts = new Map<string, string>();
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--debug') opts.set('debug', '1');
  else if (a.startsWith('--')) opts.set(a.slice(2), process.argv[++i]);
  else files.push(a);
}
if (files.length === 0) throw new Error('usage: real-host-replay FILE.json [FILE.json ...] [--set key=value,...] [--debug]');

const params: HostLearningParams = { ...DEFAULT_HOST_LEARNING };
for (const kv of (opts.get('set') ?? '').split(',').filter(Boolean)) {
  const [k, v] = kv.split('=');
  if (!(k in params)) throw new Error(`--set: unknown parameter ${k}`);
  (params as unknown as Record<string, number>)[k] = Number(v);
}
const prior = loadDetectorFile(resolve(__dirname, '../../models/model.json'));
const STEP_MS = 10_000;
const METRICS = ['cpu', 'memory', 'network'];
const debug = opts.has('debug');

for (const file of files) {
  const rec = JSON.parse(fs.readFileSync(file, 'utf8')) as Recorded;
  const steps = rec.steps;
  const n = steps.length;
  const times = steps.map((s) => Date.parse(s.time));
  const engine = StreamingDetector.learner(hostLearningOptions({ prior, gate: DEFAULT_GATE, maxKeys: 10, params }));
  const res = engine.process({
    keys: steps.map(() => 'host'),
    times,
    raw: Float64Array.from(steps.flatMap((s) => [s.cpu, s.mem, s.net])),
    n,
  });
  const real = rec.incidents.filter((x) => !x.skipped && x.start !== null);
  const firstLoad = real.length ? Date.parse(real[0].start as string) : Infinity;
  const quietFrom = firstLoad - rec.args.quietMin * 60_000;
  const count = (from: number, to: number, a: ArrayLike<number>) => times.reduce((k, t, i) => k + (t >= from && t < to ? a[i] : 0), 0);
  const sev = (i: number) => res.scores[i] / res.thresholds[i];
  const lines = [
    `${file}: ${n} steps, ${engine.refits} refits`,
    `  learning: ${count(-Infinity, quietFrom, res.alerts)} gated alerts; quiet ${rec.args.quietMin} min: ${count(quietFrom, firstLoad, res.alerts)} gated alerts, ${count(quietFrom, firstLoad, res.anomalies)} raw anomalies, max severity ${Math.max(...times.map((t, i) => (t >= quietFrom && t < firstLoad && res.learning[i] === 0 ? sev(i) : 0))).toFixed(2)}`,
  ];
  for (const inc of real) {
    const start = Math.ceil(Date.parse(inc.start as string) / STEP_MS) * STEP_MS;
    const end = Date.parse(inc.end as string);
    const idx = times.map((t, i) => (t >= start && t <= end ? i : -1)).filter((i) => i >= 0);
    const first = idx.find((i) => res.alerts[i] === 1);
    let top = '-';
    if (first !== undefined) {
      const c = [0, 1, 2].map((k) => res.contributions[first * 3 + k]);
      top = METRICS[c.indexOf(Math.max(...c))];
    }
    const maxSev = Math.max(...idx.map(sev));
    lines.push(
      `  ${inc.name.padEnd(15)} ${first !== undefined ? `alerted at step ${Math.round((times[first] - start) / STEP_MS) + 1}, top ${top}${top === inc.expected_top ? '' : ` (expected ${inc.expected_top})`}` : 'not alerted'}; ${idx.reduce((k, i) => k + res.alerts[i], 0)} alerts, ${idx.reduce((k, i) => k + res.anomalies[i], 0)} raw of ${idx.length} steps, max severity ${maxSev.toFixed(2)}`,
    );
    if (debug)
      for (const i of idx.slice(0, 8))
        lines.push(
          `    ${steps[i].time} cpu ${steps[i].cpu.toFixed(1)} mem ${steps[i].mem.toFixed(2)} net ${steps[i].net.toFixed(0)} sev ${sev(i).toFixed(2)} raw ${res.anomalies[i]} alert ${res.alerts[i]} learning ${res.learning[i]}`,
        );
  }
  const after = times
    .map((t, i) =>
      t >= firstLoad &&
      res.alerts[i] === 1 &&
      !real.some((x) => t >= Date.parse(x.start as string) && t <= Date.parse(x.end as string) + 60_000)
        ? i
        : -1,
    )
    .filter((i) => i >= 0);
  lines.push(`  alerts outside the loads after the quiet part (more than 1 min after a load): ${after.length}`);
  if (debug) {
    const q = times.map((t, i) => (t >= quietFrom && t < firstLoad && res.anomalies[i] === 1 ? i : -1)).filter((i) => i >= 0);
    for (const i of q)
      lines.push(
        `    quiet raw: ${steps[i].time} cpu ${steps[i].cpu.toFixed(1)} mem ${steps[i].mem.toFixed(2)} net ${steps[i].net.toFixed(0)} sev ${sev(i).toFixed(2)}`,
      );
  }
  console.log(lines.join('\n'));
}
