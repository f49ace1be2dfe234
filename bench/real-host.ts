/**
 * Real host, real Telegraf (issue 10, "Targets", first bullet): this machine collected by
 * Telegraf 1.33.0 (scripts/telegraf-env.sh) with docker/telegraf.conf at its own 10 s
 * interval (only the URLs and health port come from the environment) into a real influxd,
 * and the service process started as the README says (INFLUX_URL set, no model named:
 * learning mode, defaults otherwise). A veth pair into a network namespace, its host end
 * named to match the configuration's interface filter, carries a steady background.
 *
 * Timeline: --learn-min of collection; --quiet-min quiet minutes in which gated alerts
 * (is_anomaly=1) are counted; a memory balloon (a child process allocating and touching
 * +25 % of total RAM, held --hold-min, then freed); --rest-min of rest; a network burst
 * over the veth pair (--burst-mbps MB/s for --burst-s); rest; a CPU burn (busy loops on
 * every core for --hold-min) unless the machine's CPU, as measured by the service's
 * cpu_val, is already near saturation (--cpu-burn auto|on|off). Per incident: alerted,
 * delay in collection steps (1 = the first collection at or after its start), the top
 * contribution metric of its first alert. Prints a table and writes JSON to --out.
 *
 * Needs root (the namespace and veth pair), influxd, and Go for a first Telegraf build.
 * Every process, namespace and interface it starts is removed on exit, error or Ctrl-C.
 *
 *   npm run bench:real-host -- [--learn-min 10] [--quiet-min 10] [--out results/real-host.json]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startInfluxd, type Influxd } from '../test/helpers/influxd';
import { predictions, type PredictionRow } from '../test/helpers/influx-data';
import { freePort } from '../test/helpers/ports';
import { startTelegraf } from '../test/helpers/telegraf';
import { startVethTraffic, type VethTraffic } from '../test/helpers/veth';

const DB = 'system_metrics';
const STEP_S = 10;
const STEP_MS = STEP_S * 1000;
const MIN = 60_000;
/** Steady traffic into the veth's host end during the whole run (bytes/s). */
const BACKGROUND_BPS = 50_000;
/** veth MTU: the burst's large datagrams pass unfragmented (little CPU for tens of MB/s). */
const VETH_MTU = 65_000;
const BURST_DATAGRAM = 60_000;

