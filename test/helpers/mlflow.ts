import { freePort } from './ports';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ROOT } from './fixtures';

/** A running tracking server. */
export interface MlflowServer {
  /** Tracking URI, e.g. http://127.0.0.1:41234 */
  url: string;
  /** Temporary directory holding mlflow.db, artifacts/ and server.log. */
  dir: string;
  /** Stops the whole process group (mlflow CLI and its uvicorn/gunicorn workers) and removes `dir`. */
  stop(): Promise<void>;
}

/**
 * Time for beforeAll: a cold venv (scripts/mlflow-env.sh) takes 2-4 minutes, a server
 * start ~15-30 s.
 */
export const MLFLOW_START_TIMEOUT_MS = 15 * 60_000;

/** The venv with the pinned mlflow, provisioned by scripts/mlflow-env.sh (fast when cached). */
export async function mlflowVenv(): Promise<string> {
  const script = resolve(ROOT, 'scripts', 'mlflow-env.sh');
  return new Promise((ok, fail) => {
    execFile(
      'bash',
      [script],
      { encoding: 'utf8', timeout: MLFLOW_START_TIMEOUT_MS - 120_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const venv = stdout.trim().split('\n').pop() ?? '';
        if (err || !existsSync(join(venv, 'bin', 'mlflow'))) {
          const why = (stderr.trim().split('\n').pop() || err?.message.split('\n')[0] || 'no venv path printed').slice(0, 300);
          fail(new Error(`MLflow is not available: scripts/mlflow-env.sh failed (needs python3 with venv and PyPI access): ${why}`));
        } else ok(venv);
      },
    );
  });
}

function healthy(url: string): Promise<boolean> {
  return new Promise((ok) => {
    const req = get(`${url}/health`, { timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => ok(res.statusCode === 200 && body.trim() === 'OK'));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => ok(false));
  });
}

function logTail(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .filter((l) => !/Warning|warn\(|^\s/.test(l));
    return (lines.pop() ?? '').slice(0, 300);
  } catch {
    return '';
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Signals the process group; ignores "no such process". */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Servers still running, killed if the test process exits without stop(). */
const running = new Set<number>();
process.once('exit', () => running.forEach((pid) => killGroup(pid, 'SIGKILL')));

async function stopGroup(child: ChildProcess, graceMs = 10_000): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  killGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (groupAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (groupAlive(pid)) killGroup(pid, 'SIGKILL');
  while (groupAlive(pid) && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 100));
  running.delete(pid);
}

/**
 * Starts `mlflow server` from the pinned venv on a free loopback port, with a SQLite
 * store and proxied artifacts in a new temporary directory, one worker, and the job
 * runner off (it forks a dozen huey consumers the tests do not use). Resolves once
 * GET /health answers OK. Fails with one line (and the server log's last line) when the
 * server exits or is not healthy within `startTimeoutMs`.
 */
export async function startMlflowServer(startTimeoutMs = 120_000): Promise<MlflowServer> {
  const venv = await mlflowVenv();
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'mlflow-test-'));
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const log = join(dir, 'server.log');
    const fd = openSync(log, 'a');
    const child = spawn(
      join(venv, 'bin', 'mlflow'),
      [
        'server',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--workers',
        '1',
        '--backend-store-uri',
        `sqlite:///${join(dir, 'mlflow.db')}`,
        '--artifacts-destination',
        join(dir, 'artifacts'),
      ],
      {
        cwd: dir,
        detached: true, // own process group, so stop() reaches the uvicorn/gunicorn children
        stdio: ['ignore', fd, fd],
        env: {
          ...process.env,
          MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false',
          PYTHONUNBUFFERED: '1',
          NO_PROXY: '127.0.0.1,localhost',
          no_proxy: '127.0.0.1,localhost',
        },
      },
    );
    closeSync(fd);
    child.unref();
    if (child.pid !== undefined) running.add(child.pid);
    let exited: string | null = null;
    child.once('exit', (code, signal) => (exited = `exited with ${signal ?? code}`));
    child.once('error', (e) => (exited = `could not start: ${e.message}`));

    const server: MlflowServer = {
      url,
      dir,
      stop: async () => {
        await stopGroup(child);
        rmSync(dir, { recursive: true, force: true });
      },
    };
    const deadline = Date.now() + startTimeoutMs;
    while (Date.now() < deadline && exited === null) {
      if (await healthy(url)) return server;
      await new Promise((r) => setTimeout(r, 250));
    }
    const tail = logTail(log);
    await server.stop();
    lastError = `mlflow server on ${url} ${exited ?? `not healthy after ${startTimeoutMs} ms`}${tail ? `: ${tail}` : ''}`;
    // Another process took the port between freePort() and bind: try a new one.
    if (!/address already in use|Errno 98/i.test(tail)) break;
  }
  throw new Error(`MLflow server did not start: ${lastError}`);
}
