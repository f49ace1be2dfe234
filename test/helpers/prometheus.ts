import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './fixtures';
import { freePort } from './ports';

const MISSING =
  "Prometheus not found: run `bash scripts/prometheus-env.sh` (unpacks Debian's prometheus package into a cache) or install prometheus, or set PROMETHEUS_DIR to the directory of prometheus and promtool";

/** The directory holding `prometheus` and `promtool`: PROMETHEUS_DIR, else what scripts/prometheus-env.sh finds or fetches. Throws one line otherwise. */
export function findPrometheus(): string {
  const fromEnv = process.env.PROMETHEUS_DIR;
  if (fromEnv) {
    if (!existsSync(join(fromEnv, 'prometheus')) || !existsSync(join(fromEnv, 'promtool')))
      throw new Error(`PROMETHEUS_DIR=${fromEnv} holds no prometheus and promtool. ${MISSING}`);
    return fromEnv;
  }
  try {
    const out = execFileSync('bash', [join(ROOT, 'scripts', 'prometheus-env.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 300_000,
    });
    return out.trim().split('\n').pop() as string;
  } catch (e) {
    const why = String((e as { stderr?: string }).stderr ?? '')
      .trim()
      .split('\n')
      .pop();
    throw new Error(`${MISSING}${why ? ` (${why})` : ''}`);
  }
}

/** Runs promtool with `args` (and `input` on stdin); its exit code and output. */
export function promtool(args: string[], input?: string): { code: number | null; output: string } {
  const r = spawnSync(join(findPrometheus(), 'promtool'), args, { input, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export interface Prometheus {
  url: string;
  /** An instant query's result vector (throws on a query error). */
  query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  /** The active targets of /api/v1/targets. */
  targets(): Promise<Array<{ labels: Record<string, string>; health: string; lastError: string; lastScrape: string }>>;
  output(): string;
  stop(): Promise<void>;
}

/** Starts Prometheus on a free loopback port with `config` (YAML text; `PROMETHEUS_SELF` in it is replaced by its own host:port) and waits until it is ready. */
export async function startPrometheus(config: string): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'iad-prometheus-'));
  const port = await freePort();
  const self = `127.0.0.1:${port}`;
  writeFileSync(join(dir, 'prometheus.yml'), config.replaceAll('PROMETHEUS_SELF', self));
  const child = spawn(
    join(findPrometheus(), 'prometheus'),
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${self}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const url = `http://${self}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited at start: ${out.slice(-2000)}`);
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`prometheus not ready within 30 s: ${out.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error ?? res.status}`);
    return body.data;
  };
  return {
    url,
    query: async (expr) =>
      (
        await api<{ resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(
          `/api/v1/query?query=${encodeURIComponent(expr)}`,
        )
      ).result,
    targets: async () => (await api<{ activeTargets: Awaited<ReturnType<Prometheus['targets']>> }>('/api/v1/targets')).activeTargets,
    output: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