/** The checkout: the first directory up from here with this project's package.json (run from bench/ or dist/bench/). */
function findRoot(from: string): string {
  for (let d = from; ; d = path.dirname(d)) {
    const pj = path.join(d, 'package.json');
    if (fs.existsSync(pj) && (JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name === 'infra-anomaly-detector') return d;
    if (path.dirname(d) === d) throw new Error(`no package.json of infra-anomaly-detector above ${from}`);
  }
}
const ROOT = findRoot(__dirname);

interface Args {
  learnMin: number;
  quietMin: number;
  holdMin: number;
  restMin: number;
  burstS: number;
  burstMBps: number;
  balloonPct: number;
  cpuBurn: 'auto' | 'on' | 'off';
  /** auto: no burn when the median cpu_val of the 5 minutes before is at or above this. */
  cpuSaturatedPct: number;
  pollS: number;
  out: string;
}

function parse(): Args {
  const { values } = parseArgs({
    options: {
      'learn-min': { type: 'string', default: '10' },
      'quiet-min': { type: 'string', default: '10' },
      'hold-min': { type: 'string', default: '2' },
      'rest-min': { type: 'string', default: '3' },
      'burst-s': { type: 'string', default: '90' },
      'burst-mbps': { type: 'string', default: '30' },
      'balloon-pct': { type: 'string', default: '25' },
      'cpu-burn': { type: 'string', default: 'auto' },
      'cpu-saturated-pct': { type: 'string', default: '85' },
      'poll-s': { type: 'string', default: '5' },
      out: { type: 'string', default: 'results/real-host.json' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: bench:real-host [--learn-min 10] [--quiet-min 10] [--hold-min 2] [--rest-min 3] [--burst-s 90] [--burst-mbps 30] [--balloon-pct 25] [--cpu-burn auto|on|off] [--cpu-saturated-pct 85] [--poll-s 5] [--out results/real-host.json]',
    );
    process.exit(0);
  }
  const num = (k: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${k} must be a number >= ${min}, got ${v}`);
    return n;
  };
  const cpuBurn = values['cpu-burn'];
  if (cpuBurn !== 'auto' && cpuBurn !== 'on' && cpuBurn !== 'off') throw new Error(`--cpu-burn must be auto, on or off, got ${cpuBurn}`);
  const pollS = num('poll-s', values['poll-s'], 1);
  if (pollS !== 5 && pollS !== 10) throw new Error('--poll-s must be 5 or 10');
  return {
    learnMin: num('learn-min', values['learn-min'], 0),
    quietMin: num('quiet-min', values['quiet-min'], 0.5),
    holdMin: num('hold-min', values['hold-min'], 0.5),
    restMin: num('rest-min', values['rest-min'], 0),
    burstS: num('burst-s', values['burst-s'], 10),
    burstMBps: num('burst-mbps', values['burst-mbps'], 0.1),
    balloonPct: num('balloon-pct', values['balloon-pct'], 1),
    cpuBurn,
    cpuSaturatedPct: num('cpu-saturated-pct', values['cpu-saturated-pct'], 0),
    pollS,
    out: path.resolve(values.out ?? 'results/real-host.json'),
  };
}

const log = (msg: string) => console.error(`${new Date().toISOString()} ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const sleepUntil = (t: number) => sleep(t - Date.now());

// ---- cleanup: every started thing registers its undo; run once, last first ----------

const undo: Array<{ what: string; fn: () => Promise<void> }> = [];
/** Children of this process (balloon, burners, service): killed synchronously on exit whatever happens. */
const children = new Set<ChildProcess>();
let cleaning: Promise<void> | null = null;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    while (undo.length > 0) {
      const u = undo.pop();
      if (!u) break;
      try {
        await Promise.race([u.fn(), sleep(20_000).then(() => Promise.reject(new Error('timed out after 20 s')))]);
      } catch (e) {
        log(`cleanup of ${u.what} failed: ${(e as Error).message}`);
      }
    }
  })();
  return cleaning;
}
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
] as const) {
  process.on(sig, () => {
    log(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(code));
  });
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(t);
}

// ---- the service ----------------------------------------------------------------------

interface Service {
  url: string;
  child: ChildProcess;
  logPath: string;
  tail(): string;
}

async function startServiceProcess(influxUrl: string, pollS: number, logPath: string): Promise<Service> {
  const port = await freePort();
  fs.mkdirSync(path.dirname(logPath), { recursive: true });
  const logFd = fs.openSync(logPath, 'w');
  // As the README starts it: INFLUX_URL set, no model named (learning mode), defaults otherwise.
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'info',
    INFLUX_URL: influxUrl,
    POLL_INTERVAL_S: String(pollS),
    COLLECTION_INTERVAL_S: String(STEP_S),
  };
  const child = track(
    spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'serve'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', logFd, logFd],
    }),
  );
  fs.closeSync(logFd);
  const url = `http://127.0.0.1:${port}`;
  const tail = () => {
    try {
      return fs.readFileSync(logPath, 'utf8').trim().split('\n').slice(-5).join(' | ').slice(-2000);
    } catch {
      return '';
    }
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`service exited during start: ${tail()}`);
    try {
      if ((await fetch(`${url}/health/live`, { signal: AbortSignal.timeout(1000) })).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`service did not answer ${url}/health/live within 60 s: ${tail()}`);
    await sleep(200);
  }
  return { url, child, logPath, tail };
}

// ---- load generators ------------------------------------------------------------------

// Allocates argv[1] bytes in 64 MiB chunks, each written (touched) so it is resident,
// says "ready", holds them argv[2] ms, exits (freeing them).
const BALLOON = `
const [bytes, holdMs] = [Number(process.argv[1]), Number(process.argv[2])];
const CHUNK = 64 * 1024 * 1024;
const keep = [];
let i = 0;
for (let left = bytes; left > 0; left -= CHUNK) {
  const b = Buffer.allocUnsafe(Math.min(CHUNK, left));
  b.fill((i++ % 250) + 1);
  keep.push(b);
}
process.stdout.write('ready ' + keep.length + '\\n');
setTimeout(() => process.exit(0), holdMs);
`;

