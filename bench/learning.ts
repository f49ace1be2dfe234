/**
 * `npm run bench:learning`: the learning default on a heterogeneous simulated fleet.
 * Hosts with very different normals (batch at 85-95 % CPU, idle at 1-3 %, 40 MB/s of
 * network, a cache at 90 % memory, web hosts), 10 s steps, `--history-days` of history
 * (the bootstrap) then `--days` scored. Runs the service's streaming detector
 * (core/host-learning.ts defaults, the bundled model as the prior) in (time, host) order,
 * as the poller does (test/integration/poller-learning.test.ts shows the two agree bit
 * for bit). Prints false alerts per host per day, incidents alerted and their delay, and
 * what two hosts that appear with no history get: one normal (alerts in its first hour),
 * one with CPU and memory at 100 % from its first step.
 *
 * To see why an incident is missed: `--debug 1` (each missed incident's highest score and
 * threshold), `--trace 1` (each missed incident step by step: its metric's features, score,
 * threshold, raw anomaly, alert and model generation; the features of every false alert;
 * the last model's feature ranges), `--dist 1` (quantiles of each metric's robust z and
 * level shift over the normal rows, and the smallest of the incidents' by step),
 * `--stop-at ISO` (the model's threshold and feature ranges at that time, then stop).
 */
import { resolve } from 'node:path';
import { DEFAULT_GATE } from '../src/core/gate';
import { DEFAULT_HOST_LEARNING, hostLearningOptions, type HostLearningParams } from '../src/core/host-learning';
import { StreamingDetector } from '../src/core/streaming';
import {
  alertDelays,
  DEFAULT_GRACE_MS,
  falseAlertsPerDay,
  incidentFigures,
  summarizeIncidents,
  type Incident,
} from '../src/eval/incidents';
import { simulate, type SimulatedRow } from '../src/data/simulate';
import { loadDetectorFile } from '../src/model-store';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const hosts = Number(args.get('hosts') ?? 10);
const historyDays = Number(args.get('history-days') ?? 2);
const days = Number(args.get('days') ?? 1);
const seed = Number(args.get('seed') ?? 3);
const STEP_S = 10;
const perDay = 86400 / STEP_S;
const start = Date.UTC(2026, 10, 1);

const rows: SimulatedRow[] = simulate({
  hosts,
  start,
  steps: (historyDays + days) * perDay,
  stepS: STEP_S,
  seed,
  incidentsPerDay: 3,
  profile: 'fleet',
});
const liveFrom = start + historyDays * 86400_000;
// Two hosts that appear when scoring starts: one normal (a web host's numbers), one blatant.
const fresh = simulate({ hosts: 5, start: liveFrom, steps: 360, stepS: STEP_S, seed: seed + 100, incidentsPerDay: 0, profile: 'fleet' })
  .filter((r) => r.host.startsWith('web'))
  .map((r) => ({ ...r, host: 'new-normal' }));
const blatant = Array.from({ length: 30 }, (_, k): SimulatedRow => ({
  timestamp: liveFrom + k * STEP_S * 1000,
  host: 'new-blatant',
  cpu_usage: 100,
  memory_usage: 100,
  network_load: 1e5,
  anomaly: 1,
  incident: 'combined',
}));
const all = [...rows, ...fresh, ...blatant].sort((a, b) => a.timestamp - b.timestamp || (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));

const prior = loadDetectorFile(resolve(__dirname, '../../models/model.json'));
// --set key=value,key=value overrides defaults (to compare settings in one run of the machine).
const params: HostLearningParams = { ...DEFAULT_HOST_LEARNING };
for (const kv of (args.get('set') ?? '').split(',').filter(Boolean)) {
  const [k, v] = kv.split('=');
  if (!(k in params)) throw new Error(`--set: unknown parameter ${k}`);
  (params as unknown as Record<string, number>)[k] = Number(v);
}
const engine = StreamingDetector.learner(hostLearningOptions({ prior, gate: DEFAULT_GATE, maxKeys: 100_000, params }));
const n = all.length;
const t0 = process.hrtime.bigint();
// --stop-at ISO: stream up to that time, print the model's feature ranges, then go on.
const stopAt = args.has('stop-at') ? Date.parse(args.get('stop-at') as string) : NaN;
if (Number.isFinite(stopAt)) {
  const cut = all.findIndex((r) => r.timestamp >= stopAt);
  const part = all.slice(0, cut);
  engine.process({
    keys: part.map((r) => r.host),
    times: part.map((r) => r.timestamp),
    raw: Float64Array.from(part.flatMap((r) => [r.cpu_usage, r.memory_usage, r.network_load])),
    n: part.length,
  });
  const q = engine.artifact.training.feature_quantiles;
  process.stdout.write(
    `model at ${args.get('stop-at')}: threshold ${engine.artifact.threshold.value.toFixed(3)} rows ${engine.artifact.training.rows}\n${engine.artifact.features.map((f, k) => `  ${f.name} [${q[k][0].toFixed(2)}, ${q[k][9].toFixed(2)}, ${q[k][10].toFixed(2)}]`).join('\n')}\n`,
  );
  process.exit(0);
}
const res = engine.process({
  keys: all.map((r) => r.host),
  times: all.map((r) => r.timestamp),
  raw: Float64Array.from(all.flatMap((r) => [r.cpu_usage, r.memory_usage, r.network_load])),
  n,
});
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

