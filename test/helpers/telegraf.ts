/**
 * Starts a real Telegraf for integration tests: the binary that scripts/telegraf-env.sh
 * builds (only the plugins of docker/telegraf.conf and docker/telegraf-kafka.conf), run
 * with docker/telegraf.conf itself (or another configuration: configPath, e.g.
 * docker/telegraf-kafka.conf, with TOML appended: extraConfig). The configuration's
 * `${...}` URLs and database come from the environment, as in the compose file; only the
 * collection and flush intervals are rewritten (short, for tests).
 *
 * The binary: $TELEGRAF_BIN, else the script's cache path. When it is missing, CI fails
 * with one line; elsewhere the script is run here to build it (1-3 minutes, once).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './fixtures';
import { freePort } from './ports';

export const TELEGRAF_CONF = path.join(ROOT, 'docker', 'telegraf.conf');
/** The compose stack's Kafka profile's configuration (outputs.kafka instead of outputs.influxdb). */
export const TELEGRAF_KAFKA_CONF = path.join(ROOT, 'docker', 'telegraf-kafka.conf');
const SCRIPT = path.join(ROOT, 'scripts', 'telegraf-env.sh');

/** Time for a beforeAll that may build Telegraf (outside CI only); a start takes ~1 s. */
export const TELEGRAF_START_TIMEOUT_MS = 10 * 60_000;

/** The version scripts/telegraf-env.sh pins (TELEGRAF_VERSION="x.y.z"). */
export function telegrafVersion(): string {
  const v = /^TELEGRAF_VERSION="([^"]+)"/m.exec(fs.readFileSync(SCRIPT, 'utf8'))?.[1];
  if (!v) throw new Error(`${SCRIPT} has no TELEGRAF_VERSION="..." line`);
  return v;
}

/** The build tags scripts/telegraf-env.sh compiles in (TELEGRAF_TAGS="..."). */
export function telegrafTags(): string[] {
  const t = /^TELEGRAF_TAGS="([^"]+)"/m.exec(fs.readFileSync(SCRIPT, 'utf8'))?.[1];
  if (!t) throw new Error(`${SCRIPT} has no TELEGRAF_TAGS="..." line`);
  return t.split(',');
}