const BURNER = `
const end = Date.now() + Number(process.argv[1]);
let x = 0;
while (Date.now() < end) { for (let i = 0; i < 1e6; i++) x = (x * 31 + i) | 0; }
process.exit(x === 0.5 ? 1 : 0);
`;

function memAvailableBytes(): number {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : os.freemem();
}

// ---- analysis -------------------------------------------------------------------------

type Metric = 'cpu' | 'memory' | 'network';
const SHAP: Record<Metric, string> = { cpu: 'shap_cpu', memory: 'shap_memory', network: 'shap_network' };

interface Step {
  time: string;
  cpu: number;
  mem: number;
  net: number;
  score: number;
  severity: number;
  raw: number;
  alert: number;
  learning: number;
  shap: [number, number, number];
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
function toStep(p: PredictionRow): Step {
  return {
    time: new Date(p.time).toISOString(),
    cpu: num(p.cpu_val),
    mem: num(p.mem_val),
    net: num(p.net_val),
    score: num(p.score),
    severity: num(p.severity),
    raw: num(p.raw_anomaly),
    alert: num(p.is_anomaly),
    learning: num(p.learning),
    shap: [num(p.shap_cpu), num(p.shap_memory), num(p.shap_network)],
  };
}

function topMetric(p: PredictionRow): Metric {
  let best: Metric = 'cpu';
  for (const m of ['memory', 'network'] as const) if (num(p[SHAP[m]]) > num(p[SHAP[best]])) best = m;
  return best;
}

function quantile(xs: number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

const inRange = (rows: PredictionRow[], from: number, to: number) => rows.filter((p) => p.time >= from && p.time < to);
/** The first collection step at or after t (Telegraf collects on multiples of the interval). */
const stepAtOrAfter = (t: number) => Math.ceil(t / STEP_MS) * STEP_MS;

interface Levels {
  steps: number;
  cpu_median: number | null;
  cpu_p90: number | null;
  mem_median: number | null;
  net_median: number | null;
}
function levels(rows: PredictionRow[]): Levels {
  return {
    steps: rows.length,
    cpu_median: quantile(
      rows.map((p) => num(p.cpu_val)),
      0.5,
    ),
    cpu_p90: quantile(
      rows.map((p) => num(p.cpu_val)),
      0.9,
    ),
    mem_median: quantile(
      rows.map((p) => num(p.mem_val)),
      0.5,
    ),
    net_median: quantile(
      rows.map((p) => num(p.net_val)),
      0.5,
    ),
  };
}

interface Incident {
  name: string;
  metric: Metric;
  /** Load applied over [start, end] (epoch ms). */
  start: number;
  end: number;
  detail: Record<string, unknown>;
  skipped?: string;
}

interface IncidentResult {
  name: string;
  expected_top: Metric;
  skipped: string | null;
  start: string | null;
  end: string | null;
  steps_in_incident: number;
  alerted: boolean;
  /** 1 = the first collection at or after the start. */
  delay_steps: number | null;
  delay_s: number | null;
  top_contribution: Metric | null;
  first_alert: Step | null;
  alerts: number;
  raw_anomalies: number;
  learning_steps: number;
  max_severity: number | null;
  /** Alerts after the load ended, before the next phase (the return to normal). */
  alerts_after: number;
  /** Gated alerts and raw anomalies in the 5 minutes before its first step: was the host already alerting? */
  alerts_before: number;
  raw_anomalies_before: number;
  before: Levels;
  peak: { cpu: number | null; mem: number | null; net: number | null };
  detail: Record<string, unknown>;
}

function judge(rows: PredictionRow[], inc: Incident, nextStart: number): IncidentResult {
  const empty = { cpu_median: null, cpu_p90: null, mem_median: null, net_median: null, steps: 0 };
  if (inc.skipped) {
    return {
      name: inc.name,
      expected_top: inc.metric,
      skipped: inc.skipped,
      start: null,
      end: null,
      steps_in_incident: 0,
      alerted: false,
      delay_steps: null,
      delay_s: null,
      top_contribution: null,
      first_alert: null,
      alerts: 0,
      raw_anomalies: 0,
      learning_steps: 0,
      max_severity: null,
      alerts_after: 0,
      alerts_before: 0,
      raw_anomalies_before: 0,
      before: empty,
      peak: { cpu: null, mem: null, net: null },
      detail: inc.detail,
    };
  }
  const first = stepAtOrAfter(inc.start);
  // Steps whose collection saw the load: from the first at/after its start to the last at/before its end.
  const during = inRange(rows, first, inc.end + 1);
  const alerts = during.filter((p) => num(p.is_anomaly) === 1);
  const a = alerts[0];
  const after = inRange(rows, inc.end + 1, nextStart).filter((p) => num(p.is_anomaly) === 1).length;
  const pre = inRange(rows, inc.start - 5 * MIN, first);
  const max = (k: string) => (during.length ? Math.max(...during.map((p) => num(p[k]))) : null);
  return {
    name: inc.name,
    expected_top: inc.metric,
    skipped: null,
    start: new Date(inc.start).toISOString(),
    end: new Date(inc.end).toISOString(),
    steps_in_incident: during.length,
    alerted: a !== undefined,
    delay_steps: a ? Math.round((a.time - first) / STEP_MS) + 1 : null,
    delay_s: a ? Math.round((a.time - inc.start) / 1000) : null,
    top_contribution: a ? topMetric(a) : null,
    first_alert: a ? toStep(a) : null,
    alerts: alerts.length,
    raw_anomalies: during.filter((p) => num(p.raw_anomaly) === 1).length,
    learning_steps: during.filter((p) => num(p.learning) === 1).length,
    max_severity: max('severity'),
    alerts_after: after,
    alerts_before: pre.filter((p) => num(p.is_anomaly) === 1).length,
    raw_anomalies_before: pre.filter((p) => num(p.raw_anomaly) === 1).length,
    before: levels(pre),
    peak: { cpu: max('cpu_val'), mem: max('mem_val'), net: max('net_val') },
    detail: inc.detail,
  };
}

// ---- main -----------------------------------------------------------------------------

async function waitForPredictions(influxd: Influxd, host: string, until: number, timeoutMs: number): Promise<PredictionRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await predictions(influxd, host);
    if (rows.length > 0 && rows[rows.length - 1].time >= until) return rows;
    if (Date.now() > deadline) return rows;
    await sleep(2000);
  }
}