// Per host over the scored days: false alerts (outside an incident and its 10 minutes after),
// incidents (runs of labelled rows) alerted and the delay of the first alert in steps.
const fig = incidentFigures(
  { n, hosts: all.map((r) => r.host), times: all.map((r) => r.timestamp), labels: all.map((r) => r.anomaly), alerts: res.alerts },
  { graceMs: DEFAULT_GRACE_MS, include: (i) => all[i].timestamp >= liveFrom && !all[i].host.startsWith('new-') },
);
const incidents = fig.incidents;
let topRight = 0;
let topTotal = 0;
const metricOf: Record<string, number[]> = { cpu_saturation: [0], memory_leak: [1], network_burst: [2], combined: [0, 1, 2] };
for (const x of incidents) {
  if (x.alertRow === null) continue;
  const i = x.alertRow;
  const c = [res.contributions[i * 3], res.contributions[i * 3 + 1], res.contributions[i * 3 + 2]];
  const top = c.indexOf(Math.max(...c));
  topTotal++;
  if (metricOf[all[i].incident]?.includes(top)) topRight++;
}
const kindOf = (x: Incident): string => all[x.firstRow].incident;
const names = [...new Set(rows.map((r) => r.host))];
const faPerDay = falseAlertsPerDay(fig);
const fa = names.map((h) => faPerDay.get(h) ?? 0);
const detected = incidents.filter((x) => x.alertAt !== null);
const summary = summarizeIncidents(fig);
const delays = alertDelays(incidents);
const median = summary.median_delay_steps ?? NaN;
const alertsOf = (host: string, from: number, to: number): number =>
  all.reduce((k, r, i) => k + (r.host === host && r.timestamp >= from && r.timestamp < to && res.alerts[i] === 1 ? 1 : 0), 0);
const blatantFirst = all.findIndex((r, i) => r.host === 'new-blatant' && res.alerts[i] === 1);