/** Where scripts/telegraf-env.sh puts the binary (same defaults as the script). */
export function cachedTelegrafPath(): string {
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(process.env.TELEGRAF_DIR || path.join(cache, 'infra-anomaly-detector', `telegraf-${telegrafVersion()}`), 'telegraf');
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function buildWithScript(): Promise<string> {
  return new Promise((ok, fail) => {
    execFile(
      'bash',
      [SCRIPT],
      { encoding: 'utf8', timeout: TELEGRAF_START_TIMEOUT_MS - 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const bin = stdout.trim().split('\n').pop() ?? '';
        if (err || !isExecutable(bin)) {
          const why = (stderr.trim().split('\n').pop() || err?.message.split('\n')[0] || 'no path printed').slice(0, 300);
          fail(new Error(`Telegraf is not available: scripts/telegraf-env.sh failed: ${why}`));
        } else ok(bin);
      },
    );
  });
}

/** Path of the Telegraf binary; see the file comment. Rejects with one line. */
export async function findTelegraf(): Promise<string> {
  const fromEnv = process.env.TELEGRAF_BIN;
  if (fromEnv) {
    if (!isExecutable(fromEnv))
      throw new Error(
        `TELEGRAF_BIN=${fromEnv} is not an executable file: run scripts/telegraf-env.sh and set TELEGRAF_BIN to the path it prints`,
      );
    return fromEnv;
  }
  const cached = cachedTelegrafPath();
  if (isExecutable(cached)) return cached;
  if (process.env.CI === 'true')
    throw new Error(`Telegraf not found at ${cached}: run scripts/telegraf-env.sh (it prints the path; or set TELEGRAF_BIN)`);
  return buildWithScript();
}

/** Replaces the one line `key = "..."` of the [agent] table; throws unless there is exactly one. */
function setAgentDuration(text: string, key: string, value: string): string {
  const re = new RegExp(`^(\\s*${key}\\s*=\\s*)"[^"]*"`, 'gm');
  const n = [...text.matchAll(re)].length;
  if (n !== 1) throw new Error(`the Telegraf configuration: expected one ${key} = "..." line, found ${n}`);
  return text.replace(re, `$1"${value}"`);
}

/**
 * docker/telegraf.conf with a shorter collection and flush interval; everything else
 * (plugins, filters, `${INFLUX_URL}` and the other variables) as it is.
 */
export function testTelegrafConfig(text: string, intervalS: number): string {
  let out = setAgentDuration(text, 'interval', `${intervalS}s`);
  out = setAgentDuration(out, 'flush_interval', `${intervalS}s`);
  return out;
}

/** A running Telegraf owned by one test file. */
export interface Telegraf {
  readonly bin: string;
  /** The temporary directory holding telegraf.conf. */
  readonly dir: string;
  /** outputs.health's URL (200 while the agent runs). */
  readonly healthUrl: string;
  /** The collection interval in seconds. */
  readonly intervalS: number;
  /** The last output of the process, for failure messages. */
  logs(): string;
  /** SIGTERM (SIGKILL after 10 s), wait for exit, delete the directory. */
  stop(): Promise<void>;
}

/** Options of {@link startTelegraf}. */
export interface TelegrafOptions {
  /** outputs.influxdb's URL (INFLUX_URL). */
  influxUrl: string;
  /** outputs.influxdb's database (INFLUX_DATABASE); Telegraf creates it. */
  database: string;
  /** Collection and flush interval; default 1 s. */
  intervalS?: number;
  /** How long to wait for outputs.health; default 30 s. */
  startTimeoutMs?: number;
  /**
   * The configuration to run (intervals rewritten as above); default docker/telegraf.conf
   * of this checkout (TELEGRAF_CONF). For callers run from dist/, whose ROOT is not the checkout's.
   */
  configPath?: string;
  /**
   * More variables for the configuration's `${...}` (e.g. docker/telegraf-kafka.conf's
   * KAFKA_BROKER, KAFKA_TOPIC, TELEGRAF_HOSTNAME); INFLUX_URL, INFLUX_DATABASE and
   * TELEGRAF_HEALTH_PORT are set by the helper.
   */
  env?: Record<string, string>;
  /** TOML appended to the configuration (e.g. one more output section). */
  extraConfig?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts Telegraf (docker/telegraf.conf unless configPath) and resolves once outputs.health answers 200. */
export async function startTelegraf(opts: TelegrafOptions): Promise<Telegraf> {
  const bin = await findTelegraf();
  const intervalS = opts.intervalS ?? 1;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telegraf-test-'));
  const configPath = path.join(dir, 'telegraf.conf');
  const text = testTelegrafConfig(fs.readFileSync(opts.configPath ?? TELEGRAF_CONF, 'utf8'), intervalS);
  fs.writeFileSync(configPath, opts.extraConfig ? `${text.trimEnd()}\n\n${opts.extraConfig.trim()}\n` : text);
  const healthPort = await freePort();
  const healthUrl = `http://127.0.0.1:${healthPort}/`;
  let output = '';
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-16_384);
  };
  // The variables the compose file sets for the container, and nothing of the test's.
  const child: ChildProcess = spawn(bin, ['--config', configPath], {
    cwd: dir,
    env: {
      ...opts.env,
      PATH: process.env.PATH,
      HOME: dir,
      INFLUX_URL: opts.influxUrl,
      INFLUX_DATABASE: opts.database,
      TELEGRAF_HEALTH_PORT: String(healthPort),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let exitInfo: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = signal ? `signal ${signal}` : `code ${code}`;
      resolve();
    });
    child.once('error', (err) => {
      exitInfo = err.message;
      resolve();
    });
  });
  const tail = () => output.trim().split('\n').slice(-5).join(' | ');
  const stop = async (): Promise<void> => {
    if (exitInfo === undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    process.removeListener('exit', killOnExit);
    fs.rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  for (;;) {
    if (exitInfo !== undefined) {
      await stop();
      throw new Error(`telegraf exited during start (${exitInfo}): ${tail()}`);
    }
    try {
      const res = await fetch(healthUrl, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`telegraf's outputs.health did not answer ${healthUrl} within ${opts.startTimeoutMs ?? 30_000} ms: ${tail()}`);
    }
    await sleep(100);
  }
  return { bin, dir, healthUrl, intervalS, logs: () => output, stop };
}
