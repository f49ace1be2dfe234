/**
 * The Dockerfile, run without Docker (none on these machines): the build context is
 * made from the repository with .dockerignore, every stage's COPY/WORKDIR/ENV/RUN is
 * carried out in its own directory (npm ci, build, prune; OS package installs would be
 * skipped), then the final stage's CMD is started with its ENV and must answer /health,
 * its HEALTHCHECK command must pass, and SIGTERM must stop it cleanly.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/process';
import { emulateBuild, hostPath, type BuildReport } from '../unit/deploy/lib/docker-build';
import { copyBuildContext } from '../unit/deploy/lib/dockerignore';
import { DOCKERFILE, DOCKERIGNORE, REPO } from '../unit/deploy/lib/paths';

jest.setTimeout(600_000);

describe('Dockerfile build and start, outside Docker', () => {
  let work: string;
  let report: BuildReport;
  let contextFiles: string[];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'iad-dockerfile-'));
    const context = join(work, 'context');
    contextFiles = copyBuildContext(REPO, readFileSync(DOCKERIGNORE, 'utf8'), context, ['node_modules', '.git', 'dist']);
    report = await emulateBuild({
      dockerfileText: readFileSync(DOCKERFILE, 'utf8'),
      context,
      workRoot: join(work, 'stages'),
      // Same registry, this machine's cache: faster, nothing else changes.
      runEnv: { npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' },
    });
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('sends a small build context: sources, lockfile and the bundled model only', () => {
    expect(contextFiles).toEqual(
      expect.arrayContaining([
        'package.json',
        'package-lock.json',
        'tsconfig.json',
        'tsconfig.build.json',
        'models/model.json',
        'src/server.ts',
      ]),
    );
    expect(contextFiles.filter((f) => /^(node_modules|dist|\.git|test|data|mlflow|docker|k8s)\//.test(f) || /(^|\/)\.env/.test(f))).toEqual(
      [],
    );
  });

  it('ran the build, compile and prune commands', () => {
    expect(report.ran.some((c) => /^npm ci\b/.test(c))).toBe(true);
    expect(report.ran.some((c) => /^npm run build\b/.test(c))).toBe(true);
    expect(report.ran.some((c) => /^npm prune\b.*--omit=dev/.test(c))).toBe(true);
    expect(report.skipped).toEqual([]);
  });

  it('leaves production dependencies only, the compiled service and the model in the image', () => {
    const app = hostPath(report.image.root, report.image.workdir);
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    for (const dep of Object.keys(pkg.dependencies))
      expect({ dep, present: existsSync(join(app, 'node_modules', dep, 'package.json')) }).toEqual({ dep, present: true });
    for (const dep of Object.keys(pkg.devDependencies))
      expect({ dep, present: existsSync(join(app, 'node_modules', dep)) }).toEqual({ dep, present: false });
    expect(existsSync(join(app, 'dist', 'src', 'cli', 'main.js'))).toBe(true);
    expect(existsSync(join(app, 'models', 'model.json'))).toBe(true);
    expect(existsSync(join(app, 'src'))).toBe(false);
  });

  it('starts with its CMD and ENV, answers /health, passes its HEALTHCHECK, and exits 0 on SIGTERM', async () => {
    const { image } = report;
    const cmd = image.cmd as string[];
    expect(cmd[0]).toBe('node');
    const port = await freePort();
    // As `docker run -p`: the image's ENV, with the port and address of this test.
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...image.env, HOST: '127.0.0.1', PORT: String(port) };
    const cwd = hostPath(image.root, image.workdir);
    const child = spawn(process.execPath, cmd.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      let health: Response | undefined;
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && child.exitCode === null) {
        try {
          health = await fetch(`http://127.0.0.1:${port}/health`);
          if (health.status === 200) break;
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      if (health?.status !== 200) throw new Error(`service from the image did not answer /health: ${out.slice(-2000)}`);
      const body = (await health.json()) as { status: string; model: { version: string } | null };
      expect(body.status).toBe('ok');
      expect(body.model?.version).toEqual(expect.any(String));

      const hc = image.healthcheck;
      expect(hc?.argv[0]).toBe('node');
      const check = () => spawnSync(process.execPath, (hc?.argv ?? []).slice(1), { cwd, env, timeout: 10_000 }).status;
      expect(check()).toBe(0);

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(out).toContain('shutting down');
      // And the HEALTHCHECK notices when the service is gone.
      expect(check()).not.toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