process.stdout.write(
  `learning each host: ${names.length} hosts (${historyDays} days of history, ${days} day(s) scored), ${n} rows in ${seconds.toFixed(2)} s (${Math.round(n / seconds)} rows/s), ${engine.refits} refits\n`,
);
for (const h of names) {
  const incs = incidents.filter((x) => x.host === h);
  process.stdout.write(
    `  ${h.padEnd(12)} false alerts/day ${faPerDay.get(h) ?? 0}  incidents ${incs.filter((x) => x.alertAt !== null).length}/${incs.length}${incs
      .filter((x) => x.alertAt === null)
      .map((x) => ` missed:${kindOf(x)}`)
      .join('')}\n`,
  );
}
if (args.has('debug')) {
  for (const x of incidents.filter((y) => y.alertAt === null)) {
    let best = 0;
    let raws = 0;
    let thr = 0;
    let rows = 0;
    for (let i = 0; i < n; i++) {
      const r = all[i];
      if (r.host !== x.host || r.timestamp < x.start || r.timestamp > x.end) continue;
      rows++;
      raws += res.anomalies[i];
      if (res.scores[i] > best) {
        best = res.scores[i];
        thr = res.thresholds[i];
      }
    }
    process.stdout.write(
      `  missed ${x.host} ${kindOf(x)} at ${new Date(x.start).toISOString()} (${rows} steps): max score ${best.toFixed(3)} vs threshold ${thr.toFixed(3)}, ${raws} raw anomalies\n`,
    );
  }
}
if (args.has('dist')) {
  // Per metric: quantiles of robust_z and level_shift over normal rows (outside incidents
  // and their grace) and the incidents' rows by step, over the scored day.
  const d = res.features.length / n;
  const inc = new Map<number, number>();
  for (const x of incidents) {
    let k = 0;
    for (let i = x.firstRow; i < n && k < x.rows; i++) if (all[i].host === x.host) inc.set(i, k++);
  }
  const near = new Set<number>();
  for (const x of incidents)
    for (let i = 0; i < n; i++)
      if (all[i].host === x.host && all[i].timestamp > x.end && all[i].timestamp <= x.end + DEFAULT_GRACE_MS) near.add(i);
  for (let c = 0; c < 3; c++)
    for (const f of [0, 1]) {
      const normal: number[] = [];
      const byStep: number[][] = [[], [], [], [], []];
      for (let i = 0; i < n; i++) {
        const r = all[i];
        if (r.timestamp < liveFrom || r.host.startsWith('new-')) continue;
        const v = res.features[i * d + c * 4 + f];
        const k = inc.get(i);
        if (k !== undefined) {
          if (metricOf[r.incident].includes(c)) byStep[Math.min(k, 4)].push(v);
        } else if (!near.has(i)) normal.push(v);
      }
      normal.sort((a, b) => a - b);
      const q = (a: number[], p: number) => (a.length ? a[Math.min(a.length - 1, Math.floor(p * a.length))].toFixed(2) : '-');
      process.stdout.write(
        `  ${['cpu', 'mem', 'net'][c]} ${['robust_z', 'level_shift'][f]}: normal q99 ${q(normal, 0.99)} q99.9 ${q(normal, 0.999)} q99.99 ${q(normal, 0.9999)} max ${q(normal, 1)}; incident min by step ${byStep.map((a) => (a.length ? Math.min(...a).toFixed(2) : '-')).join(' ')}\n`,
      );
    }
}
if (args.has('trace')) {
  // Step by step around each missed incident: the raw values, the features of the
  // incident's metrics, score, threshold, raw anomaly, alert and the model generation.
  const d = res.features.length / n;
  const names3 = ['cpu', 'mem', 'net'];
  const q = engine.artifact.training.feature_quantiles;
  process.stdout.write(
    `  last model: threshold ${engine.artifact.threshold.value.toFixed(3)}, feature ranges ${engine.artifact.features.map((f, k) => `${f.name} [${q[k][0].toFixed(2)}, ${q[k][9].toFixed(2)}, ${q[k][10].toFixed(2)}]`).join(' ')}\n`,
  );
  // False alerts: every feature of the alerted row.
  const inc = new Set<number>();
  for (const x of incidents)
    for (let i = 0; i < n; i++)
      if (all[i].host === x.host && all[i].timestamp >= x.start && all[i].timestamp <= x.end + DEFAULT_GRACE_MS) inc.add(i);
  for (let i = 0; i < n; i++) {
    const r = all[i];
    if (res.alerts[i] !== 1 || r.anomaly === 1 || inc.has(i) || r.timestamp < liveFrom || r.host.startsWith('new-')) continue;
    process.stdout.write(
      `  false alert ${r.host} ${new Date(r.timestamp).toISOString()} cpu ${r.cpu_usage} mem ${r.memory_usage} net ${r.network_load} [${Array.from(res.features.subarray(i * d, i * d + d), (v) => v.toFixed(2)).join(' ')}] score ${res.scores[i].toFixed(3)} thr ${res.thresholds[i].toFixed(3)}\n`,
    );
  }
  for (const x of incidents.filter((y) => y.alertAt === null)) {
    const cols = metricOf[kindOf(x)] ?? [0, 1, 2];
    process.stdout.write(`  trace ${x.host} ${kindOf(x)} at ${new Date(x.start).toISOString()}\n`);
    const idx: number[] = [];
    for (let i = 0; i < n; i++)
      if (all[i].host === x.host && all[i].timestamp >= x.start - 60_000 && all[i].timestamp <= x.end + 30_000) idx.push(i);
    for (const i of idx) {
      const r = all[i];
      const step = Math.round((r.timestamp - x.start) / (STEP_S * 1000));
      const raw = [r.cpu_usage, r.memory_usage, r.network_load];
      const fs = cols
        .map(
          (c) =>
            `${names3[c]} ${raw[c].toPrecision(4)} [${Array.from(res.features.subarray(i * d + c * 4, i * d + c * 4 + 4), (v) => v.toFixed(2)).join(' ')}]`,
        )
        .join(' ');
      process.stdout.write(
        `    ${String(step).padStart(3)} ${r.anomaly} ${fs} score ${res.scores[i].toFixed(3)} thr ${res.thresholds[i].toFixed(3)} ${res.anomalies[i] ? 'RAW' : '   '} ${res.alerts[i] ? 'ALERT' : ''} gen ${res.refits[i]}\n`,
      );
    }
  }
}
process.stdout.write(
  `false alerts per host per day: mean ${(fa.reduce((a, b) => a + b, 0) / fa.length).toFixed(2)}, max ${Math.max(...fa)}\n`,
);
process.stdout.write(
  `incidents alerted: ${detected.length} of ${incidents.length}; delay in steps: median ${median}, max ${delays.at(-1) ?? NaN}; top contribution on the incident's metric: ${topRight} of ${topTotal}\n`,
);
const whileLearning = all.reduce((k, r, i) => k + (r.host === 'new-normal' && res.alerts[i] === 1 && res.learning[i] === 1 ? 1 : 0), 0);
process.stdout.write(
  `new host, normal: ${alertsOf('new-normal', liveFrom, liveFrom + 3600_000)} alerts in its first hour (${whileLearning} while learning, by the prior)\n`,
);
process.stdout.write(
  `new host, CPU and memory at 100 %: first alert at step ${blatantFirst < 0 ? 'never' : Math.round((all[blatantFirst].timestamp - liveFrom) / (STEP_S * 1000)) + 1}\n`,
);
process.stdout.write(`learned state: ${engine.bytesPerKey} bytes per host\n`);
