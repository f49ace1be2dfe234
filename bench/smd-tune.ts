/**
 * Tuning aid for `bench smd` (not part of the product): runs candidate parameter sets
 * over the SMD machines and picks one set for all machines by leave-one-machine-out and
 * leave-a-group-out (machine-1-* vs machine-2-*), so that the figure reported for a
 * machine comes from a set chosen without it.
 *
 *   node dist/bench/smd-tune.js run --smd-dir ../shared/smd --metrics basic --configs c.json --out r.jsonl
 *   node dist/bench/smd-tune.js select r.jsonl [r2.jsonl ...]
 *
 * c.json: [{ "name": "...", "params": { ...partial SmdBenchParams } }, ...]. Each line of
 * r.jsonl: { config, metrics, params, machine: SmdMachineMetrics }. Machines are read once
 * and every config runs on it (one thread; the host is shared).
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { gate, newGateState, type GateOptions } from '../src/core/gate';
import {
  averageMetrics,
  DEFAULT_SMD_PARAMS,
  runSmdMachine,
  smdMetrics,
  type SmdBenchParams,
  type SmdMachineMetrics,
} from '../src/eval/smd-bench';
import { listSmdMachines, readSmdMachine, SMD_METRIC_SETS, type SmdMetricSet } from '../src/eval/smd-data';

interface Candidate {
  name: string;
  params: Partial<SmdBenchParams>;
}

interface ResultLine {
  config: string;
  metrics: string;
  params: SmdBenchParams;
  stateBytesPerKey: number;
  machine: SmdMachineMetrics;
}

function arg(args: string[], name: string, def?: string): string {
  const i = args.indexOf(name);
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  if (def === undefined) throw new Error(`missing ${name}`);
  return def;
}

function run(args: string[]): void {
  const dir = arg(args, '--smd-dir');
  const set = arg(args, '--metrics', 'basic') as SmdMetricSet;
  const candidates = JSON.parse(readFileSync(arg(args, '--configs'), 'utf8')) as Candidate[];
  const out = arg(args, '--out');
  const only = arg(args, '--machines', '');
  const names = only ? only.split(',') : listSmdMachines(dir);
  for (const name of names) {
    const data = readSmdMachine(dir, name, SMD_METRIC_SETS[set]);
    for (const c of candidates) {
      const params: SmdBenchParams = { ...DEFAULT_SMD_PARAMS, ...c.params };
      const r = runSmdMachine(data, params);
      const m = smdMetrics(name, r.scores, r.alerts, data.test.labels);
      const line: ResultLine = { config: c.name, metrics: set, params, stateBytesPerKey: r.stateBytesPerKey, machine: m };
      appendFileSync(out, `${JSON.stringify(line)}\n`);
      process.stderr.write(
        `${name} ${c.name}: roc ${m.rocAuc.toFixed(3)} pr ${m.prAuc.toFixed(3)} bestF1 ${m.bestF1.toFixed(3)} own P ${m.precision.toFixed(2)} R ${m.recall.toFixed(2)} alerted ${(100 * m.alertShare).toFixed(2)}% ${r.seconds.toFixed(1)}s\n`,
      );
    }
  }
}

/**
 * The selection objective on an average. Scores: ROC-AUC plus best F1. Alerts (SMD_TUNE_OBJECTIVE=alerts,
 * for gates on the same scores): the own alerts' F1 among averages with precision >= 0.55 and at most
 * 2 % alerted, else below every such one by the precision shortfall.
 */
const objective = (a: { rocAuc: number; bestF1: number; precision: number; f1: number; alertShare: number }): number =>
  process.env.SMD_TUNE_OBJECTIVE === 'alerts'
    ? a.precision >= 0.55 && a.alertShare <= 0.02
      ? 1 + a.f1
      : a.precision - 0.55
    : a.rocAuc + a.bestF1;

