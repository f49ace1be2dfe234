/**
 * `npm run picture`: docs/img/incident.png, what a user sees of one host of the simulated
 * fleet (`simulate --profile fleet`) through the learning default: the metrics, the score
 * against its threshold with the alerts, and each metric's contribution, around the first
 * alerted incident of `--host` (default: the idle host, whose normal is 1-3 % CPU).
 * Drawn with the project's plotting code (src/eval/plots.ts) from the detector's output,
 * since the Grafana dashboard cannot be rendered without a Grafana server.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DEFAULT_GATE } from '../src/core/gate';
import { hostLearningOptions } from '../src/core/host-learning';
import { StreamingDetector } from '../src/core/streaming';
import { simulate } from '../src/data/simulate';
import { incidentSpec, renderSvg, svgToPng, type HostStep } from '../src/eval/plots';
import { loadDetectorFile } from '../src/model-store';

async function main(): Promise<void> {
  const args = new Map<string, string>();
  for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
  const host = args.get('host') ?? 'idle-01';
  const out = resolve(args.get('out') ?? resolve(__dirname, '../../docs/img/incident.png'));
  const STEP_S = 10;
  const start = Date.UTC(2026, 10, 1);
  const rows = simulate({ hosts: 10, start, steps: 3 * 8640, stepS: STEP_S, seed: 3, incidentsPerDay: 3, profile: 'fleet' });
  rows.sort((a, b) => a.timestamp - b.timestamp || (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  const prior = loadDetectorFile(resolve(__dirname, '../../models/model.json'));
  const engine = StreamingDetector.learner(hostLearningOptions({ prior, gate: DEFAULT_GATE, maxKeys: 1000 }));
  const res = engine.process({
    keys: rows.map((r) => r.host),
    times: rows.map((r) => r.timestamp),
    raw: Float64Array.from(rows.flatMap((r) => [r.cpu_usage, r.memory_usage, r.network_load])),
    n: rows.length,
  });
  const steps: HostStep[] = [];
  rows.forEach((r, i) => {
    if (r.host !== host) return;
    steps.push({
      time: r.timestamp,
      cpu: r.cpu_usage,
      memory: r.memory_usage,
      network: r.network_load,
      score: res.scores[i],
      threshold: res.thresholds[i],
      alert: res.alerts[i] === 1,
      learning: res.learning[i] === 1,
      contributions: [res.contributions[i * 3], res.contributions[i * 3 + 1], res.contributions[i * 3 + 2]],
      incident: r.anomaly === 1,
    });
  });
  // The first incident after the two days of history that raised an alert: 40 minutes around it.
  const liveFrom = start + 2 * 86400_000;
  const first = steps.findIndex(
    (s) => s.time >= liveFrom && s.incident && steps.slice(steps.indexOf(s), steps.indexOf(s) + 60).some((x) => x.incident && x.alert),
  );
  if (first < 0) throw new Error(`${host}: no alerted incident after the history`);
  const window = steps.slice(Math.max(0, first - 120), first + 120);
  const spec = incidentSpec(
    host,
    window.map((s) => ({ ...s, incident: s.incident && s.time >= window[0].time })),
  );
  const png = await svgToPng(await renderSvg(spec));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, png);
  const alerted = window.filter((s) => s.alert).map((s) => new Date(s.time).toISOString().slice(11, 19));
  process.stdout.write(
    `wrote ${out}: ${host}, ${window.length} steps from ${new Date(window[0].time).toISOString()}, alerts at ${alerted.join(', ')}\n`,
  );
}

void main().catch((e: unknown) => {
  process.stderr.write(`picture: ${(e as Error).message}\n`);
  process.exit(1);
});
