/**
 * `npm run bench:kafka-rebalance`: the Kafka mode scaling out and losing a replica while
 * Telegraf-schema points flow (issue "Scale out", third target): a real broker and influxd,
 * the service as real processes (SOURCE=kafka, LEARN=auto, no MODEL_PATH), two replicas,
 * a third joining midway, one SIGKILLed later (test/helpers/kafka-rebalance.ts has the
 * scenario and what it checks). Prints the report; exits 1 when a step is missing,
 * duplicated or scored unlike one uninterrupted pass, when a rewrite differed, or when a
 * rebalance took longer than 30 s.
 *
 * Settings (environment): BENCH_HOSTS (40), BENCH_STEPS (600), BENCH_PARTITIONS (6),
 * BENCH_STEP_S (10: the collection step), BENCH_PACE_MS (200: wall time per step),
 * BENCH_JOIN_AT (steps/3), BENCH_KILL_AT (2 steps/3), BENCH_KILL (a, b or c: a), BENCH_KILL_DELAY_MS
 * (5: after that step is sent, so the victim is killed amid its work), BENCH_STALL_INFLUX_MS (0; or
 * influxd is stopped that long from that step on: the victim dies with its write in flight),
 * BENCH_SESSION_TIMEOUT_S (10), BENCH_SEED (5).
 */
import { formatReport, runRebalanceScenario } from '../test/helpers/kafka-rebalance';

const num = (name: string, def: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v} is not a number`);
  return n;
};

const TARGET_MS = 30_000;

async function main(): Promise<void> {
  const steps = num('BENCH_STEPS', 600);
  const kill = ['a', 'b', 'c'].indexOf(process.env.BENCH_KILL ?? 'a');
  if (kill < 0) throw new Error(`BENCH_KILL=${process.env.BENCH_KILL} is not a, b or c`);
  const report = await runRebalanceScenario({
    hosts: num('BENCH_HOSTS', 40),
    steps,
    partitions: num('BENCH_PARTITIONS', 6),
    stepS: num('BENCH_STEP_S', 10),
    paceMs: num('BENCH_PACE_MS', 200),
    joinAtStep: num('BENCH_JOIN_AT', Math.floor(steps / 3)),
    killAtStep: num('BENCH_KILL_AT', Math.floor((2 * steps) / 3)),
    kill: kill as 0 | 1 | 2,
    killDelayMs: num('BENCH_KILL_DELAY_MS', 5),
    stallInfluxMs: num('BENCH_STALL_INFLUX_MS', 0),
    sessionTimeoutS: num('BENCH_SESSION_TIMEOUT_S', 10),
    seed: num('BENCH_SEED', 5),
    drainTimeoutMs: 120_000,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(`${formatReport(report)}\n`);
  const failures: string[] = [];
  if (report.onePass !== report.expected) failures.push(`the one pass wrote ${report.onePass} of ${report.expected} steps`);
  if (report.missing.length) failures.push(`missing ${report.missing.slice(0, 5).join(', ')}`);
  if (report.duplicated.length) failures.push(`duplicated ${report.duplicated.slice(0, 5).join(', ')}`);
  if (report.extra.length) failures.push(`extra ${report.extra.slice(0, 5).join(', ')}`);
  if (report.mismatchedCount) failures.push(`unlike the one pass: ${JSON.stringify(report.mismatched.slice(0, 3))}`);
  if (report.rewrittenDiffering.length) failures.push(`rewrites differing: ${report.rewrittenDiffering.slice(0, 5).join(', ')}`);
  for (const t of report.timings)
    if (t.caughtUpMs === null || t.caughtUpMs > TARGET_MS) failures.push(`${t.event}: rebalance not done within ${TARGET_MS / 1000} s`);
  if (failures.length) {
    for (const [name, log] of Object.entries(report.logs)) process.stderr.write(`--- replica ${name}\n${log}\n`);
    process.stderr.write(`bench:kafka-rebalance: FAILED: ${failures.join('; ')}\n`);
    process.exit(1);
  }
  process.stdout.write('bench:kafka-rebalance: every step written once with the one pass scores; rebalances within 30 s\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:kafka-rebalance failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
