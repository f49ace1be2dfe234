/**
 * Starts a real `influxd` (InfluxDB 1.x) for integration tests: free loopback ports for
 * HTTP and RPC, a temporary directory for meta/data/wal, a generated quiet config.
 * stop() and restart() keep the port and the data, for outage tests.
 *
 * The binary: $INFLUXD, else `influxd` on PATH. When it is missing and we are root with
 * apt-get, Debian's `influxdb` package is installed; otherwise start fails with one line.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports';
import { exitOnSignals } from './process';

const MISSING = 'influxd not found: apt-get install influxdb (Debian) or set INFLUXD=/path/to/influxd';

/** Options of {@link startInfluxd}. */
export interface InfluxdOptions {
  /** Turn on `[http] auth-enabled` (then create an admin user first). */
  authEnabled?: boolean;
  /** How long to wait for /ping after each start; default 30 s. */
  startTimeoutMs?: number;
}

/** A running (or stopped) influxd owned by one test file. */
export interface Influxd {
  /** `http://127.0.0.1:<port>`; unchanged across restart(). */
  readonly url: string;
  readonly port: number;
  readonly rpcPort: number;
  /** The temporary directory (config, meta, data, wal). */
  readonly dir: string;
  /** SIGTERM and wait for exit (SIGKILL after 10 s). Data stays. */
  stop(): Promise<void>;
  /** Start again on the same port with the same data; resolves once /ping answers. */
  restart(): Promise<void>;
  /** stop() and delete the directory. */
  cleanup(): Promise<void>;
  /** Sends a signal to the running influxd (SIGSTOP, then SIGCONT: a server that stops answering for a while). */
  signal(sig: NodeJS.Signals): void;
  /** The last output of the process, for failure messages. */
  logs(): string;
  /**
   * Runs InfluxQL directly over HTTP (independent of src/influx), returns the parsed JSON.
   */
  rawQuery(q: string, opts?: { db?: string; username?: string; password?: string }): Promise<unknown>;
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).concat(['/usr/bin', '/usr/sbin', '/usr/local/bin']);
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

/** Path of the influxd binary, installing Debian's package when allowed. Throws one line otherwise. */
export function findInfluxd(): string {
  const fromEnv = process.env.INFLUXD;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`INFLUXD=${fromEnv} is not an executable file. ${MISSING}`);
    return fromEnv;
  }
  const found = onPath('influxd');
  if (found) return found;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && onPath('apt-get')) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    try {
      execFileSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 300_000 });
      execFileSync('apt-get', ['install', '-y', '-qq', 'influxdb'], { env, stdio: 'ignore', timeout: 300_000 });
    } catch {
      throw new Error(`${MISSING} (apt-get install influxdb failed)`);
    }
    const installed = onPath('influxd');
    if (installed) return installed;
  }
  throw new Error(MISSING);
}

export { freePort };

function config(dir: string, port: number, rpcPort: number, authEnabled: boolean): string {
  const q = (p: string) => JSON.stringify(path.join(dir, p));
  return `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = ${q('meta')}
  logging-enabled = false

[data]
  dir = ${q('data')}
  wal-dir = ${q('wal')}
  wal-fsync-delay = "0s"
  query-log-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false
  log-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${port}"
  auth-enabled = ${authEnabled}
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "error"
  suppress-logo = true
`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts influxd and resolves once /ping answers 204. */
export async function startInfluxd(options: InfluxdOptions = {}): Promise<Influxd> {
  const bin = findInfluxd();
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'influxd-test-'));
  const configPath = path.join(dir, 'influxdb.conf');
  let output = '';
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);
  exitOnSignals();

  const append = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-16_384);
  };

  const launch = async (url: string): Promise<void> => {
    const proc = spawn(bin, ['run', '-config', configPath], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.stdout?.on('data', append);
    proc.stderr?.on('data', append);
    let gone = false;
    let exitInfo = '';
    exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        gone = true;
        exitInfo = signal ? `signal ${signal}` : `code ${code}`;
        resolve();
      });
      proc.once('error', (err) => {
        gone = true;
        exitInfo = err.message;
        resolve();
      });
    });
    const deadline = Date.now() + startTimeoutMs;
    while (Date.now() < deadline) {
      if (gone) throw new Error(`influxd exited during start (${exitInfo}): ${output.trim().split('\n').slice(-5).join(' | ')}`);
      try {
        const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) });
        if (res.status === 204) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    proc.kill('SIGKILL');
    await exited;
    throw new Error(`influxd did not answer ${url}/ping within ${startTimeoutMs} ms: ${output.trim().split('\n').slice(-5).join(' | ')}`);
  };

  // A free port can be taken between probing and binding: try fresh ports a few times.
  let port = 0;
  let rpcPort = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    rpcPort = await freePort();
    while (rpcPort === port) rpcPort = await freePort();
    fs.writeFileSync(configPath, config(dir, port, rpcPort, options.authEnabled ?? false));
    try {
      await launch(`http://127.0.0.1:${port}`);
      break;
    } catch (err) {
      if (attempt >= 3) {
        process.removeListener('exit', killOnExit);
        fs.rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  return {
    url,
    port,
    rpcPort,
    dir,
    stop,
    restart: async () => {
      await stop();
      await launch(url);
    },
    cleanup: async () => {
      await stop();
      process.removeListener('exit', killOnExit);
      fs.rmSync(dir, { recursive: true, force: true });
    },
    logs: () => output,
    signal: (sig) => void child?.kill(sig),
    rawQuery: async (q, opts = {}) => {
      const params = new URLSearchParams({ q });
      if (opts.db) params.set('db', opts.db);
      if (opts.username !== undefined) {
        params.set('u', opts.username);
        params.set('p', opts.password ?? '');
      }
      const res = await fetch(`${url}/query`, {
        method: 'POST',
        body: params,
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`influxd /query HTTP ${res.status}: ${text}`);
      return JSON.parse(text) as unknown;
    },
  };
}