const fmt = (v: number | null | undefined, d = 1) => (v === null || v === undefined ? '-' : v.toFixed(d));
const mbps = (v: number | null | undefined) => (v === null || v === undefined ? '-' : `${(v / 1e6).toFixed(2)} MB/s`);

async function main(): Promise<void> {
  const args = parse();
  if (typeof process.getuid !== 'function' || process.getuid() !== 0)
    throw new Error('bench:real-host needs root (a network namespace and a veth pair)');
  const host = os.hostname();
  const cores = os.availableParallelism();
  const totalMem = os.totalmem();
  const started = Date.now();
  const logPath = args.out.replace(/\.json$/, '') + '.service.log';
  log(
    `real host ${host}: ${cores} cores, ${(totalMem / 2 ** 30).toFixed(1)} GiB, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );

  // Telegraf: the pinned build (built once into the cache; the script prints its path).
  const script = path.join(ROOT, 'scripts', 'telegraf-env.sh');
  process.env.TELEGRAF_BIN =
    execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 15 * MIN })
      .trim()
      .split('\n')
      .pop() ?? '';
  const telegrafVersion = execFileSync(process.env.TELEGRAF_BIN, ['--version'], { encoding: 'utf8' }).trim();

  const influxd = await startInfluxd();
  undo.push({ what: 'influxd', fn: () => influxd.cleanup() });
  log(`influxd at ${influxd.url}`);
  const veth: VethTraffic = startVethTraffic(BACKGROUND_BPS, { mtu: VETH_MTU });
  undo.push({
    what: `veth ${veth.iface} / netns ${veth.ns}`,
    fn: async () => {
      await veth.stop();
      // The kernel removes the namespace's veth asynchronously: make sure the host end is gone.
      const sysPath = `/sys/class/net/${veth.iface}`;
      for (let i = 0; i < 50 && fs.existsSync(sysPath); i++) await sleep(100);
      if (fs.existsSync(sysPath)) execFileSync('ip', ['link', 'del', veth.iface], { stdio: 'ignore' });
    },
  });
  log(`veth ${veth.iface} (namespace ${veth.ns}), ${BACKGROUND_BPS / 1000} kB/s background`);
  const telegraf = await startTelegraf({
    influxUrl: influxd.url,
    database: DB,
    intervalS: STEP_S,
    configPath: path.join(ROOT, 'docker', 'telegraf.conf'),
    startTimeoutMs: 60_000,
  });
  undo.push({ what: 'telegraf', fn: () => telegraf.stop() });
  const collectStart = Date.now();
  log(`${telegrafVersion} collecting every ${STEP_S} s (docker/telegraf.conf)`);
  const svc = await startServiceProcess(influxd.url, args.pollS, logPath);
  undo.push({ what: 'service', fn: () => stopChild(svc.child) });
  log(`service at ${svc.url} (learning mode, POLL_INTERVAL_S=${args.pollS}, COLLECTION_INTERVAL_S=${STEP_S}); log ${logPath}`);
  const alive = () => {
    if (svc.child.exitCode !== null || svc.child.signalCode !== null)
      throw new Error(`the service exited (${svc.child.exitCode ?? svc.child.signalCode}): ${svc.tail()}`);
  };

  const first = await waitForPredictions(influxd, host, 0, 3 * MIN);
  if (first.length === 0)
    throw new Error(
      `no prediction of host ${host} within 3 minutes: service: ${svc.tail()} | telegraf: ${telegraf.logs().trim().split('\n').slice(-3).join(' | ')}`,
    );
  log(`first prediction at ${new Date(first[0].time).toISOString()}`);

  const learnEnd = collectStart + args.learnMin * MIN;
  const quietEnd = learnEnd + args.quietMin * MIN;
  log(`learning until ${new Date(learnEnd).toISOString()}, quiet until ${new Date(quietEnd).toISOString()}`);
  await sleepUntil(learnEnd);
  alive();
  await sleepUntil(quietEnd);
  alive();

  const incidents: Incident[] = [];
  const phaseEnds: number[] = [];

  // Memory balloon.
  {
    const want = Math.round((totalMem * args.balloonPct) / 100);
    const avail = memAvailableBytes();
    // Never push a shared machine into the OOM killer: leave 10 % of RAM available.
    const bytes = Math.max(0, Math.min(want, avail - 0.1 * totalMem));
    const detail: Record<string, unknown> = { requested_bytes: want, bytes, available_before: avail, capped: bytes < want };
    if (bytes < 0.05 * totalMem) {
      incidents.push({
        name: 'memory balloon',
        metric: 'memory',
        start: 0,
        end: 0,
        detail,
        skipped: `only ${(avail / 2 ** 30).toFixed(1)} GiB available`,
      });
    } else {
      const holdMs = args.holdMin * MIN;
      const start = Date.now();
      log(
        `memory balloon: ${(bytes / 2 ** 30).toFixed(2)} GiB (${((100 * bytes) / totalMem).toFixed(1)} % of RAM) for ${args.holdMin} min`,
      );
      const child = track(
        spawn(process.execPath, ['-e', BALLOON, String(bytes), String(holdMs)], { stdio: ['ignore', 'pipe', 'inherit'] }),
      );
      undo.push({ what: 'balloon', fn: () => stopChild(child, 'SIGKILL') });
      let readyAt = 0;
      child.stdout?.on('data', () => (readyAt ||= Date.now()));
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      const end = Date.now();
      if (code !== 0) log(`balloon exited with code ${code}`);
      detail.allocated_in_s = readyAt ? (readyAt - start) / 1000 : null;
      detail.exit_code = code;
      log(`balloon freed (allocated in ${fmt(detail.allocated_in_s as number | null)} s)`);
      incidents.push({ name: 'memory balloon', metric: 'memory', start, end, detail });
      phaseEnds.push(end);
      await sleep(args.restMin * MIN);
    }
  }
  alive();

  // Network burst over the veth pair.
  {
    const rate = args.burstMBps * 1e6;
    const start = Date.now();
    log(`network burst: ${args.burstMBps} MB/s of UDP into ${veth.iface} for ${args.burstS} s`);
    const burst = veth.addSender(rate, { datagramBytes: BURST_DATAGRAM });
    await sleep(args.burstS * 1000);
    await burst.stop();
    const end = Date.now();
    incidents.push({
      name: 'network burst',
      metric: 'network',
      start,
      end,
      detail: { bytes_per_s: rate, datagram_bytes: BURST_DATAGRAM, seconds: args.burstS, iface: veth.iface },
    });
    phaseEnds.push(end);
    await sleep(args.restMin * MIN);
  }
  alive();

  // CPU burn, unless the CPU is already near saturation.
  {
    const now = Date.now();
    const recent = inRange(await predictions(influxd, host), now - 5 * MIN, now);
    const level = levels(recent);
    const detail: Record<string, unknown> = {
      cpu_before_median: level.cpu_median,
      cpu_before_p90: level.cpu_p90,
      saturated_at: args.cpuSaturatedPct,
      workers: cores,
    };
    let skipped: string | undefined;
    if (args.cpuBurn === 'off') skipped = '--cpu-burn off';
    else if (args.cpuBurn === 'auto' && (level.cpu_median === null || level.cpu_median >= args.cpuSaturatedPct))
      skipped =
        level.cpu_median === null
          ? 'no cpu_val in the 5 minutes before'
          : `CPU already at ${level.cpu_median.toFixed(1)} % (median cpu_val of the 5 minutes before, >= ${args.cpuSaturatedPct} %)`;
    if (skipped) {
      log(`cpu burn skipped: ${skipped}`);
      incidents.push({ name: 'cpu burn', metric: 'cpu', start: 0, end: 0, detail, skipped });
    } else {
      const ms = args.holdMin * MIN;
      const start = Date.now();
      log(`cpu burn: ${cores} busy loops for ${args.holdMin} min (cpu_val median before: ${fmt(level.cpu_median)} %)`);
      const burners = Array.from({ length: cores }, () => track(spawn(process.execPath, ['-e', BURNER, String(ms)], { stdio: 'ignore' })));
      undo.push({ what: 'cpu burners', fn: async () => void (await Promise.all(burners.map((b) => stopChild(b, 'SIGKILL')))) });
      await Promise.all(burners.map((b) => new Promise<void>((r) => (b.exitCode !== null ? r() : b.once('exit', () => r())))));
      const end = Date.now();
      incidents.push({ name: 'cpu burn', metric: 'cpu', start, end, detail });
      phaseEnds.push(end);
      await sleep(Math.min(args.restMin, 1) * MIN);
    }
  }
  alive();

  // Every step up to the last load's end, and a few after it, scored and written.
  const lastEnd = Math.max(quietEnd, ...phaseEnds);
  const rows = await waitForPredictions(influxd, host, stepAtOrAfter(lastEnd) + 2 * STEP_MS, 3 * MIN);
  let health: unknown = null;
  try {
    health = await (await fetch(`${svc.url}/health`, { signal: AbortSignal.timeout(5000) })).json();
  } catch (e) {
    health = { error: (e as Error).message };
  }
  const finished = Date.now();

  const learning = inRange(rows, 0, learnEnd);
  const quiet = inRange(rows, learnEnd, quietEnd);
  const real = incidents.filter((i) => !i.skipped);
  const results = incidents.map((inc) => {
    const k = real.indexOf(inc);
    const next = k >= 0 && k + 1 < real.length ? real[k + 1].start : Infinity;
    return judge(rows, inc, next);
  });
  const quietAlerts = quiet.filter((p) => num(p.is_anomaly) === 1);
  const summary = {
    command: `npm run bench:real-host -- ${process.argv.slice(2).join(' ')}`.trim(),
    host,
    cores,
    total_mem_bytes: totalMem,
    telegraf: telegrafVersion,
    collection_interval_s: STEP_S,
    poll_interval_s: args.pollS,
    args: { ...args, out: path.relative(ROOT, args.out) },
    started: new Date(started).toISOString(),
    finished: new Date(finished).toISOString(),
    load_average_end: os.loadavg(),
    learning_period: {
      minutes: args.learnMin,
      ...levels(learning),
      alerts: learning.filter((p) => num(p.is_anomaly) === 1).length,
      learning_steps: learning.filter((p) => num(p.learning) === 1).length,
    },
    quiet_period: {
      minutes: args.quietMin,
      ...levels(quiet),
      alerts: quietAlerts.length,
      alert_times: quietAlerts.map((p) => ({
        time: new Date(p.time).toISOString(),
        top: topMetric(p),
        severity: num(p.severity),
        learning: num(p.learning),
      })),
      raw_anomalies: quiet.filter((p) => num(p.raw_anomaly) === 1).length,
      learning_steps: quiet.filter((p) => num(p.learning) === 1).length,
    },
    incidents: results,
    total_alerts: rows.filter((p) => num(p.is_anomaly) === 1).length,
    health,
    steps: rows.map(toStep),
  };
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, JSON.stringify(summary, null, 2) + '\n');

  const q = summary.quiet_period;
  const lines = [
    `Real host ${host} (${cores} cores, ${(totalMem / 2 ** 30).toFixed(1)} GiB), ${telegrafVersion} every ${STEP_S} s, service in learning mode (poll ${args.pollS} s)`,
    `learning ${args.learnMin} min: ${summary.learning_period.steps} steps, ${summary.learning_period.alerts} gated alerts (${summary.learning_period.learning_steps} steps still learning)`,
    `quiet    ${args.quietMin} min: ${q.steps} steps, ${q.alerts} gated alerts, ${q.raw_anomalies} raw anomalies, ${q.learning_steps} learning steps; cpu_val median ${fmt(q.cpu_median)} % (p90 ${fmt(q.cpu_p90)} %), mem_val ${fmt(q.mem_median)} %, net_val ${mbps(q.net_median)}`,
    '',
    '| incident | alerted | delay (steps) | top contribution | alerts | alerts in the 5 min before | max severity | before -> peak |',
    '|---|---|---|---|---|---|---|---|',
    ...results.map((r) => {
      if (r.skipped) return `| ${r.name} | skipped: ${r.skipped} | | | | | | |`;
      const lvl =
        r.expected_top === 'cpu'
          ? `cpu ${fmt(r.before.cpu_median)} -> ${fmt(r.peak.cpu)} %`
          : r.expected_top === 'memory'
            ? `mem ${fmt(r.before.mem_median)} -> ${fmt(r.peak.mem)} %`
            : `net ${mbps(r.before.net_median)} -> ${mbps(r.peak.net)}`;
      const top = r.top_contribution
        ? `${r.top_contribution}${r.top_contribution === r.expected_top ? '' : ` (expected ${r.expected_top})`}`
        : '-';
      return `| ${r.name} | ${r.alerted ? 'yes' : 'no'} | ${r.delay_steps ?? '-'} | ${top} | ${r.alerts} (+${r.alerts_after} after) | ${r.alerts_before} of ${r.before.steps} | ${fmt(r.max_severity, 2)} | ${lvl} |`;
    }),
    '',
    `written to ${path.relative(process.cwd(), args.out) || args.out}`,
  ];
  console.log(lines.join('\n'));
}

main()
  .catch((e: unknown) => {
    log(`failed: ${(e as Error).stack ?? String(e)}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanup();
    log('cleaned up');
    // Nothing of ours is left running; exit even if a handle lingers.
    process.exit(process.exitCode ?? 0);
  });