function select(files: string[]): void {
  const joint = files[0] === '--joint';
  if (joint) files = files.slice(1);
  const lines = files.flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as ResultLine),
  );
  if (joint) {
    selectJoint(lines);
    return;
  }
  const byConfig = new Map<string, Map<string, SmdMachineMetrics>>();
  const stateOf = new Map<string, number>();
  for (const l of lines) {
    const key = `${l.metrics}:${l.config}`;
    if (!byConfig.has(key)) byConfig.set(key, new Map());
    byConfig.get(key)?.set(l.machine.machine, l.machine);
    stateOf.set(key, l.stateBytesPerKey);
  }
  const machines = [...new Set(lines.map((l) => l.machine.machine))].sort();
  // Only configs run on every machine take part.
  const full = [...byConfig.entries()].filter(([, m]) => machines.every((x) => m.has(x)));
  const table = full
    .map(([k, m]) => ({ k, avg: averageMetrics(machines.map((x) => m.get(x) as SmdMachineMetrics)) }))
    .sort((a, b) => objective(b.avg) - objective(a.avg));
  console.log('config (in-sample averages over all machines), best first');
  for (const t of table)
    console.log(
      `${t.k.padEnd(40)} roc ${t.avg.rocAuc.toFixed(4)} pr ${t.avg.prAuc.toFixed(4)} bestF1 ${t.avg.bestF1.toFixed(4)} own P ${t.avg.precision.toFixed(3)} R ${t.avg.recall.toFixed(3)} F1 ${t.avg.f1.toFixed(3)} alerted ${(100 * t.avg.alertShare).toFixed(2)}% state ${stateOf.get(t.k)} B`,
    );
  const pick = (train: string[]): string => {
    let best = '';
    let bestV = -Infinity;
    for (const [k, m] of full) {
      const v = objective(averageMetrics(train.map((x) => m.get(x) as SmdMachineMetrics)));
      if (v > bestV) {
        bestV = v;
        best = k;
      }
    }
    return best;
  };
  const held = (groups: string[][], label: string): void => {
    const rows: SmdMachineMetrics[] = [];
    console.log(`\n${label}`);
    for (const g of groups) {
      const chosen = pick(machines.filter((x) => !g.includes(x)));
      for (const x of g) {
        const m = byConfig.get(chosen)?.get(x) as SmdMachineMetrics;
        rows.push(m);
        console.log(
          `  ${x.padEnd(12)} chosen ${chosen.padEnd(36)} roc ${m.rocAuc.toFixed(3)} pr ${m.prAuc.toFixed(3)} bestF1 ${m.bestF1.toFixed(3)} own P ${m.precision.toFixed(3)} R ${m.recall.toFixed(3)} alerted ${(100 * m.alertShare).toFixed(2)}%`,
        );
      }
    }
    const a = averageMetrics(rows);
    console.log(
      `  held-out average: roc ${a.rocAuc.toFixed(4)} pr ${a.prAuc.toFixed(4)} bestF1 ${a.bestF1.toFixed(4)} own P ${a.precision.toFixed(3)} R ${a.recall.toFixed(3)} F1 ${a.f1.toFixed(3)} alerted ${(100 * a.alertShare).toFixed(2)}%`,
    );
  };
  held(
    machines.map((x) => [x]),
    'leave-one-machine-out (config chosen on the other machines)',
  );
  const groups = [...new Set(machines.map((x) => x.split('-').slice(0, 2).join('-')))];
  held(
    groups.map((g) => machines.filter((x) => x.startsWith(`${g}-`))),
    `leave-a-group-out (${groups.join(' vs ')})`,
  );
}

/**
 * Gate tuning without re-streaming: for a config that never refits, the scores do not
 * depend on the gate, so each contamination (model threshold) is streamed once and every
 * gate of the list is replayed over the scores with gate.ts's own function.
 * --gates FILE: [{ name, gate: GateOptions }]; --contaminations 0.001,0.005
 */
function gates(args: string[]): void {
  const dir = arg(args, '--smd-dir');
  const set = arg(args, '--metrics', 'basic') as SmdMetricSet;
  const base = JSON.parse(readFileSync(arg(args, '--configs'), 'utf8')) as Candidate[];
  const list = JSON.parse(readFileSync(arg(args, '--gates'), 'utf8')) as Array<{ name: string; gate: GateOptions }>;
  const contaminations = arg(args, '--contaminations', '0.01').split(',').map(Number);
  const out = arg(args, '--out');
  for (const name of listSmdMachines(dir)) {
    const data = readSmdMachine(dir, name, SMD_METRIC_SETS[set]);
    for (const c of base) {
      for (const contamination of contaminations) {
        const params: SmdBenchParams = { ...DEFAULT_SMD_PARAMS, ...c.params, contamination };
        if (params.refitIntervalSteps > 0) throw new Error('gate replay needs a config without refits');
        const r = runSmdMachine(data, params);
        for (const g of list) {
          const st = newGateState();
          const alerts = new Uint8Array(r.scores.length);
          for (let i = 0; i < alerts.length; i++)
            alerts[i] = gate(g.gate, st, r.scores[i] > r.threshold, r.steps[i] * 60_000, 0, 0, 0, r.scores[i]) ? 1 : 0;
          const m = smdMetrics(name, r.scores, alerts, data.test.labels);
          const line: ResultLine = {
            config: `${c.name}_c${contamination}_${g.name}`,
            metrics: set,
            params: { ...params, gate: g.gate as never },
            stateBytesPerKey: r.stateBytesPerKey,
            machine: m,
          };
          appendFileSync(out, `${JSON.stringify(line)}\n`);
        }
      }
      process.stderr.write(`${name} ${c.name} done\n`);
    }
  }
}

