/**
 * The compose file's MLflow server command, run with the same MLflow version outside
 * Docker (the venv of scripts/mlflow-env.sh, which the compose image tag must match; see
 * test/unit/deploy/compose.test.ts): its flags are accepted, the SQLite store and the
 * artifacts land under the mounted directory, other containers' Host header
 * (mlflow:5000) and the published localhost port are allowed, others are refused, and
 * the container's healthcheck command passes.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../helpers/process';
import { argvOf, bindMountsOf, loadCompose } from '../unit/deploy/lib/compose';
import { COMPOSE_FILE, REPO } from '../unit/deploy/lib/paths';

jest.setTimeout(900_000);

function venv(): Promise<string> {
  return new Promise((ok, fail) => {
    execFile(
      'bash',
      [resolve(REPO, 'scripts', 'mlflow-env.sh')],
      { encoding: 'utf8', timeout: 840_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const path = stdout.trim().split('\n').pop() ?? '';
        if (err || !existsSync(join(path, 'bin', 'mlflow')))
          fail(
            new Error(
              `MLflow is not available: scripts/mlflow-env.sh failed: ${(stderr.trim().split('\n').pop() ?? err?.message ?? '').slice(0, 300)}`,
            ),
          );
        else ok(path);
      },
    );
  });
}

/** An HTTP request with a chosen Host header (fetch does not allow setting it). */
function call(
  port: number,
  host: string,
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<{ status: number; text: string }> {
  return new Promise((ok, fail) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: { host, ...(payload !== undefined ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {}) },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => ok({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', fail);
    req.end(payload);
  });
}

describe('compose MLflow service command, with the pinned MLflow', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  let port: number;
  let python: string;
  let log = '';

  beforeAll(async () => {
    const home = await venv();
    python = join(home, 'bin', 'python');
    const { compose } = loadCompose(COMPOSE_FILE);
    const svc = compose.services.mlflow;
    const mount = bindMountsOf(svc).find((b) => resolve(resolve(COMPOSE_FILE, '..'), b.source) === resolve(REPO, 'mlflow'));
    if (!mount) throw new Error('mlflow service does not mount ../mlflow');
    dir = mkdtempSync(join(tmpdir(), 'iad-compose-mlflow-'));
    port = await freePort();
    const argv = argvOf(svc.command).map((a) =>
      a.startsWith('--host=')
        ? '--host=127.0.0.1'
        : a.startsWith('--port=')
          ? `--port=${port}`
          : a.split(`${mount.target}/`).join(`${dir}/`),
    );
    expect(argv.slice(0, 2)).toEqual(['mlflow', 'server']);
    const env = {
      ...process.env,
      ...Object.fromEntries(Object.entries(svc.environment as Record<string, string>).map(([k, v]) => [k, String(v)])),
    };
    // Own process group: stopping it reaches the uvicorn worker too.
    child = spawn(join(home, 'bin', 'mlflow'), argv.slice(1), { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d) => (log = (log + d).slice(-4000)));
    child.stderr?.on('data', (d) => (log = (log + d).slice(-4000)));
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        if ((await call(port, `127.0.0.1:${port}`, 'GET', '/health')).status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    throw new Error(`mlflow server from the compose command did not start: ${log.slice(-1000)}`);
  });

  afterAll(async () => {
    if (child?.pid !== undefined && child.exitCode === null) {
      // A throwaway server on temporary data: no need for a graceful stop.
      const exited = new Promise((r) => child?.once('exit', r));
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await exited;
    }
    child?.stdout?.destroy();
    child?.stderr?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves other containers (Host mlflow:5000) and the published port, refuses other hosts, and keeps its store under the mount', async () => {
    const created = await call(port, 'mlflow:5000', 'POST', '/api/2.0/mlflow/experiments/create', { name: 'compose-check' });
    expect(created.status).toBe(200);
    expect(JSON.parse(created.text)).toHaveProperty('experiment_id');
    expect(
      (await call(port, 'localhost:5000', 'GET', '/api/2.0/mlflow/experiments/get-by-name?experiment_name=compose-check')).status,
    ).toBe(200);
    expect(
      (await call(port, 'evil.example:5000', 'GET', '/api/2.0/mlflow/experiments/get-by-name?experiment_name=compose-check')).status,
    ).toBe(403);
    expect(existsSync(join(dir, 'mlflow.db'))).toBe(true);
    // Proxied artifacts land under the mounted directory.
    const put = await call(
      port,
      'mlflow:5000',
      'PUT',
      '/api/2.0/mlflow-artifacts/artifacts/compose-check/hello.txt',
      'hello',
      'text/plain',
    );
    expect(put.status).toBe(200);
    expect(readFileSync(join(dir, 'artifacts', 'compose-check', 'hello.txt'), 'utf8')).toBe('hello');
  });

  it("passes the container's healthcheck command", () => {
    const { compose } = loadCompose(COMPOSE_FILE);
    const test = argvOf(compose.services.mlflow.healthcheck?.test);
    expect(test.slice(0, 3)).toEqual(['CMD', 'python', '-c']);
    const script = test[3].replace('127.0.0.1:5000', `127.0.0.1:${port}`);
    expect(script).not.toBe(test[3]);
    expect(spawnSync(python, ['-c', script], { timeout: 15_000 }).status).toBe(0);
    expect(spawnSync(python, ['-c', script.replace(`:${port}`, ':1')], { timeout: 15_000 }).status).not.toBe(0);
  });
});