/**
 * One set for both metric sets: a config's objective is the sum over the metric sets of
 * its objective on the machines it may see; held-out figures are reported per set.
 */
function selectJoint(lines: ResultLine[]): void {
  const sets = [...new Set(lines.map((l) => l.metrics))].sort();
  const res = new Map<string, Map<string, SmdMachineMetrics>>();
  for (const l of lines) {
    const k = `${l.config}|${l.metrics}`;
    if (!res.has(k)) res.set(k, new Map());
    res.get(k)?.set(l.machine.machine, l.machine);
  }
  const machines = [...new Set(lines.map((l) => l.machine.machine))].sort();
  const configs = [...new Set(lines.map((l) => l.config))].filter((c) =>
    sets.every((set) => machines.every((x) => res.get(`${c}|${set}`)?.has(x))),
  );
  const get = (c: string, set: string, x: string): SmdMachineMetrics => res.get(`${c}|${set}`)?.get(x) as SmdMachineMetrics;
  const score = (c: string, train: string[]): number =>
    sets.reduce((sum, set) => sum + objective(averageMetrics(train.map((x) => get(c, set, x)))), 0);
  console.log(`joint selection over ${sets.join(' + ')}; ${configs.length} configs on ${machines.length} machines`);
  for (const c of [...configs].sort((a, b) => score(b, machines) - score(a, machines))) {
    console.log(
      `${c.padEnd(44)} ${sets
        .map((set) => {
          const a = averageMetrics(machines.map((x) => get(c, set, x)));
          return `${set}: roc ${a.rocAuc.toFixed(4)} bestF1 ${a.bestF1.toFixed(4)} P ${a.precision.toFixed(3)} R ${a.recall.toFixed(3)} alerted ${(100 * a.alertShare).toFixed(2)}%`;
        })
        .join(' | ')}`,
    );
  }
  const held = (groups: string[][], label: string): void => {
    console.log(`\n${label}`);
    const rows = new Map<string, SmdMachineMetrics[]>(sets.map((set) => [set, []]));
    for (const g of groups) {
      const train = machines.filter((x) => !g.includes(x));
      const chosen = configs.reduce((best, c) => (score(c, train) > score(best, train) ? c : best), configs[0]);
      for (const x of g) {
        console.log(
          `  ${x.padEnd(12)} chosen ${chosen.padEnd(40)} ${sets
            .map((set) => {
              const m = get(chosen, set, x);
              rows.get(set)?.push(m);
              return `${set}: roc ${m.rocAuc.toFixed(3)} pr ${m.prAuc.toFixed(3)} bestF1 ${m.bestF1.toFixed(3)} P ${m.precision.toFixed(3)} R ${m.recall.toFixed(3)} alerted ${(100 * m.alertShare).toFixed(2)}%`;
            })
            .join(' | ')}`,
        );
      }
    }
    for (const set of sets) {
      const a = averageMetrics(rows.get(set) ?? []);
      console.log(
        `  held-out average ${set}: roc ${a.rocAuc.toFixed(4)} pr ${a.prAuc.toFixed(4)} bestF1 ${a.bestF1.toFixed(4)} own P ${a.precision.toFixed(3)} R ${a.recall.toFixed(3)} F1 ${a.f1.toFixed(3)} alerted ${(100 * a.alertShare).toFixed(2)}% segments ${a.segmentsDetected.toFixed(2)}/${a.segments.toFixed(2)} FA/day ${a.falseAlertsPerDay.toFixed(2)}`,
      );
    }
  };
  held(
    machines.map((x) => [x]),
    'leave-one-machine-out (one config for both sets, chosen on the other machines)',
  );
  const groups = [...new Set(machines.map((x) => x.split('-').slice(0, 2).join('-')))];
  held(
    groups.map((g) => machines.filter((x) => x.startsWith(`${g}-`))),
    `leave-a-group-out (${groups.join(' vs ')})`,
  );
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'run') run(rest);
else if (cmd === 'gates') gates(rest);
else if (cmd === 'select') select(rest);
else {
  console.error(
    'usage: smd-tune run --smd-dir DIR --metrics basic|all --configs FILE --out FILE [--machines a,b] | smd-tune select FILE...',
  );
  process.exitCode = 2;
}
